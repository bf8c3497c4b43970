"""Metrics of outputs against their ground truth (translation with paired test images): L1, PSNR
and SSIM from torchmetrics on pixels in [0, 1], and a perceptual distance from an extractor."""

from __future__ import annotations

import torch

from gankd.features import Extractor


def paired_scores(outputs: torch.Tensor, truth: torch.Tensor, metrics: list[str],
                  perceptual: Extractor | None = None, batch: int = 64) -> dict[str, float]:
    """Mean over images of each of `metrics` (l1, psnr, ssim, lpips) for uint8 [N, C, R, R] pairs."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    if outputs.shape != truth.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} and ground truth {tuple(truth.shape)} differ in shape")
    x, y = outputs.float() / 255, truth.float() / 255
    out = {}
    if "l1" in metrics:
        out["l1"] = float((x - y).abs().mean())
    if "psnr" in metrics:
        out["psnr"] = float(peak_signal_noise_ratio(x, y, data_range=1.0, reduction="none", dim=(1, 2, 3)).mean())
    if "ssim" in metrics:
        out["ssim"] = float(structural_similarity_index_measure(x, y, data_range=1.0))
    if "lpips" in metrics:
        dists = [(perceptual.perceptual(x[i:i + batch] * 2 - 1) - perceptual.perceptual(y[i:i + batch] * 2 - 1))
                 .pow(2).sum(1) for i in range(0, len(x), batch)]
        out["lpips"] = float(torch.cat(dists).mean())
    return out

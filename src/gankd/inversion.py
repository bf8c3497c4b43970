"""GAN inversion: find the latents w for which a frozen generator reproduces given images.

    w_i = argmin_w  |x_i - G(w)|_1 + perceptual_weight * d(x_i, G(w))

with d a perceptual distance (`domain` by default: offline; `lpips` where its weights are at
hand). Decisions (METHODS.md leaves them open): W+ by default (one w per synthesis layer; `w` ties
them); start from G's average w; Adam with a cosine learning-rate decay; constant noise, so that a
projection is a deterministic function of the images. Images are independent: the loss is a sum
over images, so a batch of shots inverts exactly as each shot alone would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gankd.errors import GankdError
from gankd.features import Extractor
from gankd.progress import progress

SPACES = ("w", "w+")


@dataclass
class Projection:
    w: torch.Tensor  # [N, num_ws, w_dim]
    images: torch.Tensor  # G(w) in [-1, 1]
    start: dict[str, list[float]]  # per-image errors at G's average w: {"pixel_l1", "perceptual"}
    end: dict[str, list[float]]  # per-image errors after the optimisation


def reconstruction_errors(targets: torch.Tensor, images: torch.Tensor, perceptual: Extractor,
                          grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image mean absolute pixel error (in [-1, 1] units) and perceptual distance."""
    pixel = (targets - images).abs().flatten(1).mean(1)
    dist = (perceptual.perceptual(targets, grad) - perceptual.perceptual(images, grad)).pow(2).sum(1)
    return pixel, dist


def project(G, targets: torch.Tensor, perceptual: Extractor, steps: int = 200, space: str = "w+",
            perceptual_weight: float = 1.0, lr: float = 0.05, label: str = "projecting") -> Projection:
    """Invert `targets` ([N, C, R, R] in [-1, 1], G's resolution and channels) into G's W or W+,
    reporting progress as `label` (a bar on a terminal, two lines elsewhere)."""
    if space not in SPACES:
        raise GankdError(f"inversion space must be one of {', '.join(SPACES)}, not {space!r}")
    if steps < 0:
        raise GankdError(f"inversion steps must be 0 or more, got {steps}")
    if tuple(targets.shape[1:]) != (G.cfg.img_channels, G.cfg.resolution, G.cfg.resolution):
        raise GankdError(f"images of shape {tuple(targets.shape[1:])} do not fit the generator "
                         f"({G.cfg.img_channels}x{G.cfg.resolution}x{G.cfg.resolution})")
    G = G.eval().requires_grad_(False)
    targets = targets.detach()
    n, layers = len(targets), G.num_ws if space == "w+" else 1
    w = G.w_avg.detach().clone().view(1, 1, -1).repeat(n, layers, 1).requires_grad_(True)

    def render(w: torch.Tensor) -> torch.Tensor:
        return G.synthesis(w.expand(-1, G.num_ws, -1), noise_mode="const")

    def errors(w: torch.Tensor) -> dict[str, list[float]]:
        with torch.no_grad():
            pixel, dist = reconstruction_errors(targets, render(w), perceptual)
        return {"pixel_l1": pixel.tolist(), "perceptual": dist.tolist()}

    start = errors(w)
    opt = torch.optim.Adam([w], lr=lr, betas=(0.9, 0.999))
    for step in progress(range(steps), label, unit="step", lines=2):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        pixel, dist = reconstruction_errors(targets, render(w), perceptual, grad=True)
        loss = (pixel + perceptual_weight * dist).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    w = w.detach().expand(-1, G.num_ws, -1).contiguous()
    with torch.no_grad():
        images = render(w)
    return Projection(w=w, images=images, start=start, end=errors(w))

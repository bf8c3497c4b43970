"""Evaluation: FID, KID, precision/recall, intra-cluster LPIPS and data-copying (docs/metrics.md).

The registry of metric names, with the fewest images each is defined for; the formulas are one
module each, `evaluate.py` compares generators with references.
"""

from __future__ import annotations

from gankd.errors import GankdError, unknown

METRICS = {
    "fid": "Fréchet distance of Gaussians fitted to the features",
    "kid": "kernel (MMD², cubic) distance, unbiased, mean ± std over subsets; primary for small references",
    "pr": "precision and recall, k = 3 (Kynkäänniemi et al. 2019)",
    "intra_lpips": "mean pairwise perceptual distance within clusters around each training shot (CDC)",
    "copying": "C_T of Meehan et al. (2020) and the nearest-training distance ratio, against held-out images",
    "l1": "mean absolute error against the ground truth, pixels in [0, 1] (translation)",
    "psnr": "peak signal-to-noise ratio against the ground truth, dB, per image then averaged (torchmetrics)",
    "ssim": "structural similarity against the ground truth, Gaussian window 11, sigma 1.5 (torchmetrics)",
    "lpips": "perceptual distance to the ground truth, mean over images (--lpips: domain or lpips)",
}
NEEDS_TRAIN = ("intra_lpips", "copying")
NEEDS_FEATURES = ("kid", "pr", "copying")
NEEDS_TRUTH = ("l1", "psnr", "ssim", "lpips")  # a translation model on a task with ground truth
INTRA_LPIPS_SAMPLES = 1000  # CDC's protocol: 1000 samples
# The fewest images, on either side, with which a metric is defined (pr: more than its k = 3 neighbours).
MIN_IMAGES = {"fid": 2, "kid": 2, "pr": 4, "intra_lpips": 1, "copying": 1, "l1": 1, "psnr": 1, "ssim": 1,
              "lpips": 1}


def parse_metrics(text: str | list[str]) -> list[str]:
    names = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    bad = [m for m in names if m not in METRICS]
    if bad:
        raise GankdError(unknown("metric", bad[0], METRICS))
    if not names:
        raise GankdError(f"no metrics given; choose from {', '.join(METRICS)}")
    return names


def check_counts(metrics: list[str], n: int, what: str, hint: str = "") -> None:
    """Refuse, before any work, a set too small for one of the metrics."""
    short = [f"{m} needs at least {MIN_IMAGES[m]}" for m in metrics if n < MIN_IMAGES[m]]
    if short:
        raise GankdError(f"{what} has {n} image{'s' * (n != 1)}; {', '.join(short)}{hint}")

"""The feature-extractor interface that metrics and methods share: images in, embeddings out.

Every extractor takes float images [N, C, H, W] in [-1, 1] of any size (1 or 3 channels) and
resizes them itself, so a number never depends on who called it. Its `id` names the network and
its weights (`domain:3f2a91c0`), and every reported metric carries that id.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

RESIZE_MODES = ("clean", "legacy")


def clean_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased bicubic resize in PyTorch (the "clean" mode): no aliasing when shrinking."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False, antialias=True)


def as_rgb(images: torch.Tensor) -> torch.Tensor:
    """[N, 1|3|4, H, W] -> [N, 3, H, W]: gray is repeated, alpha dropped."""
    c = images.shape[1]
    if c == 1:
        return images.expand(-1, 3, -1, -1)
    if c in (3, 4):
        return images[:, :3]
    raise ValueError(f"images must have 1, 3 or 4 channels, not {c}")


class Extractor(torch.nn.Module):
    """Base class. Subclasses set `kind`, `input_size`, `weights_hash` and implement `_embed`.

    `_embed` receives RGB images in [-1, 1] already resized to `input_size` (in "clean" mode).
    Those that support a perceptual (LPIPS-style) distance implement `_perceptual`, returning flat
    vectors whose squared Euclidean distance *is* the perceptual distance, so that pairwise
    distances of thousands of images are one `torch.cdist`.
    """

    kind: str = "?"
    input_size: int = 0
    weights_hash: str = ""
    resize: str = "clean"

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.weights_hash[:8]}"

    @property
    def has_perceptual(self) -> bool:
        return type(self)._perceptual is not Extractor._perceptual

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        images = as_rgb(images.float()).clamp(-1, 1)
        return clean_resize(images, self.input_size) if self.resize == "clean" else images

    def embed(self, images: torch.Tensor, grad: bool = False) -> torch.Tensor:
        """Global features [N, D] (float32): what FID, KID, precision/recall and copying compare.
        With `grad`, gradients flow back to the images (the network itself stays frozen)."""
        with torch.inference_mode(not grad):
            return self._embed(self.prepare(images.to(self.device))).float()

    def perceptual(self, images: torch.Tensor, grad: bool = False) -> torch.Tensor:
        """[N, P] with ||p_i - p_j||^2 = perceptual distance between images i and j."""
        if not self.has_perceptual:
            raise NotImplementedError(f"{self.kind} features have no perceptual distance")
        with torch.inference_mode(not grad):
            return self._perceptual(self.prepare(images.to(self.device))).float()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _perceptual(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def flat_perceptual(maps: list[torch.Tensor], channel_weights: list[torch.Tensor] | None = None) -> torch.Tensor:
    """LPIPS as a squared Euclidean distance: unit-normalise each map over channels, scale by
    sqrt(channel weight / (H * W)) and concatenate. Then ||a - b||^2 equals
    sum over layers of the spatial mean of sum_c w_c (a_hwc - b_hwc)^2, which is LPIPS' formula.
    """
    parts = []
    for i, fmap in enumerate(maps):
        fmap = fmap.float()
        fmap = fmap / (fmap.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        scale = 1.0 / (fmap.shape[2] * fmap.shape[3])
        if channel_weights is not None:
            fmap = fmap * channel_weights[i].float().view(1, -1, 1, 1).clamp(min=0).sqrt()
        parts.append((fmap * scale ** 0.5).flatten(1))
    return torch.cat(parts, dim=1)

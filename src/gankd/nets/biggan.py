"""BigGAN (Brock et al. 2019) at the small resolutions of the limited-data papers, in pure PyTorch.

The layout of BigGAN-PyTorch's CIFAR architecture (the one DiffAugment, LeCam and KD-DLGAN train
on CIFAR-10/100): G maps z to a 4x4 map of 4*ch channels and up-samples it through residual
blocks (conditional BN, ReLU, nearest 2x, 3x3 conv, twice; a 1x1 skip) to an output unit (BN,
ReLU, 3x3 conv, tanh); D is a stack of residual blocks (4*d_ch channels; the first two halve the
resolution), ReLU, a sum over positions (`phi`), a linear output and, for labels, a projection
<embed(c), phi>. Spectral norm on every weight of both, N(0, 0.02) initialisation.

Labels: conditional BN reads a shared embedding of c (a linear map, so one-hot labels and DIP's
feature vectors both fit): gain = 1 + linear(e), bias = linear(e). Unconditional: plain BN with
learned affine. To serve the latent family like StyleGAN2, G exposes `mapping` (w = [z, e]),
`synthesis(w)`, `num_ws` = 1 (no style mixing), `w_avg` (truncation lerps w toward it) and
`noise_mode` (ignored: BigGAN has no noise inputs). Feature taps: G `b4`..`b{R}` per block;
D `block1`.. per block and `phi`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gankd.nets.config import NetConfig

MIN_RESOLUTION, MAX_RESOLUTION = 16, 128


@dataclass(frozen=True)
class BigGANConfig(NetConfig):
    """BigGAN-PyTorch's CIFAR settings by default (ch 64 = 256 channels in every block)."""

    label = "BigGAN"

    resolution: int = 32
    img_channels: int = 3
    z_dim: int = 128
    c_dim: int = 0
    ch: int = 64  # G blocks have 4*ch channels
    d_ch: int = 64  # D blocks have 4*d_ch channels
    shared_dim: int = 128  # the label embedding conditional BN reads

    def __post_init__(self):
        self.require(("img_channels", "z_dim", "ch", "d_ch", "shared_dim"), ("c_dim",), (MIN_RESOLUTION, MAX_RESOLUTION))

    @property
    def w_dim(self) -> int:
        return self.z_dim + (self.shared_dim if self.c_dim else 0)


def sn(module: nn.Module) -> nn.Module:
    """N(0, 0.02) weights, zero biases, spectral norm (one power iteration per training forward)."""
    nn.init.normal_(module.weight, 0.0, 0.02)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)
    return spectral_norm(module)


class ConditionalBN(nn.Module):
    """Batch norm whose gain and bias come from the label embedding e (or learned constants without labels)."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=not cond_dim)
        if cond_dim:
            self.gain, self.bias = sn(nn.Linear(cond_dim, channels, bias=False)), sn(nn.Linear(cond_dim, channels, bias=False))

    def forward(self, x: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        x = self.bn(x)
        if e is None:
            return x
        return x * (1 + self.gain(e))[:, :, None, None] + self.bias(e)[:, :, None, None]


class GBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, cond_dim: int):
        super().__init__()
        self.bn1, self.bn2 = ConditionalBN(c_in, cond_dim), ConditionalBN(c_out, cond_dim)
        self.conv1, self.conv2 = sn(nn.Conv2d(c_in, c_out, 3, padding=1)), sn(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = sn(nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, e)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), e)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class Generator(nn.Module):
    def __init__(self, cfg: BigGANConfig):
        super().__init__()
        self.cfg = cfg
        width = 4 * cfg.ch
        cond_dim = cfg.shared_dim if cfg.c_dim else 0
        if cfg.c_dim:
            self.shared = nn.Linear(cfg.c_dim, cfg.shared_dim, bias=False)
            nn.init.normal_(self.shared.weight, 0.0, 0.02)
        self.linear = sn(nn.Linear(cfg.z_dim, width * 16))
        self.blocks = nn.ModuleList(GBlock(width, width, cond_dim) for _ in range(int(math.log2(cfg.resolution)) - 2))
        self.out_bn = nn.BatchNorm2d(width)
        self.out_conv = sn(nn.Conv2d(width, cfg.img_channels, 3, padding=1))
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    @property
    def num_ws(self) -> int:
        return 1

    def mapping(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0) -> torch.Tensor:
        """w = [z, shared embedding of c] [B, w_dim], truncated toward `w_avg` when psi < 1."""
        if self.cfg.c_dim and c is None:
            raise ValueError(f"this generator is conditional: pass c with {self.cfg.c_dim} values per sample")
        w = torch.cat([z, self.shared(c.to(z.dtype))], 1) if self.cfg.c_dim else z
        return self.w_avg.lerp(w, truncation_psi) if truncation_psi != 1 else w

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "random", return_features: bool = False):
        """w [B, w_dim] (or [B, 1, w_dim]) -> image [B, C, R, R] in [-1, 1] (+ per-block features)."""
        w = ws[:, 0] if ws.ndim == 3 else ws
        z, e = w[:, :self.cfg.z_dim], (w[:, self.cfg.z_dim:] if self.cfg.c_dim else None)
        x = self.linear(z).view(len(z), -1, 4, 4)
        feats = {"b4": x}
        for block in self.blocks:
            x = block(x, e)
            feats[f"b{x.shape[-1]}"] = x
        image = torch.tanh(self.out_conv(F.relu(self.out_bn(x))))
        return (image, feats) if return_features else image

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                noise_mode: str = "random", return_features: bool = False):
        return self.synthesis(self.mapping(z, c, truncation_psi), noise_mode, return_features)


class DBlock(nn.Module):
    """Residual block; all but the first are pre-activated (ReLU first); average pooling when downsampling."""

    def __init__(self, c_in: int, c_out: int, downsample: bool, preactivation: bool):
        super().__init__()
        self.conv1, self.conv2 = sn(nn.Conv2d(c_in, c_out, 3, padding=1)), sn(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.downsample, self.preactivation = downsample, preactivation
        self.skip = sn(nn.Conv2d(c_in, c_out, 1)) if c_in != c_out or downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x) if self.preactivation else x)))
        pool = (lambda t: F.avg_pool2d(t, 2)) if self.downsample else (lambda t: t)
        h = pool(h)
        if self.skip is None:
            return h + x
        return h + (pool(self.skip(x)) if self.preactivation else self.skip(pool(x)))


class Discriminator(nn.Module):
    def __init__(self, cfg: BigGANConfig):
        super().__init__()
        self.cfg = cfg
        width = 4 * cfg.d_ch
        n_down = int(math.log2(cfg.resolution)) - 3  # down to 8x8, then two blocks at 8x8 (CIFAR: 32 -> 16 -> 8, 8, 8)
        self.blocks = nn.ModuleList(
            DBlock(cfg.img_channels if i == 0 else width, width, i < n_down, i > 0) for i in range(n_down + 2))
        self.linear = sn(nn.Linear(width, 1))
        if cfg.c_dim:
            self.embed = sn(nn.Linear(cfg.c_dim, width, bias=False))

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, return_features: bool = False):
        """img [B, C, R, R] -> logits [B, 1] (+ features `block1`.. and `phi`, the summed ReLU map)."""
        feats: dict[str, torch.Tensor] = {}
        x = img
        for i, block in enumerate(self.blocks, 1):
            x = block(x)
            feats[f"block{i}"] = x
        phi = F.relu(x).sum((2, 3))
        feats["phi"] = phi
        out = self.linear(phi)
        if self.cfg.c_dim:
            if c is None:
                raise ValueError(f"this discriminator is conditional: pass c with {self.cfg.c_dim} values per sample")
            out = out + (self.embed(c.to(phi.dtype)) * phi).sum(1, keepdim=True)
        return (out, feats) if return_features else out

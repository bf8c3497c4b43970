"""The continuous aging network (Li, Jiang and Aarabi, "Continuous Face Aging via Self-estimated
Residual Age Embedding", CVPR 2021; no public code): an encoder E, a linear age estimator embedded
in the model, and a decoder that renders E(x) at a target age through an age embedding.

- F = E(x) (C x R/4 x R/4: a 7x7 conv, two stride-2 convs, residual blocks; instance norm, as
  CycleGAN's encoder), v = GAP(F).
- Estimator: p = softmax(W v + b) over K classes, class k standing for the value
  min_age + k * age_step ("age" is any continuous attribute: years, a font's weight); the
  estimate ŷ = Σ_k age_k p_k is differentiable.
- Aging basis: a_k = W[k], the estimator's own weights; a(t) for any t interpolates linearly
  between the two nearest rows (a(age_k) = a_k exactly).
- Personalised residual (`residual`): hard r = v − a(ŷ); soft r = v − Σ_k p_k a_k; none r = 0
  (the ablation e_t = a(t)). Target embedding e_t = r + a(t): with the hard residual, e_ŷ = v,
  so rendering at the estimated age is the identity path.
- Decoder: residual blocks that read e_t (`inject`: modulate, each block's instance-normalised
  features scaled by 1 + γ(e_t) and shifted by β(e_t); concat, e_t tiled onto F and mixed by a 1x1
  conv), two transposed convs, a 7x7 conv, tanh.
gankd decides the layer layout (the paper's is not public): CycleGAN's ResNet generator split at
its encoder, so that widths and costs compare with the translation models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gankd.nets.config import NetConfig
from gankd.nets.translation import ResidualBlock, init_weights, norm_layer

RESIDUALS = ("hard", "soft", "none")
INJECTIONS = ("modulate", "concat")


@dataclass(frozen=True)
class AgingConfig(NetConfig):
    label = "aging"

    resolution: int = 64
    channels: int = 3
    ngf: int = 32
    enc_blocks: int = 3  # residual blocks of the encoder
    dec_blocks: int = 3  # residual blocks of the decoder, each reading e_t
    min_age: float = 0.0
    max_age: float = 100.0
    age_step: float = 1.0  # one estimator class per step
    residual: str = "hard"
    inject: str = "modulate"

    def __post_init__(self):
        self.require(("channels", "ngf", "dec_blocks"), ("enc_blocks",), resolutions=(16, 1024))
        if self.residual not in RESIDUALS or self.inject not in INJECTIONS:
            raise ValueError(f"residual must be one of {', '.join(RESIDUALS)} and inject one of "
                             f"{', '.join(INJECTIONS)}, not {self.residual!r} and {self.inject!r}")
        if not (self.age_step > 0 and self.max_age > self.min_age):
            raise ValueError(f"need max_age > min_age and age_step > 0, got {self.min_age}, {self.max_age}, "
                             f"{self.age_step}")

    @property
    def classes(self) -> int:
        return round((self.max_age - self.min_age) / self.age_step) + 1

    @property
    def embed_dim(self) -> int:
        return 4 * self.ngf


def wide(x: torch.Tensor) -> torch.Tensor:
    """x in float32 at least (autocast's half types widened; float64 kept)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


class ModulatedBlock(nn.Module):
    """A residual block whose two convolutions' instance-normalised outputs are scaled by
    1 + γ(e) and shifted by β(e), from the age embedding e."""

    def __init__(self, channels: int, embed_dim: int):
        super().__init__()
        self.conv1 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3))
        self.conv2 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3))
        self.style = nn.Linear(embed_dim, 4 * channels)
        nn.init.zeros_(self.style.weight)  # starts as a plain instance-normalised block
        nn.init.zeros_(self.style.bias)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        g1, b1, g2, b2 = self.style(e)[:, :, None, None].chunk(4, 1)
        h = F.relu((1 + g1) * F.instance_norm(self.conv1(x)) + b1)
        return x + (1 + g2) * F.instance_norm(self.conv2(h)) + b2


class AgingGenerator(nn.Module):
    """E, the embedded estimator and the decoder; `forward(x, t)` renders x at ages t."""

    def __init__(self, cfg: AgingConfig):
        super().__init__()
        self.cfg = cfg
        ngf, c = cfg.ngf, cfg.embed_dim
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(cfg.channels, ngf, 7), norm_layer("instance", ngf),
                                   nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1),
                       norm_layer("instance", ngf * mult * 2), nn.ReLU(True)]
        layers += [ResidualBlock(c, "instance", False, True) for _ in range(cfg.enc_blocks)]
        self.encoder = nn.Sequential(*layers)
        self.estimator = nn.Linear(c, cfg.classes)
        self.register_buffer("ages", cfg.min_age + cfg.age_step * torch.arange(cfg.classes, dtype=torch.float32))
        self.mix = nn.Conv2d(2 * c, c, 1) if cfg.inject == "concat" else None
        self.blocks = nn.ModuleList(ModulatedBlock(c, c) if cfg.inject == "modulate" else
                                    ResidualBlock(c, "instance", False, True) for _ in range(cfg.dec_blocks))
        up: list[nn.Module] = []
        for mult in (4, 2):
            up += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
                   norm_layer("instance", ngf * mult // 2), nn.ReLU(True)]
        up += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, cfg.channels, 7), nn.Tanh()]
        self.decoder = nn.Sequential(*up)
        init_weights(self)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(F, v): the encoder's map and its global average."""
        feats = self.encoder(x)
        return feats, wide(feats).mean((2, 3))

    def estimate(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits over the K classes, the expected age ŷ)."""
        logits = self.estimator(v)
        return logits, (wide(logits).softmax(1) * self.ages).sum(1)

    def basis(self, t: torch.Tensor) -> torch.Tensor:
        """a(t): the estimator's rows at ages t [B], interpolated linearly between neighbours
        (ages outside the range take the end rows)."""
        pos = ((wide(t) - self.cfg.min_age) / self.cfg.age_step).clamp(0, self.cfg.classes - 1)
        low = pos.floor().long().clamp(max=self.cfg.classes - 2) if self.cfg.classes > 1 else pos.long()
        frac = (pos - low)[:, None]
        W = self.estimator.weight
        return W[low] if self.cfg.classes == 1 else (1 - frac) * W[low] + frac * W[low + 1]

    def embedding(self, v: torch.Tensor, logits: torch.Tensor, estimate: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """e_t = r + a(t), with the configured personalised residual r."""
        if self.cfg.residual == "hard":
            r = v - self.basis(estimate)
        elif self.cfg.residual == "soft":
            r = v - wide(logits).softmax(1) @ self.estimator.weight
        else:
            r = torch.zeros_like(v)
        return r + self.basis(t)

    def decode(self, feats: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        x = feats
        if self.mix is not None:
            x = self.mix(torch.cat([x, e[:, :, None, None].expand_as(x).to(x.dtype)], 1))
        for block in self.blocks:
            x = block(x, e.to(x.dtype)) if isinstance(block, ModulatedBlock) else block(x)
        return self.decoder(x)

    def forward(self, x: torch.Tensor, t: torch.Tensor, return_parts: bool = False):
        """x rendered at ages t [B]; with `return_parts`, also {"feats", "v", "logits", "estimate", "e"}."""
        feats, v = self.encode(x)
        logits, estimate = self.estimate(v)
        e = self.embedding(v, logits, estimate, t)
        out = self.decode(feats, e)
        parts = {"feats": feats, "v": v, "logits": logits, "estimate": estimate, "e": e}
        return (out, parts) if return_parts else out

"""The continuous aging network (Li, Jiang and Aarabi, "Continuous Face Aging via Self-estimated
Residual Age Embedding", CVPR 2021; no public code): an encoder E, a linear age estimator embedded
in the model, and a decoder that renders E(x) at a target age through an age embedding.

- F = E(x) (C x R/4 x R/4: a 7x7 conv, two stride-2 convs, residual blocks; instance norm, as
  CycleGAN's encoder), v = GAP(φ(F)) with φ a 3x3 conv and a LeakyReLU: instance norm leaves every
  channel of F with a mean that carries almost nothing of the image, so GAP(F) itself could not
  tell ages apart (measured: the estimator stayed at chance); φ, without normalisation, can.
- Estimator: p = softmax(W v + b) over K classes, class k standing for the value
  min_age + k * age_step ("age" is any continuous attribute: years, a font's weight); the
  estimate ŷ = Σ_k age_k p_k is differentiable.
- Aging basis: a(t) = q(t)ᵀ B, where q(t) puts weight on the classes next to t (`interpolate`:
  linear, the two nearest with linear weights, so a(age_k) = B[k] exactly; nearest, the one
  nearest) and B is the estimator's own weights W (`basis=estimator`, the paper) or a learned table
  of its own (`basis=table`).
- Personalised residual (`residual`): hard r = v − a(ŷ); soft r = v − Σ_k p_k B[k]; none r = 0
  (the ablation e_t = a(t)). Target embedding e_t = r + a(t): with the hard residual, e_ŷ = v,
  so rendering at the estimated age is the identity path.
- Decoder: residual blocks that read e_t (`inject`: modulate, each block's instance-normalised
  features scaled by 1 + γ(e_t) and shifted by β(e_t); concat, e_t tiled onto F and mixed by a 1x1
  conv), two transposed convs, a 7x7 conv, tanh.
- The baselines are settings of the same network: the group-based model (K groups, `nearest`,
  `basis=table`, no residual: a one-hot group code) and the estimator trained apart from E
  (`estimator=separate`: its own encoder of E's down-sampling layout, so its weights live in
  another space than v and the basis is a table).
gankd decides the layer layout (the paper's is not public): CycleGAN's ResNet generator split at
its encoder, so that widths and costs compare with the translation models; D is the PatchGAN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gankd.nets.config import NetConfig
from gankd.nets.translation import PatchDiscriminator, ResidualBlock, TranslationConfig, init_weights, norm_layer

CHOICES = {"residual": ("hard", "soft", "none"), "inject": ("modulate", "concat"), "basis": ("estimator", "table"),
           "interpolate": ("linear", "nearest"), "estimator": ("embedded", "separate"), "d_condition": ("age", "none")}


@dataclass(frozen=True)
class AgingConfig(NetConfig):
    label = "aging"

    resolution: int = 64
    channels: int = 3
    ngf: int = 32
    enc_blocks: int = 3  # residual blocks of the encoder
    dec_blocks: int = 3  # residual blocks of the decoder, each reading e_t
    ndf: int = 64  # the PatchGAN's width and depth
    d_layers: int = 3
    min_age: float = 0.0
    max_age: float = 100.0
    age_step: float = 1.0  # one estimator class per step
    residual: str = "hard"
    inject: str = "modulate"
    basis: str = "estimator"
    interpolate: str = "linear"
    estimator: str = "embedded"
    d_condition: str = "age"  # age: D also sees the age asked for (or shown), a constant plane; none: images alone

    def __post_init__(self):
        self.require(("channels", "ngf", "dec_blocks", "ndf", "d_layers"), ("enc_blocks",), resolutions=(16, 1024))
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if not (self.age_step > 0 and self.max_age > self.min_age):
            raise ValueError(f"need max_age > min_age and age_step > 0, got {self.min_age}, {self.max_age}, "
                             f"{self.age_step}")
        if self.d_layers > self.resolution.bit_length() - 3:
            raise ValueError(f"d_layers must be at most {self.resolution.bit_length() - 3} at {self.resolution} px "
                             f"(the PatchGAN's last maps would be one pixel), not {self.d_layers}")
        if self.estimator == "separate" and self.basis == "estimator":
            raise ValueError("a separate estimator's weights live in its own network's space, not E's: "
                             "estimator=separate needs basis=table")

    @property
    def classes(self) -> int:
        return round((self.max_age - self.min_age) / self.age_step) + 1

    @property
    def embed_dim(self) -> int:
        return 4 * self.ngf


def wide(x: torch.Tensor) -> torch.Tensor:
    """x in float32 at least (autocast's half types widened; float64 kept)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def pooled_head(channels: int) -> nn.Module:
    """φ: what the global average reads, a 3x3 conv and a LeakyReLU (no normalisation)."""
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.2))


def down_layers(cfg: AgingConfig) -> list[nn.Module]:
    """E's stem: a 7x7 conv and two stride-2 convs (channels ngf, 2 ngf, 4 ngf), instance norm."""
    ngf = cfg.ngf
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(cfg.channels, ngf, 7), norm_layer("instance", ngf),
                               nn.ReLU(True)]
    for mult in (1, 2):
        layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1),
                   norm_layer("instance", ngf * mult * 2), nn.ReLU(True)]
    return layers


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
    """E, the estimator and the decoder; `forward(x, t)` renders x at ages t."""

    def __init__(self, cfg: AgingConfig):
        super().__init__()
        self.cfg = cfg
        ngf, c = cfg.ngf, cfg.embed_dim
        self.encoder = nn.Sequential(*down_layers(cfg),
                                     *(ResidualBlock(c, "instance", False, True) for _ in range(cfg.enc_blocks)))
        self.pool = pooled_head(c)
        self.estimator = nn.Linear(c, cfg.classes)
        self.separate = nn.Sequential(*down_layers(cfg), pooled_head(c)) if cfg.estimator == "separate" else None
        self.table = nn.Parameter(torch.randn(cfg.classes, c) * 0.02) if cfg.basis == "table" else None
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
        """(F, v): the encoder's map and the global average of φ(F)."""
        feats = self.encoder(x)
        return feats, F.normalize(wide(self.pool(feats)).mean((2, 3)), dim=1)

    def classify(self, x: torch.Tensor, v: torch.Tensor | None = None, frozen: bool = False) -> torch.Tensor:
        """The estimator's logits over the K classes for images x (v: E's pooled features of x, when
        already computed). `frozen`: the estimator's parameters (E's too when embedded) take no
        gradient, the images do (the age loss on generated images trains the generator only)."""
        if frozen:
            params = {k: p.detach() for k, p in self.named_parameters()}
            return torch.func.functional_call(self, params, (x,), {"classify_only": True})
        if self.separate is not None:
            return self.estimator(F.normalize(wide(self.separate(x)).mean((2, 3)), dim=1))
        return self.estimator(self.encode(x)[1] if v is None else v)

    def expected(self, logits: torch.Tensor) -> torch.Tensor:
        """ŷ = Σ_k age_k p_k: the differentiable estimate of the age."""
        return (wide(logits).softmax(1) * self.ages).sum(1)

    def weights(self, t: torch.Tensor) -> torch.Tensor:
        """q(t) [B, K]: the classes next to ages t and their weights (`interpolate`); ages outside
        the range take the end classes. Also the soft label of age t for the estimator's losses."""
        pos = ((wide(t) - self.cfg.min_age) / self.cfg.age_step).clamp(0, self.cfg.classes - 1)
        if self.cfg.interpolate == "nearest" or self.cfg.classes == 1:
            return F.one_hot((pos + 0.5).floor().long(), self.cfg.classes).to(pos.dtype)  # halves round up
        low = pos.floor().long().clamp(max=self.cfg.classes - 2)
        frac = (pos - low)[:, None]
        return (1 - frac) * F.one_hot(low, self.cfg.classes) + frac * F.one_hot(low + 1, self.cfg.classes)

    @property
    def rows(self) -> torch.Tensor:
        """B: the basis rows, the estimator's weights or the model's own table."""
        return self.estimator.weight if self.table is None else self.table

    def shown_age(self, t: torch.Tensor) -> torch.Tensor:
        """The age a rendering at t stands for, Σ_k q_k(t) age_k: t itself within the range (linear),
        the nearest group's centre (nearest); what a conditional D is told."""
        return (self.weights(t) * self.ages).sum(1)

    def basis(self, t: torch.Tensor) -> torch.Tensor:
        """a(t) = q(t)ᵀ B."""
        return self.weights(t).to(self.rows.dtype) @ self.rows

    def embedding(self, v: torch.Tensor, logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """e_t = r + a(t), with the configured personalised residual r."""
        if self.cfg.residual == "hard":
            r = v - self.basis(self.expected(logits))
        elif self.cfg.residual == "soft":
            r = v - wide(logits).softmax(1).to(self.rows.dtype) @ self.rows
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

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None, return_parts: bool = False,
                classify_only: bool = False):
        """x rendered at ages t [B]; with `return_parts`, also {"feats", "v", "logits", "estimate", "e"}
        (`classify_only`: the estimator's logits alone, what `classify(frozen=True)` calls)."""
        if classify_only:
            return self.classify(x)
        feats, v = self.encode(x)
        logits = self.classify(x, v)
        e = self.embedding(v, logits, t)
        out = self.decode(feats, e)
        parts = {"feats": feats, "v": v, "logits": logits, "estimate": self.expected(logits), "e": e}
        return (out, parts) if return_parts else out


class AgingDiscriminator(PatchDiscriminator):
    """The PatchGAN of an aging model, built from its config: with `d_condition=age` it sees the
    image and a constant plane of its age scaled to [-1, 1] over the range (conditional, as
    pix2pix's D sees its input beside the output); else the image alone."""

    def __init__(self, cfg: AgingConfig):
        conditional = cfg.d_condition == "age"
        super().__init__(TranslationConfig(resolution=cfg.resolution, in_channels=1 if conditional else cfg.channels,
                                           out_channels=cfg.channels, generator="resnet_6blocks", ndf=cfg.ndf,
                                           d_layers=cfg.d_layers, norm="instance", dropout=False,
                                           d_input="pair" if conditional else "single"))
        self.cfg = cfg

    def forward(self, x: torch.Tensor, age: torch.Tensor | None = None, return_features: bool = False):
        if self.cfg.d_condition == "age":
            scaled = 2 * (wide(age) - self.cfg.min_age) / (self.cfg.max_age - self.cfg.min_age) - 1
            x = torch.cat([scaled[:, None, None, None].expand(-1, 1, *x.shape[2:]).to(x.dtype), x], 1)
        return super().forward(x, return_features)

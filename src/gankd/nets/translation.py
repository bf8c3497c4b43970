"""Image-to-image networks: CycleGAN's ResNet generator, pix2pix's U-Net and the PatchGAN
discriminator, with one config for the three, as in junyanz/pytorch-CycleGAN-and-pix2pix (read for
the layer layout, so that its saved generators import exactly).

Each network is an `nn.Sequential` (or nested U-Net blocks) in the original's layer order; each
returns named feature taps on request (`return_features=True`), as the StyleGAN2 networks do:
the ResNet generator `enc` (after down-sampling) and `block{i}` (after each residual block), the
U-Net `down{i}` (each encoder level) and `bottleneck`, the PatchGAN `l{i}` (after each activation).
Weights start from N(0, 0.02) (norm scales N(1, 0.02)), the originals' default.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gankd.nets.config import NetConfig

GENERATORS = ("resnet_9blocks", "resnet_6blocks", "unet")
NORMS = ("instance", "batch", "none")


@dataclass(frozen=True)
class TranslationConfig(NetConfig):
    """Architecture of a translation model: generator kind and width (ngf), PatchGAN depth and
    width (ndf), normalisation, dropout, channels in and out, and a condition vector's size
    (`cond_dim`, tiled and concatenated to the generator's input: continuous attributes)."""

    label = "translation"

    resolution: int = 64
    in_channels: int = 3
    out_channels: int = 3
    generator: str = "unet"
    ngf: int = 64
    ndf: int = 64
    d_layers: int = 3
    norm: str = "batch"
    dropout: bool = True
    cond_dim: int = 0
    d_input: str = "pair"  # pair: D sees concat(A, B) (pix2pix); single: D sees B (CycleGAN)

    def __post_init__(self):
        r = self.resolution
        if r < 16 or r & (r - 1):
            raise ValueError(f"resolution must be a power of two of at least 16, got {r}")
        if self.generator not in GENERATORS:
            raise ValueError(f"generator must be one of {', '.join(GENERATORS)}, got {self.generator!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.d_input not in ("pair", "single"):
            raise ValueError(f"d_input must be pair or single, got {self.d_input!r}")
        self.require(("in_channels", "out_channels", "ngf", "ndf", "d_layers"), ("cond_dim",))
        if self.generator == "unet" and self.unet_levels < 5:
            raise ValueError("the U-Net needs a resolution of at least 32 (five levels)")

    @property
    def unet_levels(self) -> int:
        """Down-sampling levels of the U-Net: down to 1x1 (8 at 256 px, pix2pix's unet_256)."""
        return self.resolution.bit_length() - 1

    @property
    def d_channels(self) -> int:
        """Channels D reads: A and B side by side for a paired D, B alone otherwise."""
        return self.out_channels + (self.in_channels if self.d_input == "pair" else 0)


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def init_weights(net: nn.Module) -> nn.Module:
    """N(0, 0.02) convolutions, N(1, 0.02) norm scales, zero biases (the originals' `normal` init)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return net


class ResidualBlock(nn.Module):
    """x + [pad, conv3, norm, relu, (dropout), pad, conv3, norm](x), reflection padding."""

    def __init__(self, channels: int, norm: str, dropout: bool, bias: bool):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm_layer(norm, channels),
                  nn.ReLU(True)]
        layers += [nn.Dropout(0.5)] if dropout else []
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm_layer(norm, channels)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator: 7x7 conv, two stride-2 convs, 6 or 9 residual blocks at 4 ngf, two
    transposed convs, 7x7 conv to the output channels, tanh."""

    def __init__(self, cfg: TranslationConfig):
        super().__init__()
        self.cfg = cfg
        ngf, norm, bias = cfg.ngf, cfg.norm, cfg.norm != "batch"
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(cfg.in_channels + cfg.cond_dim, ngf, 7, bias=bias),
                                   norm_layer(norm, ngf), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                       norm_layer(norm, ngf * mult * 2), nn.ReLU(True)]
        self.encoder_end = len(layers)
        blocks = int(cfg.generator.split("_")[1].removesuffix("blocks"))
        layers += [ResidualBlock(ngf * 4, norm, cfg.dropout, bias) for _ in range(blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                          bias=bias), norm_layer(norm, ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, cfg.out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        feats: dict[str, torch.Tensor] = {}
        block = 0
        for i, layer in enumerate(self.model):
            x = layer(x)
            if i + 1 == self.encoder_end:
                feats["enc"] = x
            elif isinstance(layer, ResidualBlock):
                feats[f"block{block}"] = x
                block += 1
        return (x, feats) if return_features else x


class UnetBlock(nn.Module):
    """One U-Net level: down (leaky relu, 4x4 stride-2 conv, norm), the inner levels, up (relu,
    4x4 transposed conv, norm, optional dropout), the input concatenated to the output (skip)."""

    def __init__(self, outer: int, inner: int, norm: str, inner_block: nn.Module | None = None,
                 in_channels: int | None = None, outermost: bool = False, dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        bias = norm != "batch"
        in_channels = in_channels or outer
        down_conv = nn.Conv2d(in_channels, inner, 4, stride=2, padding=1, bias=bias)
        if outermost:
            layers = [down_conv, inner_block, nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
        elif inner_block is None:  # innermost
            layers = [nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True),
                      nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=bias), norm_layer(norm, outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down_conv, norm_layer(norm, inner), inner_block, nn.ReLU(True),
                      nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=bias), norm_layer(norm, outer)]
            layers += [nn.Dropout(0.5)] if dropout else []
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, feats: dict, level: int) -> torch.Tensor:
        y = x
        for layer in self.model:
            y = layer(y, feats, level + 1) if isinstance(layer, UnetBlock) else layer(y)
            if isinstance(layer, nn.Conv2d):
                feats[f"down{level}"] = y
        if not any(isinstance(layer, UnetBlock) for layer in self.model):
            feats["bottleneck"] = feats[f"down{level}"]
        return y if self.outermost else torch.cat([x, y], 1)


class UnetGenerator(nn.Module):
    """pix2pix's generator: `unet_levels` levels down to 1x1 (widths ngf, 2, 4, then 8 ngf), dropout
    in the inner 8-ngf levels but the innermost."""

    def __init__(self, cfg: TranslationConfig):
        super().__init__()
        self.cfg = cfg
        ngf, norm = cfg.ngf, cfg.norm
        block = UnetBlock(ngf * 8, ngf * 8, norm)
        for _ in range(cfg.unet_levels - 5):
            block = UnetBlock(ngf * 8, ngf * 8, norm, block, dropout=cfg.dropout)
        for mult in (4, 2, 1):
            block = UnetBlock(ngf * mult, ngf * mult * 2, norm, block)
        self.model = UnetBlock(cfg.out_channels, ngf, norm, block, in_channels=cfg.in_channels + cfg.cond_dim,
                               outermost=True)
        init_weights(self)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        feats: dict[str, torch.Tensor] = {}
        out = self.model(x, feats, 0)
        return (out, feats) if return_features else out


class Translator(nn.Module):
    """A generator of either kind, with the condition vector tiled onto its input."""

    def __init__(self, cfg: TranslationConfig):
        super().__init__()
        self.cfg = cfg
        self.net = UnetGenerator(cfg) if cfg.generator == "unet" else ResnetGenerator(cfg)

    @property
    def encoder_tap(self) -> str:
        """The tap after the two down-samplings (resolution / 4): where CycleGAN's ResNet encoder
        ends (`enc`), the U-Net's second level (`down1`; its encoder goes on down to 1 x 1, where a
        relation between positions is empty)."""
        return "down1" if self.cfg.generator == "unet" else "enc"

    @property
    def intermediate_taps(self) -> list[str]:
        """The taps feature distillation matches: the ResNet's encoder output and the residual
        blocks at each third (gan-compression's mapping layers: blocks 3, 6, 9 of 9); the U-Net's
        levels at resolution / 4, / 8 and / 16."""
        if self.cfg.generator == "unet":
            return ["down1", "down2", "down3"]
        blocks = int(self.cfg.generator.split("_")[1].removesuffix("blocks"))
        return ["enc", *(f"block{blocks * k // 3 - 1}" for k in (1, 2, 3))]

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None, return_features: bool = False):
        if self.cfg.cond_dim:
            if cond is None:
                raise ValueError(f"this generator is conditional: pass cond with {self.cfg.cond_dim} values per sample")
            x = torch.cat([x, cond[:, :, None, None].expand(-1, -1, *x.shape[2:]).to(x.dtype)], 1)
        return self.net(x, return_features=return_features)


class PatchDiscriminator(nn.Module):
    """PatchGAN: 4x4 convs, stride 2 for the first `d_layers` (widths ndf, 2, 4, 8 ndf at most), then
    a stride-1 conv and a 1-channel stride-1 conv: a logit per (70x70 for 3 layers) patch."""

    def __init__(self, cfg: TranslationConfig):
        super().__init__()
        self.cfg = cfg
        ndf, norm, bias = cfg.ndf, cfg.norm, cfg.norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(cfg.d_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, cfg.d_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < cfg.d_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                       norm_layer(norm, ndf * mult), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        feats: dict[str, torch.Tensor] = {}
        for layer in self.model:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                feats[f"l{len(feats)}"] = x
        return (x, feats) if return_features else x

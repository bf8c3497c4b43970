"""StyleGAN2 generator (skip architecture) and discriminator (residual), in pure PyTorch.

Parameter names mirror rosinality/stylegan2-pytorch (`style`, `input`, `conv1`, `to_rgb1`,
`convs`, `to_rgbs`, `noises`; `convs`, `final_conv`, `final_linear`), extended by what NVlabs'
StyleGAN2-ADA adds, so that its checkpoints import exactly too: `conv_clamp`, a discriminator
without residual skips (`d_architecture="orig"`), and conditioning. The generator embeds `c` and
concatenates it to z before the mapping network (as NVlabs does). The discriminator's head is
either a projection, D(x, c) = psi(phi(x)) + <W c, phi(x)> / sqrt(dim), for class labels and DIP's
feature priors, or NVlabs' `cmap` head, <out(phi(x)), MLP(c)> / sqrt(dim).

Both networks return per-block features on request (``return_features=True``) so that
distillation methods need no forward hooks. Feature names are ``b{resolution}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from gankd.nets.config import NetConfig
from gankd.nets.layers import (ConstantInput, ConvLayer, EqualLinear, PixelNorm, ResBlock, StyledConv,
                               ToRGB, minibatch_stddev)

MIN_RESOLUTION, MAX_RESOLUTION = 8, 1024


@dataclass(frozen=True)
class StyleGAN2Config(NetConfig):
    """Architecture of a StyleGAN2 pair; channels at resolution r are min(channel_base // r, channel_max)."""

    label = "StyleGAN2"

    resolution: int = 32
    img_channels: int = 3
    z_dim: int = 512
    w_dim: int = 512
    n_mlp: int = 8
    lr_mlp: float = 0.01
    channel_base: int = 32768
    channel_max: int = 512
    c_dim: int = 0
    mbstd_group: int = 4
    blur_kernel: tuple[int, ...] = (1, 3, 3, 1)
    conv_clamp: float | None = None
    d_architecture: str = "resnet"
    d_cond: str = "projection"
    d_cmap_layers: int = 8

    def __post_init__(self):
        self.require(("img_channels", "z_dim", "w_dim", "channel_base", "channel_max", "mbstd_group"),
                     resolutions=(MIN_RESOLUTION, MAX_RESOLUTION))
        if self.c_dim < 0 or self.n_mlp < 1 or self.d_cmap_layers < 0:
            raise ValueError("c_dim and d_cmap_layers must be >= 0 and n_mlp >= 1")
        if self.conv_clamp is not None and self.conv_clamp <= 0:
            raise ValueError(f"conv_clamp must be positive or None, got {self.conv_clamp}")
        for name, allowed in (("d_architecture", ("resnet", "orig")), ("d_cond", ("projection", "cmap"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        object.__setattr__(self, "blur_kernel", tuple(self.blur_kernel))

    def channels(self, res: int) -> int:
        return max(1, min(self.channel_base // res, self.channel_max))

    @property
    def log_size(self) -> int:
        return int(math.log2(self.resolution))

    @property
    def num_ws(self) -> int:
        """Number of per-layer style vectors the synthesis network consumes."""
        return self.log_size * 2 - 2


def normalize_2nd_moment(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


# random: fresh per-pixel noise (what evaluation uses, as NVlabs and the papers do); const: the
# generator's stored noise maps, one for every sample (pictures that never change); none: no noise
NOISE_MODES = ("random", "const", "none")


class Generator(nn.Module):
    """z (+ c) -> mapping -> w -> skip synthesis network -> image in [-1, 1] (unclamped)."""

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        self.cfg = cfg
        w_dim, bk, clamp = cfg.w_dim, cfg.blur_kernel, cfg.conv_clamp
        if cfg.c_dim:
            self.embed = EqualLinear(cfg.c_dim, w_dim)
        mapping_in = cfg.z_dim + (w_dim if cfg.c_dim else 0)
        self.style = nn.Sequential(PixelNorm(), *[
            EqualLinear(mapping_in if i == 0 else w_dim, w_dim, lr_mul=cfg.lr_mlp, activation=True)
            for i in range(cfg.n_mlp)])
        self.register_buffer("w_avg", torch.zeros(w_dim))

        ch = cfg.channels
        self.input = ConstantInput(ch(4))
        self.conv1 = StyledConv(ch(4), ch(4), 3, w_dim, blur_kernel=bk, clamp=clamp)
        self.to_rgb1 = ToRGB(ch(4), w_dim, cfg.img_channels, upsample=False, clamp=clamp)
        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        self.noises = nn.Module()
        num_layers = (cfg.log_size - 2) * 2 + 1
        for i in range(num_layers):
            res = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res))
        in_ch = ch(4)
        for log_res in range(3, cfg.log_size + 1):
            out_ch = ch(2 ** log_res)
            self.convs.append(StyledConv(in_ch, out_ch, 3, w_dim, upsample=True, blur_kernel=bk, clamp=clamp))
            self.convs.append(StyledConv(out_ch, out_ch, 3, w_dim, blur_kernel=bk, clamp=clamp))
            self.to_rgbs.append(ToRGB(out_ch, w_dim, cfg.img_channels, blur_kernel=bk, clamp=clamp))
            in_ch = out_ch
        self.num_layers = num_layers

    @property
    def num_ws(self) -> int:
        return self.cfg.num_ws

    def relabelled(self, c_dim: int, label_columns: torch.Tensor | None = None) -> "Generator":
        """A copy of this unconditional generator that takes labels of `c_dim` values. The label's
        columns of the first mapping layer start at zero, so that it ignores them until it trains
        (or at `label_columns`, stored values [w_dim, w_dim]); the z columns are rescaled for the
        wider layer's equalized learning rate. How a pretrained source becomes conditional (DIP's
        feature priors, classes)."""
        if self.cfg.c_dim:
            raise ValueError("only an unconditional generator can take on labels")
        new = Generator(replace(self.cfg, c_dim=c_dim)).to(self.w_avg.device)
        state, fresh = self.state_dict(), new.state_dict()
        first = "style.1.weight"
        widened = torch.zeros_like(fresh[first])
        widened[:, :state[first].shape[1]] = state[first] * (self.style[1].scale / new.style[1].scale)
        if label_columns is not None:
            widened[:, state[first].shape[1]:] = label_columns
        state[first] = widened
        state.update({k: v for k, v in fresh.items() if k.startswith("embed.")})
        new.load_state_dict(state)
        return new

    def mapping(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0) -> torch.Tensor:
        """z [B, z_dim] (+ c [B, c_dim]) -> w [B, w_dim], truncated toward `w_avg` when psi < 1."""
        x = normalize_2nd_moment(z)  # the PixelNorm at style[0]
        if self.cfg.c_dim:
            if c is None:
                raise ValueError(f"this generator is conditional: pass c with {self.cfg.c_dim} values per sample")
            x = torch.cat([x, normalize_2nd_moment(self.embed(c))], dim=1)
        w = self.style[1:](x)
        if truncation_psi != 1:
            w = self.w_avg.lerp(w, truncation_psi)
        return w

    @torch.no_grad()
    def estimate_w_avg(self, n: int = 4096, seed: int = 0, c: torch.Tensor | None = None) -> torch.Tensor:
        """Set `w_avg` to the mean of w over n random z (for models whose training did not track it)."""
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.cfg.z_dim, generator=gen).to(self.w_avg.device)
        if self.cfg.c_dim and c is None:
            c = torch.zeros(n, self.cfg.c_dim, device=z.device)
        self.w_avg.copy_(self.mapping(z, c).mean(0))
        return self.w_avg

    def noise_inputs(self, mode: str) -> list[torch.Tensor | None]:
        """'random': fresh noise each call; 'const': the stored noise buffers; 'none': no noise."""
        if mode == "random":
            return [None] * self.num_layers
        if mode == "const":
            return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        if mode == "none":
            return [getattr(self.noises, f"noise_{i}").new_zeros(()) for i in range(self.num_layers)]
        raise ValueError(f"noise mode must be random, const or none, not {mode!r}")

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "random",
                  noise: list[torch.Tensor | None] | None = None, return_features: bool = False):
        """ws [B, num_ws, w_dim] (or [B, w_dim], broadcast) -> image [B, C, R, R] (+ per-block features)."""
        if ws.ndim == 2:
            ws = ws[:, None].expand(-1, self.num_ws, -1)
        if ws.shape[1] != self.num_ws:
            raise ValueError(f"expected {self.num_ws} style vectors per sample, got {ws.shape[1]}")
        noise = noise if noise is not None else self.noise_inputs(noise_mode)
        feats: dict[str, torch.Tensor] = {}
        x = self.input(ws.shape[0])
        x = self.conv1(x, ws[:, 0], noise=noise[0])
        skip = self.to_rgb1(x, ws[:, 1])
        feats["b4"] = x
        i = 1
        for conv_up, conv, to_rgb in zip(self.convs[::2], self.convs[1::2], self.to_rgbs):
            x = conv_up(x, ws[:, i], noise=noise[i])
            x = conv(x, ws[:, i + 1], noise=noise[i + 1])
            skip = to_rgb(x, ws[:, i + 2], skip)
            feats[f"b{x.shape[-1]}"] = x
            i += 2
        return (skip, feats) if return_features else skip

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                noise_mode: str = "random", return_features: bool = False):
        w = self.mapping(z, c, truncation_psi)
        return self.synthesis(w, noise_mode=noise_mode, return_features=return_features)


class Discriminator(nn.Module):
    """Residual (or plain) discriminator with minibatch-stddev; conditional through a projection or cmap head."""

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        self.cfg = cfg
        ch, bk, clamp = cfg.channels, cfg.blur_kernel, cfg.conv_clamp
        layers: list[nn.Module] = [ConvLayer(cfg.img_channels, ch(cfg.resolution), 1, clamp=clamp)]
        in_ch = ch(cfg.resolution)
        for log_res in range(cfg.log_size, 2, -1):
            out_ch = ch(2 ** (log_res - 1))
            layers.append(ResBlock(in_ch, out_ch, bk, residual=cfg.d_architecture == "resnet", clamp=clamp))
            in_ch = out_ch
        self.convs = nn.Sequential(*layers)
        self.final_conv = ConvLayer(in_ch + 1, ch(4), 3, clamp=clamp)
        cmap = cfg.c_dim and cfg.d_cond == "cmap"
        self.final_linear = nn.Sequential(EqualLinear(ch(4) * 4 * 4, ch(4), activation=True),
                                          EqualLinear(ch(4), ch(4) if cmap else 1))
        if cmap:  # NVlabs: c -> embed -> normalize -> MLP -> cmap
            self.embed = EqualLinear(cfg.c_dim, ch(4))
            self.cmap = nn.Sequential(*[EqualLinear(ch(4), ch(4), lr_mul=cfg.lr_mlp, activation=True)
                                        for _ in range(cfg.d_cmap_layers)])
        elif cfg.c_dim:
            self.project = EqualLinear(cfg.c_dim, ch(4))

    def relabelled(self, c_dim: int) -> "Discriminator":
        """A copy with a projection head for labels of `c_dim` values (0: none) that judges as this
        one does until it trains: the projection starts at zero, W = 0 (or is dropped)."""
        if self.cfg.c_dim and self.cfg.d_cond != "projection":
            raise ValueError("only a projection head can be changed (this discriminator has NVlabs' cmap head)")
        new = Discriminator(replace(self.cfg, c_dim=c_dim, d_cond="projection")).to(next(self.parameters()).device)
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("project.")}
        state.update({k: torch.zeros_like(v) for k, v in new.state_dict().items() if k.startswith("project.")})
        new.load_state_dict(state)
        return new

    @property
    def block_names(self) -> list[str]:
        """Feature names in forward order: input block, each residual block, then the heads."""
        names = [f"b{self.cfg.resolution}"]
        names += [f"b{2 ** (r - 1)}" for r in range(self.cfg.log_size, 2, -1)]
        return names + ["final_conv", "phi"]

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, return_features: bool = False):
        """img [B, C, R, R] -> logits [B, 1] (+ features: b{R} after from-RGB, b{r} after each block,
        `final_conv`, and `phi`, the penultimate vector the heads read)."""
        feats: dict[str, torch.Tensor] = {}
        x = self.convs[0](img)
        feats[f"b{self.cfg.resolution}"] = x
        for block in self.convs[1:]:
            x = block(x)
            feats[f"b{x.shape[-1]}"] = x
        x = minibatch_stddev(x, self.cfg.mbstd_group)
        x = self.final_conv(x)
        feats["final_conv"] = x
        phi = self.final_linear[0](x.flatten(1))
        feats["phi"] = phi
        out = self.final_linear[1](phi)
        if self.cfg.c_dim:
            if c is None:
                raise ValueError(f"this discriminator is conditional: pass c with {self.cfg.c_dim} values per sample")
            if hasattr(self, "cmap"):
                out = (out * self.cmap(normalize_2nd_moment(self.embed(c)))).sum(dim=1, keepdim=True)
                out = out / math.sqrt(phi.shape[1])
            else:
                out = out + (phi * self.project(c)).sum(dim=1, keepdim=True) / math.sqrt(phi.shape[1])
        return (out, feats) if return_features else out

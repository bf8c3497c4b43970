"""TransferGAN-style fine-tuning: start G, G_ema and D from a source checkpoint and train everything."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gankd.checkpoint import load_checkpoint
from gankd.errors import ConfigError
from gankd.methods.base import DataInfo, Nets, Recipe, ema_copy


class Finetune(Recipe):
    """Every network starts from `source` (any format `load_checkpoint` reads); its architecture
    comes from the source, so `arch.*` settings do not apply. An unconditional StyleGAN2 source
    takes on the data's labels (classes, DIP's feature priors) through label layers that start at
    zero, so training starts from exactly the source's function (`Generator.relabelled`); with
    `new_labels=random`, G's label columns start as a fresh layer's would (under the mapping's
    learning-rate multiplier, zero columns hardly move in a few hundred steps). The per-layer noise strengths train
    too by default, as in rosinality's, CDC's and FreezeD's code (`train_noise=false` keeps them as
    in the source); every method built on this one has the option."""

    name = "finetune"
    adapts = True

    @dataclass
    class Options:
        train_noise: bool = True
        new_labels: str = "zero"  # how G's label columns start when an unconditional source takes on labels: zero, random

    def __init__(self, cfg):
        super().__init__(cfg)
        if self.options.new_labels not in ("zero", "random"):
            raise ConfigError(f"{self.name}.new_labels must be zero or random, not {self.options.new_labels!r}")

    def build(self, data: DataInfo) -> Nets:
        if not self.cfg.source:
            raise ConfigError(f"method {self.name} starts from a checkpoint: pass source=PATH")
        ckpt = load_checkpoint(self.cfg.source).require("latent", f"method {self.name}")
        arch = ckpt.config
        if "D" not in ckpt.roles:
            raise ConfigError(f"{self.cfg.source}: no discriminator, which {self.name} needs")
        relabel = not arch.c_dim and data.c_dim
        wanted = {"resolution": ("res", self.cfg.res), "img_channels": ("channels", data.img_channels),
                  "c_dim": ("", arch.c_dim if relabel else data.c_dim)}
        for key, (setting, value) in wanted.items():
            if getattr(arch, key) != value:
                fix = f"; set {setting}={getattr(arch, key)} to match it" if setting else ""
                raise ConfigError(f"{self.cfg.source}: the source has {key}={getattr(arch, key)}, "
                                  f"but the training data needs {value}{fix}")
        G = ckpt.network("G" if "G" in ckpt.roles else "G_ema").train().requires_grad_(True)
        D = ckpt.network("D").train().requires_grad_(True)
        G_ema = ckpt.network("G_ema") if "G_ema" in ckpt.roles else ema_copy(G)
        if relabel:
            if not hasattr(G, "relabelled"):
                raise ConfigError(f"{self.cfg.source}: an unconditional {arch.label} cannot take on labels; "
                                  "train a conditional one from scratch")
            w_dim, lr = G.cfg.w_dim, G.cfg.lr_mlp  # a fresh EqualLinear's initial values
            columns = torch.randn(w_dim, w_dim) / lr if self.options.new_labels == "random" else None
            G, G_ema = G.relabelled(data.c_dim, columns), G_ema.relabelled(data.c_dim, columns).eval()
            D = D.relabelled(data.c_dim)
            G_ema.requires_grad_(False)
        return Nets.latent(G, D, G_ema)

    def trainable(self, nets: Nets) -> dict[str, list[nn.Parameter]]:
        params = super().trainable(nets)
        if not self.options.train_noise:
            params["G"] = [p for name, p in nets.G.named_parameters() if not name.endswith("noise.weight")]
        return params

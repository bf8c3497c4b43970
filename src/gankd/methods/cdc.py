"""CDC (Ojha et al. 2021, "Few-shot Image Generation via Cross-domain Correspondence").

Fine-tuning plus two parts, following the authors' code (utkarshojha/few-shot-gan-adaptation,
train.py) where the paper is silent:
- Cross-domain distance consistency (`cdc` term, G_main): a fresh batch of `batch` (4) latents,
  not the adversarial batch and not style-mixed, goes through the frozen source G_s and through
  G_t; each sample's softmaxed cosine similarities to the others must match (KL(P_s || P_t),
  averaged over the entries as nn.KLDivLoss() does), each row at a generator layer drawn at random
  per sample among every synthesis block but the 4x4 one; weight 1000 as their `kl_wt`.
- Anchor regions and a patch-level discriminator: every `anchor_every`-th step (4) the fakes come
  from regions around fixed anchor latents (one per training image, std 0.1, no style mixing) and
  are judged by the image-level D; on the other steps fakes and reals are judged by a patch-level
  head on a D feature map.
The patch head reads the map at an eighth of the resolution, as the reference does (a 32x32 map of
a 256 px D; `patch_layer`, 4x4 for a 32 px D; a quarter was gankd's first choice, and on animals
it scored worse in 5 of 5 seeds, docs/results-fewshot.md). Deviations, named: the head is a 3x3
conv unit and a 1x1 projection, where the reference has one 3x3 conv (with a leaky ReLU on the
logits); generator features are taken per block (after its second conv), where the reference
takes every conv. R1 stays on the image-level logits,
which is also what the reference computes (its R1 steps, every 16th, always fall on anchor steps).
The patch head is trained with D; its weights are part of the recipe's checkpointed state.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gankd.errors import ConfigError
from gankd.losses.distill import distance_consistency
from gankd.methods.base import DataInfo, Nets, PhaseData, load_module_state, module_state
from gankd.methods.finetune import Finetune
from gankd.nets.layers import ConvLayer


class PatchHead(nn.Module):
    """Patch logits [N, 1, h, w] from a D feature map: a 3x3 conv unit, then a 1x1 projection."""

    def __init__(self, channels: int):
        super().__init__()
        self.net = nn.Sequential(ConvLayer(channels, channels, 3), ConvLayer(channels, 1, 1, activate=False))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class CDC(Finetune):
    name = "cdc"

    @dataclass
    class Options(Finetune.Options):
        kl_weight: float = 1000.0
        batch: int = 4  # latents of the distance consistency (the reference's feat_const_batch)
        anchor_every: int = 4  # 0: no anchors, the patch head never used (distance consistency only)
        anchors: int = 0  # anchor latents; 0: one per training image
        anchor_std: float = 0.1
        patch_layer: str = "auto"  # a D tap such as b8; auto: the map at an eighth of the resolution (4x4 at least)

    def __init__(self, cfg):
        super().__init__(cfg)
        if self.options.anchor_every < 0 or self.options.anchors < 0:
            raise ConfigError("cdc.anchor_every and cdc.anchors must be 0 or more")
        if self.options.batch < 3:
            raise ConfigError("cdc.batch must be at least 3 (each sample's similarities to two others or more)")

    def build(self, data: DataInfo) -> Nets:
        nets = super().build(data)
        nets.frozen["G_s"] = copy.deepcopy(nets.G).eval().requires_grad_(False)
        count = self.options.anchors or data.size
        # Not torch.randn seeded with cfg.seed: a source trained by gankd with that seed was
        # initialised from the same stream, so the anchors would equal rows of its first mapping
        # layer's weights and map to outlying w.
        self.anchors = torch.from_numpy(np.random.RandomState(self.cfg.seed).randn(count, nets.G.cfg.z_dim)).float()
        probe = torch.zeros(1, data.img_channels, self.cfg.res, self.cfg.res)
        taps = nets.D(probe, torch.zeros(1, data.c_dim) if data.c_dim else None, return_features=True)[1]
        layer = f"b{max(self.cfg.res // 8, 4)}" if self.options.patch_layer == "auto" else self.options.patch_layer
        if layer not in taps or taps[layer].dim() != 4:
            maps = ", ".join(k for k, v in taps.items() if v.dim() == 4)
            raise ConfigError(f"cdc.patch_layer: the discriminator has no feature map {layer!r}; it has {maps}")
        self.patch_layer = layer
        nets.aux["patch_head"] = self.patch_head = PatchHead(taps[layer].shape[1])
        return nets

    def trainable(self, nets: Nets) -> dict[str, list[nn.Parameter]]:
        params = super().trainable(nets)
        return {"G": params["G"], "D": params["D"] + list(self.patch_head.parameters())}

    def anchor_step(self, step: int) -> bool:
        return bool(self.options.anchor_every) and step % self.options.anchor_every == 0

    def latents(self, step, z, c):
        if not self.anchor_step(step):
            return z, c
        anchors = self.anchors.to(z.device)
        pick = torch.randint(len(anchors), (len(z),), device=z.device)
        return anchors[pick] + self.options.anchor_std * torch.randn_like(z), c

    def style_mixing(self, step):
        return not self.anchor_step(step)

    def adversarial_logits(self, step, logits, features):
        if not self.options.anchor_every or self.anchor_step(step):
            return logits
        return self.patch_head(features[self.patch_layer])

    def losses(self, phase: str, data: PhaseData) -> dict[str, torch.Tensor]:
        if phase != "G_main" or not self.options.kl_weight:
            return {}
        G, n = data.nets.G, self.options.batch
        z = torch.randn(n, G.cfg.z_dim, device=data.real.device)
        c = None if data.gen_c is None else data.gen_c[torch.randint(len(data.gen_c), (n,), device=z.device)]
        with torch.no_grad():
            source = data.nets.frozen["G_s"](z, c, return_features=True)[1]
        target = G(z, c, return_features=True)[1]
        names = [k for k in source if k != "b4"]
        layer_of_row = torch.randint(len(names), (n,), device=z.device)
        loss = distance_consistency([source[k] for k in names], [target[k] for k in names], layer_of_row)
        return {"cdc": self.options.kl_weight * loss}

    def state_dict(self) -> dict:
        return module_state("patch_head", self.patch_head)

    def load_state_dict(self, state: dict) -> None:
        load_module_state("patch_head", self.patch_head, state)

"""CycleGAN (Zhu et al., ICCV 2017): unpaired translation with two generators (A -> B, B -> A), two
PatchGANs, cycle consistency and an identity term.

Defaults as the authors' code (junyanz/pytorch-CycleGAN-and-pix2pix, its cycle_gan model): ResNet
generators with 9 blocks, instance norm, no dropout; PatchGANs that see one domain's images;
least-squares GAN loss; cycle weight 10 for both directions; identity weight 0.5 (times the cycle
weight); D fed from a pool of the last 50 fakes (half of the time an older one); Adam 2e-4 with
betas (0.5, 0.999); batch 1; constant rates for the first half of the steps then a linear decay to
0; random x-flips. The pool is part of the checkpointed state, so a resumed run is exact.
Deviation, named: no resize-and-random-crop jitter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gankd.errors import ConfigError
from gankd.methods.base import DataInfo, Nets, Recipe
from gankd.methods.pix2pix import TRANSLATION_DEFAULTS
from gankd.nets import PatchDiscriminator, Translator


class ImagePool:
    """Shrivastava et al. (2017) as CycleGAN uses it: until `size` fakes are stored, each fake is kept
    and returned; then each is, with probability 1/2, swapped for a stored one (returned in its
    place), else returned as it is."""

    def __init__(self, size: int):
        self.size, self.images = size, None

    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        if not self.size:
            return fakes
        if self.images is not None:
            self.images = self.images.to(fakes.device)
        out = []
        for image in fakes.detach():
            if self.images is None or len(self.images) < self.size:
                stored = image[None] if self.images is None else torch.cat([self.images, image[None]])
                self.images = stored
                out.append(image)
            elif float(torch.rand(())) < 0.5:
                k = int(torch.randint(len(self.images), ()))
                out.append(self.images[k].clone())
                self.images[k] = image
            else:
                out.append(image)
        return torch.stack(out)


class CycleGAN(Recipe):
    name = "cyclegan"
    family = "translation"
    defaults = {**TRANSLATION_DEFAULTS, "loss.kind": "lsgan", "translation.generator": "resnet_9blocks",
                "translation.norm": "instance", "translation.dropout": False, "translation.d_input": "single"}

    @dataclass
    class Options:
        cycle_weight: float = 10.0  # lambda_A = lambda_B
        identity: float = 0.5  # times cycle_weight; 0: no identity term
        pool: int = 50

    def __init__(self, cfg):
        super().__init__(cfg)
        self.pools = {"a": ImagePool(self.options.pool), "b": ImagePool(self.options.pool)}

    def build(self, data: DataInfo) -> Nets:
        if data.img_channels != data.out_channels:
            raise ConfigError(f"cyclegan translates between domains of one channel count; A has {data.img_channels}, "
                              f"B {data.out_channels} (set channels=3 for both)")
        if self.cfg.translation.d_input != "single":
            raise ConfigError("cyclegan's discriminators see one domain: translation.d_input must be single")
        arch = self.cfg.translation_config(data.img_channels, data.out_channels)
        return Nets({"G_AB": Translator(arch), "G_BA": Translator(arch), "D_A": PatchDiscriminator(arch),
                     "D_B": PatchDiscriminator(arch)})

    def reconstruction_weight(self) -> float:
        """The weight of the method's own pixel reconstruction term (a distilled student's output KD
        takes it by default)."""
        return self.options.cycle_weight

    def trainable(self, nets: Nets) -> dict[str, list[nn.Parameter]]:
        roles = nets.roles
        return {"G": [*roles["G_AB"].parameters(), *roles["G_BA"].parameters()],
                "D": [*roles["D_A"].parameters(), *roles["D_B"].parameters()]}

    def losses(self, phase: str, data) -> dict:
        if phase != "G_main":
            return {}
        roles, lam, idt = data.nets.roles, self.options.cycle_weight, self.options.identity
        terms = {"cycle_a": lam * (roles["G_BA"](data.fake_b) - data.real_a).abs().mean(),
                 "cycle_b": lam * (roles["G_AB"](data.fake_a) - data.real_b).abs().mean()}
        if idt:
            terms["idt_b"] = lam * idt * (roles["G_AB"](data.real_b) - data.real_b).abs().mean()
            terms["idt_a"] = lam * idt * (roles["G_BA"](data.real_a) - data.real_a).abs().mean()
        return terms

    def discriminator_fakes(self, fakes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {side: self.pools[side].query(images) for side, images in fakes.items()}

    def state_dict(self) -> dict:
        return {f"pool_{side}": pool.images.cpu() for side, pool in self.pools.items() if pool.images is not None}

    def load_state_dict(self, state: dict) -> None:
        for side, pool in self.pools.items():
            pool.images = state[f"pool_{side}"].clone() if f"pool_{side}" in state else None

"""pix2pix (Isola et al., CVPR 2017): a conditional GAN for paired data, G(A) judged together with A
by a PatchGAN, plus L1 to the true B (weight 100).

Defaults as the authors' code (junyanz/pytorch-CycleGAN-and-pix2pix, its pix2pix model and options):
U-Net generator with batch norm and dropout, 70x70 PatchGAN (3 layers), the "vanilla" GAN loss
(binary cross-entropy, gankd's `nonsat`), D's loss halved, Adam 2e-4 with betas (0.5, 0.999),
batch 1, constant rates for the first half of the steps then a linear decay to 0, random x-flips.
Deviations, named: no resize-and-random-crop jitter (the images are used at the training
resolution as they are); one G forward pass per step serves G's update and then D's (the original
updates D first, from the same forward pass).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from gankd.methods.base import DataInfo, Nets, Recipe
from gankd.nets import PatchDiscriminator, Translator

TRANSLATION_DEFAULTS = {"batch": 1, "optim.g_lr": 0.0002, "optim.d_lr": 0.0002, "optim.beta1": 0.5,
                        "optim.beta2": 0.999, "optim.decay_from": 0.5, "mirror": True,
                        "checkpoint_every": 1000, "sample_every": 500}


class Pix2Pix(Recipe):
    name = "pix2pix"
    family = "translation"
    defaults = {**TRANSLATION_DEFAULTS, "loss.kind": "nonsat"}

    @dataclass
    class Options:
        l1_weight: float = 100.0

    def build(self, data: DataInfo) -> Nets:
        arch = self.cfg.translation_config(data.img_channels, data.out_channels)
        return Nets({"G": Translator(arch), "D": PatchDiscriminator(arch)})

    def reconstruction_weight(self) -> float:
        """The weight of the method's own pixel reconstruction term (a distilled student's output KD
        takes it by default)."""
        return self.options.l1_weight

    def trainable(self, nets: Nets) -> dict[str, list[nn.Parameter]]:
        return {"G": list(nets.roles["G"].parameters()), "D": list(nets.roles["D"].parameters())}

    def losses(self, phase: str, data) -> dict:
        if phase != "G_main" or not self.options.l1_weight:
            return {}
        return {"l1": self.options.l1_weight * (data.fake_b.float() - data.real_b.float()).abs().mean()}

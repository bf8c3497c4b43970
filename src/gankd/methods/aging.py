"""Continuous aging (Li, Jiang and Aarabi, CVPR 2021): the network of `gankd.nets.aging` trained
on images labelled with a continuous attribute, on the aging family.

Each step draws target ages t from the batch's own labels (shuffled), so the model only ever aims
at values it has seen; held-out values are reached through the basis alone. G's terms (weights
gankd's choice where the paper does not give one; the paper's are not public):
- `adv`: the PatchGAN on x rendered at t, told t (the family; least squares as CycleGAN). A D
  conditional on age is gankd's reading of the paper's adversarial term (cGAN practice; its D is
  not described in detail); `d_condition=none` is the unconditional PatchGAN.
- `age` (1): cross-entropy of the embedded estimator on the rendered image against the soft label
  q(t) (the estimator's parameters frozen for this term: it trains the generator, never teaches
  the estimator to call fakes the target age).
- `estimator` (1) and `mean` (0.1): cross-entropy on the labelled reals against q(y), and the mean
  part of the mean-variance loss |ŷ − y| / age_step; these train E and W (the separate estimator
  when `estimator=separate`).
- `reconstruction` (10, CycleGAN's cycle weight): ‖G(x, y) − x‖₁, the input at its own label.
- `cycle` (10): ‖G(G(x, t), y) − x‖₁, back to the source age.
- `identity` (0; on with `identity_net`): squared distance of an identity network's embeddings of
  G(x, t) and x (any registered extractor; refused if it is the run's evaluation features).
The group-based baseline is `groups=N`: N groups over the range, a one-hot group code of its own
table, no residual, cross-entropy on the nearest group (the approach the paper argues against).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gankd.errors import ConfigError
from gankd.methods.base import DataInfo, Nets, Recipe
from gankd.methods.pix2pix import TRANSLATION_DEFAULTS
from gankd.nets.aging import AgingConfig, AgingDiscriminator, AgingGenerator


@dataclass
class AgingOptions:
    # the data: which label is the age, which labels make an identity, values kept out of training
    attribute: str = "age"
    identity: str = ""  # label fields, comma-separated (inter: char,style; emoji: base)
    hold_out: str = ""  # values never trained on (400|600; named levels such as medium for tone)
    min_age: float | None = None  # the estimator's classes; None: from the training values
    max_age: float | None = None
    age_step: float | None = None  # None: the smallest gap between training values
    groups: int = 0  # > 0: the group-based baseline with this many groups over the range
    # the networks (gankd.nets.aging)
    ngf: int = 32
    enc_blocks: int = 3
    dec_blocks: int = 3
    ndf: int = 64
    d_layers: int = 3
    residual: str = "hard"
    inject: str = "modulate"
    estimator: str = "embedded"
    d_condition: str = "age"  # age: a conditional PatchGAN (image and age plane); none: images alone
    # the loss weights
    age_weight: float = 1.0
    estimator_weight: float = 1.0
    mean_weight: float = 0.1
    reconstruction: float = 10.0
    cycle: float = 10.0
    identity_weight: float = 0.0
    identity_net: str = ""  # an extractor spec (registry of gankd.features), e.g. lpips or clip:ViT-B-32


def class_range(options: AgingOptions, values: np.ndarray) -> tuple[float, float, float]:
    """(min, max, step) of the estimator's classes: as set, else from the training values."""
    seen = np.unique(values)
    low = options.min_age if options.min_age is not None else float(seen[0])
    high = options.max_age if options.max_age is not None else float(seen[-1])
    if options.groups:
        return low, high, (high - low) / max(options.groups - 1, 1)
    step = options.age_step if options.age_step is not None else float(np.diff(seen).min())
    return low, high, step


def network_config(o: AgingOptions, res: int, channels: int, ages: tuple[float, float, float]) -> AgingConfig:
    """The network's config from the options (the group baseline's choices applied); one line if invalid."""
    group = o.groups > 0
    try:
        return AgingConfig(resolution=res, channels=channels, ngf=o.ngf, enc_blocks=o.enc_blocks, dec_blocks=o.dec_blocks,
                           ndf=o.ndf, d_layers=o.d_layers, min_age=ages[0], max_age=ages[1], age_step=ages[2],
                           residual="none" if group else o.residual, inject=o.inject,
                           basis="table" if group or o.estimator == "separate" else "estimator",
                           interpolate="nearest" if group else "linear", estimator=o.estimator,
                           d_condition=o.d_condition)
    except ValueError as err:
        raise ConfigError(f"aging: {err}") from None


def check_settings(o: AgingOptions, res: int) -> None:
    """Refuse settings the network cannot take before any data is read (the ages come later)."""
    network_config(o, res, 3, (0.0, 1.0, 1.0))
    if o.groups == 1 or o.groups < 0:
        raise ConfigError(f"aging.groups: 0 (continuous) or 2 groups at least, not {o.groups}")


class Aging(Recipe):
    name = "aging"
    family = "aging"
    defaults = {**TRANSLATION_DEFAULTS, "batch": 8, "mirror": False, "loss.kind": "lsgan"}
    Options = AgingOptions

    def __init__(self, cfg):
        super().__init__(cfg)
        self.identity_net = None

    def build(self, data: DataInfo) -> Nets:
        ages = class_range(self.options, data.dataset.values.numpy())
        cfg = network_config(self.options, self.cfg.res, data.img_channels, ages)
        return Nets({"G": AgingGenerator(cfg), "D": AgingDiscriminator(cfg)})

    def teachers(self) -> list[str]:
        return [self.options.identity_net] if self.options.identity_net else []

    def losses(self, phase: str, data) -> dict:
        if phase != "G_main":
            return {}
        o, G = self.options, data.nets.roles["G"]
        x, y, t = data.real, data.values, data.target
        q = G.weights
        terms = {"age": o.age_weight * soft_cross_entropy(G.classify(data.fake, frozen=True), q(t)),
                 "estimator": o.estimator_weight * soft_cross_entropy(data.logits, q(y)),
                 "mean": o.mean_weight * (G.expected(data.logits) - y).abs().mean() / G.cfg.age_step}
        if o.reconstruction:
            terms["reconstruction"] = o.reconstruction * (G(x, y) - x).abs().mean()
        if o.cycle:
            terms["cycle"] = o.cycle * (G(data.fake, y) - x).abs().mean()
        if o.identity_weight and o.identity_net:
            net = self.identity(x.device)
            terms["identity"] = o.identity_weight * (net.embed(data.fake, grad=True) - net.embed(x)).pow(2).sum(1).mean()
        return terms

    def identity(self, device):
        if self.identity_net is None:
            from gankd.features import load_extractor

            self.identity_net = load_extractor(self.options.identity_net, device=str(device))
        return self.identity_net


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a distribution over the classes (the soft label q(t))."""
    return -(target * F.log_softmax(logits.float(), 1)).sum(1).mean()

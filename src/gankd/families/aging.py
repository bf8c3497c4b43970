"""The aging family: one generator renders an image at any value of a continuous attribute (the
face-aging model of `gankd.nets.aging`; `methods/aging.py` is its recipe).

Data: labelled images (`gankd.data.attribute`: a data spec, the attribute's label, identity labels,
held-out values). Phases: G_main (the PatchGAN's adversarial term on x rendered at targets t drawn
from the batch's own labels, shuffled; D is told the age each image stands for unless
`d_condition=none`; the recipe adds the age, estimator, reconstruction and cycle terms), then
D_main (reals at their labels against the fakes of the same forward pass at their targets,
detached; halves weighted 1/2 as in CycleGAN). Sample grids: fixed test inputs, each rendered at evenly spaced values over the
estimator's whole range (held-out values included).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankd.data.attribute import AttributeData, AttributeDataset, open_attribute
from gankd.errors import ConfigError
from gankd.families.base import Family, Phase
from gankd.losses.adversarial import discriminator_loss, generator_loss
from gankd.methods.base import DataInfo, Nets

GRID_INPUTS = 8
GRID_TARGETS = 7


@dataclass
class Aged:
    """What an aging phase computed, for the recipe's terms."""

    step: int
    nets: Nets
    real: torch.Tensor
    values: torch.Tensor  # the reals' labels y
    target: torch.Tensor | None = None  # t
    fake: torch.Tensor | None = None  # G(x, t)
    logits: torch.Tensor | None = None  # the estimator's logits of the reals, from the same forward pass


def aging_options(cfg):
    from gankd.methods.aging import AgingOptions

    return AgingOptions(**cfg.options.get("aging", {}))


def attribute_data(cfg) -> AttributeData:
    o = aging_options(cfg)
    return open_attribute(cfg.data, o.attribute, o.identity, o.hold_out)


@torch.no_grad()
def render(G, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[N, T, C, R, R]: each image rendered at each target value."""
    rows = [G(images, torch.full((len(images),), float(t), device=images.device)) for t in targets]
    return torch.stack(rows, 1)


class AgingFamily(Family):
    name = "aging"

    @staticmethod
    def dataset(cfg) -> AttributeDataset:
        data = attribute_data(cfg)
        return AttributeDataset(data, data.train, cfg.res, cfg.channels, cfg.upscale)

    @staticmethod
    def check(cfg) -> None:
        from gankd.methods.aging import check_settings

        check_settings(aging_options(cfg), cfg.res)
        if cfg.eval.every:
            raise ConfigError("eval.every: an aging model is scored against ground truth at held-out values by "
                              "`gankd bench aging`, and its progressions drawn by `gankd age`, not during training")

    @staticmethod
    def data_info(data: AttributeDataset) -> DataInfo:
        return DataInfo(data.channels, 0, len(data), data)

    def __init__(self, cfg, nets, recipe, data, augment, dist, memory):
        self.cfg, self.nets, self.dist, self.memory = cfg, nets, dist, memory
        self.dev = dist.device
        shown = data.data.test or data.data.train
        picks = [shown[round(k * (len(shown) - 1) / max(GRID_INPUTS - 1, 1))] for k in range(min(GRID_INPUTS, len(shown)))]
        grid = AttributeDataset(data.data, picks, cfg.res, data.channels, cfg.upscale)
        self.grid_inputs = torch.stack([grid[i]["image"] for i in range(len(grid))]).to(self.dev)
        G = nets.roles["G"]
        self.grid_targets = torch.linspace(G.cfg.min_age, G.cfg.max_age, GRID_TARGETS)
        self._fake = None

    def phases(self) -> list[Phase]:
        return [Phase("G_main", "G"), Phase("D_main", "D")]

    def batch(self, item: dict) -> dict:
        x = item["image"].to(self.dev, memory_format=self.memory, non_blocking=True)
        if self.cfg.mirror:
            flip = torch.rand(len(x), 1, 1, 1, device=x.device) < 0.5
            x = torch.where(flip, x.flip(3), x)
        return {"image": x, "value": item["value"].to(self.dev)}

    def terms(self, phase: str, step: int, batch: dict):
        x, y, kind = batch["image"], batch["value"], self.cfg.loss.kind
        G, D = self.nets.roles["G"], self.nets.roles["D"]
        if phase == "G_main":
            t = y[torch.randperm(len(y)).to(y.device)]
            fake, parts = G(x, t, return_parts=True)
            self._fake = fake.detach(), t
            terms = {"adv": generator_loss(D(fake, G.shown_age(t)), kind)}
            return terms, Aged(step, self.nets, x, y, t, fake, parts["logits"])
        fake, t = self._fake
        halves = discriminator_loss(D(x, G.shown_age(y)), D(fake, G.shown_age(t)), kind)
        return {k: v / 2 for k, v in halves.items()}, Aged(step, self.nets, x, y)

    def grid(self) -> torch.Tensor:
        """Rows of (input, the input at each of GRID_TARGETS values from the youngest to the oldest)."""
        out = render(self.nets.roles["G"], self.grid_inputs, self.grid_targets)
        return torch.cat([self.grid_inputs[:, None], out], 1).flatten(0, 1).float().cpu()

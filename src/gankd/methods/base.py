"""The recipe interface: everything a method declares. The loop (train/loop.py) does the rest.

A recipe says which networks exist (`build`), which parameters train (`trainable`), which extra
named loss terms enter each phase (`losses`), and what state of its own a checkpoint keeps
(`state_dict`). The loop adds the adversarial terms and regularizers, sums every term, logs each by
name, and never asks which method runs. This base class is itself the plainest recipe: `scratch`,
a fresh G and D trained from random initialization.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from gankd.errors import ConfigError
from gankd.nets import ARCHITECTURES

if TYPE_CHECKING:  # the config names methods; methods do not import it
    from gankd.config import TrainConfig

PHASES = ("G_main", "G_reg", "D_main", "D_reg")


@dataclass
class Nets:
    """The networks of a run: `roles`, the networks a checkpoint stores (G, G_ema, D in the latent
    family; G_AB, G_BA, D_A, D_B for CycleGAN), of which `averaged` ones (G_ema) are moving averages,
    never optimized; frozen helpers (source or teacher copies) that the recipe rebuilds itself on
    resume; and auxiliary trained modules (heads on D's features) whose weights the recipe keeps
    in its state."""

    roles: dict[str, nn.Module]
    frozen: dict[str, nn.Module] = field(default_factory=dict)
    aux: dict[str, nn.Module] = field(default_factory=dict)
    averaged: tuple[str, ...] = ()

    @classmethod
    def latent(cls, G: nn.Module, D: nn.Module, G_ema: nn.Module) -> "Nets":
        return cls({"G": G, "G_ema": G_ema, "D": D}, averaged=("G_ema",))

    @property
    def G(self) -> nn.Module:
        return self.roles["G"]

    @property
    def D(self) -> nn.Module:
        return self.roles["D"]

    @property
    def G_ema(self) -> nn.Module:
        return self.roles["G_ema"]

    def trained(self) -> dict[str, nn.Module]:
        """The networks a checkpoint stores, by role."""
        return dict(self.roles)

    def learning(self) -> list[nn.Module]:
        """The networks whose parameters optimizers may update (the recipe's `trainable` picks)."""
        return [m for role, m in self.roles.items() if role not in self.averaged] + list(self.aux.values())

    def all(self) -> list[nn.Module]:
        return [*self.roles.values(), *self.frozen.values(), *self.aux.values()]

    def train_mode(self) -> None:
        for role, m in self.roles.items():
            m.eval() if role in self.averaged else m.train()


@dataclass
class PhaseData:
    """What the loop computed in a phase, for a recipe's extra terms. Features are the networks'
    feature taps (`return_features=True`); entries a phase does not compute are None."""

    step: int
    nets: Nets
    real: torch.Tensor  # real images of this rank's batch, [-1, 1]
    real_c: torch.Tensor | None
    z: torch.Tensor | None = None
    gen_c: torch.Tensor | None = None
    fake: torch.Tensor | None = None
    fake_features: dict | None = None  # generator features of `fake`
    logits_fake: torch.Tensor | None = None
    d_fake_features: dict | None = None
    logits_real: torch.Tensor | None = None
    d_real_features: dict | None = None
    d_fake_input: torch.Tensor | None = None  # the (augmented) fakes D saw
    d_real_input: torch.Tensor | None = None  # the (augmented) reals D saw


@dataclass
class DataInfo:
    """What a recipe may need to know about the training data to build its networks."""

    img_channels: int  # of the images (of the inputs A, for translation data)
    c_dim: int
    size: int
    dataset: object = None  # the dataset itself, for recipes that use the training images (inversion)
    out_channels: int = 0  # of the outputs B (translation data)


class Recipe:
    """Train a new latent model (StyleGAN2 or BigGAN, `architecture`) from random initialization (the
    `scratch` method)."""

    name = "scratch"
    family = "latent"  # the model family (gankd.families) whose phases the loop runs
    adapts = False  # starts from a source model and adapts it: `gankd adapt` and the few-shot bench offer it
    defaults: dict = {}  # the method's own defaults of general settings (dotted keys), under the user's

    @dataclass
    class Options:
        """The method's own settings, given as `<method>.<option>=value`."""

    @classmethod
    def option_sections(cls) -> dict[str, type]:
        """{section: Options class} of the `<section>.<option>` settings: the method's own (a method
        composed with DIP, `cdc+dip`, adds `dip`)."""
        return {cls.name: cls.Options}

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.options = self.Options(**cfg.options.get(next(iter(self.option_sections())), {}))
        judge = cfg.eval.features.partition(":")[0]
        if any(t.partition(":")[0] == judge for t in self.teachers()):
            raise ConfigError(f"method {self.name} would train through {judge} features, which also evaluate "
                              f"the run (eval.features); a method never trains through its judge: choose "
                              f"another perceptual network for it, or other eval.features")

    def build(self, data: DataInfo) -> Nets:
        """Create the networks (on CPU; the loop moves them)."""
        arch = self.cfg.arch_config(data.img_channels, data.c_dim)
        networks = ARCHITECTURES[self.cfg.architecture].networks
        G, D = networks["G"](arch), networks["D"](arch)
        return Nets.latent(G, D, ema_copy(G))

    def trainable(self, nets: Nets) -> dict[str, list[nn.Parameter]]:
        """Parameters per optimizer ("G", "D"); all others stay exactly as built."""
        return {"G": list(nets.G.parameters()), "D": list(nets.D.parameters())}

    def losses(self, phase: str, data: PhaseData) -> dict[str, torch.Tensor]:
        """Extra named scalar loss terms (already weighted) for `phase`, one of PHASES."""
        return {}

    def latents(self, step: int, z: torch.Tensor, c: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The latents and conditioning this step's fakes (G_main, D_main) come from; by default
        those the loop drew (CDC samples some steps from anchor regions instead)."""
        return z, c

    def style_mixing(self, step: int) -> bool:
        """Whether this step's fakes may mix styles (with probability loss.style_mixing); CDC's
        anchor steps do not."""
        return True

    def discriminator_fakes(self, fakes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The fakes D_main judges, by domain, from this step's (detached) ones; CycleGAN draws some
        from a pool of older ones (translation family)."""
        return fakes

    def adversarial_logits(self, step: int, logits: torch.Tensor, features: dict) -> torch.Tensor:
        """What the adversarial losses of G_main and D_main read, from D's logits and feature taps;
        by default the image-level logits (CDC uses patch-level ones on some steps)."""
        return logits

    def teachers(self) -> list[str]:
        """Feature extractors (registry specs) the method trains through: the run's evaluation
        features must not be among them. Recorded in every checkpoint, so `gankd evaluate` refuses
        to judge a model by its own teacher."""
        return []

    def prior(self):
        """The `gankd.priors.Prior` the model samples from, stored in every checkpoint; None: the
        default seeded normal z. A method that learns where samples come from (DIP) returns its own."""
        return None

    def state_dict(self) -> dict:
        """The recipe's own state for checkpoints: tensors, or values JSON can hold."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f"recipe {self.name} keeps no state, but the checkpoint has {sorted(state)}")


def ema_copy(G: nn.Module) -> nn.Module:
    """A frozen copy of G to hold its exponential moving average."""
    import copy

    return copy.deepcopy(G).eval().requires_grad_(False)


def module_state(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    """A trained auxiliary module's weights for a recipe's state, under `prefix.`."""
    return {f"{prefix}.{k}": v.detach().cpu() for k, v in module.state_dict().items()}


def load_module_state(prefix: str, module: nn.Module, state: dict) -> None:
    with torch.no_grad():
        for k, v in module.state_dict().items():
            v.copy_(state[f"{prefix}.{k}"])


def composed(mixin: type, base: type[Recipe], modifier: str, family: str, what: str) -> type[Recipe]:
    """The recipe class `<base>+<modifier>`: `mixin` comes before `base` in its bases, so that each
    of its hooks adds to the method's own; refused (one line) for a method of another family."""
    if base.family != family:
        raise ConfigError(f"+{modifier} is for methods of the {family} family; {base.name} is of the {base.family} one")
    return type(f"{base.__name__}With{mixin.__name__}", (mixin, base),
                {"name": f"{base.name}+{modifier}", "base": base, "__doc__": f"{base.name} {what}."})

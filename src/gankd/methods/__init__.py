"""Methods as recipes: the registry the loop and the config look names up in. A registered name
with a modifier (`MODIFIERS`) is that method composed with it: `cdc+dip` under DIP's instance prior
(`gankd.methods.dip`), `pix2pix+distill` a student distilled from a teacher (`gankd.methods.distill`)."""

from __future__ import annotations

from gankd.errors import ConfigError, unknown
from gankd.methods.aging import Aging
from gankd.methods.base import PHASES, DataInfo, Nets, PhaseData, Recipe
from gankd.methods.cdc import CDC
from gankd.methods.cyclegan import CycleGAN
from gankd.methods.d3t import D3T
from gankd.methods.dip import with_dip
from gankd.methods.distill import with_distillation
from gankd.methods.finetune import Finetune
from gankd.methods.freezed import FreezeD
from gankd.methods.kd_dlgan import KDDLGAN
from gankd.methods.pix2pix import Pix2Pix

RECIPES: dict[str, type[Recipe]] = {}
MODIFIERS = {"dip": with_dip, "distill": with_distillation}  # <method>+<modifier>


def register(cls: type[Recipe]) -> type[Recipe]:
    """Make a recipe available as `method=<cls.name>` (usable as a class decorator)."""
    RECIPES[cls.name] = cls
    return cls


def adapting_methods(composed: bool = False) -> list[str]:
    """The methods `gankd adapt` and `gankd bench fewshot` offer, in registration order (with
    `composed`, each one's `+dip` too)."""
    plain = [name for name, cls in RECIPES.items() if cls.adapts]
    return [*plain, *(f"{name}+dip" for name in plain)] if composed else plain


def recipe_class(name: str) -> type[Recipe]:
    base, plus, extra = name.partition("+")
    if plus:
        if extra not in MODIFIERS:
            raise ConfigError(f"method {name}: a method composes with {' or '.join(MODIFIERS)} only "
                              f"({', '.join(f'{base}+{m}' for m in MODIFIERS)})")
        return MODIFIERS[extra](recipe_class(base))
    if name not in RECIPES:
        raise ConfigError(unknown("method", name, RECIPES))
    return RECIPES[name]


for _cls in (Recipe, Finetune, FreezeD, CDC, D3T, KDDLGAN, Pix2Pix, CycleGAN, Aging):
    register(_cls)

__all__ = ["MODIFIERS", "PHASES", "RECIPES", "DataInfo", "Nets", "PhaseData", "Recipe", "adapting_methods", "recipe_class",
           "register"]

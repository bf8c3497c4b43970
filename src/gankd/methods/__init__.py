"""Methods as recipes: the registry the loop and the config look names up in."""

from __future__ import annotations

from gankd.errors import ConfigError
from gankd.methods.base import PHASES, DataInfo, Nets, PhaseData, Recipe
from gankd.methods.cdc import CDC
from gankd.methods.d3t import D3T
from gankd.methods.finetune import Finetune
from gankd.methods.freezed import FreezeD

RECIPES: dict[str, type[Recipe]] = {}


def register(cls: type[Recipe]) -> type[Recipe]:
    """Make a recipe available as `method=<cls.name>` (usable as a class decorator)."""
    RECIPES[cls.name] = cls
    return cls


def recipe_class(name: str) -> type[Recipe]:
    if name not in RECIPES:
        raise ConfigError(f"unknown method {name!r}; known methods: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]


for _cls in (Recipe, Finetune, FreezeD, CDC, D3T):
    register(_cls)

__all__ = ["PHASES", "RECIPES", "DataInfo", "Nets", "PhaseData", "Recipe", "recipe_class", "register"]

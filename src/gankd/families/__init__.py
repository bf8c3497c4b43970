"""Model families: the registry a recipe names its family in (`Recipe.family`)."""

from __future__ import annotations

from gankd.families.aging import AgingFamily
from gankd.families.base import Family, Phase
from gankd.families.latent import LatentFamily
from gankd.families.translation import TranslationFamily

FAMILIES: dict[str, type[Family]] = {cls.name: cls for cls in (LatentFamily, TranslationFamily, AgingFamily)}

__all__ = ["FAMILIES", "AgingFamily", "Family", "LatentFamily", "Phase", "TranslationFamily"]

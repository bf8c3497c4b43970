"""A foreign checkpoint in gankd's terms, and the channel settings its tensor shapes imply."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from gankd.errors import CheckpointError

PREFERRED_BASES = (32768, 16384)  # NVlabs' default and its paper256 config (rosinality's multiplier 2 and 1)


@dataclass
class Imported:
    """One config (of any gankd architecture), a gankd state dict per role, facts for `gankd info`,
    and the format it came from (a key of gankd.interop.FORMATS)."""

    config: object
    states: dict[str, dict[str, torch.Tensor]]
    facts: dict = field(default_factory=dict)
    format: str = ""


def infer_channels(path: Path, channels: dict[int, int]) -> tuple[int, int]:
    """(channel_base, channel_max) with min(base // r, max) == channels[r] at every resolution r.

    Where several bases fit (all layers at the maximum, as below 64 pixels), prefer NVlabs' and
    rosinality's usual values, so that the same network always gets the same config.
    """
    cmax = max(channels.values())
    lo, hi = 1, 1 << 40
    for r, c in channels.items():
        if c == cmax:
            lo = max(lo, c * r)
        else:
            lo, hi = max(lo, c * r), min(hi, c * r + r - 1)
    if lo > hi:
        found = ", ".join(f"{r}: {c}" for r, c in sorted(channels.items()))
        raise CheckpointError(f"{path}: channel counts ({found}) do not follow min(base / resolution, max), "
                              "which gankd's StyleGAN2 needs")
    return next((b for b in PREFERRED_BASES if lo <= b <= hi), lo), cmax

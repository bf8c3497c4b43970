"""`gankd convert`: any supported checkpoint to a gankd file or a rosinality `.pt`."""

from __future__ import annotations

import os
from pathlib import Path

from gankd.checkpoint import load_checkpoint, save_checkpoint
from gankd.errors import CheckpointError
from gankd.fileio import atomic_write, new_file
from gankd.interop import rosinality

TARGETS = {".safetensors": "gankd", ".pt": "rosinality", ".pth": "rosinality"}
STRUCTURE = ("format", "version", "arch", "config", "roles", "source format")


def convert(src: str | os.PathLike, dst: str | os.PathLike, to: str | None = None, force: bool = False) -> str:
    """Write `src` to `dst` in format `to` (default: from dst's extension); returns the format written."""
    src, dst = Path(src), Path(dst)
    target = to or TARGETS.get(dst.suffix.lower())
    if target not in ("gankd", "rosinality"):
        raise CheckpointError(f"{dst}: cannot tell the format from the extension; name it .safetensors (gankd) "
                              "or .pt (rosinality), or pass --to gankd|rosinality")
    new_file(dst, force=force)
    if dst.exists() and dst.resolve() == src.resolve():
        raise CheckpointError(f"{dst}: the same file as the source; choose another path")
    ckpt = load_checkpoint(src)
    if target == "rosinality":
        ckpt.require("latent", "conversion to rosinality's StyleGAN2 format")
    nets = {role: ckpt.network(role) for role in ckpt.roles}
    if target == "rosinality":
        atomic_write(dst, rosinality.write(nets, dst))
    else:
        facts = {k: v for k, v in ckpt.meta.items() if k not in STRUCTURE}
        if "source format" in ckpt.meta:
            facts["converted from"] = f"{src.name} ({ckpt.meta['source format']})"
        save_checkpoint(dst, nets, force=force, **facts)
    return target

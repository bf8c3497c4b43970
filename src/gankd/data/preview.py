"""Looking at data: the list of built-in sets, and grids of a spec's images."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from gankd.data.builtin import BUILTINS
from gankd.data.dataset import ImageDataset
from gankd.data.spec import open_source
from gankd.errors import DataError, GankdError
from gankd.fileio import new_file
from gankd.images import grid, save_png, upscale_nearest
from gankd.seeds import check_seed


def list_builtins() -> list[dict]:
    """Name, image count, label fields (with their number of distinct values) and options of each set;
    a set read from the user's copy (CIFAR) that is not there has no counts (None)."""
    rows = []
    for name, builtin in BUILTINS.items():
        try:
            source = builtin.make()
        except DataError:
            rows.append({"name": name, "images": None, "description": builtin.description + " - not found",
                         "fields": {f: None for f in builtin.fields}, "options": builtin.options})
            continue
        distinct = {f: len({str(source.labels(i)[f]) for i in range(len(source))}) for f in builtin.fields}
        rows.append({"name": name, "images": len(source), "description": builtin.description,
                     "fields": distinct, "options": builtin.options})
    return rows


def default_grid_path(spec: str) -> Path:
    return Path(re.sub(r"[^A-Za-z0-9_.-]+", "_", spec.removeprefix("builtin:")).strip("_") + ".png")


def show(spec: str, out: str | os.PathLike | None = None, n: int = 64, resolution: int = 64, seed: int = 0,
         force: bool = False) -> Path:
    """Write a grid of up to `n` images of the spec (a seeded random choice when there are more)."""
    check_seed(seed, "--seed")
    if n < 1 or resolution < 1:
        raise GankdError("--n and --res must be at least 1")
    path = new_file(out or default_grid_path(spec), force=force)
    source = open_source(spec)
    picks = np.sort(np.random.default_rng(seed).choice(len(source), min(n, len(source)), replace=False))
    dataset = ImageDataset(source, resolution, upscale=True, cache=False)
    images = np.stack([dataset.load(int(i)) for i in picks])
    save_png(path, grid(upscale_nearest(images, 48)))
    return path

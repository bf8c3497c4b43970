"""One picture that compares generators on a few-shot target: the shots in the first row, then one
row per generator with its samples from the same seeds (0..9; a class-conditional generator draws
seed i in class i mod its classes), each row labelled on the left. Used by `gankd bench fewshot`
and `gankd bench limited` (one per target) and `gankd demo`; `labelled_rows` also by `gankd bench
compress`, `headed_rows` (a header over the columns) by `gankd age` and `gankd latent truncation`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SAMPLES = 10
CAPTION = "shots, then samples of each generator from seeds 0-9"  # what a report says of the picture


def comparison_picture(split: str | os.PathLike, generators: dict[str, str | os.PathLike]) -> np.ndarray:
    """uint8 [H, W, 3]: the split's training shots, then `name: checkpoint`'s samples, row by row."""
    from gankd.checkpoint import read_meta
    from gankd.data.dataset import ImageDataset
    from gankd.data.splits import load_split

    res = read_meta(next(iter(generators.values())))["config"]["resolution"]
    data = ImageDataset(load_split(Path(split))[0], res, channels=3, upscale=True)
    rows = {"shots": np.stack([data.uint8(i).permute(1, 2, 0).numpy() for i in range(min(len(data), SAMPLES))])}
    rows |= {name: samples_of(ckpt) for name, ckpt in generators.items()}
    return labelled_rows(rows)


def labelled_rows(rows: dict[str, np.ndarray]) -> np.ndarray:
    """uint8 [H, W, 3]: each `name: images` (uint8 [N, h, w, 3]) as a row, enlarged to 64 px at least,
    short rows padded with white, the name on the left."""
    from PIL import Image, ImageDraw

    from gankd.images import grid, upscale_nearest

    width = max(len(r) for r in rows.values())
    padded = [np.concatenate([r, np.full((width - len(r), *r.shape[1:]), 255, np.uint8)]) for r in rows.values()]
    tiles = grid(upscale_nearest(np.concatenate(padded), 64), cols=width)
    label = Image.new("RGB", (90, tiles.shape[0]), "white")
    draw, row_height = ImageDraw.Draw(label), tiles.shape[0] / len(rows)
    for i, name in enumerate(rows):
        draw.text((6, int((i + 0.45) * row_height)), name, fill="black")
    return np.concatenate([np.asarray(label), tiles], axis=1)


def headed_rows(rows: dict[str, np.ndarray], headers: list[str]) -> np.ndarray:
    """uint8 [H, W, 3]: `labelled_rows` of `rows` under a strip naming each column."""
    from PIL import Image, ImageDraw

    from gankd.images import upscale_nearest

    body = labelled_rows(rows)
    tile = upscale_nearest(next(iter(rows.values())), 64).shape[1] + 2  # a tile and its padding
    left = body.shape[1] - len(headers) * tile - 2  # the row labels' width
    strip = Image.new("RGB", (body.shape[1], 16), "white")
    draw = ImageDraw.Draw(strip)
    for j, name in enumerate(headers):
        draw.text((left + 2 + j * tile + 4, 2), name, fill="black")
    return np.concatenate([np.asarray(strip), body])


def samples_of(ckpt: str | os.PathLike) -> np.ndarray:
    """uint8 [SAMPLES, H, W, C] of seeds 0..SAMPLES-1, classes in turn for a conditional generator
    whose prior does not give the labels (DIP's does)."""
    from gankd.checkpoint import read_meta
    from gankd.generate import sample
    from gankd.priors import PRIORS

    meta = read_meta(ckpt)
    classes, prior = meta["config"]["c_dim"], meta.get("prior")
    if not classes or prior and PRIORS[prior["kind"]].conditions:
        return sample(ckpt, list(range(SAMPLES)))
    return np.concatenate([sample(ckpt, [i], class_index=i % classes) for i in range(SAMPLES)])

"""`gankd age`: an aging model's progressions. Each input is rendered at every target value (any
value: the basis interpolates between the estimator's classes): `progressions.png` (a row per
input: the input, then the targets, labelled), per input a strip `KEY.png` and an animated
`KEY.gif` sweeping the targets, and `ages.csv` with the model's own estimate of each input's and
each output's age (its embedded estimator: a model's view of itself, not an independent judge)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import torch

from gankd.checkpoint import load_checkpoint
from gankd.data.dataset import ImageDataset
from gankd.errors import GankdError, warn
from gankd.fileio import atomic_write, check_new_dir, new_dir
from gankd.images import animation_bytes, png_bytes, rgb, to_uint8, upscale_nearest
from gankd.progress import progress
from gankd.runs import checkpoint_of

PICTURE_ROWS = 12
FRAME_MS = 250
BATCH = 16


def parse_targets(text: str) -> list[float]:
    """`100,250,400` (a list) or `100-900:50` (from, to, step) -> the target values in order."""
    try:
        if ":" in text:
            span, _, step = text.partition(":")
            low, high = (float(v) for v in span.split("-", 1))
            count = int(round((high - low) / float(step))) + 1
            values = [low + k * float(step) for k in range(count)] if float(step) > 0 and high >= low else []
        else:
            values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or len(values) > 200:
        raise GankdError(f"--to: a list 100,250,400 or a range FROM-TO:STEP of at most 200 values, not {text!r}")
    return values


def progression_picture(rows: dict[str, np.ndarray], values: list[float], marked: set[float] = frozenset()) -> np.ndarray:
    """uint8 [H, W, 3]: `rows` (each: an input, then its renderings at `values`) under a header naming
    each column (input, then the values, `marked` ones with a *)."""
    from gankd.comparison import headed_rows

    return headed_rows(rows, ["input", *(f"{v:g}" + "*" * (v in marked) for v in values)])


def age_images(ckpt: str | os.PathLike, inputs: str, out: str | os.PathLike, to: str, device: str = "cpu",
               upscale: bool | None = None, force: bool = False) -> dict:
    """Render every input at every value of `to`; writes the files above into the new folder `out`."""
    from gankd.data.spec import open_source
    from gankd.families.aging import render

    path = checkpoint_of(ckpt)
    if path is None:
        raise GankdError(f"{ckpt}: not a checkpoint or run folder")
    model = load_checkpoint(path).require("aging", "gankd age")
    targets = parse_targets(to)
    check_new_dir(out, force)
    cfg = model.config
    outside = [t for t in targets if not cfg.min_age <= t <= cfg.max_age]
    if outside:
        warn(f"--to {', '.join(f'{t:g}' for t in outside)}: outside the model's range {cfg.min_age:g}-{cfg.max_age:g}; "
             f"those take the end of the basis")
    source = open_source(inputs)
    data = ImageDataset(source, cfg.resolution, cfg.channels, upscale=upscale)
    G = model.network("G").to(device)
    t = torch.tensor(targets, device=device)
    folder, rows, table = None, {}, []
    for start in progress(range(0, len(data), BATCH), "aging", unit="batch"):
        batch = torch.stack([data[i]["image"] for i in range(start, min(start + BATCH, len(data)))]).to(device)
        outputs = render(G, batch, t)  # [N, T, C, R, R]
        with torch.no_grad():
            own = G.expected(G.classify(batch)).cpu()
            aged = G.expected(G.classify(outputs.flatten(0, 1))).view(len(batch), len(targets)).cpu()
        folder = folder or new_dir(out, force)
        for offset in range(len(batch)):
            key = source.key(start + offset)
            strip = rgb(to_uint8(torch.cat([batch[offset:offset + 1], outputs[offset]])))
            atomic_write(folder / f"{key}.png", png_bytes(np.concatenate(list(upscale_nearest(strip, 64)), axis=1)))
            atomic_write(folder / f"{key}.gif", animation_bytes(upscale_nearest(strip[1:], 64), "gif", 1000 / FRAME_MS))
            if len(rows) < PICTURE_ROWS:
                rows[key[-12:]] = strip
            table.append([key, f"{float(own[offset]):.2f}", *(f"{float(a):.2f}" for a in aged[offset])])
    atomic_write(Path(out) / "progressions.png", png_bytes(progression_picture(rows, targets)))
    text = io.StringIO()
    csv.writer(text).writerows([["image", "estimated_age", *(f"at_{v:g}" for v in targets)], *table])
    atomic_write(Path(out) / "ages.csv", text.getvalue().encode())
    return {"out": str(out), "images": len(data), "targets": targets}

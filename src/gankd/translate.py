"""`gankd translate`: a translation model's outputs for images, one PNG per input, and a
side-by-side picture (input, output, and the ground truth where the task has one)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from gankd.checkpoint import load_checkpoint
from gankd.data.dataset import ImageDataset
from gankd.errors import GankdError
from gankd.fileio import atomic_write, check_new_dir, new_dir
from gankd.images import grid, png_bytes, save_png, to_uint8, upscale_nearest
from gankd.progress import progress
from gankd.runs import checkpoint_of

PICTURE_ROWS = 12


def inputs_of(text: str, direction: str):
    """(inputs, ground truth or None) for `text`: the test part of a translation task (its A side,
    or B for `ba`), else any images (a folder, zip or data spec)."""
    from gankd.data.spec import open_source
    from gankd.data.translation import TASKS, open_translation

    name = text.partition(":")[0]
    if name in TASKS or (Path(name) / "trainA").is_dir() or (Path(name) / "train").is_dir():
        task = open_translation(text)
        if task.test is None:
            raise GankdError(f"{text}: no test part to translate; give its images as a folder")
        a, b = task.test
        return (a, b) if direction == "ab" else (b, a if task.paired else None)
    return open_source(text), None


def direction_role(model, direction: str) -> str:
    """The role of a translation checkpoint's generator for `direction` (ab or ba): pix2pix's G
    translates A to B only, CycleGAN's G_AB and G_BA both ways."""
    if direction not in ("ab", "ba"):
        raise GankdError(f"--direction must be ab or ba, not {direction!r}")
    role = {"ab": "G_AB" if "G_AB" in model.roles else "G", "ba": "G_BA"}[direction]
    if role not in model.roles:
        raise GankdError(f"{model.path}: translates one way only (A to B); --direction ba needs a CycleGAN model")
    return role


def translate_images(ckpt: str | os.PathLike, inputs: str, out: str | os.PathLike, direction: str = "ab",
                     device: str = "cpu", upscale: bool | None = None, force: bool = False) -> dict:
    """Translate every input image; writes `out`/NAME.png per input and `out`/side-by-side.png."""
    from gankd.families.translation import translate

    path = checkpoint_of(ckpt)
    if path is None:
        raise GankdError(f"{ckpt}: not a checkpoint or run folder")
    model = load_checkpoint(path).require("translation", "gankd translate")
    role = direction_role(model, direction)
    check_new_dir(out, force)
    source, truth = inputs_of(inputs, direction)
    cfg = model.config
    data = ImageDataset(source, cfg.resolution, cfg.in_channels, upscale=upscale)
    G = model.network(role).to(device)
    folder, outputs = None, []
    for start in progress(range(0, len(data), 16), "translating", unit="batch"):
        batch = torch.stack([data[i]["image"] for i in range(start, min(start + 16, len(data)))]).to(device)
        images = to_uint8(translate(G, batch))
        folder = folder or new_dir(out, force)
        for offset, image in enumerate(images):
            atomic_write(folder / f"{source.key(start + offset)}.png", png_bytes(image))
        outputs.append(images[:max(PICTURE_ROWS - start, 0)])
    shown = min(PICTURE_ROWS, len(data))
    columns = [np.stack([data.uint8(i).permute(1, 2, 0).numpy() for i in range(shown)]), np.concatenate(outputs)]
    if truth is not None:
        truth_data = ImageDataset(truth, cfg.resolution, cfg.out_channels, upscale=upscale)
        columns.append(np.stack([truth_data.uint8(i).permute(1, 2, 0).numpy() for i in range(shown)]))
    channels = max(c.shape[-1] for c in columns)
    tiles = np.stack([np.repeat(c, channels // c.shape[-1], axis=-1) for c in columns], 1).reshape(
        -1, *columns[1].shape[1:3], channels)
    save_png(Path(out) / "side-by-side.png", grid(upscale_nearest(tiles, 64), cols=len(columns)))
    return {"out": str(out), "images": len(data), "direction": direction, "ground truth": truth is not None}

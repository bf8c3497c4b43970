"""`gankd project`: invert images into a generator and show how well it can express them.

Writes latents.safetensors (w per image, W+ layout), reconstructions/, side-by-side.png (targets
above their reconstructions) and projection.json (pixel and perceptual errors, before and after).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from gankd.checkpoint import load_checkpoint
from gankd.data.dataset import ImageDataset
from gankd.data.source import ImageSource
from gankd.errors import GankdError
from gankd.features import PERCEPTUAL, load_extractor
from gankd.fileio import atomic_write, check_new_dir, new_dir
from gankd.images import grid, png_bytes, save_png, to_uint8, upscale_nearest
from gankd.inversion import project

ROW = 10  # images per row of the side-by-side picture


def shots(spec: str | os.PathLike) -> ImageSource:
    """A data spec or folder; a split folder means its training shots."""
    from gankd.data.spec import open_source
    from gankd.data.splits import load_split

    if (Path(spec) / "manifest.json").is_file():
        return load_split(spec)[0]
    return open_source(str(spec))


def side_by_side(targets: torch.Tensor, recon: torch.Tensor) -> np.ndarray:
    """Rows of up to ROW targets, each above a row of their reconstructions."""
    a, b = to_uint8(targets), to_uint8(recon)
    width = min(ROW, len(a))
    pad = (-len(a)) % width
    if pad:  # white tiles complete the last row, so that pairs stay aligned
        blank = np.full((pad, *a.shape[1:]), 255, np.uint8)
        a, b = np.concatenate([a, blank]), np.concatenate([b, blank])
    rows = [part for i in range(0, len(a), width) for part in (a[i:i + width], b[i:i + width])]
    return grid(upscale_nearest(np.concatenate(rows), 64), cols=width)


def run_projection(images: str | os.PathLike, ckpt: str | os.PathLike, out: str | os.PathLike | None = None,
                   steps: int = 200, space: str = "w+", perceptual: str = "domain", perceptual_weight: float = 1.0,
                   lr: float = 0.05, device: str = "cpu", force: bool = False) -> dict:
    if perceptual.partition(":")[0] not in PERCEPTUAL:
        raise GankdError(f"{perceptual} features have no perceptual distance; use {' or '.join(PERCEPTUAL)}")
    source = shots(images)
    out_dir = Path(out) if out else Path(f"projection-{Path(str(images)).name or 'images'}")
    check_new_dir(out_dir, force)
    G = load_checkpoint(ckpt).require("latent", "gankd project").generator().to(device)
    data = ImageDataset(source, G.cfg.resolution, channels=G.cfg.img_channels, upscale=True)
    if len(data) > 1000:
        raise GankdError(f"{len(data)} images: projection is meant for few shots (at most 1000)")
    targets = torch.stack([data[i]["image"] for i in range(len(data))]).to(device)
    extractor = load_extractor(perceptual, None, "clean", device)
    result = project(G, targets, extractor, steps, space, perceptual_weight, lr)
    names = [source.key(i) for i in range(len(source))]
    folder = new_dir(out_dir, force)
    from safetensors.torch import save

    facts = {"checkpoint": str(ckpt), "images": str(images), "files": names, "space": space, "steps": steps,
             "perceptual": extractor.id, "perceptual_weight": perceptual_weight, "lr": lr}
    atomic_write(folder / "latents.safetensors", save({"w": result.w.cpu().contiguous()},
                                                       metadata={"gankd": json.dumps(facts)}))
    recon = to_uint8(result.images)
    for name, img in zip(names, recon):
        atomic_write(folder / "reconstructions" / f"{name}.png", png_bytes(img))
    save_png(folder / "side-by-side.png", side_by_side(targets.cpu(), result.images.cpu()))
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    report = {**facts, "out": str(folder),
              "start": {k: mean(v) for k, v in result.start.items()},
              "end": {k: mean(v) for k, v in result.end.items()},
              "per_image": {name: {k: result.end[k][i] for k in result.end} for i, name in enumerate(names)}}
    atomic_write(folder / "projection.json", (json.dumps(report, indent=1) + "\n").encode())
    return report

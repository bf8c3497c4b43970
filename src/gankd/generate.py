"""Sampling images from a checkpoint: seeds -> latents -> images, as a grid or one PNG per seed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from gankd.checkpoint import load_checkpoint
from gankd.errors import GankdError
from gankd.families.latent import render
from gankd.nets.stylegan2 import NOISE_MODES
from gankd.priors import Latents, Prior
from gankd.fileio import atomic_write, check_new_dir, new_dir, new_file
from gankd.images import grid, png_bytes, save_png, to_uint8, upscale_nearest
from gankd.progress import progress
from gankd.seeds import parse_seeds

MAX_GRID = 1024  # images in one grid PNG (2048 px wide at 64 px a tile)


@torch.no_grad()
def sample_batches(ckpt_path: str | os.PathLike, seeds: list[int], truncation: float = 1.0,
                   noise_mode: str = "const", class_index: int | None = None, batch_size: int = 16, device: str = "cpu",
                   prior: Prior | None = None) -> Iterator[np.ndarray]:
    """uint8 images [B, H, W, C], one per seed, a batch at a time (any number in little memory),
    through the checkpoint's prior unless another is given (fixed latents, for example)."""
    ckpt = load_checkpoint(ckpt_path).require("latent", "sampling from seeds")
    G, prior = ckpt.generator().to(device), prior or ckpt.prior()
    c_dim = G.cfg.c_dim
    if c_dim and class_index is None and not prior.conditions:
        raise GankdError(f"this generator is conditional ({c_dim} classes): pass --class")
    if class_index is not None and not 0 <= class_index < max(c_dim, 1):
        raise GankdError(f"--class must be in 0..{c_dim - 1}" if c_dim else "this generator is unconditional")
    if noise_mode not in NOISE_MODES:
        raise GankdError(f"noise mode must be one of {', '.join(NOISE_MODES)}, not {noise_mode!r}")
    c = None
    if class_index is not None and c_dim:
        c = torch.zeros(len(seeds), c_dim)
        c[:, class_index] = 1
    batches = render(G, seeds, prior, c, truncation, noise_mode, batch_size)
    for images in progress(batches, "generating", total=-(-len(seeds) // batch_size), unit="batch"):
        yield to_uint8(images)


def sample(ckpt_path: str | os.PathLike, seeds: list[int], **sampling) -> np.ndarray:
    """uint8 images [N, H, W, C], one per seed."""
    return np.concatenate(list(sample_batches(ckpt_path, seeds, **sampling)))


def generate(ckpt_path: str | os.PathLike, seeds: str | list[int] | None = None, grid_path: str | None = None,
             outdir: str | None = None, force: bool = False, latents: str | os.PathLike | None = None,
             **sampling) -> list[Path]:
    """Sample one image per seed (seedNNNN.png; default seeds 0-15), or render the latents of a
    `gankd project` file (one PNG per projected image, by its name), and save a grid and/or the
    PNGs, written as they are made. Outputs are checked before any work, and nothing existing is
    overwritten without `force`."""
    if latents is not None and seeds is not None:
        raise GankdError("give --seeds or --latents, not both")
    prior = None
    if latents is not None:
        prior = Latents.read(latents)
        seeds, names = list(range(len(prior.ws))), prior.names
    else:
        seeds = parse_seeds(seeds or "0-15") if isinstance(seeds, (str, type(None))) else list(seeds)
        names = [f"seed{seed:04d}" for seed in seeds]
    if not grid_path and not outdir:
        raise GankdError("nothing to write: give --grid FILE and/or --outdir DIR")
    if grid_path and len(names) > MAX_GRID:
        raise GankdError(f"a grid shows at most {MAX_GRID} images, not {len(names):,}; give fewer, "
                         "or write one file per image with --outdir only")
    grid_file = new_file(grid_path, force=force) if grid_path else None
    if outdir:
        check_new_dir(outdir)
    folder, tiles, done = None, [], 0
    for images in sample_batches(ckpt_path, seeds, prior=prior, **sampling):
        if grid_file:
            tiles.append(images)
        if outdir:
            folder = folder or new_dir(outdir)  # only once the checkpoint has loaded and sampled
            for name, img in zip(names[done:], images):
                atomic_write(folder / f"{name}.png", png_bytes(img))
        done += len(images)
    if grid_file:
        save_png(grid_file, grid(upscale_nearest(np.concatenate(tiles), 64)))
    return [p for p in (grid_file, outdir and Path(outdir)) if p]

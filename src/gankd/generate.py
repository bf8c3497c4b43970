"""Sampling images from a checkpoint: seeds -> latents -> images, as a grid or one PNG per seed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from gankd.checkpoint import load_checkpoint
from gankd.errors import GankdError
from gankd.fileio import atomic_write, check_new_dir, new_dir, new_file
from gankd.images import grid, png_bytes, save_png, to_uint8, upscale_nearest
from gankd.progress import progress
from gankd.seeds import parse_seeds

MAX_GRID = 1024  # images in one grid PNG (2048 px wide at 64 px a tile)
# random: fresh per-pixel noise (what evaluation uses, as NVlabs and the papers do); const: the
# generator's stored noise maps, one for every sample (pictures that never change); none: no noise
NOISE_MODES = ("random", "const", "none")


def seed_latents(seeds: list[int], z_dim: int) -> torch.Tensor:
    """One z per seed from numpy's RandomState, as NVlabs' generate.py draws them."""
    return torch.from_numpy(np.stack([np.random.RandomState(s).randn(z_dim) for s in seeds])).float()


@torch.no_grad()
def sample_batches(ckpt_path: str | os.PathLike, seeds: list[int], truncation: float = 1.0, noise_mode: str = "const",
                   class_index: int | None = None, batch_size: int = 16, device: str = "cpu") -> Iterator[np.ndarray]:
    """uint8 images [B, H, W, C], one per seed, a batch at a time (any number of seeds in little memory)."""
    G = load_checkpoint(ckpt_path).generator().to(device)
    c_dim = G.cfg.c_dim
    if c_dim and class_index is None:
        raise GankdError(f"this generator is conditional ({c_dim} classes): pass --class")
    if class_index is not None and not 0 <= class_index < max(c_dim, 1):
        raise GankdError(f"--class must be in 0..{c_dim - 1}" if c_dim else "this generator is unconditional")
    if noise_mode not in NOISE_MODES:
        raise GankdError(f"noise mode must be one of {', '.join(NOISE_MODES)}, not {noise_mode!r}")
    batches = [seeds[i:i + batch_size] for i in range(0, len(seeds), batch_size)]
    for b in progress(batches, "generating", unit="batch"):
        c = None
        if c_dim:
            c = torch.zeros(len(b), c_dim, device=device)
            c[:, class_index] = 1
        z = seed_latents(b, G.cfg.z_dim).to(device)
        with torch.random.fork_rng(devices=[device] if torch.device(device).type == "cuda" else []):
            torch.manual_seed(b[0])  # random noise, if asked for, is reproducible per seed list
            images = to_uint8(G(z, c, truncation_psi=truncation, noise_mode=noise_mode))
        yield images


def sample(ckpt_path: str | os.PathLike, seeds: list[int], **sampling) -> np.ndarray:
    """uint8 images [N, H, W, C], one per seed."""
    return np.concatenate(list(sample_batches(ckpt_path, seeds, **sampling)))


def generate(ckpt_path: str | os.PathLike, seeds: str | list[int] = "0-15", grid_path: str | None = None,
             outdir: str | None = None, force: bool = False, **sampling) -> list[Path]:
    """Sample one image per seed and save a grid and/or one PNG per seed (seedNNNN.png), written as
    they are made.

    Outputs are checked before any work, and nothing existing is overwritten without `force`.
    """
    seeds = parse_seeds(seeds) if isinstance(seeds, str) else list(seeds)
    if not grid_path and not outdir:
        raise GankdError("nothing to write: give --grid FILE and/or --outdir DIR")
    if grid_path and len(seeds) > MAX_GRID:
        raise GankdError(f"a grid shows at most {MAX_GRID} images, not {len(seeds):,}; give fewer seeds, "
                         "or write one file per seed with --outdir only")
    grid_file = new_file(grid_path, force=force) if grid_path else None
    if outdir:
        check_new_dir(outdir)
    folder, tiles, done = None, [], 0
    for images in sample_batches(ckpt_path, seeds, **sampling):
        if grid_file:
            tiles.append(images)
        if outdir:
            folder = folder or new_dir(outdir)  # only once the checkpoint has loaded and sampled
            for seed, img in zip(seeds[done:], images):
                atomic_write(folder / f"seed{seed:04d}.png", png_bytes(img))
        done += len(images)
    if grid_file:
        save_png(grid_file, grid(upscale_nearest(np.concatenate(tiles), 64)))
    return [p for p in (grid_file, outdir and Path(outdir)) if p]

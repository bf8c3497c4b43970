"""Sampling images from a checkpoint: seeds -> latents -> images, as a grid or one PNG per seed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from gankd.checkpoint import load_checkpoint
from gankd.errors import GankdError
from gankd.fileio import atomic_write, check_new_dir, new_dir, new_file
from gankd.images import grid, png_bytes, save_png, to_uint8, upscale_nearest
from gankd.progress import progress


def parse_seeds(text: str) -> list[int]:
    """'0-7', '1,5,9' or '0-3,10' -> list of seeds (numpy seeds: 0 to 2**32-1)."""
    usage = f"bad seeds {text!r}: use a range like 0-15, a list like 1,5,9, or both"
    seeds: list[int] = []
    try:
        for part in filter(None, text.split(",")):
            lo, _, hi = part.partition("-")
            lo, hi = int(lo), int(hi) if hi else int(lo)
            if hi < lo:
                raise GankdError(f"{usage} ({part} runs backwards)")
            if hi >= 2**32:
                raise GankdError(f"{usage} (a seed must be below 2**32)")
            seeds += range(lo, hi + 1)
    except ValueError:
        raise GankdError(usage) from None
    if not seeds:
        raise GankdError("no seeds given")
    return seeds


def seed_latents(seeds: list[int], z_dim: int) -> torch.Tensor:
    """One z per seed from numpy's RandomState, as NVlabs' generate.py draws them."""
    return torch.from_numpy(np.stack([np.random.RandomState(s).randn(z_dim) for s in seeds])).float()


@torch.no_grad()
def sample(ckpt_path: str | os.PathLike, seeds: list[int], truncation: float = 1.0, noise_mode: str = "const",
           class_index: int | None = None, batch_size: int = 16, device: str = "cpu") -> np.ndarray:
    """uint8 images [N, H, W, C], one per seed."""
    G = load_checkpoint(ckpt_path).generator().to(device)
    c_dim = G.cfg.c_dim
    if c_dim and class_index is None:
        raise GankdError(f"this generator is conditional ({c_dim} classes): pass --class")
    if class_index is not None and not 0 <= class_index < max(c_dim, 1):
        raise GankdError(f"--class must be in 0..{c_dim - 1}" if c_dim else "this generator is unconditional")
    if noise_mode not in ("const", "random", "none"):
        raise GankdError(f"noise mode must be const, random or none, not {noise_mode!r}")
    z = seed_latents(seeds, G.cfg.z_dim)
    out = []
    batches = [range(i, min(i + batch_size, len(seeds))) for i in range(0, len(seeds), batch_size)]
    for b in progress(batches, "generating", unit="batch"):
        c = None
        if c_dim:
            c = torch.zeros(len(b), c_dim, device=device)
            c[:, class_index] = 1
        torch.manual_seed(seeds[b.start])  # random noise, if asked for, is reproducible per seed list
        out.append(to_uint8(G(z[b.start:b.stop].to(device), c, truncation_psi=truncation, noise_mode=noise_mode)))
    return np.concatenate(out)


def generate(ckpt_path: str | os.PathLike, seeds: str | list[int] = "0-15", grid_path: str | None = None,
             outdir: str | None = None, force: bool = False, **sampling) -> list[Path]:
    """Sample one image per seed and save a grid and/or one PNG per seed (seedNNNN.png).

    Outputs are checked before any work, and nothing existing is overwritten without `force`.
    """
    seeds = parse_seeds(seeds) if isinstance(seeds, str) else list(seeds)
    if not grid_path and not outdir:
        raise GankdError("nothing to write: give --grid FILE and/or --outdir DIR")
    grid_file = new_file(grid_path, force=force) if grid_path else None
    if outdir:
        check_new_dir(outdir)
    images = sample(ckpt_path, seeds, **sampling)
    if grid_file:
        save_png(grid_file, grid(upscale_nearest(images, 64)))
    if outdir:
        folder = new_dir(outdir)
        for seed, img in zip(seeds, images):
            atomic_write(folder / f"seed{seed:04d}.png", png_bytes(img))
    return [p for p in (grid_file, outdir and Path(outdir)) if p]

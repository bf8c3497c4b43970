"""Sampling images from a checkpoint: seeds -> latents -> images, as a grid or one PNG per seed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from gankd.checkpoint import load_checkpoint
from gankd.families.latent import seed_latents
from gankd.nets.stylegan2 import NOISE_MODES
from gankd.errors import GankdError
from gankd.fileio import atomic_write, check_new_dir, new_dir, new_file
from gankd.images import grid, png_bytes, save_png, to_uint8, upscale_nearest
from gankd.progress import progress
from gankd.seeds import parse_seeds

MAX_GRID = 1024  # images in one grid PNG (2048 px wide at 64 px a tile)


@torch.no_grad()
def read_latents(path: str | os.PathLike) -> tuple[torch.Tensor, list[str]]:
    """w [N, num_ws, w_dim] and a name per row, from the latents.safetensors `gankd project` writes."""
    import json

    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            w = f.get_tensor("w")
            names = json.loads((f.metadata() or {}).get("gankd", "{}")).get("files")
    except Exception as err:  # safetensors raises several types for missing, foreign or damaged files
        raise GankdError(f"{path}: not a latents file of `gankd project` ({str(err).splitlines()[0][:100]})") from None
    if w.dim() != 3:
        raise GankdError(f"{path}: w has shape {tuple(w.shape)}, not [images, styles, w_dim]")
    return w.float(), names or [f"latent{i:04d}" for i in range(len(w))]


@torch.no_grad()
def sample_batches(ckpt_path: str | os.PathLike, seeds: list[int] | None = None, truncation: float = 1.0,
                   noise_mode: str = "const", class_index: int | None = None, batch_size: int = 16, device: str = "cpu",
                   ws: torch.Tensor | None = None) -> Iterator[np.ndarray]:
    """uint8 images [B, H, W, C], one per seed (or per w of `ws`, rendered by the synthesis network
    alone), a batch at a time (any number in little memory)."""
    G = load_checkpoint(ckpt_path).require("latent", "sampling from seeds").generator().to(device)
    c_dim = G.cfg.c_dim
    if ws is not None and tuple(ws.shape[1:]) != (G.num_ws, G.cfg.w_dim):
        raise GankdError(f"the latents are {ws.shape[1]} styles of {ws.shape[2]} values; this generator takes "
                         f"{G.num_ws} of {G.cfg.w_dim}")
    if c_dim and class_index is None and ws is None:
        raise GankdError(f"this generator is conditional ({c_dim} classes): pass --class")
    if class_index is not None and not 0 <= class_index < max(c_dim, 1):
        raise GankdError(f"--class must be in 0..{c_dim - 1}" if c_dim else "this generator is unconditional")
    if noise_mode not in NOISE_MODES:
        raise GankdError(f"noise mode must be one of {', '.join(NOISE_MODES)}, not {noise_mode!r}")
    count = len(ws) if ws is not None else len(seeds)
    for start in progress(range(0, count, batch_size), "generating", unit="batch"):
        stop = min(start + batch_size, count)
        with torch.random.fork_rng(devices=[device] if torch.device(device).type == "cuda" else []):
            torch.manual_seed(seeds[start] if seeds is not None else start)  # random noise: reproducible
            if ws is not None:
                w = G.w_avg.lerp(ws[start:stop].to(device), truncation)
                images = to_uint8(G.synthesis(w, noise_mode=noise_mode))
            else:
                c = None
                if c_dim:
                    c = torch.zeros(stop - start, c_dim, device=device)
                    c[:, class_index] = 1
                z = seed_latents(seeds[start:stop], G.cfg.z_dim).to(device)
                images = to_uint8(G(z, c, truncation_psi=truncation, noise_mode=noise_mode))
        yield images


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
    if latents is not None:
        ws, names = read_latents(latents)
        seeds = None
    else:
        seeds = parse_seeds(seeds or "0-15") if isinstance(seeds, (str, type(None))) else list(seeds)
        ws, names = None, [f"seed{seed:04d}" for seed in seeds]
    if not grid_path and not outdir:
        raise GankdError("nothing to write: give --grid FILE and/or --outdir DIR")
    if grid_path and len(names) > MAX_GRID:
        raise GankdError(f"a grid shows at most {MAX_GRID} images, not {len(names):,}; give fewer, "
                         "or write one file per image with --outdir only")
    grid_file = new_file(grid_path, force=force) if grid_path else None
    if outdir:
        check_new_dir(outdir)
    folder, tiles, done = None, [], 0
    for images in sample_batches(ckpt_path, seeds, ws=ws, **sampling):
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

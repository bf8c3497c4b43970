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
from gankd.priors import Latents, Mixture, Prior, Variations
from gankd.fileio import atomic_write, check_new_dir, new_dir, new_file
from gankd.images import grid, png_bytes, save_png, to_uint8, upscale_nearest
from gankd.progress import progress
from gankd.seeds import parse_seeds

MAX_GRID = 1024  # images in one grid PNG (2048 px wide at 64 px a tile)


def class_labels(class_index: int, c_dim: int, n: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """[n, c_dim] one-hot labels of one class, a conditional generator's c."""
    c = torch.zeros(n, c_dim, device=device)
    c[:, class_index] = 1
    return c


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
    c = class_labels(class_index, c_dim, len(seeds)) if class_index is not None and c_dim else None
    batches = render(G, seeds, prior, c, truncation, noise_mode, batch_size)
    for images in progress(batches, "generating", total=-(-len(seeds) // batch_size), unit="batch"):
        yield to_uint8(images)


def sample(ckpt_path: str | os.PathLike, seeds: list[int], **sampling) -> np.ndarray:
    """uint8 images [N, H, W, C], one per seed."""
    return np.concatenate(list(sample_batches(ckpt_path, seeds, **sampling)))


def image_prior(ckpt_path: str | os.PathLike, images: list[str | os.PathLike], seeds: list[int],
                interpolate: int = 0) -> tuple[Variations, list[str]]:
    """The features of real images as a DIP model saw its training images' (the extractor and
    normalisation its prior names), under each seed: variations of each image, or with
    `interpolate` = K and two images, K steps from the first's features to the second's."""
    from gankd.data.dataset import convert_channels, crop_resize
    from gankd.data.folder import decode_image
    from gankd.methods.dip import DIPOptions, embed_images, prior_extractor

    ckpt = load_checkpoint(ckpt_path).require("latent", "sampling from seeds")
    prior = ckpt.prior()
    if not isinstance(prior, Mixture):
        raise GankdError(f"{ckpt_path}: no feature prior (it was trained without DIP); --prior-image needs a model "
                         "trained with a <method>+dip")
    if interpolate and (interpolate < 2 or len(images) != 2):
        raise GankdError("--interpolate K takes two --prior-image files and K >= 2 steps")
    values, arch = prior.values, ckpt.config
    extractor = prior_extractor(DIPOptions(extractor=values["extractor"]))
    if extractor.id != values["extractor_id"]:
        raise GankdError(f"{ckpt_path}: its prior was made with {values['extractor_id']} features; "
                         f"{extractor.id} is another network")
    arrays = []
    for path in images:
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            raise GankdError(f"{path}: cannot read it ({err.strerror or err})") from None
        arrays.append(crop_resize(convert_channels(decode_image(data, str(path)), arch.img_channels), arch.resolution))
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    e = torch.from_numpy(embed_images(extractor, pixels, values["normalize"], lambda i: str(images[i]), cache=False))
    labels = [Path(p).stem for p in images]
    if interpolate:
        t = torch.linspace(0, 1, interpolate)[:, None]
        e = e[0].lerp(e[1], t)
        e = torch.nn.functional.normalize(e, dim=1) if values["normalize"] else e
        labels = [f"interp{k:02d}" for k in range(interpolate)]
    return Variations(e, seeds), [f"{label}-seed{seed:04d}" for label in labels for seed in seeds]


def generate(ckpt_path: str | os.PathLike, seeds: str | list[int] | None = None, grid_path: str | None = None,
             outdir: str | None = None, force: bool = False, latents: str | os.PathLike | None = None,
             prior_images: list[str | os.PathLike] | None = None, interpolate: int = 0, **sampling) -> list[Path]:
    """Sample one image per seed (seedNNNN.png; default seeds 0-15), or render the latents of a
    `gankd project` file (one PNG per projected image, by its name), or (a DIP model) each seed
    under the features of real images (`prior_images`: NAME-seedNNNN.png; `interpolate` K: from
    one image's features to another's), and save a grid and/or the PNGs, written as they are made.
    Outputs are checked before any work, and nothing existing is overwritten without `force`."""
    if latents is not None and (seeds is not None or prior_images):
        raise GankdError("give --latents alone (not with --seeds or --prior-image)")
    if interpolate and not prior_images:
        raise GankdError("--interpolate needs two --prior-image files")
    prior, cols = None, None
    if latents is not None:
        prior = Latents.read(latents)
        seeds, names = list(range(len(prior.ws))), prior.names
    else:
        seeds = parse_seeds(seeds or "0-15") if isinstance(seeds, (str, type(None))) else list(seeds)
        names = [f"seed{seed:04d}" for seed in seeds]
        if prior_images:
            prior, names = image_prior(ckpt_path, prior_images, seeds, interpolate)
            cols, seeds = len(seeds), list(range(len(prior)))  # a row per image (or step)
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
        save_png(grid_file, grid(upscale_nearest(np.concatenate(tiles), 64), cols=cols))
    return [p for p in (grid_file, outdir and Path(outdir)) if p]

"""Sampling images from a checkpoint: seeds -> latents -> images, as a grid or one PNG per seed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from gankd.checkpoint import Checkpoint, load_checkpoint
from gankd.errors import GankdError
from gankd.families.latent import render
from gankd.nets.stylegan2 import NOISE_MODES
from gankd.priors import Latents, Mixture, Prior, Variations
from gankd.fileio import atomic_write, check_new_dir, new_dir, new_file
from gankd.images import grid, png_bytes, save_png, to_uint8, upscale_nearest
from gankd.progress import progress
from gankd.seeds import parse_seeds

MAX_GRID = 1024  # images in one grid PNG (2048 px wide at 64 px a tile)


def class_labels(G, prior: Prior, class_index: int | None, n: int) -> torch.Tensor | None:
    """One-hot labels [n, c_dim] of `class_index` (None: an unconditional generator, or a prior that
    gives the labels), or one line saying what --class must be."""
    c_dim = G.cfg.c_dim
    if c_dim and class_index is None and not prior.conditions:
        raise GankdError(f"this generator is conditional ({c_dim} classes): pass --class")
    if class_index is not None and not 0 <= class_index < max(c_dim, 1):
        raise GankdError(f"--class must be in 0..{c_dim - 1}" if c_dim else "this generator is unconditional")
    if class_index is None or not c_dim:
        return None
    c = torch.zeros(n, c_dim)
    c[:, class_index] = 1
    return c


@torch.no_grad()
def sample_batches(ckpt_path: str | os.PathLike | Checkpoint, seeds: list[int], truncation: float = 1.0,
                   noise_mode: str = "const", class_index: int | None = None, batch_size: int = 16, device: str = "cpu",
                   prior: Prior | None = None) -> Iterator[np.ndarray]:
    """uint8 images [B, H, W, C], one per seed, a batch at a time (any number in little memory),
    through the checkpoint's prior unless another is given (fixed latents, for example). A loaded
    checkpoint may stand for its path (`gankd latent` reads it once)."""
    ckpt = ckpt_path if isinstance(ckpt_path, Checkpoint) else load_checkpoint(ckpt_path)
    ckpt.require("latent", "sampling from seeds")
    G, prior = ckpt.generator().to(device), prior or ckpt.prior()
    c = class_labels(G, prior, class_index, len(seeds))
    if noise_mode not in NOISE_MODES:
        raise GankdError(f"noise mode must be one of {', '.join(NOISE_MODES)}, not {noise_mode!r}")
    batches = render(G, seeds, prior, c, truncation, noise_mode, batch_size)
    for images in progress(batches, "generating", total=-(-len(seeds) // batch_size), unit="batch"):
        yield to_uint8(images)


def sample(ckpt_path: str | os.PathLike | Checkpoint, seeds: list[int], **sampling) -> np.ndarray:
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


def generate(ckpt_path: str | os.PathLike, seeds: str | list[int] | None = None, out: str | os.PathLike | None = None,
             force: bool = False, latents: str | os.PathLike | None = None,
             prior_images: list[str | os.PathLike] | None = None, interpolate: int = 0, **sampling) -> Path:
    """Sample one image per seed (seedNNNN; default seeds 0-15), or render the latents of a `gankd
    project` file (one image per projected image, by its name), or (a DIP model) each seed under the
    features of real images (`prior_images`: NAME-seedNNNN; `interpolate` K: from one image's
    features to another's). `out` ending in .png is one grid; any other name is a new folder of one
    PNG per image (and nothing else, so it can be evaluated as a folder of images), written as they
    are made. Outputs are checked before any work, and nothing existing is replaced without `force`."""
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
    if out is None:
        raise GankdError("nothing to write: give --out FILE.png (a grid) or --out DIR (one PNG per image)")
    out = Path(out)
    as_grid = out.suffix.lower() == ".png"
    if as_grid and len(names) > MAX_GRID:
        raise GankdError(f"a grid shows at most {MAX_GRID} images, not {len(names):,}; give fewer, "
                         "or write one file per image with --out DIR")
    if as_grid:
        new_file(out, force=force)
    else:
        check_new_dir(out, force)
    folder, tiles, done = None, [], 0
    for images in sample_batches(ckpt_path, seeds, prior=prior, **sampling):
        if as_grid:
            tiles.append(images)
        else:
            folder = folder or new_dir(out, force)  # only once the checkpoint has loaded and sampled
            for name, img in zip(names[done:], images):
                atomic_write(folder / f"{name}.png", png_bytes(img))
        done += len(images)
    if as_grid:
        save_png(out, grid(upscale_nearest(np.concatenate(tiles), 64), cols=cols))
    return out

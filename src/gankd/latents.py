"""Pictures of a latent generator's latent space (`gankd latent`): the style-mixing grid of NVlabs'
StyleGAN figure, loops through key latents (GIF, MP4 or PNG), truncation sweeps.

Each picture is a set of w codes [N, num_ws, w_dim] made from seeds (through the checkpoint's prior
and G's mapping, untruncated) and rendered by `gankd generate`'s sampler through a `Latents` prior,
so a tile is exactly the image `gankd generate` gives for the same w, truncation and noise.
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import numpy as np
import torch

from gankd.checkpoint import Checkpoint, load_checkpoint
from gankd.errors import ConfigError
from gankd.fileio import atomic_write, new_file
from gankd.generate import MAX_GRID, class_labels, sample
from gankd.images import animation_bytes, grid, png_bytes, rgb, save_png, upscale_nearest
from gankd.priors import Latents
from gankd.seeds import parse_seeds

COARSE = 4  # styles the mixing grid swaps by default (4x4 and 8x8: pose, shape), at most half of them
WALK_FORMATS = (".gif", ".mp4", ".png")
MAX_FRAMES = 1000
STRIP = 16  # frames in a row of a walk's PNG


def latent_model(ckpt_path: str | os.PathLike) -> Checkpoint:
    return load_checkpoint(ckpt_path).require("latent", "gankd latent")


@torch.no_grad()
def seed_inputs(ckpt: Checkpoint, seeds: list[int], class_index: int | None = None) -> tuple[torch.nn.Module, dict]:
    """G (on the CPU) and each seed's inputs from the checkpoint's prior, with --class's labels where
    the prior gives none: what `gankd generate` feeds G for those seeds."""
    G, prior = ckpt.generator(), ckpt.prior()
    c = class_labels(G, prior, class_index, len(seeds))
    inputs = prior.inputs(seeds, G)
    if c is not None:
        inputs.setdefault("c", c)
    return G, inputs


@torch.no_grad()
def mapped(G, inputs: dict) -> torch.Tensor:
    """w [N, num_ws, w_dim] of a prior's inputs: fixed codes as they are, else z (and c) through G's
    mapping, untruncated (render truncates)."""
    if "ws" in inputs:
        return inputs["ws"]
    return G.mapping(inputs["z"], inputs.get("c"))[:, None].repeat(1, G.num_ws, 1)


def render_styles(ckpt: Checkpoint, ws: torch.Tensor, **sampling) -> np.ndarray:
    """uint8 [N, H, W, C] of w codes, through `gankd generate`'s sampler (its checks, batches and
    progress bar); `sampling`: truncation, noise_mode, device, batch_size."""
    return sample(ckpt, list(range(len(ws))), prior=Latents(ws, [str(i) for i in range(len(ws))]), **sampling)


def parse_layers(text: str | None, num_ws: int) -> list[int]:
    """'0-3', '5', '0,2,5' or 'none' -> style indices below `num_ws`; None: the coarse ones."""
    if text is None:
        return list(range(min(COARSE, num_ws // 2)))
    if text.strip().lower() in ("", "none"):
        return []
    layers = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        try:
            lo, hi = int(lo), int(hi or lo)
        except ValueError:
            raise ConfigError(f"bad --layers {text!r}: use a range like 0-3, a list like 0,2,5, or none") from None
        if not 0 <= lo <= hi < num_ws:
            raise ConfigError(f"--layers {part}: this generator's styles are 0-{num_ws - 1} (a range runs upwards)")
        layers.update(range(lo, hi + 1))
    return sorted(layers)


def parse_psis(text: str) -> list[float]:
    try:
        psis = [float(p) for p in text.split(",")]
    except ValueError:
        psis = []
    if not psis or not all(math.isfinite(p) for p in psis):
        raise ConfigError(f"bad --psi {text!r}: give a comma list of numbers such as 0,0.5,1")
    return psis


def check_picture_size(tiles: int) -> None:
    if tiles > MAX_GRID:
        raise ConfigError(f"the picture would hold {tiles:,} images; at most {MAX_GRID}: give fewer seeds")


def mixing_tiles(ckpt: Checkpoint, rows: list[int], cols: list[int], layers: str | None = None,
                 class_index: int | None = None, **sampling) -> np.ndarray:
    """uint8 [R + 1, C + 1, H, W, ch]: a white corner and the columns' samples, then per row its
    sample and its w with each column's w on `layers` (NVlabs' style-mixing figure)."""
    G, inputs = seed_inputs(ckpt, rows + cols, class_index)
    if G.num_ws == 1:
        raise ConfigError(f"{ckpt.path}: a {ckpt.meta['arch']} generator has one style input; style mixing needs "
                          "several (StyleGAN2)")
    chosen = parse_layers(layers, G.num_ws)
    ws = mapped(G, inputs)
    row_ws, col_ws = ws[:len(rows)], ws[len(rows):]
    mixed = row_ws[:, None].repeat(1, len(cols), 1, 1)
    mixed[:, :, chosen] = col_ws[None, :, chosen]
    images = render_styles(ckpt, torch.cat([col_ws, row_ws, mixed.flatten(0, 1)]), **sampling)
    col_images, row_images = images[:len(cols)], images[len(cols):len(cols) + len(rows)]
    cells = images[len(cols) + len(rows):].reshape(len(rows), len(cols), *images.shape[1:])
    top = np.concatenate([np.full_like(images[:1], 255), col_images])[None]
    return np.concatenate([top, np.concatenate([row_images[:, None], cells], axis=1)])


def style_mixing(ckpt_path: str | os.PathLike, rows: str, cols: str, out: str | os.PathLike,
                 layers: str | None = None, force: bool = False, **sampling) -> Path:
    """Write the style-mixing grid of `rows` x `cols` seeds (see `mixing_tiles`) as a PNG."""
    rows, cols = parse_seeds(rows), parse_seeds(cols)
    check_picture_size((len(rows) + 1) * (len(cols) + 1))
    path = new_file(out, force)
    tiles = mixing_tiles(latent_model(ckpt_path), rows, cols, layers, **sampling)
    save_png(path, grid(upscale_nearest(tiles.reshape(-1, *tiles.shape[2:]), 64), cols=len(cols) + 1))
    return path


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Rows of a towards rows of b along the great circle, t [N] of the way (a Gaussian z's path that
    stays in the shell where such draws lie; lerp where a and b are parallel)."""
    t = t[:, None]
    omega = (torch.nn.functional.normalize(a, dim=1) * torch.nn.functional.normalize(b, dim=1)).sum(1, keepdim=True)
    omega = omega.clamp(-1, 1).acos()
    sin = omega.sin()
    arc = (((1 - t) * omega).sin() * a + (t * omega).sin() * b) / sin.clamp_min(1e-7)
    return torch.where(sin > 1e-6, arc, a.lerp(b, t))


def walk_frames(ckpt: Checkpoint, seeds: list[int] | None = None, latents: str | os.PathLike | None = None,
                frames: int = 48, space: str = "w", class_index: int | None = None, **sampling) -> np.ndarray:
    """uint8 [frames, H, W, ch]: a loop through K key latents (seeds', or a `gankd project` file's),
    frame i at i * K / frames keys along (a key at frame j * frames / K), linear in W or (`space`
    z, seeds only) spherical in Z with labels linear."""
    if space not in ("w", "z"):
        raise ConfigError(f"--space must be w or z, not {space!r}")
    if latents is not None:
        if space == "z":
            raise ConfigError("--space z needs --seeds: projected latents are w codes")
        G, keys = None, {"ws": Latents.read(latents).ws}
    else:
        G, keys = seed_inputs(ckpt, seeds, class_index)
        if space == "z" and "z" not in keys:
            raise ConfigError(f"{ckpt.path}: its prior gives fixed w codes, not z; use --space w")
    count = len(next(iter(keys.values())))
    if count < 2:
        raise ConfigError("a walk needs two key latents at least")
    if not count <= frames <= MAX_FRAMES:
        raise ConfigError(f"--frames must be in {count}..{MAX_FRAMES} (a frame at each of the {count} keys at least)")
    along = torch.arange(frames, dtype=torch.float64) * count / frames
    start = along.floor().long()
    a, b, t = start, (start + 1) % count, (along - start).float()
    if space == "w":
        ws = mapped(G, keys)
        ws = ws[a].lerp(ws[b], t[:, None, None])
    else:
        between = {"z": slerp(keys["z"][a], keys["z"][b], t)}
        if "c" in keys:
            between["c"] = keys["c"][a].lerp(keys["c"][b], t[:, None])
        ws = mapped(G, between)
    return render_styles(ckpt, ws, **sampling)


def check_walk_format(path: Path) -> None:
    """Refuse, before any work, an output whose writer is missing."""
    if path.suffix.lower() not in WALK_FORMATS:
        raise ConfigError(f"--out {path.name}: write a .gif, .mp4 or .png")
    if path.suffix.lower() == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise ConfigError("writing MP4 needs the imageio-ffmpeg package: pip install imageio-ffmpeg (or write a .gif)")


def interpolation(ckpt_path: str | os.PathLike, out: str | os.PathLike, seeds: str | None = None,
                  latents: str | os.PathLike | None = None, fps: float = 24, force: bool = False,
                  **walk) -> Path:
    """Write a loop through seeds (default 0-3) or projected latents (see `walk_frames`): a looping
    GIF, an MP4 or a PNG of the frames (rows of STRIP), enlarged to 64 px at least."""
    if seeds is not None and latents is not None:
        raise ConfigError("give --seeds or --latents, not both")
    if not fps > 0:
        raise ConfigError(f"--fps must be above 0, not {fps:g}")
    path = new_file(out, force)
    check_walk_format(path)
    ckpt = latent_model(ckpt_path)
    frames = walk_frames(ckpt, None if latents else parse_seeds(seeds or "0-3"), latents, **walk)
    frames, kind = upscale_nearest(frames, 64), path.suffix.lower()[1:]
    atomic_write(path, png_bytes(grid(frames, cols=min(len(frames), STRIP))) if kind == "png" else
                 animation_bytes(frames, kind, fps))
    return path


def truncation_tiles(ckpt: Checkpoint, seeds: list[int], psis: list[float], class_index: int | None = None,
                     **sampling) -> np.ndarray:
    """uint8 [S, P, H, W, ch]: each seed's w moved toward G's average w, to psi (1: untouched, 0: the
    average itself, the same image for every seed)."""
    G, inputs = seed_inputs(ckpt, seeds, class_index)
    swept = G.w_avg.lerp(mapped(G, inputs)[:, None], torch.tensor(psis)[:, None, None])  # [S, P, num_ws, w_dim]
    images = render_styles(ckpt, swept.flatten(0, 1), **sampling)
    return images.reshape(len(seeds), len(psis), *images.shape[1:])


def truncation_sweep(ckpt_path: str | os.PathLike, out: str | os.PathLike, seeds: str = "0-7",
                     psis: str = "0,0.25,0.5,0.75,1", force: bool = False, **sampling) -> Path:
    """Write the truncation sweep (see `truncation_tiles`): a row per seed, a column per psi, labelled."""
    from gankd.comparison import headed_rows

    seeds, psis = parse_seeds(seeds), parse_psis(psis)
    check_picture_size(len(seeds) * len(psis))
    path = new_file(out, force)
    tiles = rgb(truncation_tiles(latent_model(ckpt_path), seeds, psis, **sampling))
    picture = headed_rows({f"seed {s}": row for s, row in zip(seeds, tiles)}, [f"psi {p:g}" for p in psis])
    save_png(path, picture)
    return path

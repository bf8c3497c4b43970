"""Image arrays to and from tensors, grids, PNG files and animations."""

from __future__ import annotations

import io
import math
import os

import numpy as np
import torch
from PIL import Image

from gankd.fileio import atomic_write


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> uint8 tensor of the same layout, rounded as every gankd PNG is."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Float images [B, C, H, W] in [-1, 1] -> uint8 [B, H, W, C]."""
    return quantize(images).permute(0, 2, 3, 1).cpu().numpy()


def rgb(images: np.ndarray) -> np.ndarray:
    """uint8 [..., 1|3|4] -> [..., 3]: grey repeated, alpha dropped (for pictures and animations)."""
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images[..., :3]


def grid(images: np.ndarray, cols: int | None = None, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile uint8 [N, H, W, C] images into one [rows*H, cols*W, C] array with padding between tiles."""
    n, h, w, c = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), pad_value, np.uint8)
    if c == 4:
        out[..., 3] = 255
    for i, img in enumerate(images):
        r, col = divmod(i, cols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = img
    return out


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 [H, W, 1|3|4] -> PNG file contents."""
    img = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def animation_bytes(frames: np.ndarray, kind: str, fps: float) -> bytes:
    """A looping GIF (`kind` "gif") or an H.264 MP4 ("mp4": needs the imageio-ffmpeg package) of
    uint8 [T, H, W, C] frames."""
    import imageio.v3 as iio

    options = {"duration": 1000 / fps, "loop": 0} if kind == "gif" else {"fps": fps}
    return iio.imwrite("<bytes>", rgb(frames), extension=f".{kind}", **options)


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    atomic_write(path, png_bytes(image))


def upscale_nearest(images: np.ndarray, min_size: int) -> np.ndarray:
    """Enlarge small images by an integer factor so that grids of tiny images stay legible."""
    factor = max(1, math.ceil(min_size / images.shape[1]))
    return images.repeat(factor, axis=1).repeat(factor, axis=2) if factor > 1 else images

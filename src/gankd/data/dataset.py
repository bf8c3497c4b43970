"""Training tensors from any image source: channel conversion, centre crop, antialiased resize, caching.

Small sets (by default up to 1 GiB at the target resolution) are decoded once, in worker
processes, and held in memory; larger ones are decoded on the fly in DataLoader workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from PIL import Image

from gankd.data.source import ImageSource
from gankd.errors import DataError
from gankd.progress import progress

CACHE_LIMIT_BYTES = 1 << 30
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


ENLARGE_HINT = "allow enlarging with upscale=true (train, adapt) or --upscale (evaluate)"


def check_size(where: str, width: int, height: int, resolution: int, hint: str = ENLARGE_HINT) -> None:
    """Refuse an image whose short side is below the resolution, naming its file: cropping and
    resizing would silently enlarge it."""
    if min(width, height) < resolution:
        raise DataError(f"{where} ({width}x{height}) is smaller than the resolution {resolution}; {hint}")


def check_sizes(source: ImageSource, resolution: int, hint: str = ENLARGE_HINT) -> None:
    """`check_size` for every image of `source`, from the file headers alone where the source can."""
    for i in progress(range(len(source)), "checking image sizes", unit="img"):
        width, height = source.size(i) if hasattr(source, "size") else source.image(i).shape[1::-1]
        check_size(source.where(i), width, height, resolution, hint)


def convert_channels(arr: np.ndarray, channels: int, background: int = 255) -> np.ndarray:
    """uint8 [H, W, 1|3|4] -> uint8 [H, W, channels]; alpha is composited on `background` when dropped."""
    have = arr.shape[2]
    if have == channels:
        return arr
    if have == 4:
        alpha = arr[..., 3:].astype(np.float32) / 255
        arr = np.round(arr[..., :3] * alpha + background * (1 - alpha)).astype(np.uint8)
        have = 3
        if channels == 3:
            return arr
    if channels == 1:
        return np.round(arr.astype(np.float32) @ LUMA).clip(0, 255).astype(np.uint8)[..., None]
    rgb = np.repeat(arr, 3, axis=2) if have == 1 else arr
    if channels == 3:
        return rgb
    return np.concatenate([rgb, np.full_like(rgb[..., :1], 255)], axis=2)


def crop_resize(arr: np.ndarray, resolution: int) -> np.ndarray:
    """Centre-crop to a square and resize to `resolution` with an antialiasing (Lanczos) filter."""
    h, w, c = arr.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    arr = arr[top:top + side, left:left + side]
    if side == resolution:
        return np.ascontiguousarray(arr)
    img = Image.fromarray(arr[..., 0] if c == 1 else arr)
    out = np.asarray(img.resize((resolution, resolution), Image.Resampling.LANCZOS))
    return out[..., None] if c == 1 else out


class ImageDataset(torch.utils.data.Dataset):
    """Items are dicts: `image` float32 [C, R, R] in [-1, 1], `c` conditioning float32 [cond_dim]
    (empty for unconditional data), so that paired and labelled data share one loader."""

    def __init__(self, source: ImageSource, resolution: int, channels: int | None = None,
                 upscale: bool | None = None, cache: bool | None = None, workers: int | None = None):
        if len(source) == 0:
            raise DataError(f"{source.name}: no images")
        self.source, self.resolution = source, resolution
        self.channels = channels or source.channels
        if self.channels not in (1, 3, 4):
            raise DataError(f"channels must be 1, 3 or 4, not {self.channels}")
        self.upscale = source.upscale_ok if upscale is None else upscale
        self.workers = default_workers() if workers is None else workers
        self.vectors: np.ndarray | None = None  # per-image conditioning that replaces the labels (DIP)
        nbytes = len(source) * self.channels * resolution ** 2
        if (cache is None and nbytes <= CACHE_LIMIT_BYTES) or cache:
            self.images = torch.from_numpy(self._decode_all())
        else:
            self.images = None
            if not self.upscale and hasattr(source, "size"):  # else each image when it is read
                check_sizes(source, resolution)

    def __len__(self) -> int:
        return len(self.source)

    @property
    def in_memory(self) -> bool:
        """Decoded once and held in memory (the loader then needs no worker processes)."""
        return self.images is not None

    @property
    def cond_dim(self) -> int:
        return self.source.cond_dim if self.vectors is None else self.vectors.shape[1]

    def condition_on(self, vectors: np.ndarray) -> None:
        """Condition image i on vectors[i] from now on, instead of on the source's labels (DIP: each
        image's own features)."""
        if len(vectors) != len(self):
            raise ValueError(f"{len(vectors)} vectors for {len(self)} images")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    def cond(self, i: int) -> np.ndarray | None:
        """Image i's conditioning: its vector (`condition_on`), else the source's labels."""
        return self.source.cond(i) if self.vectors is None else self.vectors[i]

    def load(self, i: int) -> np.ndarray:
        """Image i as uint8 [R, R, C] at the dataset's resolution and channels."""
        arr = self.source.image(i)
        if not self.upscale:
            check_size(self.source.where(i), arr.shape[1], arr.shape[0], self.resolution)
        return crop_resize(convert_channels(arr, self.channels), self.resolution)

    def _decode_all(self) -> np.ndarray:
        n = len(self.source)
        out = np.empty((n, self.channels, self.resolution, self.resolution), np.uint8)
        chunks = [range(s, min(s + 64, n)) for s in range(0, n, 64)]
        with contextlib.ExitStack() as stack:
            if self.workers > 1 and n >= 256:
                fork = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
                pool = stack.enter_context(ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context(fork), initializer=_adopt, initargs=(self,)))
                results = pool.map(_decode_adopted, chunks)
            else:
                results = map(self._decode_chunk, chunks)
            for chunk, arr in progress(zip(chunks, results), f"decoding {self.source.name}", total=len(chunks),
                                       unit="chunks"):
                out[chunk.start:chunk.stop] = arr
        return out

    def _decode_chunk(self, indices: range) -> np.ndarray:
        return np.stack([self.load(i).transpose(2, 0, 1) for i in indices])

    def uint8(self, i: int) -> torch.Tensor:
        """Image i as uint8 [C, R, R]."""
        if self.images is not None:
            return self.images[i]
        return torch.from_numpy(self.load(i).transpose(2, 0, 1).copy())

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        img = self.uint8(i).float() / 127.5 - 1
        cond = self.cond(i)
        return {"image": img, "c": torch.from_numpy(cond) if cond is not None else torch.zeros(0)}

    def loader(self, batch_size: int, shuffle: bool = True, seed: int = 0, drop_last: bool = True,
               sampler: torch.utils.data.Sampler | None = None) -> torch.utils.data.DataLoader:
        """A DataLoader; decoding runs in worker processes unless the set is cached in memory."""
        workers = 0 if self.images is not None else self.workers
        return torch.utils.data.DataLoader(
            self, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
            drop_last=drop_last, num_workers=workers, persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(seed))


_adopted: ImageDataset | None = None


def _adopt(dataset: ImageDataset) -> None:
    """Pool initializer: with fork the dataset arrives without pickling (memory-mapped arrays stay mapped)."""
    global _adopted
    _adopted = dataset


def _decode_adopted(indices: range) -> np.ndarray:
    return _adopted._decode_chunk(indices)


def default_workers() -> int:
    return min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8)

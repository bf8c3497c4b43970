"""The user's images: a folder (searched recursively) or a zip of PNG, JPEG or WebP files.

Optional labels come from an NVlabs-style `dataset.json` at the root:
`{"labels": [["sub/img0.png", 3], ["img1.png", [0.1, 0.7]], ...]}` (a class index or a vector).
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gankd.data.source import ImageSource
from gankd.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def to_array(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> uint8 [H, W, C] with C = 1 (gray), 3 (RGB) or 4 (RGBA), values scaled correctly."""
    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(img).astype(np.float64)
        if mode.startswith("I;16") or arr.max(initial=0) > 255:  # 16-bit range
            arr = arr / 257
        return np.clip(np.round(arr), 0, 255).astype(np.uint8)[..., None]
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        arr = arr * 255 if arr.max(initial=0) <= 1 else arr
        return np.clip(np.round(arr), 0, 255).astype(np.uint8)[..., None]
    if mode in ("1", "L"):
        return np.asarray(img.convert("L"))[..., None]
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info)
    return np.asarray(img.convert("RGBA" if has_alpha else "RGB"))


@contextmanager
def opened(data: bytes, name: str) -> Iterator[Image.Image]:
    """PIL's image of a file's bytes, or DataError naming the file. Images up to PIL's hard limit
    against decompression bombs (2 x Image.MAX_IMAGE_PIXELS, 179 MP) open without its warning; larger
    ones are refused in one line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                yield img
    except Image.DecompressionBombError as err:
        raise DataError(f"{name}: too large to decode safely ({str(err).rstrip('.')}); shrink it first") from None
    except UnidentifiedImageError:
        raise DataError(f"{name}: not a readable image") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{name}: unreadable or truncated image ({err})") from None


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Decode and fully load one image, or raise DataError naming the file."""
    with opened(data, name) as img:
        img.load()
        return to_array(img)


class FolderSource(ImageSource):
    """Images under a folder or inside a zip, in sorted path order."""

    upscale_ok = False

    def __init__(self, path: Path):
        self.path = Path(path)
        self.name = self.path.stem or "images"
        if not self.path.exists():
            raise DataError(f"{self.path}: no such folder or zip")
        self.is_zip = self.path.is_file()
        if self.is_zip and not zipfile.is_zipfile(self.path):
            raise DataError(f"{self.path}: neither a folder nor a zip file")
        self._zip: zipfile.ZipFile | None = None
        names = self._list_names()
        self.names = sorted(n for n in names if n.lower().endswith(IMAGE_SUFFIXES) and not _hidden(n))
        if not self.names:
            what = "is empty" if not names else f"has no images ({', '.join(IMAGE_SUFFIXES)})"
            raise DataError(f"{self.path} {what}")
        self.fields = ("file", "label") if self._read_labels(names) else ("file",)

    def _list_names(self) -> list[str]:
        if self.is_zip:
            return [n for n in self._zipfile().namelist() if not n.endswith("/")]
        return [p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()]

    def _zipfile(self) -> zipfile.ZipFile:
        if self._zip is None:
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as err:
                raise DataError(f"{self.path}: unreadable zip ({err})") from None
        return self._zip

    def __getstate__(self):  # worker processes reopen the zip themselves
        return {**self.__dict__, "_zip": None}

    def read_bytes(self, name: str) -> bytes:
        try:
            if self.is_zip:
                return self._zipfile().read(name)
            return (self.path / name).read_bytes()
        except (OSError, zipfile.BadZipFile, KeyError) as err:
            raise DataError(f"{self.path / name}: cannot read ({err})") from None

    def _read_labels(self, names: list[str]) -> bool:
        self._labels: dict[str, object] = {}
        if "dataset.json" not in names:
            return False
        try:
            entries = json.loads(self.read_bytes("dataset.json")).get("labels")
        except (ValueError, AttributeError) as err:
            raise DataError(f"{self.path}/dataset.json: not valid JSON with a 'labels' list ({err})") from None
        if entries is None:
            return False
        try:
            self._labels = {str(fname).replace("\\", "/"): label for fname, label in entries}
        except (TypeError, ValueError):
            raise DataError(f"{self.path}/dataset.json: 'labels' must be a list of [file, label] pairs") from None
        missing = [n for n in self.names if n not in self._labels]
        if missing:
            raise DataError(f"{self.path}/dataset.json has no label for {missing[0]} "
                            f"({len(missing)} of {len(self.names)} images unlabelled)")
        values = [self._labels[n] for n in self.names]
        if all(isinstance(v, int) and v >= 0 for v in values):
            self._cond_dim = max(values) + 1
        elif all(isinstance(v, list) for v in values) and len({len(v) for v in values}) == 1:
            self._cond_dim = len(values[0])
        else:
            raise DataError(f"{self.path}/dataset.json: labels must be all class indices or all vectors of one length")
        return True

    def __len__(self) -> int:
        return len(self.names)

    def image(self, i: int) -> np.ndarray:
        return decode_image(self.read_bytes(self.names[i]), self.where(i))

    def size(self, i: int) -> tuple[int, int]:
        """(width, height) from the file header alone, after EXIF rotation."""
        name = self.names[i]
        with opened(self.read_bytes(name), self.where(i)) as img:
            w, h = img.size
            rotated = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)
            return (h, w) if rotated else (w, h)

    def where(self, i: int) -> str:
        return str(self.path / self.names[i])

    def labels(self, i: int) -> dict:
        name = self.names[i]
        return {"file": name, "label": self._labels[name]} if self._labels else {"file": name}

    def key(self, i: int) -> str:
        stem = self.names[i].rsplit(".", 1)[0]
        return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem)

    def cond(self, i: int) -> np.ndarray | None:
        if not self._labels:
            return None
        value = self._labels[self.names[i]]
        if isinstance(value, int):
            onehot = np.zeros(self._cond_dim, np.float32)
            onehot[value] = 1
            return onehot
        return np.asarray(value, np.float32)

    @property
    def cond_dim(self) -> int:
        return self._cond_dim if self._labels else 0

    @property
    def channels(self) -> int:
        return 3


def _hidden(name: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))

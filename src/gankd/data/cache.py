"""The on-disk cache of derived data (extracted emoji, rendered glyphs), keyed by content hashes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np


def cache_dir() -> Path:
    """$GANKD_CACHE, else $XDG_CACHE_HOME/gankd, else ~/.cache/gankd."""
    if os.environ.get("GANKD_CACHE"):
        root = Path(os.environ["GANKD_CACHE"])
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gankd"
    root.mkdir(parents=True, exist_ok=True)
    return root


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_atomically(folder: Path, files: dict[str, object]) -> None:
    """Write a cache folder whole or not at all: build it beside, then rename into place.

    Values are numpy arrays (.npy) or JSON-serialisable objects (.json).
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        for name, value in files.items():
            if name.endswith(".npy"):
                np.save(tmp / name, value)
            else:
                (tmp / name).write_text(json.dumps(value))
        try:
            os.rename(tmp, folder)
        except OSError:  # another process finished first: theirs is as good as ours
            if not folder.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

"""Safe output: nothing existing is overwritten unless asked, and files appear whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gankd.errors import OutputExistsError

_UMASK = os.umask(0)
os.umask(_UMASK)


def new_file(path: str | os.PathLike, force: bool = False) -> Path:
    """Check that `path` may be written: it must not exist (unless `force`) and must not be a folder."""
    path = Path(path)
    if path.is_dir():
        raise OutputExistsError(f"{path} is a folder; give a file name")
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; choose another path or pass --force to replace it")
    return path


def check_new_dir(path: str | os.PathLike) -> Path:
    """Check that `path` may become an output folder: absent, or an empty folder."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise OutputExistsError(f"{path} exists and is not an empty folder; choose another path")
    return path


def new_dir(path: str | os.PathLike) -> Path:
    """Create an output folder that must not exist yet or be empty."""
    path = check_new_dir(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes private files; outputs get the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

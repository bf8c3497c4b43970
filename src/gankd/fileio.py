"""Safe output: nothing existing is overwritten unless asked, files appear whole or not at all,
and an output that cannot be written (read-only, no permission, full disk) is one clear line."""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from pathlib import Path

from gankd.errors import OutputError, OutputExistsError
from gankd.lock import FolderBusy, entries, holder

# errno values that mean "this output cannot be written here", not a bug
STORAGE_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
# atomic_write's temporary files: `.<name>.<8 characters of mkstemp>`
PARTIAL = re.compile(r"\..+\.[a-z0-9_]{8}")
# an empty file in each folder new_dir makes: --force replaces only folders gankd wrote
OUTPUT_MARK = ".gankd-output"

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


def check_new_dir(path: str | os.PathLike, force: bool = False) -> Path:
    """Check that `path` may become an output folder: absent, or empty (a lock file left by a killed
    process does not count), or with `force` a folder gankd wrote before (it holds OUTPUT_MARK); a
    folder another gankd process works in is named as busy."""
    path = Path(path)
    busy = holder(path)
    if busy:
        raise FolderBusy(f"{path} is in use by {busy}; wait for it to end, or choose another path")
    if path.exists() and (not path.is_dir() or entries(path)):
        if force and (path / OUTPUT_MARK).is_file():
            return path
        if force:
            raise OutputExistsError(f"{path} exists and gankd did not write it, so --force does not replace it; "
                                    "choose another path")
        raise OutputExistsError(f"{path} exists and is not an empty folder; choose another path")
    return path


def new_dir(path: str | os.PathLike, force: bool = False) -> Path:
    """Create an output folder that must not exist yet or be empty; with `force`, a folder gankd
    wrote before is replaced whole (so no file of the old output survives among the new)."""
    path = check_new_dir(path, force)
    try:
        if force and path.is_dir() and entries(path):
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / OUTPUT_MARK).touch()
    except OSError as err:
        raise storage_error(err, path) from None
    return path


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it: a failure (a full disk,
    a kill) leaves the previous file as it was."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as err:
        raise storage_error(err, path) from None
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes private files; outputs get the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise storage_error(err, path, len(data)) from None
        raise


def storage_error(err: OSError, path: Path, size: int | None = None) -> Exception:
    """`err` as one line naming the file (and for a full disk, the space needed and free), or `err`
    itself when it is not a storage problem."""
    if err.errno not in STORAGE_ERRNOS:
        return err
    reason = (err.strerror or "cannot write").lower()
    if err.errno in (errno.ENOSPC, errno.EDQUOT) and size is not None:
        free = shutil.disk_usage(path.parent if path.parent.exists() else ".").free
        reason += f" (it needs {megabytes(size)}, {megabytes(free)} are free there)"
    return OutputError(f"cannot write {path}: {reason}")


def megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def remove_partial_writes(folders: list[Path]) -> tuple[int, int]:
    """Delete atomic_write's temporary files that a killed process left in `folders` (not recursive;
    call it only while no other process writes there, e.g. holding the folder's lock).
    Returns (files, bytes) removed."""
    count = size = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.is_file() and PARTIAL.fullmatch(path.name):
                size += path.stat().st_size
                path.unlink()
                count += 1
    return count, size

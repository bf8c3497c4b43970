"""One writer per output folder: `gankd train`, `adapt` and `bench` hold a lock on their folder for
as long as they run, so a second start into the same folder fails instead of mixing two runs.

The lock is `flock` on OUT/.gankd-lock. The kernel drops it when the holder exits in any way
(kill -9 included), so a lock never outlives its process: a file left by a killed holder is taken
over silently. The file names the holder (command, pid, host, start time) for the refusal message.
Needs `fcntl` (Linux, macOS). On file systems without working `flock` (some network mounts)
acquiring fails with a message that says so.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from gankd.errors import GankdError

LOCK_FILE = ".gankd-lock"


class FolderBusy(GankdError):
    """The folder is in use by another gankd process."""


def holder(folder: str | os.PathLike) -> str | None:
    """Who holds the folder's lock ("`gankd train` (pid 12, host h, since 10:04)"), or None if nobody."""
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _describe(path)
    finally:
        os.close(fd)
    return None


def _describe(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        since = time.strftime("%Y-%m-%d %H:%M", time.localtime(info["started"]))
        return f"`{info['command']}` (pid {info['pid']} on {info['host']}, since {since})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another gankd process"


def _lock(fd: int, tries: int = 5) -> None:
    """An exclusive lock, retried briefly: `holder` takes a shared one for an instant to look."""
    for attempt in range(tries):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if attempt == tries - 1:
                raise
            time.sleep(0.02)


class FolderLock:
    """`with FolderLock(out, "gankd train"):` creates `out` if needed and holds its lock; on exit the
    lock file is removed, and so is `out` if this lock created it and nothing else was written."""

    def __init__(self, folder: str | os.PathLike, command: str, enabled: bool = True):
        self.folder, self.command, self.enabled = Path(folder), command, enabled
        self.path = self.folder / LOCK_FILE
        self.fd: int | None = None
        self.created = False

    def __enter__(self) -> "FolderLock":
        if not self.enabled:
            return self
        self.created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                _lock(fd)
            except OSError as err:
                os.close(fd)
                self._cleanup_folder()
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise FolderBusy(f"{self.folder} is in use by {_describe(self.path)}; wait for it to end, "
                                     "or stop it") from None
                raise GankdError(f"{self.folder}: cannot lock the folder ({err.strerror}); "
                                 "use a folder on a local file system") from None
            try:  # the previous holder may have removed the file between our open and our lock
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd = fd
        info = {"command": self.command, "pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                "argv": sys.argv}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode())
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still locked: a waiting process then retries on a new file
        os.close(self.fd)
        self.fd = None
        self._cleanup_folder()

    def _cleanup_folder(self) -> None:
        if self.created:
            try:
                self.folder.rmdir()  # only if empty: a start that wrote nothing leaves nothing
            except OSError:
                pass


def entries(folder: str | os.PathLike) -> list[Path]:
    """What a folder holds, besides a lock file."""
    folder = Path(folder)
    return [p for p in folder.iterdir() if p.name != LOCK_FILE] if folder.is_dir() else []

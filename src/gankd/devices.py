"""The torch device a user named, checked: one clear line instead of a CUDA traceback; and the
CPU threads a piece of work runs with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from gankd.errors import GankdError


def device_named(name: str) -> torch.device:
    """What `auto` (CUDA if present, else CPU), `cpu`, `cuda` or `cuda:N` means, without checking
    that this machine has it (a config may be written for another)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return torch.device(name)
    except RuntimeError:
        raise GankdError(f"device must be auto, cpu, cuda or cuda:N, not {name!r}") from None


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """The device to run on, present on this machine; plain `cuda` is this process's GPU under torchrun."""
    device = device_named(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GankdError(f"device {name!r}: torch sees no CUDA GPU on this machine; use cpu (or auto)")
        index = local_rank if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise GankdError(f"device cuda:{index}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
        device = torch.device("cuda", index)
    return device


@contextmanager
def cpu_threads(count: int | None) -> Iterator[None]:
    """torch's CPU thread count set to `count` (None: as it is) for a block of work, then given back:
    a library call (`gankd.train`) leaves its caller's process as it found it."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)

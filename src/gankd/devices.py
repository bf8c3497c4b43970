"""The torch device a user named, checked: one clear line instead of a CUDA traceback."""

from __future__ import annotations

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

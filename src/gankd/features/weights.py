"""Where pretrained weights files come from: a given path, an environment variable, the cache, or
a download into the cache. Offline, the error says which file to put where.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import torch

from gankd.data.cache import cache_dir
from gankd.errors import GankdError
from gankd.fileio import atomic_write

DOWNLOAD_TIMEOUT_S = 20


def offline() -> bool:
    return any(os.environ.get(v) == "1" for v in ("GANKD_OFFLINE", "HF_HUB_OFFLINE"))


def weights_file(label: str, filename: str, url: str | None, env_var: str, given: str | os.PathLike | None = None,
                 also_look_in: tuple[Path, ...] = ()) -> Path:
    """The weights file to use, downloading it into the cache if needed and allowed.

    Order: `given` (--weights), $ENV_VAR, the gankd cache (`weights/filename`), `also_look_in`
    (where the original library caches it), then a download from `url` into the gankd cache.
    """
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise GankdError(f"{label} weights: {path} is not a file")
        return path
    if os.environ.get(env_var):
        path = Path(os.environ[env_var])
        if not path.is_file():
            raise GankdError(f"{label} weights: ${env_var} points to {path}, which is not a file")
        return path
    target = cache_dir() / "weights" / filename
    for path in (target, *(folder / filename for folder in also_look_in)):
        if path.is_file():
            return path
    hint = f"put the file at {target}, set ${env_var}, or pass --weights PATH"
    if url is None:
        raise GankdError(f"{label} weights not found: {hint}")
    if offline():
        raise GankdError(f"{label} weights not found and downloads are off (offline): download {url} and {hint}")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            atomic_write(target, response.read())
    except OSError as err:
        raise GankdError(f"{label} weights not found and the download failed ({err}): "
                         f"download {url} and {hint}") from None
    return target


def load_state_dict(path: Path, label: str) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors or a PyTorch file, never unpickling code (weights_only)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        raise GankdError(f"{label} weights: cannot read {path} ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else 'unreadable'})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise GankdError(f"{label} weights: {path} does not hold a dict of tensors")
    return state


def load_exactly(module: torch.nn.Module, state: dict[str, torch.Tensor], label: str, path: Path) -> None:
    """load_state_dict with a one-line error naming the first missing, unexpected or misshapen key."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or extra or wrong:
        what = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra
                else f"{wrong[0]} has shape {tuple(state[wrong[0]].shape)}, expected {tuple(own[wrong[0]].shape)}")
        count = len(missing) + len(extra) + len(wrong)
        raise GankdError(f"{label} weights: {path} does not fit the network ({what}; {count} keys differ)")
    module.load_state_dict(state)

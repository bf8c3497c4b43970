"""A pickle reader that rebuilds data and nothing else.

A pickle is a program: each GLOBAL opcode names a Python callable that the loader imports and
calls, so `pickle.load` on a downloaded file runs whatever its author chose. This unpickler
resolves a global only from an explicit table of data constructors (tensors, parameters,
containers, numpy scalars) plus the stand-ins a caller adds, and refuses any other global by name
before anything is imported or called.
"""

from __future__ import annotations

import collections
import io
import pickle
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np
import torch

from gankd.errors import CheckpointError


class UnsafePickleError(CheckpointError):
    """The pickle names a callable outside the allowlist; nothing of it was run."""


def _storage_from_bytes(data: bytes):
    """Tensor storages are pickled as the bytes of a nested `torch.save`, read here with weights_only."""
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _numpy_scalar(dtype: np.dtype, data: bytes | None = None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("only plain numpy scalars are allowed")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_dtype(name: str, align: bool = False, copy: bool = True) -> np.dtype:
    dtype = np.dtype(name)
    if dtype.hasobject:
        raise pickle.UnpicklingError("object dtypes are not allowed")
    return dtype


DATA_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): _numpy_dtype,
}


class SafeUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, extra: dict[tuple[str, str], Callable[..., Any]] | None = None,
                 hints: dict[str, str] | None = None, encoding: str = "ASCII"):
        super().__init__(file, encoding=encoding)  # latin1 reads Python 2 pickles (CIFAR's)
        self.allowed = {**DATA_GLOBALS, **(extra or {})}
        self.hints = hints or {}

    def find_class(self, module: str, name: str):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            hint = next((h for prefix, h in self.hints.items() if module.startswith(prefix)),
                        "only tensors, parameters and plain containers are loaded")
            raise UnsafePickleError(f"refused to unpickle {module}.{name}: {hint}") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent references are not allowed here")


def safe_load(file: BinaryIO, extra: dict[tuple[str, str], Callable[..., Any]] | None = None,
              hints: dict[str, str] | None = None) -> Any:
    """Unpickle `file`, building only allowlisted objects; UnsafePickleError names the first refusal."""
    return SafeUnpickler(file, extra, hints).load()

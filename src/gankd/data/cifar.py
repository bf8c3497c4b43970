"""CIFAR-10 and CIFAR-100 from the user's copy, in the layout torchvision downloads
(`cifar-10-batches-py/`, `cifar-100-python/`), for the limited-data papers' protocols.

Their batches are Python pickles; they are read by gankd's restricted unpickler (plain containers
and numpy arrays of plain dtypes only), never by `pickle.load`. Nothing is downloaded: without
the files, one line says where to get them and where to put them.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from gankd.data.source import ArraySource
from gankd.errors import DataError

URLS = {"cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"}
FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
PARTS = {"cifar10": {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
         "cifar100": {"train": ["train"], "test": ["test"]}}
ENV_VAR = "GANKD_CIFAR"


def _array(cls, shape, typecode):
    """numpy's pickled-array constructor, for plain dtypes only (the data comes in BUILD's setstate)."""
    dtype = np.dtype(typecode)
    if cls is not np.ndarray or dtype.hasobject:
        raise pickle.UnpicklingError("only plain numpy arrays are allowed")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """How protocol-2 pickles written by Python 3 spell bytes (`_codecs.encode(text, "latin1")`)."""
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError("only latin-1 byte strings are allowed")
    return text.encode("latin1")


NUMPY_ARRAYS = {(module, "_reconstruct"): _array for module in ("numpy.core.multiarray", "numpy._core.multiarray")}
NUMPY_ARRAYS |= {("numpy", "ndarray"): np.ndarray, ("_codecs", "encode"): _latin1_bytes}


def read_batch(path: Path) -> dict:
    """One batch file: a dict with str keys (the files were pickled by Python 2: latin-1 strings)."""
    from gankd.interop.safe_pickle import SafeUnpickler, UnsafePickleError

    try:
        with open(path, "rb") as file:
            batch = SafeUnpickler(file, NUMPY_ARRAYS, encoding="latin1").load()
    except FileNotFoundError:
        raise DataError(f"{path}: missing from the CIFAR folder") from None
    except (UnsafePickleError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise DataError(f"{path}: not a CIFAR batch ({err})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: not a CIFAR batch (a {type(batch).__name__})")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in batch.items()}


def make_cifar(name: str, root: str | None = None, part: str = "train") -> ArraySource:
    where = root or os.environ.get(ENV_VAR)
    folder = Path(where or ".") / FOLDERS[name]
    if not folder.is_dir():
        raise DataError(f"{name}: no {folder} (give root=DIR or ${ENV_VAR}); download {URLS[name]} and extract it "
                        f"into that folder (torchvision's layout); gankd never downloads data sets")
    if part not in PARTS[name]:
        raise DataError(f"{name}: part must be train or test, not {part!r}")
    meta = read_batch(folder / ("batches.meta" if name == "cifar10" else "meta"))
    fine = "labels" if name == "cifar10" else "fine_labels"
    text = lambda n: n.decode("latin1") if isinstance(n, bytes) else str(n)  # noqa: E731
    names = [text(n) for n in meta["label_names" if name == "cifar10" else "fine_label_names"]]
    coarse_names = [text(n) for n in meta.get("coarse_label_names", [])]
    images, labels = [], []
    for file in PARTS[name][part]:
        batch = read_batch(folder / file)
        data = np.asarray(batch["data"], np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DataError(f"{folder / file}: data of shape {data.shape}, expected [N, 3072]")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        for i, k in enumerate(batch[fine]):
            labels.append({"label": names[k], **({"coarse": coarse_names[batch["coarse_labels"][i]]}
                                                 if coarse_names else {})})
    fields = ("label", "coarse") if coarse_names else ("label",)
    return ArraySource(name, np.concatenate(images), labels, fields, key_field="label")

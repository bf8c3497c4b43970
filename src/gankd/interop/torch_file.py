"""Reading a `torch.save` file safely: tensors and plain containers only (`weights_only`), plus
argparse.Namespace, which every rosinality training checkpoint holds."""

from __future__ import annotations

import argparse
import pickle
import re
from pathlib import Path

import torch

from gankd.errors import CheckpointError


def load_torch_file(path: Path):
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        name = re.search(r"GLOBAL ([\w.]+)", str(err))
        if name:
            raise CheckpointError(f"{path}: refused to load a pickled {name.group(1)}; gankd reads tensors and "
                                  "plain containers only and never unpickles code") from None
        raise CheckpointError(f"{path}: a damaged PyTorch file ({str(err).splitlines()[-1][:120]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable PyTorch file ({str(err).splitlines()[0][:120]})") from None

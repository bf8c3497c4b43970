"""Test helpers that write checkpoints in other projects' real file layouts, without their code.

- `fill`: deterministic, platform-independent weights for any parameter name, so that the tests
  and benchmarks/interop_reference.py (which runs the original implementations) agree.
- `save_rosinality`: the dict that rosinality's train.py saves (g, d, g_ema, optimizers, args).
- `dump_nvlabs`: a pickle laid out as NVlabs' torch_utils.persistence writes it, one
  `_reconstruct_persistent_obj(meta)` call per module, with `meta.state` the module's __dict__.
"""

from __future__ import annotations

import argparse
import collections
import pickle
import sys
import types
import zlib
from contextlib import contextmanager

import numpy as np
import torch

from gankd.interop.nvlabs import Persistent


def fill(name: str, shape) -> torch.Tensor:
    """Random values seeded by the parameter's name, scaled so that activations stay near unit size."""
    rng = np.random.RandomState(zlib.crc32(name.encode()))
    values = np.asarray(rng.standard_normal(tuple(shape)), dtype=np.float32)
    leaf = name.rsplit(".", 1)[-1]
    if name.endswith(("modulation.bias", "affine.bias")):
        values = 1 + 0.2 * values
    elif leaf in ("bias", "noise_strength") or name.endswith("noise.weight"):
        values = 0.2 * values
    elif leaf == "weight" and (".style." in f".{name}" or ".mapping.fc" in f".{name}"):
        values = 100 * values  # mapping layers store weights divided by their lr multiplier 0.01
    return torch.from_numpy(np.array(values, dtype=np.float32))


def save_rosinality(path, states: dict[str, dict[str, torch.Tensor]], legacy: bool = False, **extra) -> None:
    """states: {"g": ..., "d": ..., "g_ema": ...}; extra: latent_avg and the like; legacy: torch < 1.6 format."""
    data = {**states, "g_optim": {"state": {}, "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99), "params": [0]}]},
            "d_optim": {"state": {}, "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99), "params": [0]}]},
            "args": argparse.Namespace(size=16, latent=64, n_mlp=2, channel_multiplier=2, arch="stylegan2",
                                       path="lmdb", iter=800000, batch=16, r1=10.0, augment=False),
            "ada_aug_p": 0.0, **extra}
    torch.save(data, path, _use_new_zipfile_serialization=not legacy)


def _reconstruct_persistent_obj(meta):  # only ever referenced by name in the pickles written here
    raise AssertionError("not called")


class EasyDict(dict):
    pass


@contextmanager
def _nvlabs_names():
    """Make NVlabs' module paths resolvable while pickling, so that pickle writes their names."""
    modules = {name: types.ModuleType(name) for name in ("torch_utils", "torch_utils.persistence",
                                                          "dnnlib", "dnnlib.util")}
    modules["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    modules["dnnlib.util"].EasyDict = EasyDict
    _reconstruct_persistent_obj.__module__, _reconstruct_persistent_obj.__qualname__ = (
        "torch_utils.persistence", "_reconstruct_persistent_obj")
    EasyDict.__module__ = "dnnlib.util"
    saved = {k: sys.modules.get(k) for k in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


class _AsPersistent:
    def __init__(self, record: Persistent, module_src: str):
        self.record, self.module_src = record, module_src

    def __reduce__(self):
        state = dict(self.record.state)
        if isinstance(state.get("_init_kwargs"), dict):  # NVlabs passes its kwargs groups as EasyDicts
            state["_init_kwargs"] = {k: EasyDict(v) if isinstance(v, dict) else v
                                     for k, v in state["_init_kwargs"].items()}
        meta = dict(type="class", version=self.record.version or 6, class_name=self.record.class_name,
                    module_src=self.module_src, state=_wrap(state, self.module_src))
        return _reconstruct_persistent_obj, (meta,)


def _wrap(value, module_src: str):
    if isinstance(value, Persistent):
        return _AsPersistent(value, module_src)
    if isinstance(value, (dict, collections.OrderedDict)):
        return type(value)((k, _wrap(v, module_src)) for k, v in value.items())
    return value


def dump_nvlabs(data: dict, module_src: str = "# module source left out by gankd's test writer\n") -> bytes:
    """Pickle {"G": Persistent, "D": ..., ...} the way NVlabs' training loop pickles its snapshot."""
    with _nvlabs_names():
        return pickle.dumps(_wrap(data, module_src), protocol=pickle.DEFAULT_PROTOCOL)


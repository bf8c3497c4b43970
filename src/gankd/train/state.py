"""The full state of a run in one checkpoint file, and the run folder around it.

A training checkpoint is an ordinary gankd checkpoint (G, G_ema, D: `gankd generate` and `gankd
info` read it) with more tensors (optimizer moments, RNG states, regularizer and recipe state)
and a `training` entry in its JSON metadata (step, images seen, the resolved config, optimizer
hyper-parameters, augmentation state, RNG scalars). No pickled code anywhere. Files are written
atomically; the newest `keep` stay.

The run folder's layout is in gankd.runs.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from gankd.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from gankd.errors import CheckpointError, OutputExistsError
from gankd.runs import CHECKPOINTS, checkpoint_path, checkpoints

def rng_state() -> tuple[dict, dict]:
    """This process's random generators (torch, CUDA, numpy, python) as (tensors, JSON)."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["cuda"] = torch.cuda.get_rng_state()
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, internal, gauss_next = random.getstate()
    return tensors, {"numpy": [kind, pos, has_gauss, gauss], "python": [version, list(internal), gauss_next]}


def set_rng_state(tensors: dict, values: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["cuda"])
    kind, pos, has_gauss, gauss = values["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = values["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _split(prefix: str, state: dict) -> tuple[dict, dict]:
    """Tensors of a state dict under `prefix.` names; everything else stays JSON."""
    tensors = {f"{prefix}.{k}": v for k, v in state.items() if isinstance(v, torch.Tensor)}
    values = {k: v for k, v in state.items() if not isinstance(v, torch.Tensor)}
    return tensors, values


def _join(prefix: str, tensors: dict, values: dict) -> dict:
    start = f"{prefix}."
    return {**values, **{k[len(start):]: v for k, v in tensors.items() if k.startswith(start)}}


def save_training_state(run_dir: Path, step: int, images: int, cfg, nets, optimizers: dict, parts: dict,
                        rngs: list[tuple[dict, dict]], keep: int) -> Path:
    """Write checkpoints/step-N.safetensors and delete all but the newest `keep`.

    `parts` are objects with state_dict() (augmentation, regularizers, the recipe), by name."""
    tensors, training = {}, {"step": step, "images": images, "config": cfg.to_dict(), "optim": {}, "parts": {},
                             "rng": []}
    for name, opt in optimizers.items():
        sd, values = opt.state_dict(), {}
        for index, entry in sd["state"].items():
            t, values[index] = _split(f"optim.{name}.{index}", entry)
            tensors.update(t)
        training["optim"][name] = {"param_groups": sd["param_groups"], "values": values}
    for name, part in parts.items():
        t, v = _split(f"part.{name}", part.state_dict())
        tensors.update(t)
        training["parts"][name] = v
    for rank, (t, v) in enumerate(rngs):
        tensors.update({f"rng.{rank}.{k}": x for k, x in t.items()})
        training["rng"].append(v)
    path = checkpoint_path(run_dir, step)
    save_checkpoint(path, nets.trained(), state=tensors, force=True, step=step, **{"images seen": images},
                    data=cfg.data, method=cfg.method, training=training)
    for _, old in checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_training_state(path: Path) -> Checkpoint:
    ckpt = load_checkpoint(path)
    if "training" not in ckpt.meta:
        raise CheckpointError(f"{path}: holds networks only, not a training state; "
                              "to start from it use method=finetune source=PATH")
    return ckpt


def restore(ckpt: Checkpoint, nets, optimizers: dict, parts: dict, rank: int, world: int) -> tuple[int, int]:
    """Load a training checkpoint into live objects; returns (step, images seen)."""
    training = ckpt.meta["training"]
    for role, net in nets.trained().items():
        start = f"{role}."
        net.load_state_dict({k[len(start):]: v for k, v in ckpt.tensors.items() if k.startswith(start)})
    for name, opt in optimizers.items():
        stored = training["optim"][name]
        state = {int(i): _join(f"optim.{name}.{i}", ckpt.tensors, values) for i, values in stored["values"].items()}
        opt.load_state_dict({"state": state, "param_groups": stored["param_groups"]})
    for name, part in parts.items():
        part.load_state_dict(_join(f"part.{name}", ckpt.tensors, training["parts"].get(name, {})))
    rngs = training["rng"]
    if len(rngs) == world:
        start = f"rng.{rank}."
        set_rng_state({k[len(start):]: v for k, v in ckpt.tensors.items() if k.startswith(start)}, rngs[rank])
    return training["step"], training["images"]


def resume_point(path: str | Path) -> tuple[Path, Path]:
    """(run folder, checkpoint) for `--resume PATH`, PATH a run folder (its newest checkpoint) or one
    checkpoint inside a run folder. Resuming from an older checkpoint would overwrite newer ones:
    refused."""
    path = Path(path)
    if path.is_dir():
        found = checkpoints(path)
        if not found:
            raise CheckpointError(f"{path}: no checkpoints in {path / CHECKPOINTS} to resume from")
        return path, found[-1][1]
    if not path.is_file():
        raise CheckpointError(f"{path}: no such run folder or checkpoint")
    run_dir = path.parent.parent
    if path.parent.name != CHECKPOINTS or not (run_dir / "config.yaml").is_file():
        raise CheckpointError(f"{path}: not inside a run folder (<run>/{CHECKPOINTS}/); "
                              "to start a new run from it use method=finetune source=PATH")
    newer = [p for s, p in checkpoints(run_dir) if p.name > path.name]
    if newer:
        raise OutputExistsError(f"{path}: the run has newer checkpoints ({newer[-1].name}) that resuming "
                                "from here would replace; resume from the run folder, or copy the run first")
    return run_dir, path

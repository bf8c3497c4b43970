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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gankd.checkpoint import Checkpoint, load_checkpoint, read_meta, save_checkpoint
from gankd.errors import CheckpointError, OutputExistsError, warn
from gankd.runs import CHECKPOINTS, CONFIG, checkpoint_path, checkpoints

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


def seed_streams(*entropy: int) -> None:
    """Seed every generator of this process (latents, noise, augmentation) from `entropy`
    (the run's seed and the rank; on a resume with another process count, also the step)."""
    value = int(np.random.SeedSequence(list(entropy)).generate_state(1)[0])
    torch.manual_seed(value)
    np.random.seed(value)
    random.seed(value)


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
                             "rng": [], "threads": torch.get_num_threads(),
                             "device": next(nets.all()[0].parameters()).device.type,
                             "teachers": parts["recipe"].teachers()}
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
    save_checkpoint(path, nets.trained(), state=tensors, force=True, prior=parts["recipe"].prior(), step=step,
                    **{"images seen": images}, data=cfg.data, method=cfg.method, training=training)
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
    else:
        seed_streams(training["config"]["seed"], rank, training["step"])
    if rank == 0:
        for line in inexact_resume(training, world):
            warn(f"{ckpt.path}: {line}")
    return training["step"], training["images"]


def inexact_resume(training: dict, world: int) -> list[str]:
    """Why going on from this checkpoint here will not reproduce the uninterrupted run bit for bit:
    another process count (each process has its own random streams) or, on a CPU, another thread
    count (reductions split differently)."""
    lines = []
    if len(training["rng"]) != world:
        lines.append(f"trained with {len(training['rng'])} process(es), resumed with {world}: the run goes on "
                     "with fresh random streams, not exactly as it would have; resume with the same count for that")
    threads, now = training.get("threads"), torch.get_num_threads()
    if training.get("device") == "cpu" and threads and threads != now:
        lines.append(f"trained with {threads} CPU threads, resumed with {now}: rounding differs, and the run will "
                     f"drift from an uninterrupted one; set threads={threads} (or OMP_NUM_THREADS={threads}) "
                     "to match")
    return lines


@dataclass
class ResumePoint:
    """Where `--resume` goes on: the run folder, its newest checkpoint that loads (None: the run saved
    none and starts again from step 0), and newer checkpoints that do not load, with the reason."""

    run_dir: Path
    checkpoint: Path | None
    broken: list[tuple[Path, str]]


def usable(path: Path) -> str | None:
    """Why a checkpoint cannot be resumed from (truncated, damaged, networks only), or None."""
    try:
        meta = read_meta(path)
    except CheckpointError as err:
        return str(err).removeprefix(f"{path}: ")
    return None if "training" in meta else "holds networks only, not a training state"


def resume_point(path: str | Path) -> ResumePoint:
    """Where `--resume PATH` goes on, PATH a run folder (its newest checkpoint that loads) or one
    checkpoint inside a run folder. Resuming from an older checkpoint would overwrite newer ones
    that load: refused."""
    path = Path(path)
    if path.is_dir():
        run_dir, chosen = path, None
    elif path.is_file():
        run_dir, chosen = path.parent.parent, path
        if path.parent.name != CHECKPOINTS or not (run_dir / CONFIG).is_file():
            raise CheckpointError(f"{path}: not inside a run folder (<run>/{CHECKPOINTS}/); "
                                  "to start a new run from it use method=finetune source=PATH")
    else:
        raise CheckpointError(f"{path}: no such run folder or checkpoint")
    broken = []
    for _, candidate in reversed(checkpoints(run_dir)):
        if chosen is not None and candidate.name <= chosen.name:
            break
        reason = usable(candidate)
        if reason is None and chosen is None:
            return ResumePoint(run_dir, candidate, broken)
        if reason is None:
            raise OutputExistsError(f"{path}: the run has newer checkpoints ({candidate.name}) that resuming "
                                    "from here would replace; resume from the run folder, or copy the run first")
        broken.append((candidate, reason))
    if chosen is not None:
        reason = usable(chosen)
        if reason:
            raise CheckpointError(f"{chosen}: {reason}")
        return ResumePoint(run_dir, chosen, broken)
    if not (run_dir / CONFIG).is_file():
        raise CheckpointError(f"{path}: no run to resume (neither {CONFIG} nor checkpoints in {run_dir / CHECKPOINTS})")
    return ResumePoint(run_dir, None, broken)


def set_aside(broken: list[tuple[Path, str]]) -> list[str]:
    """Rename checkpoints that do not load to `<name>.broken` (kept for inspection, never resumed);
    returns one line per file."""
    lines = []
    for path, reason in broken:
        aside = path.with_name(path.name + ".broken")
        path.replace(aside)
        lines.append(f"skipped {path.name} ({reason}); kept as {aside.name}")
    return lines

"""The layout of a run folder, known in one place: wherever a checkpoint is read, a run folder
stands for its newest checkpoint.

    RUN/config.yaml, metrics.jsonl, tb/, wandb/ (logger=wandb), samples/*.png, checkpoints/step-NNNNNNN.safetensors,
        best.safetensors, .gankd-lock (while a process runs in it, gankd.lock)
"""

from __future__ import annotations

import re
from pathlib import Path

from gankd.errors import CheckpointError

CHECKPOINTS, SAMPLES, CONFIG, METRICS, TENSORBOARD = "checkpoints", "samples", "config.yaml", "metrics.jsonl", "tb"
BEST = "best.safetensors"
_NAME = re.compile(r"step-(\d{7,})\.safetensors")


def is_run(path: str | Path) -> bool:
    return (Path(path) / CHECKPOINTS).is_dir()


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step-{step:07d}.safetensors"


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of the run's checkpoints, oldest first."""
    folder = Path(run_dir) / CHECKPOINTS
    found = [(int(m.group(1)), p) for p in folder.glob("step-*.safetensors") if (m := _NAME.fullmatch(p.name))]
    return sorted(found)


def newest_checkpoint(run_dir: Path) -> Path:
    found = checkpoints(run_dir)
    if not found:
        raise CheckpointError(f"{run_dir}: a run folder without checkpoints (in {Path(run_dir) / CHECKPOINTS})")
    return found[-1][1]


def written_folders(run_dir: Path) -> list[Path]:
    """The folders a run writes files into (atomically, so a kill may leave temporary files there)."""
    return [Path(run_dir), Path(run_dir) / CHECKPOINTS, Path(run_dir) / SAMPLES]


def logs(run_dir: Path) -> list[Path]:
    """What a run writes as it goes besides checkpoints (metrics, TensorBoard events, sample grids,
    the best networks so far): a run that starts again from step 0 replaces them."""
    return [Path(run_dir) / name for name in (METRICS, TENSORBOARD, SAMPLES, BEST)]


def checkpoint_of(target: str | Path) -> str | None:
    """The checkpoint a target names (a file, `builtin:NAME`, or a run folder's newest), or None when
    it names images (a folder, zip or data spec)."""
    from gankd.models import PREFIX

    text, path = str(target), Path(target)
    if is_run(path):
        return str(newest_checkpoint(path))
    return text if text.startswith(PREFIX) or path.is_file() and path.suffix != ".zip" else None

"""The layout of a run folder, known in one place: wherever a checkpoint is read, a run folder
stands for its newest checkpoint (and a pretrained folder, `gankd.pretrained`, for its model file).

    RUN/config.yaml, commands.txt, metrics.jsonl, tb/, wandb/ (logger=wandb), samples/*.png,
        checkpoints/step-NNNNNNN.safetensors, best.safetensors,
        .gankd-lock (while a process runs in it, gankd.lock)

A `gankd adapt` folder holds a run: OUT/adapt.json, split/, run/, eval-step-N/, comparison.png,
report.md.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from contextlib import contextmanager
from pathlib import Path

from gankd.errors import CheckpointError

CHECKPOINTS, SAMPLES, CONFIG, METRICS, TENSORBOARD = "checkpoints", "samples", "config.yaml", "metrics.jsonl", "tb"
BEST = "best.safetensors"
MODEL = "model.safetensors"  # the checkpoint of a pretrained folder (gankd save-pretrained)
COMMANDS = "commands.txt"  # every command that worked on the run, oldest first
COMMAND_ENV = "GANKD_COMMAND"
ADAPT_FILE, PICTURE, REPORT = "adapt.json", "comparison.png", "report.md"  # of an adapt folder
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


def folder_checkpoint(path: str | Path) -> Path | None:
    """The checkpoint a folder stands for: a run folder's newest, a pretrained folder's model file;
    None for anything else."""
    path = Path(path)
    if is_run(path):
        return newest_checkpoint(path)
    return path / MODEL if (path / MODEL).is_file() else None


def written_folders(run_dir: Path) -> list[Path]:
    """The folders a run writes files into (atomically, so a kill may leave temporary files there)."""
    return [Path(run_dir), Path(run_dir) / CHECKPOINTS, Path(run_dir) / SAMPLES]


def logs(run_dir: Path) -> list[Path]:
    """What a run writes as it goes besides checkpoints (metrics, TensorBoard events, sample grids,
    the best networks so far): a run that starts again from step 0 replaces them."""
    return [Path(run_dir) / name for name in (METRICS, TENSORBOARD, SAMPLES, BEST)]


def checkpoint_of(target: str | Path) -> str | None:
    """The checkpoint a target names (a file, `builtin:NAME`, `hf:OWNER/NAME`, a run folder's newest or a
    pretrained folder's), or None when it names images (a folder, zip or data spec)."""
    from gankd.models import HUB, PREFIX

    text, found = str(target), folder_checkpoint(target)
    if found is not None:
        return str(found)
    return text if text.startswith((PREFIX, HUB)) or Path(target).is_file() and Path(target).suffix != ".zip" else None

@contextmanager
def invoked_as(args: list[str]):
    """While the `gankd` command runs with `args`: its shell line, for the run folders it writes. An
    environment variable, so that the processes it starts (bench workers, torchrun's) know it too."""
    before = os.environ.get(COMMAND_ENV)
    os.environ[COMMAND_ENV] = shlex.join(["gankd", *args])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(COMMAND_ENV, None)
        else:
            os.environ[COMMAND_ENV] = before


def record_command(run_dir: Path) -> None:
    """Add the command working on the run now to its commands.txt: a new run's, then each resume's."""
    line = os.environ.get(COMMAND_ENV) or f"# gankd's Python API, called by: {shlex.join(sys.argv)}"
    world = os.environ.get("WORLD_SIZE", "1")
    with (Path(run_dir) / COMMANDS).open("a") as f:
        f.write(line + (f"  # under torchrun, {world} processes" if world != "1" else "") + "\n")


def recorded_commands(run_dir: Path) -> list[str]:
    """The lines of the run's commands.txt (none for a run made before gankd recorded them)."""
    path = Path(run_dir) / COMMANDS
    return path.read_text().splitlines() if path.is_file() else []


def logged_rows(run_dir: Path) -> list[dict]:
    """metrics.jsonl's rows, one per logged step (an evaluation is a row of its own); the half-written
    last line of a killed run is left out."""
    path = Path(run_dir) / METRICS
    rows = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows

"""`gankd train`: resolve the config, make or reopen the run folder, then run the loop.

A new run gets a new folder (an existing one is refused, never overwritten); `--resume` reopens a
run folder or one of its checkpoints with the config stored there, where only keys that do not
change the computation (steps, intervals, device) may be changed. Resuming a folder goes on from
its newest checkpoint that loads (newer ones that do not are set aside as `.broken`); a run that
saved no checkpoint starts again from step 0, and then any setting may change.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from gankd.checkpoint import read_meta
from gankd.config import ConfigError, TrainConfig, read_yaml, resolve
from gankd.devices import cpu_threads
from gankd.errors import Interrupted, OutputError, OutputExistsError, note, warn
from gankd.fileio import check_new_dir, megabytes, remove_partial_writes, storage_error
from gankd.lock import FolderBusy, FolderLock, entries, holder
from gankd.runs import CONFIG, checkpoints, logs, written_folders
from gankd.train.dist import Dist, launcher_gone
from gankd.train.loggers import check_available
from gankd.train.loop import TrainResult, training_loop
from gankd.train.state import ResumePoint, resume_point, set_aside


def resolve_run(config_file: str | Path | None = None, overrides: list[str] | None = None,
                out: str | Path | None = None, resume: str | Path | None = None, defaults: dict | None = None,
                check_folder: bool = True) -> tuple[TrainConfig, Path, ResumePoint | None]:
    """(config, run folder, where a resumed run goes on or None), checked but with nothing written.
    `defaults` (dotted keys) sit between gankd's defaults and the config file (commands such as
    `gankd adapt` bring their own). `check_folder=False` skips the checks of a new run's folder
    and of another process working in the folder (torchrun's other processes: the main one holds
    the lock and may have started writing)."""
    overrides = list(overrides or [])
    if resume is None:
        cfg = resolve(config_file, overrides, base=defaults)
        run_dir = Path(out) if out else Path("runs") / _slug(f"{cfg.method}-{cfg.data}-{cfg.res}")
        if check_folder:
            check_new_run(run_dir)
        _check_launch(cfg)
        return cfg, run_dir, None
    if config_file is not None or out is not None:
        raise ConfigError("--resume takes the run's stored config and folder; drop --config/--out "
                          "(change steps and intervals with key=value)")
    point = resume_point(resume)
    busy = holder(point.run_dir) if check_folder else None
    if busy:
        raise FolderBusy(f"{point.run_dir} is in use by {busy}; wait for it to end, or stop it")
    if point.checkpoint is None:  # nothing was kept: it starts again, and any setting may change
        cfg = resolve(base=read_yaml(point.run_dir / CONFIG), overrides=overrides)
        _check_launch(cfg)
        return cfg, point.run_dir, point
    training = read_meta(point.checkpoint)["training"]
    stored = training["config"]
    cfg = resolve(base=stored, overrides=overrides)
    before, after = resolve(base=stored).flat(), cfg.flat()
    changed = [k for k in after if after[k] != before.get(k) and k not in TrainConfig.RESUMABLE]
    if changed:
        raise ConfigError(f"a resumed run keeps its config; cannot change {', '.join(changed)} "
                          f"(only {', '.join(TrainConfig.RESUMABLE)})")
    if training["step"] >= cfg.steps:
        raise ConfigError(f"{point.checkpoint} is at step {training['step']}, the run's end (steps={cfg.steps}); "
                          f"pass steps=N with N > {training['step']} to train longer")
    _check_launch(cfg)
    return cfg, point.run_dir, point


def check_new_run(run_dir: Path) -> None:
    """A new run needs an absent or empty folder; say who uses it, or how to go on with what is there."""
    if (run_dir / CONFIG).is_file() and not holder(run_dir):
        kept = "resume it" if checkpoints(run_dir) else "it saved no checkpoint; start it again"
        raise OutputExistsError(f"{run_dir} holds a run; {kept} with `gankd train --resume {run_dir}` "
                                "or choose another --out")
    check_new_dir(run_dir)


def _check_launch(cfg: TrainConfig) -> None:
    """Before any work: settings that depend on the process count under torchrun, and the logger's
    package."""
    check_available(cfg.logger)
    world = Dist.world_from_env()
    if cfg.batch % world:
        raise ConfigError(f"batch {cfg.batch} does not split evenly among {world} processes; "
                          f"use a multiple of {world}")
    per_rank = cfg.batch // world
    if cfg.architecture == "stylegan2" and per_rank % min(cfg.arch.mbstd_group, per_rank):
        raise ConfigError(f"the batch per process ({per_rank}) must be a multiple of arch.mbstd_group "
                          f"({cfg.arch.mbstd_group})")


def train(config_file: str | Path | None = None, overrides: list[str] | None = None,
          out: str | Path | None = None, resume: str | Path | None = None, defaults: dict | None = None
          ) -> TrainResult:
    """Train a GAN as configured (see gankd.config); under torchrun, on every process. The main
    process holds the run folder's lock (gankd.lock) for the whole run."""
    main = Dist.rank_from_env() == 0
    cfg, run_dir, point = resolve_run(config_file, overrides, out, resume, defaults, check_folder=main)
    with cpu_threads(cfg.threads):
        return run_training(cfg, run_dir, point)


def run_training(cfg: TrainConfig, run_dir: Path, point: ResumePoint | None) -> TrainResult:
    """The run, holding its folder: stopped by Ctrl-C, a lost launcher or a full disk, one line that
    says how to go on."""
    dist = Dist.start(cfg.device)
    try:
        with FolderLock(run_dir, "gankd train", enabled=dist.main):
            if dist.main:
                open_run_folder(run_dir, point)
            return training_loop(cfg, run_dir, point and point.checkpoint, dist)
    except (KeyboardInterrupt, RuntimeError) as err:  # RuntimeError: a collective whose peer stopped
        if isinstance(err, RuntimeError) and not launcher_gone():
            raise
        why = "the launcher (torchrun) is gone" if launcher_gone() else "interrupted"
        raise Interrupted(f"{why}; {how_to_go_on(run_dir, f'gankd train --resume {run_dir}')}") from None
    except (OutputError, OSError) as err:  # a full disk, say: one line, and how to go on once it is fixed
        problem = err if isinstance(err, OutputError) else storage_error(err, Path(err.filename or run_dir))
        if problem is err and not isinstance(err, OutputError):
            raise
        raise OutputError(f"{problem}; {how_to_go_on(run_dir, f'gankd train --resume {run_dir}')}") from None
    finally:
        dist.stop()


def open_run_folder(run_dir: Path, point: ResumePoint | None) -> None:
    """Holding the lock: check the folder again (a new run may have been started meanwhile), remove
    what a killed run left half-written, set aside checkpoints that do not load, and clear the logs
    of a run that starts again from step 0."""
    if point is None:
        if entries(run_dir):
            raise OutputExistsError(f"{run_dir} was written to by another process meanwhile; choose another --out")
        return
    count, size = remove_partial_writes(written_folders(run_dir))
    if count:
        note(f"removed {count} unfinished write{'s' * (count != 1)} ({megabytes(size)}) that an interrupted "
             f"run left in {run_dir}")
    for line in set_aside(point.broken):
        warn(f"{run_dir}: {line}")
    if point.checkpoint is None:
        for path in logs(run_dir):
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        note(f"{run_dir} has no checkpoint to go on from; starting it again from step 0")
    else:
        note(f"resuming {point.checkpoint}")


def how_to_go_on(run_dir: Path, command: str, restartable: bool | None = None) -> str:
    """After an interruption: the command that goes on with the run, from its newest checkpoint, or
    from step 0 if it saved none (`restartable`: whether `command` can; by default, whether the
    run wrote its config)."""
    found = checkpoints(run_dir) if run_dir.is_dir() else []
    if found:
        return f"go on from {found[-1][1].name} with: {command}"
    if restartable if restartable is not None else (run_dir / CONFIG).is_file():
        return f"no checkpoint was written yet; start again with: {command}"
    return "nothing was written; start again"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:80]

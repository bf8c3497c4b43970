"""`gankd train`: resolve the config, make or reopen the run folder, then run the loop.

A new run gets a new folder (an existing one is refused, never overwritten); `--resume` reopens a
run folder or one of its checkpoints with the config stored there, where only keys that do not
change the computation (steps, intervals, device) may be changed.
"""

from __future__ import annotations

import re
from pathlib import Path

from gankd.checkpoint import read_meta
from gankd.config import ConfigError, TrainConfig, resolve
from gankd.errors import Interrupted, OutputExistsError
from gankd.train.dist import Dist
from gankd.train.loop import TrainResult, training_loop
from gankd.runs import checkpoints
from gankd.train.state import resume_point


def resolve_run(config_file: str | Path | None = None, overrides: list[str] | None = None,
                out: str | Path | None = None, resume: str | Path | None = None, defaults: dict | None = None
                ) -> tuple[TrainConfig, Path, Path | None]:
    """(config, run folder, checkpoint to resume from or None), checked but with nothing written.
    `defaults` (dotted keys) sit between gankd's defaults and the config file (commands such as
    `gankd adapt` bring their own)."""
    overrides = list(overrides or [])
    if resume is None:
        cfg = resolve(config_file, overrides, base=defaults)
        run_dir = Path(out) if out else Path("runs") / _slug(f"{cfg.method}-{cfg.data}-{cfg.res}")
        if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
            raise OutputExistsError(f"{run_dir} exists; resume it with `gankd train --resume {run_dir}` "
                                    "or choose another --out")
        return cfg, run_dir, None
    if config_file is not None or out is not None:
        raise ConfigError("--resume takes the run's stored config and folder; drop --config/--out "
                          "(change steps and intervals with key=value)")
    run_dir, ckpt = resume_point(resume)
    training = read_meta(ckpt).get("training")
    if training is None:
        raise ConfigError(f"{ckpt}: not a training checkpoint")
    stored = training["config"]
    cfg = resolve(base=stored, overrides=overrides)
    before, after = resolve(base=stored).flat(), cfg.flat()
    changed = [k for k in after if after[k] != before.get(k) and k not in TrainConfig.RESUMABLE]
    if changed:
        raise ConfigError(f"a resumed run keeps its config; cannot change {', '.join(changed)} "
                          f"(only {', '.join(TrainConfig.RESUMABLE)})")
    if training["step"] >= cfg.steps:
        raise ConfigError(f"{ckpt} is at step {training['step']}, the run's end (steps={cfg.steps}); "
                          f"pass steps=N with N > {training['step']} to train longer")
    return cfg, run_dir, ckpt


def train(config_file: str | Path | None = None, overrides: list[str] | None = None,
          out: str | Path | None = None, resume: str | Path | None = None, defaults: dict | None = None
          ) -> TrainResult:
    """Train a GAN as configured (see gankd.config); under torchrun, on every process."""
    cfg, run_dir, ckpt = resolve_run(config_file, overrides, out, resume, defaults)
    dist = Dist.start(cfg.device)
    try:
        return training_loop(cfg, run_dir, ckpt, dist)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; {how_to_go_on(run_dir, f'gankd train --resume {run_dir}')}") from None
    finally:
        dist.stop()


def how_to_go_on(run_dir: Path, command: str, start_over: Path | None = None) -> str:
    """After an interruption: the command that resumes the run, or what to delete if it never saved."""
    found = checkpoints(run_dir) if run_dir.is_dir() else []
    if found:
        return f"go on from {found[-1][1].name} with: {command}"
    leftover = start_over or run_dir
    return f"no checkpoint was written yet; delete {leftover} to start again" if leftover.exists() else "start again"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:80]

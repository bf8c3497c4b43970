"""`gankd adapt`: few-shot adaptation of a source generator to a target, in one command.

    OUT/split/   the seeded n-shot split (unless --target is already a split folder)
    OUT/run/     the training run (method=..., source=..., data=the shots), evaluated every
                 eval.every steps against the held-out target images, never against the shots
    OUT/eval-step-N/  the final evaluation of the last checkpoint (table printed, metrics.json)

It is `gankd train` with few-shot defaults (`ADAPT_DEFAULTS`; a --config file and KEY=VALUE
override them) plus the split and the final evaluation; `--resume OUT` continues the run exactly and
then evaluates.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from gankd.checkpoint import read_meta
from gankd.config import ConfigError, resolve
from gankd.errors import GankdError, Interrupted
from gankd.fileio import check_new_dir
from gankd.metrics.evaluate import check_counts, evaluate, parse_metrics

METHODS = ("finetune", "freezed", "cdc", "d3t")
# Sized for a 32 px source on a CPU (the step count chosen on the flags target, docs/results-fewshot.md);
# the paper-scale presets live in configs/.
ADAPT_DEFAULTS = {"steps": 150, "batch": 8, "checkpoint_every": 50, "sample_every": 50, "eval.every": 50,
                  "eval.metrics": "kid,fid,intra_lpips,copying", "eval.n": 500}
FINAL_METRICS = "kid,fid,pr,intra_lpips,copying"


def adapt(source: str | None = None, target: str | None = None, shots: int = 10, method: str = "d3t",
          out: str | os.PathLike | None = None, config: str | None = None, settings: list[str] | None = None,
          seed: int = 0, resume: str | os.PathLike | None = None, eval_samples: int = 1000) -> dict:
    """Split, train and evaluate; returns the final evaluation's report."""
    from gankd.data.spec import open_source
    from gankd.data.splits import load_split, make_split
    from gankd.train import resolve_run, train
    from gankd.train.state import resume_point

    if resume is not None:
        out_dir = Path(resume)
        if not (out_dir / "run").is_dir():
            raise ConfigError(f"{out_dir}: not a `gankd adapt` folder (no run/ inside)")
        checkpoint = resume_point(out_dir / "run")[1]
        step, stored = read_training(checkpoint)
        if step < resolve(base=stored, overrides=settings or []).steps:
            with resumable(out_dir):
                result = train(overrides=settings or [], resume=out_dir / "run")
            checkpoint, step = result.checkpoint, result.step
        # else the training is done (its final evaluation was interrupted): evaluate it
    else:
        if not source or not target:
            raise ConfigError("gankd adapt needs --source CKPT and --target DIR|SPEC (or --resume OUT)")
        if method not in METHODS:
            raise ConfigError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
        out_dir = Path(out) if out else Path(f"adapt-{method}-{Path(target).name or 'target'}")
        check_new_dir(out_dir)
        res = read_meta(source)["config"]["resolution"]
        given_split = (Path(target) / "manifest.json").is_file()
        split = Path(target) if given_split else out_dir / "split"
        overrides = [f"data={split / 'train'}", f"res={res}", f"method={method}", f"source={source}",
                     f"seed={seed}", f"eval.ref={split}", *(settings or [])]
        resolve_run(config, overrides, out_dir / "run", defaults=ADAPT_DEFAULTS)  # bad settings fail here, early
        with resumable(out_dir):
            try:
                if not given_split:
                    make_split(open_source(target), shots, seed, split, target)
                check_counts(parse_metrics(FINAL_METRICS), len(load_split(split)[1]),
                             f"the evaluation set {split}/eval", f"; hold out more of the target, or train on all "
                             f"of it without evaluation: gankd train --data DIR method={method} source={source}")
                result = train(config, overrides, out_dir / "run", defaults=ADAPT_DEFAULTS)
            except GankdError:
                if not (out_dir / "run").exists():  # a failed start leaves nothing behind
                    shutil.rmtree(out_dir, ignore_errors=True)
                raise
        checkpoint, step = result.checkpoint, result.step
    stored = read_training(checkpoint)[1]  # the run's own evaluation setup and seed
    return evaluate(checkpoint, stored["eval"]["ref"], FINAL_METRICS, features=stored["eval"]["features"],
                    n=eval_samples, seed=stored["seed"], out=out_dir / f"eval-step-{step}")


@contextmanager
def resumable(out_dir: Path):
    """An interrupted adaptation says how to go on with `gankd adapt --resume` (not `gankd train`)."""
    from gankd.train.run import how_to_go_on

    try:
        yield
    except Interrupted:
        hint = how_to_go_on(out_dir / "run", f"gankd adapt --resume {out_dir}", start_over=out_dir)
        raise Interrupted(f"interrupted; {hint}") from None


def read_training(checkpoint: Path) -> tuple[int, dict]:
    """(step, resolved config) of a training checkpoint."""
    training = read_meta(checkpoint)["training"]
    return training["step"], training["config"]

"""`gankd adapt`: few-shot adaptation of a source generator to a target, in one command.

    OUT/adapt.json  the command's settings (source, target, method, seed, --eval-n, resolved config)
    OUT/split/   the seeded n-shot split (unless --target is already a split folder)
    OUT/run/     the training run (method=..., source=..., data=the shots), evaluated every
                 eval.every steps against the held-out target images, never against the shots
    OUT/eval-step-N/  the final evaluation of the last checkpoint (table printed, metrics.json)
    OUT/comparison.png, OUT/report.md  the shots, the source's and the adapted samples from the
                 same seeds; the picture and the scores (as `gankd demo` writes them)

It is `gankd train` with few-shot defaults (`ADAPT_DEFAULTS`; a --config file and KEY=VALUE
override them) plus the split and the final evaluation; `--resume OUT` does what is left: the split
if it was cut off, the training (exactly from its newest checkpoint, or from step 0 if it saved none),
the evaluation.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from gankd.checkpoint import read_meta
from gankd.comparison import CAPTION, comparison_picture
from gankd.config import resolve
from gankd.data.splits import MANIFEST
from gankd.devices import cpu_threads
from gankd.errors import ConfigError, GankdError, Interrupted, unknown
from gankd.fileio import atomic_write, check_new_dir
from gankd.images import save_png
from gankd.lock import FolderLock, entries
from gankd.metrics import check_counts, parse_metrics
from gankd.metrics.evaluate import evaluate
from gankd.metrics.table import READING, markdown_table
from gankd.methods import adapting_methods
from gankd.runs import ADAPT_FILE, CONFIG, PICTURE, REPORT, checkpoints

# The base protocol of every few-shot method: the literature's (rosinality's StyleGAN2 train.py, which
# CDC's train.py keeps; FreezeD's code: docs/fewshot.md has a line per setting with its source), with
# the step count sized for a 32 px source on 2 CPU cores. configs/fewshot-256.yaml is the paper-scale
# preset for a GPU.
ADAPT_DEFAULTS = {"batch": 4, "optim.g_lr": 0.002, "optim.d_lr": 0.002, "loss.r1_gamma": 10, "loss.r1_interval": 16,
                  "loss.pl_weight": 2, "loss.pl_interval": 4, "loss.style_mixing": 0.9, "mirror": True,
                  "ema.decay": 0.99778, "steps": 500, "checkpoint_every": 100, "sample_every": 100,
                  "eval.every": 100, "eval.metrics": "kid,fid,intra_lpips,copying", "eval.n": 500}
FINAL_METRICS = "kid,fid,pr,intra_lpips,copying"


def adapt(source: str | None = None, target: str | None = None, shots: int = 10, method: str = "d3t",
          out: str | os.PathLike | None = None, config: str | None = None, settings: list[str] | None = None,
          seed: int = 0, resume: str | os.PathLike | None = None, eval_samples: int | None = None) -> dict:
    """Split, train and evaluate; returns the final evaluation's report. Every setting is checked
    before any work; OUT/adapt.json keeps them, so `resume` can redo whatever part was cut off."""
    if resume is None:
        out_dir, plan = new_plan(source, target, shots, method, out, config, settings, seed, eval_samples)
    else:
        out_dir, plan = stored_plan(Path(resume), settings, eval_samples)
    with FolderLock(out_dir, "gankd adapt"), resumable(out_dir):
        atomic_write(out_dir / ADAPT_FILE, json.dumps(plan, indent=1).encode())
        try:
            split = ensure_split(plan, out_dir)
            checkpoint, step = ensure_trained(plan, out_dir, settings if resume is not None else [])
        except (GankdError, KeyboardInterrupt) as err:
            if resume is None and not isinstance(err, (Interrupted, KeyboardInterrupt)) \
                    and not (out_dir / "run").exists():
                for path in entries(out_dir):  # a failed start leaves nothing behind
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
            raise
        stored = resolve(base=read_training(checkpoint)[1])  # the run's own evaluation setup and seed
        with cpu_threads(stored.threads):  # the run's thread count, as in its own evaluations
            report = evaluate(checkpoint, str(split), FINAL_METRICS, features=stored.eval.features,
                              n=plan["eval_n"], seed=stored.seed, out=out_dir / f"eval-step-{step}",
                              noise=stored.eval.noise)
        write_summary(out_dir, plan, checkpoint, step, report)
        return report


def write_summary(out_dir: Path, plan: dict, checkpoint: Path, step: int, report: dict) -> None:
    """comparison.png (the shots, then the source's and the adapted generator's samples from the same
    seeds) and report.md (the picture and the scores), as `gankd demo` writes them for its methods."""
    generators = {"source": plan["source"], plan["method"]: checkpoint}
    save_png(out_dir / PICTURE, comparison_picture(plan["split"], generators))
    lines = [f"# gankd adapt: {plan['method']} from {plan['source']} to {plan['target']}", "",
             f"{report['training_images']} shots (`{plan['split']}/train`), {step} steps, seed {plan['seed']}; "
             f"scores of {report['samples']} samples against the {report['reference_images']} held-out images "
             f"(`{plan['split']}/eval`). {READING}", "",
             f"![{CAPTION}]({PICTURE})", "", *markdown_table({plan["method"]: report}), "",
             f"The run is in `run/` (config, commands, checkpoints, samples, metrics.jsonl), the evaluation in "
             f"`eval-step-{step}/`; `gankd report {out_dir}` writes a page with the curves."]
    atomic_write(out_dir / REPORT, ("\n".join(lines) + "\n").encode())


def new_plan(source, target, shots, method, out, config, settings, seed, eval_samples) -> tuple[Path, dict]:
    """(folder, adapt.json) of a new adaptation, every setting checked, nothing written."""
    from gankd.train import resolve_run

    if not source or not target:
        raise ConfigError("gankd adapt needs --source CKPT and --target DIR|SPEC (or --resume OUT)")
    if method not in adapting_methods(composed=True):
        raise ConfigError(unknown("few-shot method", method, adapting_methods(composed=True)))
    out_dir = Path(out) if out else Path(f"adapt-{method}-{Path(target).name or 'target'}")
    check_new_dir(out_dir)
    eval_n = 1000 if eval_samples is None else eval_samples
    check_eval_n(eval_n)
    res = read_meta(source)["config"]["resolution"]
    given_split = (Path(target) / MANIFEST).is_file()
    split = Path(target) if given_split else out_dir / "split"
    overrides = [f"data={split / 'train'}", f"res={res}", f"method={method}", f"source={source}",
                 f"seed={seed}", f"eval.ref={split}", *(settings or [])]
    cfg, _, _ = resolve_run(config, overrides, out_dir / "run", defaults=ADAPT_DEFAULTS)
    return out_dir, {"source": source, "target": target, "shots": shots, "method": method, "seed": seed,
                     "split": str(split), "split_given": given_split, "eval_n": eval_n, "config": cfg.to_dict()}


def stored_plan(out_dir: Path, settings: list[str] | None, eval_samples: int | None) -> tuple[Path, dict]:
    """The adapt.json of `out_dir`, with settings added (they reach the resumed training) and
    --eval-n replaced when given."""
    try:
        plan = json.loads((out_dir / ADAPT_FILE).read_text())
    except FileNotFoundError:
        if (out_dir / "run").is_dir():
            raise ConfigError(f"{out_dir}: made by gankd < 0.7 (no {ADAPT_FILE}); go on with "
                              f"`gankd train --resume {out_dir / 'run'}`, then `gankd evaluate`") from None
        raise ConfigError(f"{out_dir}: not a `gankd adapt` folder (no {ADAPT_FILE})") from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"{out_dir / ADAPT_FILE}: unreadable ({err})") from None
    if eval_samples is not None:
        check_eval_n(eval_samples)
        plan["eval_n"] = eval_samples
    return out_dir, plan


def check_eval_n(n: int) -> None:
    check_counts(parse_metrics(FINAL_METRICS), n, "the final evaluation (--eval-n)")


def ensure_split(plan: dict, out_dir: Path) -> Path:
    """The split to train on: the given one, the one made before, or a new one (again, if it was cut
    off while written: its manifest comes last)."""
    from gankd.data.dataset import check_sizes
    from gankd.data.spec import open_source
    from gankd.data.splits import load_split, make_split

    split = Path(plan["split"])
    if not plan["split_given"] and not (split / MANIFEST).is_file():
        shutil.rmtree(split, ignore_errors=True)
        target, cfg = open_source(plan["target"]), plan["config"]
        if not (target.upscale_ok if cfg["upscale"] is None else cfg["upscale"]):  # refused as training would
            check_sizes(target, cfg["res"])
        make_split(target, plan["shots"], plan["seed"], split, plan["target"])
    method, source = plan["method"], plan["source"]
    check_counts(parse_metrics(FINAL_METRICS), len(load_split(split)[1]),
                 f"the evaluation set {split}/eval", f"; hold out more of the target, or train on all "
                 f"of it without evaluation: gankd train --data DIR method={method} source={source}")
    return split


def ensure_trained(plan: dict, out_dir: Path, settings: list[str]) -> tuple[Path, int]:
    """(checkpoint, step) at the end of training: trained now, resumed, or found done."""
    from gankd.train import train
    from gankd.train.state import resume_point

    run = out_dir / "run"
    if not ((run / CONFIG).is_file() or checkpoints(run)):
        result = train(overrides=settings, out=run, defaults=plan["config"])
        return result.checkpoint, result.step
    point = resume_point(run)
    if point.checkpoint is not None:
        step, stored = read_training(point.checkpoint)
        if step >= resolve(base=stored, overrides=settings).steps:  # done; its evaluation was cut off
            return point.checkpoint, step
    result = train(overrides=settings, resume=run)
    return result.checkpoint, result.step


@contextmanager
def resumable(out_dir: Path):
    """An interrupted adaptation says how to go on with `gankd adapt --resume` (not `gankd train`)."""
    from gankd.train.run import how_to_go_on

    try:
        yield
    except (Interrupted, KeyboardInterrupt):
        hint = how_to_go_on(out_dir / "run", f"gankd adapt --resume {out_dir}", restartable=True)
        raise Interrupted(f"interrupted; {hint}") from None


def read_training(checkpoint: Path) -> tuple[int, dict]:
    """(step, resolved config) of a training checkpoint."""
    training = read_meta(checkpoint)["training"]
    return training["step"], training["config"]

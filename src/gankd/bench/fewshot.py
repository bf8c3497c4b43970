"""`gankd bench fewshot`: every method on every target with several seeds, one protocol.

Targets are built-in emoji groups held out of the shipped source model's training data. Each gets
one fixed split (seed 0, `shots` images; the rest are the evaluation set), checksummed and
verified before every use; training seeds vary, splits do not. Every run is `gankd adapt` with the
same settings, evaluated the same way; a finished run is never redone and an interrupted one is
resumed, so an interrupted bench goes on where it stopped (OUT/bench.json holds the protocol that a
resumed bench must share). Outputs in OUT/: results.md and results.csv (mean ± std over seeds per
metric; each target's first row is the unadapted source, evaluated the same way), paired.csv (every
pair of methods over the (target, seed) runs: Wilcoxon signed-rank and sign tests), one picture per
target (the shots, then the source's and each method's samples from the same latents),
commands.txt (the equivalent `gankd adapt` and `gankd evaluate` commands), and runs/, splits/.
Settings apply to every run, except `<method>.<option>` ones, which apply to that method's runs
only.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

from gankd.bench.common import (BENCH_FILE, bench_folder, check_counts, open_bench, paired_tests, parse_list, run_all,
                                settings_for, summarize, write_tables)
from gankd.errors import GankdError

TARGETS = {  # name -> spec; all held out of builtin:emoji32 (docs/models.md)
    "animals": "emoji:group=animals,tone=none",
    "food": "emoji:group=food,tone=none",
    "smileys": "emoji:group=smileys,tone=none",
    "flags": "emoji:group=flags,tone=none",
}
NOT_BY_DEFAULT = {"flags": "builtin:emoji32 saw the 97 subdivision flags (labelled `other`, docs/data.md)"}
REPORTED = ("kid", "fid", "precision", "recall", "intra_lpips", "copying")  # copying: C_T
PAIRED = ("kid", "fid")  # the metrics every pair of methods is tested on (lower is better)
# Every run's, before the KEY=VALUE settings: the default before precision=auto, which the published results used
# (kept out of bench.json, so that bench folders made before it still resume).
PINNED = ("precision=fp32",)


def fixed_split(target: str, shots: int, folder: Path) -> Path:
    """The target's split, made once (seed 0) and verified against its manifest every time."""
    from gankd.data.spec import open_source
    from gankd.data.splits import make_split, verify_split

    if not folder.exists():
        make_split(open_source(TARGETS[target]), shots, 0, folder, TARGETS[target])
    manifest = verify_split(folder)
    if manifest["shots"] != shots:
        raise GankdError(f"{folder} holds a {manifest['shots']}-shot split, not {shots}; use another --out")
    return folder


def evaluate_source(source: str, split: Path, out: Path, adapted: Path, eval_samples: int, commands: list[str]) -> dict:
    """The source itself, evaluated as the adapted runs are (their features, samples and metrics)."""
    from gankd.adapt import FINAL_METRICS
    from gankd.checkpoint import read_meta
    from gankd.config import resolve
    from gankd.metrics.evaluate import evaluate

    evaluation = resolve(base=read_meta(adapted)["training"]["config"]).eval
    commands.append(f"gankd evaluate {source} --ref {split} --metrics {FINAL_METRICS} --features "
                    f"{evaluation.features} --noise {evaluation.noise} --n {eval_samples} --out {out}")
    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    return evaluate(source, str(split), FINAL_METRICS, features=evaluation.features, n=eval_samples, out=out,
                    noise=evaluation.noise)


def run_once(run: Path, start, eval_samples: int) -> dict:
    """A run's final report: read back when done, else `gankd adapt --resume` (which redoes what
    was cut off), or started (by `start`) if it never got as far as its adapt.json."""
    from gankd.adapt import ADAPT_FILE, adapt

    done = sorted(run.glob("eval-step-*/metrics.json"))
    if done:
        return json.loads(done[-1].read_text())
    if (run / ADAPT_FILE).is_file():
        return adapt(resume=run, eval_samples=eval_samples)
    return start()


def bench_fewshot(methods: str | None = None, targets: str | None = None, seeds: int = 5,
                  source: str = "builtin:emoji32", shots: int = 10, out: str | os.PathLike = "bench-fewshot",
                  settings: list[str] | None = None, eval_samples: int = 1000, threads: int | None = None,
                  jobs: int = 1) -> Path:
    """`jobs` runs at a time, each in its own process; a new bench's default threads share the cores
    among them. Results do not depend on `jobs` (each run is a function of its seed and threads)."""
    import torch

    from gankd.methods import adapting_methods

    methods = methods or ",".join(adapting_methods())  # None: every method that adapts a source
    targets = targets or ",".join(t for t in TARGETS if t not in NOT_BY_DEFAULT)
    method_list, target_list = parse_list(methods, adapting_methods(composed=True), "method"), parse_list(targets, TARGETS, "target")
    check_counts(seeds, threads, jobs, eval_samples)
    out = Path(out)
    with bench_folder(out, "gankd bench fewshot"):
        settings = ["eval.every=0", *(settings or [])]  # each run is evaluated once, at its end
        threads = open_bench(out, {"source": source, "shots": shots, "settings": settings,
                                   "eval_samples": eval_samples}, threads or max(1, torch.get_num_threads() // jobs))
        return run_bench(out, method_list, target_list, seeds, source, shots,
                         [f"threads={threads}", *PINNED, *settings], eval_samples, jobs, threads)


def adapt_run(run: Path, source: str, split: Path, shots: int, method: str, settings: list[str], seed: int,
              eval_samples: int) -> dict:
    """One bench run's final report (top-level, so that a worker process can run it)."""
    from gankd.adapt import adapt

    return run_once(run, lambda: adapt(source, str(split), shots, method, run, None, settings, seed, None,
                                       eval_samples), eval_samples)


def run_bench(out: Path, method_list: list[str], target_list: list[str], seeds: int, source: str, shots: int,
              settings: list[str], eval_samples: int, jobs: int, threads: int) -> Path:
    """Every (target, method, seed) run in a locked bench folder, `jobs` at a time, then the tables
    and pictures."""
    from gankd.comparison import comparison_picture
    from gankd.images import save_png

    commands, runs = [], {}
    splits = {target: fixed_split(target, shots, out / "splits" / target) for target in target_list}
    for target, method in itertools.product(target_list, method_list):
        own = settings_for(method, settings, method_list)
        for seed in range(seeds):
            run = out / "runs" / target / method / f"seed{seed}"
            commands.append(f"gankd adapt --source {source} --target {splits[target]} --method {method} --seed {seed} "
                            f"--eval-n {eval_samples} --out {run} {' '.join(own)}".rstrip())
            runs[(target, method, seed)] = (run, source, splits[target], shots, method, own, seed, eval_samples)
    done = run_all(adapt_run, runs, jobs, threads)
    reports, pictures = {}, {}
    for target in target_list:
        reports[(target, "source")] = []  # the unadapted source: the row every method must beat, first
        for method in method_list:
            reports[(target, method)] = [done[(target, method, seed)] for seed in range(seeds)]
            pictures.setdefault(target, {"source": source})[method] = Path(done[(target, method, 0)]["target_path"])
        reports[(target, "source")].append(evaluate_source(source, splits[target], out / "runs" / target / "source",
                                                           pictures[target][method_list[0]], eval_samples, commands))
    rows, tests = summarize(reports, REPORTED), paired_tests(reports, method_list, PAIRED)
    first = reports[(target_list[0], method_list[0])][0]
    labels = {m: first["metrics"][m]["id"] for m in REPORTED if m in first["metrics"]}
    protocol = json.loads((out / BENCH_FILE).read_text())
    header = (f"Source {protocol['source']}, {protocol['shots']} shots, {protocol['eval_samples']} samples per "
              f"evaluation, {protocol['threads']} CPU threads per run; settings: {' '.join(protocol['settings'])}")
    write_tables(out, header, rows, tests, labels, REPORTED, commands)
    for target, checkpoints in pictures.items():
        save_png(out / f"{target}.png", comparison_picture(out / "splits" / target, checkpoints))
    return out

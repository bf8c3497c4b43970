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

import csv
import io
import itertools
import json
import os
import statistics
from pathlib import Path

import numpy as np

from gankd.errors import GankdError, unknown

TARGETS = {  # name -> spec; all held out of builtin:emoji32 (docs/models.md)
    "animals": "emoji:group=animals,tone=none",
    "food": "emoji:group=food,tone=none",
    "smileys": "emoji:group=smileys,tone=none",
    "flags": "emoji:group=flags,tone=none",
}
NOT_BY_DEFAULT = {"flags": "builtin:emoji32 saw the 97 subdivision flags (labelled `other`, docs/data.md)"}
BENCH_FILE = "bench.json"  # the protocol every run of a bench folder shares
REPORTED = ("kid", "fid", "precision", "recall", "intra_lpips", "copying")  # copying: C_T
PAIRED = ("kid", "fid")  # the metrics every pair of methods is tested on (lower is better)


def parse_list(text: str, allowed, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad or not items:
        raise GankdError(unknown(what, bad[0], allowed) if bad else f"no {what} given")
    return items


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


def summarize(reports: dict[tuple[str, str], list[dict]]) -> list[dict]:
    """One row per (target, method): mean and sample standard deviation over seeds of each metric."""
    rows = []
    for (target, method), runs in reports.items():
        row = {"target": target, "method": method, "seeds": len(runs), "features": runs[0].get("features"),
               "noise": runs[0].get("noise")}  # what every number of the row was computed with
        for metric in REPORTED:
            values = [r["metrics"][metric]["value"] for r in runs if metric in r["metrics"]]
            values = [v for v in values if v is not None and np.isfinite(v)]
            row[metric] = statistics.fmean(values) if values else float("nan")
            row[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append(row)
    return rows


def paired_tests(reports: dict[tuple[str, str], list[dict]], methods: list[str]) -> list[dict]:
    """Every pair of methods, per metric of PAIRED, over the (target, seed) runs both have: how often
    the first scores lower (better), the mean difference, and two-sided p-values of the Wilcoxon
    signed-rank test and the sign test (ties dropped)."""
    from scipy import stats

    rows = []
    for a, b in itertools.combinations(methods, 2):
        first = next(runs[0] for (target, method), runs in reports.items() if method == a)
        for metric in PAIRED:
            diffs = [ra["metrics"][metric]["value"] - rb["metrics"][metric]["value"]
                     for (target, method), runs in reports.items() if method == a and (target, b) in reports
                     for ra, rb in zip(runs, reports[(target, b)])]
            nonzero = [d for d in diffs if d != 0]
            lower = sum(d < 0 for d in nonzero)
            rows.append({"a": a, "b": b, "metric": metric, "features": first.get("features"),
                         "noise": first.get("noise"), "pairs": len(diffs), "a_lower": lower,
                         "mean_diff": statistics.fmean(diffs) if diffs else float("nan"),
                         "wilcoxon_p": float(stats.wilcoxon(nonzero).pvalue) if nonzero else 1.0,
                         "sign_p": float(stats.binomtest(lower, len(nonzero)).pvalue) if nonzero else 1.0})
    return rows


def markdown(rows: list[dict], tests: list[dict], labels: dict[str, str], protocol: dict) -> str:
    """results.md: the protocol line, the table (mean ± std over seeds), the paired tests."""
    lines = [f"Source {protocol['source']}, {protocol['shots']} shots, {protocol['eval_samples']} samples per "
             f"evaluation, {protocol['threads']} CPU threads per run; settings: {' '.join(protocol['settings'])}", "",
             "| target | method | seeds | " + " | ".join(labels.get(m, m) for m in REPORTED) + " |",
             "|" + " --- |" * (3 + len(REPORTED))]
    for row in rows:
        cells = [f"{row[m]:.4f} ± {row[m + '_std']:.4f}" for m in REPORTED]
        lines.append(f"| {row['target']} | {row['method']} | {row['seeds']} | " + " | ".join(cells) + " |")
    lines += ["", "Paired over (target, seed): A lower = how often A's value is below B's (better).", "",
              "| A | B | metric | pairs | A lower | mean A - B | Wilcoxon p | sign-test p |",
              "|" + " --- |" * 8]
    for t in tests:
        lines.append(f"| {t['a']} | {t['b']} | {labels.get(t['metric'], t['metric'])} | {t['pairs']} | {t['a_lower']} | "
                     f"{t['mean_diff']:+.4f} | {t['wilcoxon_p']:.3g} | {t['sign_p']:.3g} |")
    return "\n".join(lines) + "\n"


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


def open_bench(out: Path, protocol: dict, threads: int | None) -> int:
    """Start a bench folder, or reopen one made with the same protocol (methods, targets and seeds
    may grow); any other non-empty folder is refused. Returns the CPU thread count every run uses:
    the folder's own, so that a resumed bench computes what an uninterrupted one would."""
    import torch

    from gankd.fileio import atomic_write

    file = out / BENCH_FILE
    if not file.is_file():
        protocol = {**protocol, "threads": threads or torch.get_num_threads()}
        atomic_write(out / BENCH_FILE, json.dumps(protocol, indent=1).encode())
        return protocol["threads"]
    stored = json.loads(file.read_text())
    for key, value in {**protocol, "threads": threads or stored.get("threads")}.items():
        if stored.get(key) != value:
            raise GankdError(f"{out} is a bench run with {key} {stored.get(key)!r}, not {value!r}; "
                             "give the same, or another --out")
    return stored["threads"]


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


def settings_for(method: str, settings: list[str], methods) -> list[str]:
    """The settings that apply to `method`: shared ones, and `<method>.<option>` of its own only."""
    return [s for s in settings if s.split(".", 1)[0] not in methods or s.split(".", 1)[0] == method]


def bench_fewshot(methods: str | None = None, targets: str | None = None, seeds: int = 5,
                  source: str = "builtin:emoji32", shots: int = 10, out: str | os.PathLike = "bench-fewshot",
                  settings: list[str] | None = None, eval_samples: int = 1000, threads: int | None = None,
                  jobs: int = 1) -> Path:
    """`jobs` runs at a time, each in its own process; a new bench's default threads share the cores
    among them. Results do not depend on `jobs` (each run is a function of its seed and threads)."""
    import torch

    from gankd.adapt import check_eval_n
    from gankd.fileio import check_new_dir
    from gankd.lock import FolderLock
    from gankd.methods import adapting_methods

    methods = methods or ",".join(adapting_methods())  # None: every method that adapts a source
    targets = targets or ",".join(t for t in TARGETS if t not in NOT_BY_DEFAULT)
    method_list, target_list = parse_list(methods, adapting_methods(), "method"), parse_list(targets, TARGETS, "target")
    if seeds < 1:
        raise GankdError("--seeds must be at least 1")
    if threads is not None and threads < 1:
        raise GankdError("--threads must be at least 1")
    if jobs < 1:
        raise GankdError("--jobs must be at least 1")
    check_eval_n(eval_samples)
    out = Path(out)
    if not (out / BENCH_FILE).is_file():
        check_new_dir(out)
    with FolderLock(out, "gankd bench fewshot"):
        settings = ["eval.every=0", *(settings or [])]  # each run is evaluated once, at its end
        threads = open_bench(out, {"source": source, "shots": shots, "settings": settings,
                                   "eval_samples": eval_samples}, threads or max(1, torch.get_num_threads() // jobs))
        return run_bench(out, method_list, target_list, seeds, source, shots, [f"threads={threads}", *settings],
                         eval_samples, jobs)


def adapt_run(run: Path, source: str, split: Path, shots: int, method: str, settings: list[str], seed: int,
              eval_samples: int) -> dict:
    """One bench run's final report (top-level, so that a worker process can run it)."""
    from gankd.adapt import adapt

    return run_once(run, lambda: adapt(source, str(split), shots, method, run, None, settings, seed, None,
                                       eval_samples), eval_samples)


def run_bench(out: Path, method_list: list[str], target_list: list[str], seeds: int, source: str, shots: int,
              settings: list[str], eval_samples: int, jobs: int = 1) -> Path:
    """Every (target, method, seed) run in a locked bench folder, `jobs` at a time, then the tables
    and pictures."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from gankd.comparison import comparison_picture
    from gankd.methods import RECIPES
    from gankd.fileio import atomic_write
    from gankd.images import save_png

    commands, runs = [], {}
    splits = {target: fixed_split(target, shots, out / "splits" / target) for target in target_list}
    for target, method in itertools.product(target_list, method_list):
        own = settings_for(method, settings, RECIPES)
        for seed in range(seeds):
            run = out / "runs" / target / method / f"seed{seed}"
            commands.append(f"gankd adapt --source {source} --target {splits[target]} --method {method} --seed {seed} "
                            f"--eval-n {eval_samples} --out {run} {' '.join(own)}".rstrip())
            runs[(target, method, seed)] = (run, source, splits[target], shots, method, own, seed, eval_samples)
    if jobs == 1:
        done = {key: adapt_run(*args) for key, args in runs.items()}
    else:  # spawned workers: no forked torch state; each run sets its own thread count
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {key: pool.submit(adapt_run, *args) for key, args in runs.items()}
            done = {key: future.result() for key, future in futures.items()}
    reports, pictures = {}, {}
    for target in target_list:
        reports[(target, "source")] = []  # the unadapted source: the row every method must beat, first
        for method in method_list:
            reports[(target, method)] = [done[(target, method, seed)] for seed in range(seeds)]
            pictures.setdefault(target, {"source": source})[method] = Path(done[(target, method, 0)]["target_path"])
        reports[(target, "source")].append(evaluate_source(source, splits[target], out / "runs" / target / "source",
                                                           pictures[target][method_list[0]], eval_samples, commands))
    rows, tests = summarize(reports), paired_tests(reports, method_list)
    first = reports[(target_list[0], method_list[0])][0]
    labels = {m: first["metrics"][m]["id"] for m in REPORTED if m in first["metrics"]}
    protocol = json.loads((out / BENCH_FILE).read_text())
    atomic_write(out / "results.md", markdown(rows, tests, labels, protocol).encode())
    for name, table in (("results.csv", rows), ("paired.csv", tests)):
        if not table:
            continue
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
        atomic_write(out / name, text.getvalue().encode())
    atomic_write(out / "commands.txt", ("\n".join(commands) + "\n").encode())
    for target, checkpoints in pictures.items():
        save_png(out / f"{target}.png", comparison_picture(out / "splits" / target, checkpoints))
    return out

"""What every bench shares: its folder and protocol (`bench.json`), runs in parallel processes,
tables (mean ± std over seeds), paired tests between rows, and the CSV/markdown files.

A bench's results are keyed by (target, row): the data set a row is measured on and the method (or
method variant) of the row; each holds one report per seed, `{"metrics": {name: {"value"}}, "features",
"noise"}`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gankd.errors import GankdError, unknown

BENCH_FILE = "bench.json"  # the protocol every run of a bench folder shares


def parse_list(text: str, allowed, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad or not items:
        raise GankdError(unknown(what, bad[0], allowed) if bad else f"no {what} given")
    return items


def check_counts(seeds: int, threads: int | None, jobs: int, eval_samples: int) -> None:
    from gankd.adapt import check_eval_n

    if seeds < 1:
        raise GankdError("--seeds must be at least 1")
    if threads is not None and threads < 1:
        raise GankdError("--threads must be at least 1")
    if jobs < 1:
        raise GankdError("--jobs must be at least 1")
    check_eval_n(eval_samples)


@contextlib.contextmanager
def bench_folder(out: Path, command: str):
    """Hold a bench folder: a new (absent or empty) one, or a bench's own to resume."""
    from gankd.fileio import check_new_dir
    from gankd.lock import FolderLock

    if not (out / BENCH_FILE).is_file():
        check_new_dir(out)
    with FolderLock(out, command):
        yield


def settings_for(method: str, settings: list[str], methods: list[str]) -> list[str]:
    """The settings that apply to `method` among a bench's `methods`: shared ones, and the options
    of its own sections only (`cdc.*` for cdc and cdc+dip, `dip.*` for methods with +dip)."""
    from gankd.methods import recipe_class

    sections = {section for name in methods for section in recipe_class(name).option_sections()}
    own = recipe_class(method).option_sections()
    return [s for s in settings if s.split(".", 1)[0] not in sections or s.split(".", 1)[0] in own]


def open_bench(out: Path, protocol: dict, threads: int | None) -> int:
    """Start a bench folder, or reopen one made with the same protocol (rows, targets and seeds
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


def run_all(work: Callable, runs: dict, jobs: int, threads: int) -> dict:
    """{key: work(*args)} for every key of `runs`, `jobs` at a time in spawned processes (no forked
    torch state), each with the bench's pinned thread count for all its work (training, and the
    evaluations around it). `work` must be a module-level function."""
    if jobs == 1:
        from gankd.devices import cpu_threads

        with cpu_threads(threads):
            return {key: work(*args) for key, args in runs.items()}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import torch

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=torch.set_num_threads, initargs=(threads,)) as pool:
        futures = {key: pool.submit(work, *args) for key, args in runs.items()}
        return {key: future.result() for key, future in futures.items()}


def trained(run: Path, settings: list[str]):
    """The resolved config of a `gankd train` run of a bench, after making sure it reached its last
    step: started, resumed exactly where it stopped, or found done. Runs in a bench's worker processes."""
    from gankd.config import resolve
    from gankd.runs import CONFIG, checkpoints
    from gankd.train import train

    cfg = resolve(overrides=settings)
    found = checkpoints(run) if run.exists() else []
    if (run / CONFIG).is_file() and (not found or found[-1][0] < cfg.steps):
        train(resume=run)
    elif not (run / CONFIG).is_file():
        train(overrides=settings, out=run)
    return cfg


def summarize(reports: dict[tuple[str, str], list[dict]], metrics: tuple[str, ...]) -> list[dict]:
    """One row per (target, method): mean and sample standard deviation over seeds of each metric."""
    rows = []
    for (target, method), runs in reports.items():
        row = {"target": target, "method": method, "seeds": len(runs), "features": runs[0].get("features"),
               "noise": runs[0].get("noise")}  # what every number of the row was computed with
        for metric in metrics:
            values = [r["metrics"][metric]["value"] for r in runs if metric in r["metrics"]]
            values = [v for v in values if v is not None and np.isfinite(v)]
            row[metric] = statistics.fmean(values) if values else float("nan")
            row[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append(row)
    return rows


def paired_tests(reports: dict[tuple[str, str], list[dict]], methods: list[str], metrics: tuple[str, ...]) -> list[dict]:
    """Every pair of methods, per metric (lower is better), over the (target, seed) runs both have:
    how often the first scores lower, the mean difference, and two-sided p-values of the Wilcoxon
    signed-rank test and the sign test (ties dropped)."""
    from scipy import stats

    rows = []
    for a, b in itertools.combinations(methods, 2):
        first = next(runs[0] for (target, method), runs in reports.items() if method == a)
        for metric in metrics:
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


def markdown(header: str, rows: list[dict], tests: list[dict], labels: dict[str, str], metrics: tuple[str, ...]) -> str:
    """results.md: the protocol line, the table (mean ± std over seeds), the paired tests."""
    lines = [header, "", "| target | method | seeds | " + " | ".join(labels.get(m, m) for m in metrics) + " |",
             "|" + " --- |" * (3 + len(metrics))]
    for row in rows:
        cells = [f"{row[m]:.4f} ± {row[m + '_std']:.4f}" for m in metrics]
        lines.append(f"| {row['target']} | {row['method']} | {row['seeds']} | " + " | ".join(cells) + " |")
    lines += ["", "Paired over (target, seed): A lower = how often A's value is below B's (better).", "",
              "| A | B | metric | pairs | A lower | mean A - B | Wilcoxon p | sign-test p |",
              "|" + " --- |" * 8]
    for t in tests:
        lines.append(f"| {t['a']} | {t['b']} | {labels.get(t['metric'], t['metric'])} | {t['pairs']} | {t['a_lower']} | "
                     f"{t['mean_diff']:+.4f} | {t['wilcoxon_p']:.3g} | {t['sign_p']:.3g} |")
    return "\n".join(lines) + "\n"


def write_tables(out: Path, header: str, rows: list[dict], tests: list[dict], labels: dict[str, str],
                 metrics: tuple[str, ...], commands: list[str]) -> None:
    """results.md, results.csv, paired.csv and commands.txt in `out`."""
    from gankd.fileio import atomic_write

    atomic_write(out / "results.md", markdown(header, rows, tests, labels, metrics).encode())
    for name, table in (("results.csv", rows), ("paired.csv", tests)):
        if not table:
            continue
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
        atomic_write(out / name, text.getvalue().encode())
    atomic_write(out / "commands.txt", ("\n".join(commands) + "\n").encode())

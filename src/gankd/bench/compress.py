"""`gankd bench compress`: what distillation buys when a translation model is made thinner.

Teachers are trained translation models named by task (`--teachers edges2emoji=RUN,tones=RUN`);
each student is `gankd distill --teacher RUN --width W --method ROW` with the bench's student
settings (`STUDENT`, sized for 2 CPU cores: batch 4, 1500 steps) for every width, row (`ROWS`:
none, the student alone, then each distiller) and seed. Every model, the teacher too, is scored as
`gankd evaluate MODEL --ref TASK` scores it: its task's test inputs translated, FID and KID
(domain features) against the test B images, and L1, PSNR, SSIM and the domain perceptual
distance against each input's ground truth. The speed table gives, per generator width,
parameters and multiply-accumulates (torch.utils.flop_counter, batch 1), CPU latency at batch 1
(median of 50 forwards after 5 warm-up ones), images/s at batch 16 and the memory the generator
adds to a fresh process that loads it and translates (peak resident memory above the process's after
its imports), each measured alone with the bench's thread count. A finished run is read back, an interrupted one resumed.
Outputs in OUT/: results.md (scores, paired tests, speed), results.csv, paired.csv, speed.csv,
commands.txt, one picture per task (rows: test inputs, ground truth, the teacher's outputs, each
distiller's student at the first width, seed 0), runs/, evals/, teachers.json.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

from gankd.bench.common import (BENCH_FILE, bench_folder, check_counts, open_bench, paired_tests, parse_list, run_all,
                                summarize, trained, write_tables)
from gankd.errors import GankdError
from gankd.methods.distill import DISTILLERS

REPORTED = ("fid", "kid", "l1", "psnr", "ssim", "lpips")
PAIRED = ("fid", "l1", "lpips")  # lower is better (PSNR and SSIM are not paired-tested: higher is better)
STUDENT = ("batch=4", "steps=1500", "log_every=50", "sample_every=100000", "checkpoint_every=250", "keep=1",
           "precision=fp32")  # fp32: the default before precision=auto, which the published results used
ROWS = DISTILLERS
PICTURE_INPUTS = 8
TEACHERS_FILE = "teachers.json"


def parse_teachers(text: str) -> dict[str, str]:
    """{task name: teacher run or checkpoint} from "NAME=PATH,NAME=PATH"."""
    from gankd.runs import checkpoint_of

    teachers = {}
    for item in (t.strip() for t in text.split(",") if t.strip()):
        name, eq, path = item.partition("=")
        if not eq or not name or not path:
            raise GankdError(f"--teachers: give NAME=RUN items separated by commas, not {item!r}")
        if checkpoint_of(path) is None:
            raise GankdError(f"--teachers {name}: {path} is not a checkpoint or run folder")
        teachers[name] = str(Path(checkpoint_of(path)).resolve())
    if not teachers:
        raise GankdError("--teachers: give at least one NAME=RUN")
    return teachers


def task_of(teacher: str) -> str:
    from gankd.checkpoint import read_meta

    return read_meta(teacher)["training"]["config"]["data"]


def scored(model: str, task: str, folder: Path) -> dict:
    """A model's scores on its task (read back from `folder` when there)."""
    from gankd.metrics.evaluate import evaluate

    file = folder / "metrics.json"
    if not file.is_file():
        evaluate(model, task, ",".join(REPORTED), out=folder)
    report = json.loads(file.read_text())
    metrics = report["metrics"]
    return {"features": metrics["fid"]["id"].partition("[")[2].rstrip("]"), "noise": None, "checkpoint": model,
            "metrics": {m: {"value": metrics[m]["value"], "id": metrics[m]["id"]} for m in REPORTED}}


def student_run(run: Path, settings: list[str], task: str, evals: Path) -> dict:
    """A student trained (resumed, or read back when done) and scored. Top-level for worker processes."""
    from gankd.runs import checkpoints

    trained(run, settings)
    return scored(str(checkpoints(run)[-1][1]), task, evals)


def speed(file: str, threads: int) -> dict:
    """Size and CPU speed of a generator saved by `saved_generator`, in its deployable form
    (`export.deployable`). Top-level: the bench runs it alone in a fresh process, whose memory then
    holds nothing but torch, the generator and its activations: the peak resident memory above the
    process's after its imports is the model's."""
    import resource
    import statistics
    import time

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from gankd.export import deployable
    from gankd.nets import TranslationConfig, Translator

    torch.set_num_threads(threads)
    start_rss = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    saved = torch.load(file, weights_only=True)
    G = Translator(TranslationConfig.from_dict(saved["config"]))
    G.load_state_dict(saved["state"])
    G, cfg = deployable(G), G.cfg
    one = torch.zeros(1, cfg.in_channels, cfg.resolution, cfg.resolution)
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            G(one)
        times = []
        for _ in range(55):
            begin = time.perf_counter()
            G(one)
            times.append(time.perf_counter() - begin)
        batch = one.expand(16, -1, -1, -1).contiguous()
        G(batch)
        begin = time.perf_counter()
        for _ in range(5):
            G(batch)
        per_second = 80 / (time.perf_counter() - begin)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"ngf": cfg.ngf, "generator": cfg.generator, "parameters": sum(p.numel() for p in G.parameters()),
            "macs": counter.get_total_flops() // 2, "latency_ms": 1000 * statistics.median(times[5:]),
            "images_per_s": per_second, "memory_mb": peak - start_rss, "threads": threads}


def saved_generator(model: str, file: Path) -> str:
    """The A -> B generator of `model` alone (config and weights), for `speed`."""
    import torch

    from gankd.checkpoint import load_checkpoint

    ckpt = load_checkpoint(model)
    G = ckpt.network("G_AB" if "G_AB" in ckpt.roles else "G")
    torch.save({"config": G.cfg.to_dict(), "state": G.state_dict()}, file)
    return str(file)


def bench_compress(teachers: str, widths: str = "16", rows: str | None = None, seeds: int = 3,
                   out: str | os.PathLike = "bench-compress", settings: list[str] | None = None,
                   threads: int | None = None, jobs: int = 1) -> Path:
    """Every (task, width, row, seed) student, `jobs` at a time in their own processes; then the
    scores, the speed table and the pictures."""
    import torch

    teacher_of = parse_teachers(teachers)
    try:
        width_list = [int(w) for w in widths.split(",") if w.strip()]
    except ValueError:
        raise GankdError(f"--widths: give whole numbers separated by commas, not {widths!r}") from None
    if not width_list or min(width_list) < 1:
        raise GankdError("--widths: give one width or more, each at least 1")
    row_list = parse_list(rows or ",".join(ROWS), ROWS, "row")
    check_counts(seeds, threads, jobs, 1000)
    out = Path(out)
    with bench_folder(out, "gankd bench compress"):
        extra = list(settings or [])
        threads = open_bench(out, {"settings": extra}, threads or max(1, torch.get_num_threads() // jobs))
        keep_teachers(out, teacher_of)
        return run_bench(out, teacher_of, width_list, row_list, seeds, extra, threads, jobs)


def keep_teachers(out: Path, teacher_of: dict[str, str]) -> None:
    """OUT/teachers.json: each task's teacher; a bench folder gains tasks, but a task keeps its teacher."""
    from gankd.fileio import atomic_write

    file = out / TEACHERS_FILE
    known = json.loads(file.read_text()) if file.is_file() else {}
    for name, teacher in teacher_of.items():
        if known.get(name, teacher) != teacher:
            raise GankdError(f"{out}: task {name} was benched with the teacher {known[name]}, not {teacher}; give that "
                             "one, another task name, or another --out")
    atomic_write(file, json.dumps({**known, **teacher_of}, indent=1).encode())


def run_bench(out: Path, teacher_of: dict[str, str], width_list: list[int], row_list: list[str], seeds: int,
              extra: list[str], threads: int, jobs: int) -> Path:
    from gankd.distill import student_settings
    from gankd.fileio import atomic_write

    task = {name: task_of(teacher) for name, teacher in teacher_of.items()}
    runs, commands = {}, []
    for name, width, row in itertools.product(teacher_of, width_list, row_list):
        for seed in range(seeds):
            where = Path(name) / f"w{width}" / row / f"seed{seed}"
            settings = [*student_settings(teacher_of[name], width, row), *STUDENT, f"seed={seed}", f"threads={threads}",
                        *extra]
            commands.append(f"gankd train --out {out / 'runs' / where} " + " ".join(settings))
            runs[(name, f"{row} w{width}", seed)] = (out / "runs" / where, settings, task[name], out / "evals" / where)
    done = run_all(student_run, runs, jobs, threads)
    reports = {(name, "teacher"): [scored(teacher, task[name], out / "evals" / name / "teacher")]
               for name, teacher in teacher_of.items()}
    methods = [f"{row} w{width}" for width, row in itertools.product(width_list, row_list)]
    for name, method in itertools.product(teacher_of, methods):
        reports[(name, method)] = [done[(name, method, seed)] for seed in range(seeds)]
    students = {key: value for key, value in reports.items() if key[1] != "teacher"}
    tests = paired_tests(students, methods, PAIRED)
    labels = {m: next(iter(reports.values()))[0]["metrics"][m]["id"] for m in REPORTED}
    protocol = json.loads((out / BENCH_FILE).read_text())
    header = (f"Students of each teacher (`gankd distill`, {' '.join(STUDENT)}), scored on the task's test part; "
              f"{protocol['threads']} CPU threads per run" + (f"; and {' '.join(extra)}" if extra else ""))
    write_tables(out, header, summarize(reports, REPORTED), tests, labels, REPORTED, commands)
    lines = ["", "Speed and size of each generator (A -> B, deployable form, batch 1 unless said):", "",
             "| task | model | generator | ngf | parameters | MACs | latency (ms) | images/s (batch 16) | memory (MB) |",
             "|" + " --- |" * 9]
    for s in speed_table(out, teacher_of, width_list, row_list, done, threads):
        lines.append(f"| {s['task']} | {s['model']} | {s['generator']} | {s['ngf']} | {s['parameters']:,} | "
                     f"{s['macs'] / 1e6:,.1f} M | {s['latency_ms']:.2f} | {s['images_per_s']:.1f} | {s['memory_mb']:.0f} |")
    atomic_write(out / "results.md", ((out / "results.md").read_text() + "\n".join(lines) + "\n").encode())
    for name, teacher in teacher_of.items():
        models = {"teacher": teacher, **{row: done[(name, f"{row} w{width_list[0]}", 0)]["checkpoint"]
                                          for row in row_list}}
        picture(out / f"{name}.png", task[name], models)
    return out


def speed_table(out: Path, teacher_of: dict[str, str], width_list: list[int], row_list: list[str], done: dict,
                threads: int) -> list[dict]:
    """speed.csv: the teacher and one student per width (the rows share an architecture), each measured
    alone in a fresh process."""
    import csv
    import io
    import multiprocessing
    import tempfile
    from concurrent.futures import ProcessPoolExecutor

    from gankd.fileio import atomic_write

    models = {}
    for name, teacher in teacher_of.items():
        models[(name, "teacher")] = teacher
        for width in width_list:
            models[(name, f"student w{width}")] = done[(name, f"{row_list[0]} w{width}", 0)]["checkpoint"]
    with tempfile.TemporaryDirectory() as tmp:
        measured = {}
        for key, model in models.items():
            file = saved_generator(model, Path(tmp) / "G.pt")
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as alone:
                measured[key] = alone.submit(speed, file, threads).result()
    rows = [{"task": name, "model": model, **values} for (name, model), values in measured.items()]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out / "speed.csv", text.getvalue().encode())
    return rows


def picture(path: Path, task: str, models: dict[str, str]) -> None:
    """A row per model, a column per test input: the inputs, the ground truth, then each model's outputs."""
    from gankd.checkpoint import load_checkpoint
    from gankd.comparison import labelled_rows
    from gankd.families.translation import translate_uint8
    from gankd.images import save_png, to_uint8
    from gankd.metrics.evaluate import test_pairs

    first = load_checkpoint(next(iter(models.values())))
    inputs, truth, _ = test_pairs(task, first.config, None)
    inputs, truth = inputs[:PICTURE_INPUTS], truth[:PICTURE_INPUTS]
    rows = {"input": to_uint8(inputs), "ground truth": truth.permute(0, 2, 3, 1).numpy()}
    for name, model in models.items():
        ckpt = load_checkpoint(model)
        rows[name] = translate_uint8(ckpt.network("G_AB" if "G_AB" in ckpt.roles else "G"), inputs).permute(0, 2, 3, 1).numpy()
    save_png(path, labelled_rows({name: images if images.shape[-1] == 3 else images.repeat(3, -1)
                                  for name, images in rows.items()}))

"""`gankd bench aging`: is the continuous aging model continuous? Measured offline against ground
truth, on attributes whose every value exists for every identity (`TASKS`):
- `inter`: glyph weight 100-900 (Inter's variable font), identity = character and style; trained at
  100, 300, 500, 700, 900, held out 200, 400, 600, 800 (the classes sit at the trained weights).
- `tones`: emoji skin tone on the ordinal scale light 1 ... dark 5, identity = the base emoji;
  medium-dark (4) held out; classes every 2 levels (1, 3, 5), so 4 lies between two of them.
Rows (`ROWS`): the continuous model, the group-based baseline (`groups`: the task's group count,
one-hot codes at the same centres), no residual (e_t = a(t)) and the estimator trained apart
(`separate`). Every model renders each test image (the test identities, unseen in training, at
every value) at every value; scores, by whether the target was trained or held out:
L1 and the domain perceptual distance to the true image (identity and attribute together), the
error of an independent judge (`metrics.attribute.AttributeJudge`, trained on real images of the
training identities at every value, held-out ones included, and never by a model), the judge's
trajectory scores over all targets (monotone share, unevenness), and KID (domain) of the held-out
outputs against the real test images at those values. Reference rows: the input returned unchanged,
and the judge's own error on the real test images. Sized for 2 CPU cores (`RUN`: 32 px, batch 8,
1000 steps); resumable; outputs as the other benches (results.md, CSVs, commands.txt, a picture
per task).
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from gankd.bench.common import (bench_folder, check_counts, open_bench, paired_tests, parse_list, run_all, summarize,
                                trained, write_tables)


@dataclass(frozen=True)
class Task:
    spec: str
    settings: tuple[str, ...]
    groups: int  # the group baseline's group count


TASKS = {
    "inter": Task("inter:size=32", ("aging.attribute=weight", "aging.identity=char,style",
                                    "aging.hold_out=200|400|600|800"), 5),
    "tones": Task("emoji:tone=light|medium-light|medium|medium-dark|dark",
                  ("aging.attribute=tone", "aging.identity=base", "aging.hold_out=medium-dark", "aging.age_step=2"), 3),
}
ROWS = {"continuous": (), "groups": ("aging.groups={groups}",), "no-residual": ("aging.residual=none",),
        "separate": ("aging.estimator=separate",)}
RUN = ("method=aging", "res=32", "batch=8", "steps=1000", "log_every=50", "sample_every=500", "checkpoint_every=250",
       "keep=1", "precision=fp32")  # fp32: the default before precision=auto, which the published results used
REPORTED = ("l1_held", "l1_trained", "lpips_held", "judge_held", "judge_trained", "monotone", "unevenness", "kid_held")
PAIRED = ("l1_held", "lpips_held", "judge_held", "unevenness")  # lower is better
JUDGE_STEPS = 1500
PICTURE_IDENTITIES = 3


def run_settings(task: str, row: str) -> list[str]:
    t = TASKS[task]
    return [f"data={t.spec}", *RUN, *t.settings, *(s.format(groups=t.groups) for s in ROWS[row])]


def evaluation_part(cfg):
    """(AttributeData, test images [N, C, R, R] in [-1, 1], their values) of a run's config."""
    from gankd.data.attribute import AttributeDataset
    from gankd.families.aging import attribute_data

    data = attribute_data(cfg)
    images = AttributeDataset(data, data.test, cfg.res, cfg.channels, cfg.upscale)
    return data, torch.stack([images[i]["image"] for i in range(len(images))]), images.values


def judge_of(cfg, file: Path):
    """The task's judge: read from `file`, else trained on the training identities' images at every
    value (held-out ones too) and saved there."""
    from safetensors.torch import load_file, save_file

    from gankd.data.attribute import AttributeDataset
    from gankd.families.aging import attribute_data
    from gankd.metrics.attribute import AttributeJudge, train_judge

    if file.is_file():
        state = load_file(str(file))
        judge = AttributeJudge(state["features.0.weight"].shape[1], *state["span"].tolist())
        judge.load_state_dict(state)
        return judge.eval()
    data = attribute_data(cfg)
    tested = set(data.test)
    images = AttributeDataset(data, [i for i in range(len(data.source)) if i not in tested], cfg.res, cfg.channels,
                              cfg.upscale)
    judge = train_judge(torch.stack([images[i]["image"] for i in range(len(images))]), images.values, JUDGE_STEPS)
    file.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in judge.state_dict().items()}, str(file))
    return judge


def outputs_and_truth(G, data, images: torch.Tensor, values: list[float]):
    """(every test image at every value [S, T, C, R, R], the true images [S, T, C, R, R])."""
    from gankd.families.aging import render

    outputs = torch.cat([render(G, images[i:i + 64], torch.tensor(values)) for i in range(0, len(images), 64)])
    position = {j: k for k, j in enumerate(data.test)}
    truth = torch.stack([torch.stack([images[position[data.truth(i, v)]] for v in values]) for i in data.test])
    return outputs, truth


def scores(outputs: torch.Tensor, truth: torch.Tensor, values: list[float], held: tuple[float, ...], judge,
           real_held: torch.Tensor) -> dict:
    """The bench's numbers for outputs [S, T, ...] against the truth, by held-out and trained targets."""
    from gankd.features import load_extractor
    from gankd.metrics.attribute import trajectory_scores
    from gankd.metrics.kid import kernel_distance
    from gankd.metrics.paired import paired_scores

    domain = load_extractor("domain")
    is_held = torch.tensor([v in held for v in values])
    u8 = lambda x: ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # noqa: E731
    estimates = judge.predict(outputs.flatten(0, 1)).view(len(outputs), len(values))
    errors = (estimates - torch.tensor(values)).abs()  # [S, T]
    pixel = (u8(outputs).float() - u8(truth).float()).abs().mean((2, 3, 4)) / 255  # [S, T]
    out = {}
    for part, columns in (("held", is_held), ("trained", ~is_held)):
        out[f"l1_{part}"] = float(pixel[:, columns].mean())
        if part == "held":
            o, t = outputs[:, columns].flatten(0, 1), truth[:, columns].flatten(0, 1)
            out["lpips_held"] = paired_scores(u8(o), u8(t), ["lpips"], domain)["lpips"]
        out[f"judge_{part}"] = float(errors[:, columns].mean())
    out.update(trajectory_scores(estimates))
    held_outputs = outputs[:, is_held].flatten(0, 1)
    out["kid_held"] = kernel_distance(domain.embed(real_held).numpy(), domain.embed(held_outputs).numpy(),
                                      subset_size=len(real_held))["mean"]
    per_value = [{"value": v, "held": v in held, "l1": float(pixel[:, j].mean()), "judge": float(errors[:, j].mean()),
                  "estimate": float(estimates[:, j].mean())} for j, v in enumerate(values)]
    return {"features": domain.id, "noise": None, "per_value": per_value,
            "metrics": {k: {"value": v, "id": f"{k}[{domain.id}]" if k.startswith(("lpips", "kid")) else k}
                        for k, v in out.items()}}


def evaluated(checkpoint: str | None, cfg, judge_file: Path, folder: Path) -> dict:
    """A model's scores (read back from `folder` when there); checkpoint None: the input unchanged."""
    from gankd.checkpoint import load_checkpoint
    from gankd.fileio import atomic_write

    file = folder / "metrics.json"
    if file.is_file():
        return json.loads(file.read_text())
    data, images, image_values = evaluation_part(cfg)
    values = sorted(set(image_values.tolist()))
    G = (lambda x, t: x) if checkpoint is None else load_checkpoint(checkpoint).network("G")
    outputs, truth = outputs_and_truth(G, data, images, values)
    held = torch.tensor([v in data.held_out for v in image_values.tolist()])
    report = scores(outputs, truth, values, data.held_out, judge_of(cfg, judge_file), images[held])
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(file, json.dumps(report, indent=1).encode())
    return report


def aging_run(run: Path, settings: list[str], judge_file: Path, evals: Path) -> dict:
    """A model trained (resumed, or read back when done) and scored. Top-level for worker processes."""
    from gankd.runs import checkpoints

    cfg = trained(run, settings)
    return {**evaluated(str(checkpoints(run)[-1][1]), cfg, judge_file, evals), "checkpoint": str(checkpoints(run)[-1][1])}


def bench_aging(tasks: str | None = None, rows: str | None = None, seeds: int = 3,
                out: str | os.PathLike = "bench-aging", settings: list[str] | None = None, threads: int | None = None,
                jobs: int = 1) -> Path:
    """Every (task, row, seed) model, `jobs` at a time in their own processes; then the tables and pictures."""
    from gankd.config import resolve
    from gankd.fileio import atomic_write

    task_list = parse_list(tasks or ",".join(TASKS), TASKS, "task")
    row_list = parse_list(rows or ",".join(ROWS), ROWS, "row")
    check_counts(seeds, threads, jobs, 1000)
    out = Path(out)
    with bench_folder(out, "gankd bench aging"):
        extra = list(settings or [])
        threads = open_bench(out, {"settings": extra}, threads or max(1, torch.get_num_threads() // jobs))
        runs, commands = {}, []
        for task, row, seed in itertools.product(task_list, row_list, range(seeds)):
            where = Path(task) / row / f"seed{seed}"
            run_cfg = [*run_settings(task, row), f"seed={seed}", f"threads={threads}", *extra]
            commands.append(f"gankd train --out {out / 'runs' / where} " + " ".join(run_cfg))
            runs[(task, row, seed)] = (out / "runs" / where, run_cfg, out / "judges" / f"{task}.safetensors",
                                       out / "evals" / where)
        base = {task: resolve(overrides=[*run_settings(task, "continuous"), *extra]) for task in task_list}
        judges = {task: out / "judges" / f"{task}.safetensors" for task in task_list}
        for task in task_list:  # each judge once, before the workers read it
            judge_of(base[task], judges[task])
        done = run_all(aging_run, runs, jobs, threads)
        reports = {}
        for task in task_list:
            reports[(task, "input unchanged")] = [evaluated(None, base[task], judges[task], out / "evals" / task / "input")]
            for row in row_list:
                reports[(task, row)] = [done[(task, row, seed)] for seed in range(seeds)]
        tests = paired_tests({k: v for k, v in reports.items() if k[1] in row_list}, row_list, PAIRED)
        labels = {m: next(iter(reports.values()))[0]["metrics"][m]["id"] for m in REPORTED}
        header = (f"Aging models (`gankd train {' '.join(RUN)}` and each task's settings), scored on the test "
                  f"identities at every value; {threads} CPU threads per run" + (f"; and {' '.join(extra)}" if extra else ""))
        write_tables(out, header, summarize(reports, REPORTED), tests, labels, REPORTED, commands)
        lines = value_table(out, reports)
        lines += ["", "The judge's own error on the real test images (mean |estimate - value|):", ""]
        for task in task_list:
            part = evaluation_part(base[task])
            error = float((judge_of(base[task], judges[task]).predict(part[1]) - part[2]).abs().mean())
            lines.append(f"- {task}: {error:.3f}")
            picture(out / f"{task}.png", part, {row: done[(task, row, 0)]["checkpoint"] for row in row_list})
        atomic_write(out / "results.md", ((out / "results.md").read_text() + "\n".join(lines) + "\n").encode())
    return out


def value_table(out: Path, reports: dict[tuple[str, str], list[dict]]) -> list[str]:
    """per_value.csv (every model and seed at every target value) and the markdown lines of a table
    per task: the judge's mean reading of each model's outputs at each target (* held out)."""
    import csv
    import io
    import statistics

    from gankd.fileio import atomic_write

    rows = [{"task": task, "model": model, "seed": seed, **entry}
            for (task, model), runs in reports.items() for seed, report in enumerate(runs) for entry in report["per_value"]]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out / "per_value.csv", text.getvalue().encode())
    lines = []
    for task in dict.fromkeys(task for task, _ in reports):
        entries = next(runs for (t, _), runs in reports.items() if t == task)[0]["per_value"]
        lines += ["", f"{task}: the judge's reading of the outputs at each target value (mean over test inputs and "
                      "seeds; * held out of training):", "",
                  "| model | " + " | ".join(f"{e['value']:g}" + "*" * e["held"] for e in entries) + " |",
                  "|" + " --- |" * (len(entries) + 1)]
        for (t, model), runs in reports.items():
            if t == task:
                means = [statistics.fmean(r["per_value"][j]["estimate"] for r in runs) for j in range(len(entries))]
                lines.append(f"| {model} | " + " | ".join(f"{m:.3g}" for m in means) + " |")
    return lines


def picture(path: Path, part, models: dict[str, str]) -> None:
    """Per test identity: its true images at every value, then each model's renderings at every value
    of the identity's image at the lowest value; held-out values marked * in the header (`part`: what
    `evaluation_part` returns)."""
    from gankd.age import progression_picture
    from gankd.checkpoint import load_checkpoint
    from gankd.families.aging import render
    from gankd.images import rgb, save_png, to_uint8

    data, images, image_values = part
    values = sorted(set(image_values.tolist()))
    position = {j: k for k, j in enumerate(data.test)}
    lowest = [i for i in data.test if data.values[i] == values[0]]
    picks = [lowest[round(k * (len(lowest) - 1) / max(PICTURE_IDENTITIES - 1, 1))] for k in range(PICTURE_IDENTITIES)]
    nets = {name: load_checkpoint(model).network("G") for name, model in models.items()}
    rows = {}
    for n, i in enumerate(picks):
        truth = torch.stack([images[position[data.truth(i, v)]] for v in values])
        x = images[position[i]][None]
        rows[f"{n + 1}: truth"] = rgb(to_uint8(torch.cat([x, truth])))
        for name, G in nets.items():
            rows[f"{n + 1}: {name}"] = rgb(to_uint8(torch.cat([x, render(G, x, torch.tensor(values))[0]])))
    save_png(path, progression_picture(rows, values, set(data.held_out)))

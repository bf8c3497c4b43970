"""`gankd bench limited`: GANs trained from scratch on limited data, the bases and KD-DLGAN, one protocol.

Sets are fixed subsets of the built-in emoji, made once (seed 0) as checksummed splits and verified
before every use (the subset in train/, the rest in eval/):
- `animals100`: 100 of the 152 animal emoji without skin tones, unconditional StyleGAN2 + DiffAugment
  (the paper's 100-shot protocol in small);
- `groups10`, `groups20`: 10 % and 20 % of the 2022 emoji without skin tones, conditional on their
  10 groups, BigGAN at 32 px + DiffAugment (the paper's CIFAR protocol in small).
Rows are methods with settings (`ROWS`): the base (DiffAugment), + LeCam, KD-DLGAN (AGKD + CGKD +
LeCam) and its ablations, and rows under DIP's instance prior (`+dip`). Every run is `gankd train` with its set's settings (`SETS`, sized for 2
CPU cores; configs/limited-gpu-*.yaml hold the paper-scale ones) and its row's, scored at its last
step against the whole set (as the paper does: FID against the full data) by evaluation during
training, with the domain features. A finished run is read back, an interrupted one resumed
(OUT/bench.json holds the protocol a resumed bench must share). Outputs in OUT/: results.md,
results.csv, paired.csv (every pair of rows over the (set, seed) runs), commands.txt, one picture
per set (the training images, then each row's samples of seed 0), runs/, splits/.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

from gankd.errors import GankdError
from gankd.bench.common import (BENCH_FILE, bench_folder, check_counts, open_bench, paired_tests, parse_list, run_all,
                                settings_for, summarize, trained, write_tables)

REPORTED = ("kid", "fid", "precision", "recall")
PAIRED = ("kid", "fid")
CPU = ("precision=bf16", "channels_last=true", "mirror=true", "log_every=50", "sample_every=100000",
       "checkpoint_every=250", "keep=1")
BIGGAN = (*CPU, "architecture=biggan", "res=32", "biggan.ch=16", "biggan.d_ch=16", "batch=32", "loss.kind=hinge",
          "loss.d_steps=4", "loss.r1_gamma=0", "optim.g_lr=2e-4", "optim.d_lr=2e-4", "optim.beta2=0.999",
          "augment.kind=diffaugment", "augment.policy=translation,cutout", "steps=1500")
STYLEGAN2 = (*CPU, "res=32", "arch.channel_max=64", "arch.z_dim=256", "arch.w_dim=256", "batch=16", "loss.kind=nonsat",
             "augment.kind=diffaugment", "augment.policy=color,translation,cutout", "steps=1500")


@dataclass(frozen=True)
class LimitedSet:
    spec: str  # the whole set: the evaluation reference
    share: float  # of the whole set in training: a count (>= 1) or a fraction
    label: str  # the class field ("" = unconditional)
    settings: tuple[str, ...]


SETS = {
    "animals100": LimitedSet("emoji:group=animals,tone=none", 100, "", STYLEGAN2),
    "groups10": LimitedSet("emoji:tone=none,group!=component", 0.1, "group", BIGGAN),
    "groups20": LimitedSet("emoji:tone=none,group!=component", 0.2, "group", BIGGAN),
}
ROWS = {  # row -> (method, its settings)
    "diffaugment": ("scratch", ("loss.lecam=0",)),
    "lecam": ("scratch", ("loss.lecam=0.3",)),
    "kd-dlgan": ("kd-dlgan", ("loss.lecam=0.3",)),
    "agkd": ("kd-dlgan", ("loss.lecam=0.3", "kd-dlgan.cgkd=0")),
    "cgkd": ("kd-dlgan", ("loss.lecam=0.3", "kd-dlgan.agkd=0")),
    "kd-no-lecam": ("kd-dlgan", ("loss.lecam=0",)),
    "ada": ("scratch", ("loss.lecam=0", "augment.kind=ada", "augment.policy=default")),
    "diffaugment+dip": ("scratch+dip", ("loss.lecam=0",)),
    "lecam+dip": ("scratch+dip", ("loss.lecam=0.3",)),
    "kd-dlgan+dip": ("kd-dlgan+dip", ("loss.lecam=0.3",)),
}
DEFAULT_ROWS = ("diffaugment", "lecam", "kd-dlgan", "agkd", "cgkd")


def fixed_subset(name: str, folder: Path) -> Path:
    """The set's split, made once (seed 0) and verified against its manifest every time."""
    from gankd.data.spec import open_source
    from gankd.data.splits import make_split, verify_split

    limited = SETS[name]
    spec = limited.spec + (f",label={limited.label}" if limited.label else "")
    if not folder.exists():
        source = open_source(spec)
        shots = int(limited.share) if limited.share >= 1 else round(limited.share * len(source))
        make_split(source, shots, 0, folder, spec)
    verify_split(folder)
    return folder


def prompts_of(split: Path, limited: LimitedSet) -> str:
    """KD-DLGAN's prompts for a set, as the method makes them for the set itself: one per value of its
    class field (or of the set's first prompt field with two values) among the training images."""
    from gankd.features.clip_gankd import prompts_for

    dataset = limited.spec.partition(":")[0]
    manifest = json.loads((split / "manifest.json").read_text())
    texts = prompts_for(dataset, limited.label or None, [f["labels"] for f in manifest["files"] if f["split"] == "train"])
    if texts is None:
        raise GankdError(f"{dataset}: no field with two values or more to prompt KD-DLGAN with")
    return "|".join(texts)


def run_settings(name: str, row: str, split: Path, seed: int, eval_samples: int, threads: int,
                 extra: list[str]) -> tuple[str, list[str]]:
    """(method, every setting of the run): the set's, the row's, then the bench's own."""
    limited = SETS[name]
    method, own = ROWS[row]
    settings = [*limited.settings, f"method={method}", *own, f"data={split / 'train'}", f"seed={seed}",
                f"threads={threads}", f"eval.ref={limited.spec}", "eval.metrics=kid,fid,pr", f"eval.n={eval_samples}"]
    if method.startswith("kd-dlgan"):
        settings.append(f"kd-dlgan.prompts={prompts_of(split, limited)}")
    settings += settings_for(method, extra, [method for method, _ in ROWS.values()])
    steps = next(int(s.split("=", 1)[1]) for s in reversed(settings) if s.startswith("steps="))
    return method, [*settings, f"eval.every={steps}"]


def train_run(run: Path, settings: list[str]) -> dict:
    """A run's final report: read back when done, else the run resumed (or started) and finished.
    Top-level, so that a worker process can run it."""
    from gankd.features import load_extractor
    from gankd.runs import checkpoints

    cfg = trained(run, settings)
    final = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    scores = next(line for line in reversed(final) if line["step"] == cfg.steps and "eval/fid" in line)
    features = load_extractor(cfg.eval.features).id
    return {"features": features, "noise": cfg.eval.noise, "checkpoint": str(checkpoints(run)[-1][1]),
            "metrics": {m: {"value": scores[f"eval/{m}"], "id": f"{m}[{features},noise={cfg.eval.noise}]"}
                        for m in REPORTED if f"eval/{m}" in scores}}


def bench_limited(rows: str | None = None, sets: str | None = None, seeds: int = 3,
                  out: str | os.PathLike = "bench-limited", settings: list[str] | None = None,
                  eval_samples: int = 1000, threads: int | None = None, jobs: int = 1) -> Path:
    """Every (set, row, seed) run, `jobs` at a time in their own processes; then tables and pictures.
    Results do not depend on `jobs` (each run is a function of its settings, seed and threads)."""
    import torch

    row_list = parse_list(rows or ",".join(DEFAULT_ROWS), ROWS, "row")
    set_list = parse_list(sets or ",".join(SETS), SETS, "set")
    check_counts(seeds, threads, jobs, eval_samples)
    out = Path(out)
    with bench_folder(out, "gankd bench limited"):
        extra = list(settings or [])
        threads = open_bench(out, {"settings": extra, "eval_samples": eval_samples},
                             threads or max(1, torch.get_num_threads() // jobs))
        return run_bench(out, row_list, set_list, seeds, extra, eval_samples, threads, jobs)


def run_bench(out: Path, row_list: list[str], set_list: list[str], seeds: int, extra: list[str], eval_samples: int,
              threads: int, jobs: int) -> Path:
    from gankd.comparison import comparison_picture
    from gankd.images import save_png

    commands, runs = [], {}
    splits = {name: fixed_subset(name, out / "splits" / name) for name in set_list}
    for name, row in itertools.product(set_list, row_list):
        for seed in range(seeds):
            run = out / "runs" / name / row / f"seed{seed}"
            _, settings = run_settings(name, row, splits[name], seed, eval_samples, threads, extra)
            commands.append(f"gankd train --out {run} " + " ".join(f"'{s}'" if " " in s or "|" in s else s
                                                                   for s in settings))
            runs[(name, row, seed)] = (run, settings)
    done = run_all(train_run, runs, jobs, threads)
    reports = {(name, row): [done[(name, row, seed)] for seed in range(seeds)]
               for name, row in itertools.product(set_list, row_list)}
    rows, tests = summarize(reports, REPORTED), paired_tests(reports, row_list, PAIRED)
    first = reports[(set_list[0], row_list[0])][0]
    labels = {m: first["metrics"][m]["id"] for m in REPORTED if m in first["metrics"]}
    protocol = json.loads((out / BENCH_FILE).read_text())
    header = (f"Trained from scratch on fixed subsets; {protocol['eval_samples']} samples per evaluation against the "
              f"whole set; {protocol['threads']} CPU threads per run; settings per set in gankd.bench.limited.SETS"
              + (f", and {' '.join(protocol['settings'])}" if protocol["settings"] else ""))
    write_tables(out, header, rows, tests, labels, REPORTED, commands)
    for name in set_list:
        generators = {row: reports[(name, row)][0]["checkpoint"] for row in row_list}
        save_png(out / f"{name}.png", comparison_picture(splits[name], generators))
    return out

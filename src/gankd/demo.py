"""`gankd demo`: what works today, end to end on built-in data, in one new folder.

Samples the shipped emoji source model, then fine-tunes it with FreezeD for a few steps on a
10-shot split of a held-out group (animals): enough to show the whole path (data -> split ->
training run -> checkpoint -> samples -> evaluation against the held-out animals), not a finished
adaptation (few-shot methods: issue 6).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from gankd.checkpoint import describe
from gankd.data.preview import show
from gankd.data.spec import open_source
from gankd.data.splits import make_split
from gankd.fileio import new_dir
from gankd.generate import generate
from gankd.metrics.evaluate import evaluate
from gankd.metrics.table import metric_rows
from gankd.train import train

GRIDS = {"emoji.png": "emoji", "emoji-animals.png": "emoji:group=animals,tone=none",
         "glyphs.png": "glyphs:char=g", "digits.png": "digits"}
FEWSHOT_TARGET = "emoji:group=animals,tone=none"
SOURCE = "builtin:emoji32"
DEMO_STEPS = 20
EVAL_METRICS, EVAL_SAMPLES = "kid,fid,intra_lpips,copying", 300


def run_demo(out: str | Path) -> Iterator[str]:
    out = new_dir(out)
    for name, spec in GRIDS.items():
        yield f"grid of {spec}: {show(spec, out / name)}"
    split = make_split(open_source(FEWSHOT_TARGET), shots=10, seed=0, out_dir=out / "split-animals",
                       spec=FEWSHOT_TARGET)
    yield f"10-shot split of {FEWSHOT_TARGET}: {out / 'split-animals'} ({split['total'] - 10} held out)"
    facts = describe(SOURCE)
    for path in generate(SOURCE, "0-35", grid_path=out / "samples-emoji32.png"):
        yield f"samples of the shipped source model {SOURCE} ({facts['networks']['G_ema']}): {path}"
    result = train(overrides=[f"data={out / 'split-animals' / 'train'}", "res=32", "method=freezed",
                              f"source={SOURCE}", f"steps={DEMO_STEPS}", "batch=8", "augment.kind=diffaugment",
                              "precision=bf16", "sample_every=10", "checkpoint_every=10"], out=out / "freezed-run")
    yield f"FreezeD, {DEMO_STEPS} steps on the 10 animals (far from converged): {result.run_dir}"
    for path in generate(result.checkpoint, "0-35", grid_path=out / "samples-freezed-20-steps.png"):
        yield f"samples after those steps: {path}"
    for name, target in (("source", SOURCE), ("freezed", result.checkpoint)):
        report = evaluate(target, out / "split-animals", EVAL_METRICS, n=EVAL_SAMPLES, out=out / f"eval-{name}")
        scores = "; ".join(f"{metric} {value}" for metric, value, _ in metric_rows(report))
        yield f"{name} vs the {report['reference_images']} held-out animals ({EVAL_SAMPLES} samples): {scores}"

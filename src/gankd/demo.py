"""`gankd demo`: the main job, end to end on built-in data, in one new folder.

Adapts the shipped emoji source model to 10 shots of a group it never saw (animals) with D3T-GAN
and with plain fine-tuning (TransferGAN), evaluates the source and both results against the held-out
animals (never against the shots), and writes report.md: the comparison picture and the numbers.
Each adaptation is `gankd adapt` with its defaults, so the demo is the seed-0 animals cell of
`gankd bench fewshot`, on a split of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from gankd.adapt import ADAPT_DEFAULTS, FINAL_METRICS, adapt
from gankd.comparison import CAPTION, comparison_picture
from gankd.data.preview import show
from gankd.data.spec import open_source
from gankd.data.splits import make_split
from gankd.fileio import new_dir
from gankd.generate import generate
from gankd.images import save_png
from gankd.metrics.evaluate import evaluate
from gankd.metrics.table import READING, markdown_table, metric_rows
from gankd.runs import PICTURE, REPORT

GRIDS = {"emoji.png": "emoji", "emoji-animals.png": "emoji:group=animals,tone=none",
         "glyphs.png": "glyphs:char=g", "digits.png": "digits"}
TARGET = "emoji:group=animals,tone=none"
SOURCE = "builtin:emoji32"
METHODS = ("finetune", "d3t")
EVAL_SAMPLES = 1000


def report_markdown(reports: dict[str, dict], steps: int) -> str:
    """The report: what ran, the picture, and one row of scores per generator."""
    first = next(iter(reports.values()))
    lines = [
        "# gankd demo: few-shot adaptation of builtin:emoji32 to 10 animals", "",
        f"Source `{SOURCE}` (trained without the animals), target `{TARGET}`: 10 shots in "
        f"`split-animals/train`, {first['reference_images']} held-out animals as the reference. "
        f"Adaptation: `gankd adapt` defaults, {steps} steps per method, one training seed (0); results "
        "vary widely between seeds (gankd's docs/results-fewshot.md has 5 seeds on 3 targets and paired "
        "tests).", "",
        f"![{CAPTION}](comparison.png)", "",
        f"Scores of {first['samples']} samples against the held-out animals. {READING}", "",
        *markdown_table(reports), "",
        "Each folder holds the full record: `adapt-*/run/` (config, checkpoints, samples, metrics.jsonl), "
        "`adapt-*/eval-step-*/` and `eval-source/` (metrics.json, copying.png); `gankd report adapt-d3t` "
        "writes a page of one with its curves."]
    return "\n".join(lines) + "\n"


def run_demo(out: str | Path, steps: int | None = None, force: bool = False) -> Iterator[str]:
    out = new_dir(out, force)
    for name, spec in GRIDS.items():
        yield f"grid of {spec}: {show(spec, out / name)}"
    split = out / "split-animals"
    held_out = make_split(open_source(TARGET), shots=10, seed=0, out_dir=split, spec=TARGET)["total"] - 10
    yield f"10-shot split of {TARGET}: {split} ({held_out} held out)"
    yield f"samples of the shipped source model {SOURCE}: {generate(SOURCE, '0-35', out / 'samples-emoji32.png')}"
    reports = {"source": evaluate(SOURCE, split, FINAL_METRICS, n=EVAL_SAMPLES, out=out / "eval-source")}
    generators = {"source": SOURCE}
    settings = ["eval.every=0", *([f"steps={steps}"] if steps else [])]  # one evaluation, at the end
    for method in METHODS:
        yield f"adapting with {method} ..."
        reports[method] = adapt(SOURCE, str(split), method=method, out=out / f"adapt-{method}", settings=settings,
                                eval_samples=EVAL_SAMPLES)
        generators[method] = reports[method]["target_path"]
    for name, report in reports.items():
        scores = "; ".join(f"{metric} {value}" for metric, value, _ in metric_rows(report))
        yield f"{name} vs the {held_out} held-out animals: {scores}"
    save_png(out / PICTURE, comparison_picture(split, generators))
    (out / REPORT).write_text(report_markdown(reports, steps or ADAPT_DEFAULTS["steps"]))
    yield f"report with the comparison picture and the table: {out / 'report.md'}"

"""Translation models against their task's held-out ground truth, next to the floor of doing nothing.

    python benchmarks/translation_teachers.py RUN=TASK [RUN=TASK ...] [--out benchmarks/results/translation_teachers.json]

For each model (a run folder or checkpoint) and its task, `gankd evaluate` scores the translated
test inputs: FID and KID (domain features) against the test B images, and L1, PSNR, SSIM and the
domain perceptual distance against each input's own ground truth. The row "input as output"
scores the test inputs themselves in the same way: a model that does not beat it has learned
nothing these metrics see. Cost: seconds per model on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import torch

from gankd.checkpoint import load_checkpoint
from gankd.images import to_uint8
from gankd.metrics import parse_metrics
from gankd.metrics.evaluate import Evaluator, evaluate, test_pairs
from gankd.metrics.paired import paired_scores
from gankd.runs import checkpoint_of

METRICS = "fid,kid,l1,psnr,ssim,lpips"


def input_as_output(ckpt: str, task_name: str) -> dict:
    """The paired and distribution scores of the test inputs taken as the outputs."""
    cfg = load_checkpoint(ckpt).config
    inputs, truth, task = test_pairs(task_name, cfg, None)
    outputs = torch.from_numpy(to_uint8(inputs)).permute(0, 3, 1, 2)
    if outputs.shape[1] != truth.shape[1]:  # a gray input against a colour truth
        outputs = outputs.expand(-1, truth.shape[1], -1, -1).contiguous()
    names = parse_metrics(METRICS)
    evaluator = Evaluator(task.test[1], names, "domain", cfg.resolution, truth.shape[1], task.train[1], batch=64,
                          name=task_name)
    scores = {k: v["value"] for k, v in evaluator(outputs).items() if not k.startswith("_")}
    return {**scores, **paired_scores(outputs, truth, names, evaluator.perceptual, 64)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="RUN=TASK: a run folder or checkpoint and its translation task")
    parser.add_argument("--out", default="benchmarks/results/translation_teachers.json")
    args = parser.parse_args()
    rows = []
    for item in args.models:
        run, _, task = item.partition("=")
        ckpt = checkpoint_of(run)
        with tempfile.TemporaryDirectory() as tmp:
            report = evaluate(run, task, METRICS, out=Path(tmp) / "eval")
        model = {k: v["value"] for k, v in report["metrics"].items()}
        meta = load_checkpoint(ckpt).meta
        rows.append({"task": task, "model": str(ckpt), "method": meta.get("method"), "step": meta.get("step"),
                     "test_inputs": report["samples"], "labels": {k: v["id"] for k, v in report["metrics"].items()},
                     "scores": model, "input_as_output": input_as_output(ckpt, task)})
        print(f"{task}: {meta.get('method')} step {meta.get('step')}, {report['samples']} test inputs")
        for metric, value in model.items():
            print(f"  {report['metrics'][metric]['id']:<40} model {value:10.4f}   input as output "
                  f"{rows[-1]['input_as_output'][metric]:10.4f}")
    Path(args.out).write_text(json.dumps({"machine": platform.processor() or platform.machine(),
                                          "threads": torch.get_num_threads(), "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

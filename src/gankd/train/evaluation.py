"""Evaluation during training: every `eval.every` steps, G_ema's samples from fixed seeds are scored
with the evaluation module, logged as `eval/<metric>`, and with `eval.best` the best networks are
kept as best.safetensors, whose metadata states the selection rule (it is optimistic when the
reference is also the test set).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gankd.checkpoint import read_meta, save_checkpoint
from gankd.config import TrainConfig
from gankd.metrics import parse_metrics
from gankd.metrics.evaluate import Evaluator
from gankd.metrics.paired import paired_scores
from gankd.runs import BEST


class RunEvaluator:
    def __init__(self, cfg: TrainConfig, run_dir: Path, family_class, channels: int, device: torch.device):
        reference, train = family_class.evaluation_sets(cfg)
        self.cfg, self.device = cfg, device
        self.evaluator = Evaluator(reference, parse_metrics(cfg.eval.metrics), cfg.eval.features, cfg.res, channels,
                                   train, device=str(device), name=cfg.eval.ref or cfg.data, upscale=cfg.upscale,
                                   noise=cfg.eval.noise)
        self.best_file = run_dir / BEST
        self.best = read_meta(self.best_file).get(cfg.eval.best, float("inf")) if self.best_file.is_file() \
            else float("inf")  # a resumed run remembers its best

    def __call__(self, family) -> dict[str, float]:
        """Scalars `eval/<metric>` of the family's model now (`eval.n` samples, `eval.noise` noise)."""
        # The samples `gankd evaluate` draws from a checkpoint of this step; the training's random
        # streams are left as they were (render seeds noise in a fork of them).
        images = family.evaluation_images(self.cfg.eval.n, self.cfg.eval.noise)
        results = self.evaluator(images)
        results.pop("_copying", None)
        truth = family.evaluation_truth()
        if truth is not None:  # a translation model: its outputs against each input's ground truth
            paired = paired_scores(images, truth, self.evaluator.metrics, self.evaluator.perceptual, self.evaluator.batch)
            results.update({name: {"value": value} for name, value in paired.items()})
        return {f"eval/{name}": float(m["value"]) for name, m in results.items()}

    def keep_best(self, scalars: dict[str, float], step: int, nets) -> Path | None:
        """Write best.safetensors when eval.best improved."""
        metric = self.cfg.eval.best
        value = scalars.get(f"eval/{metric}", float("nan"))
        if not metric or not np.isfinite(value) or value >= self.best:
            return None
        self.best = value
        protocol = self.evaluator.protocol()
        rule = (f"lowest {metric}[{protocol['features']}] over evaluations every {self.cfg.eval.every} steps, "
                f"{self.cfg.eval.n} samples (seeds 0-{self.cfg.eval.n - 1}) against {protocol['reference']}; "
                "a score selected on the images it is reported on is optimistic")
        return save_checkpoint(self.best_file, {"G_ema": nets.G_ema, "D": nets.D}, force=True,
                               step=step, selected_by=rule, **{metric: value})

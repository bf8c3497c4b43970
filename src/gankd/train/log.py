"""What a run reports: metrics.jsonl (one line per logged step), sample grids, the same scalars and
grids to the chosen loggers (TensorBoard, W&B: gankd.train.loggers), and a status line on stderr
at each logged step. Only rank 0 writes."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from gankd.images import grid, save_png, to_uint8, upscale_nearest
from gankd.progress import reporting, speed
from gankd.runs import METRICS, SAMPLES
from gankd.train.loggers import open_loggers


class RunLog:
    def __init__(self, run_dir: Path, start_step: int, logger: str = "tensorboard", config: dict | None = None,
                 enabled: bool = True):
        """`logger`: the setting of that name; `config`: what the loggers record once."""
        self.run_dir, self.enabled = Path(run_dir), enabled
        self.metrics = self.run_dir / METRICS
        self.loggers = []
        self.started, self.start_step = time.time(), start_step
        if not enabled:
            return
        self._truncate(start_step)  # a resumed run rewrites what followed its checkpoint
        self.loggers = open_loggers(logger, self.run_dir, start_step, config or {})

    def _truncate(self, step: int) -> None:
        if not self.metrics.exists():
            return
        kept = [line for line in self.metrics.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= step]
        self.metrics.write_text("".join(line + "\n" for line in kept))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        with self.metrics.open("a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        for logger in self.loggers:
            logger.scalars(step, values)

    def samples(self, step: int, images) -> Path | None:
        if not self.enabled:
            return None
        path = self.run_dir / SAMPLES / f"step-{step:07d}.png"
        tiles = grid(upscale_nearest(to_uint8(images), 64))
        save_png(path, tiles)
        for logger in self.loggers:
            logger.image(step, tiles)
        return path

    def status(self, step: int, total: int, values: dict[str, float]) -> None:
        """One line on stderr, on a terminal or not: `step 120/500  loss_g 1.23  loss_d 0.45  3.21 it/s
        ETA 2m01s`. The losses are the sums of G's and D's main terms (the regularizers run on some
        steps only); the rate is the mean since this process started."""
        if not self.enabled or not reporting():
            return
        parts = [f"step {step}/{total}"]
        for name, phase in (("loss_g", "G_main"), ("loss_d", "D_main")):
            terms = [v for k, v in values.items() if k.startswith(f"loss/{phase}/")]
            if terms:
                parts.append(f"{name} {sum(terms):.3g}")
        parts.append(speed(step - self.start_step, total - step, time.time() - self.started))
        print("  ".join(parts), file=sys.stderr, flush=True)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()

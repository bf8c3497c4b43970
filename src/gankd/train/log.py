"""What a run reports: metrics.jsonl (one line per logged step), TensorBoard, sample grids, and a
status line on stderr at each checkpoint. Only rank 0 writes."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from gankd.images import grid, save_png, to_uint8, upscale_nearest
from gankd.runs import METRICS, SAMPLES, TENSORBOARD


class RunLog:
    def __init__(self, run_dir: Path, start_step: int, enabled: bool = True):
        self.run_dir, self.enabled = Path(run_dir), enabled
        self.metrics = self.run_dir / METRICS
        self.tb = None
        self.started, self.start_step = time.time(), start_step
        if not enabled:
            return
        self._truncate(start_step)  # a resumed run rewrites what followed its checkpoint
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(self.run_dir / TENSORBOARD), purge_step=start_step)
        except ImportError:
            self.tb = None

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
        if self.tb is not None:
            for key, value in values.items():
                self.tb.add_scalar(key, value, step)

    def samples(self, step: int, images) -> Path | None:
        if not self.enabled:
            return None
        path = self.run_dir / SAMPLES / f"step-{step:07d}.png"
        tiles = grid(upscale_nearest(to_uint8(images), 64))
        save_png(path, tiles)
        if self.tb is not None:
            self.tb.add_image("samples", tiles, step, dataformats="HWC")
        return path

    def status(self, step: int, total: int, values: dict[str, float]) -> None:
        """One line on stderr: progress, rate, time left and the main losses."""
        if not self.enabled or os.environ.get("GANKD_QUIET"):
            return
        elapsed = time.time() - self.started
        rate = (step - self.start_step) / elapsed if elapsed > 0 else 0.0
        left = (total - step) / rate if rate else float("nan")
        losses = "  ".join(f"{k.split('/', 1)[1]} {v:.3f}" for k, v in values.items() if k.startswith("loss/"))
        print(f"step {step}/{total}  {rate:.2f} it/s  ETA {_duration(left)}  {losses}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _duration(seconds: float) -> str:
    if seconds != seconds:
        return "?"
    h, rest = divmod(int(seconds), 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"

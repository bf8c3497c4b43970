"""Where a run's scalars and sample grids go besides metrics.jsonl and samples/: the `logger` setting,
`tensorboard` (the default), `wandb` (Weights & Biases), both (`tensorboard,wandb`) or `none`.

wandb is not a dependency: choosing it without the package is refused in one line before any work.
It never needs the network: WANDB_MODE is obeyed when set; otherwise a machine without an API key
(WANDB_API_KEY or `wandb login`) logs offline, into RUN/wandb/, for `wandb sync` later.
"""

from __future__ import annotations

import importlib.util
import netrc
import os
from pathlib import Path

from gankd.errors import ConfigError
from gankd.runs import TENSORBOARD

LOGGERS = ("tensorboard", "wandb", "none")


def logger_names(setting: str) -> list[str]:
    """The loggers a `logger` setting names, checked: `none` is an empty list."""
    names = [n.strip() for n in setting.split(",") if n.strip()]
    if not names or any(n not in LOGGERS for n in names) or "none" in names and len(names) > 1:
        raise ConfigError(f"logger must be tensorboard, wandb, both joined by a comma, or none; not {setting!r}")
    return [n for n in names if n != "none"]


def check_available(setting: str) -> None:
    """Refuse a logger whose package is missing, before the run starts."""
    if "wandb" in logger_names(setting) and importlib.util.find_spec("wandb") is None:
        raise ConfigError("logger=wandb needs the wandb package: pip install wandb (or choose logger=tensorboard)")


def open_loggers(setting: str, run_dir: Path, start_step: int, config: dict) -> list:
    """The loggers of a run that (re)starts at `start_step`; TensorBoard is skipped where it is not
    installed, as it always was."""
    opened = []
    for name in logger_names(setting):
        if name == "wandb":
            opened.append(WandB(run_dir, config))
        elif importlib.util.find_spec("tensorboard") is not None:
            opened.append(TensorBoard(run_dir, start_step))
    return opened


class TensorBoard:
    def __init__(self, run_dir: Path, start_step: int):
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: a resumed run rewrites what followed its checkpoint
        self.writer = SummaryWriter(str(run_dir / TENSORBOARD), purge_step=start_step)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def image(self, step: int, tiles) -> None:
        self.writer.add_image("samples", tiles, step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()


class WandB:
    """One W&B run per process start, grouped by the run folder's name: a resumed run shows as a
    new W&B run going on at its step."""

    def __init__(self, run_dir: Path, config: dict):
        import wandb

        self.wandb = wandb
        mode = os.environ.get("WANDB_MODE") or ("online" if has_api_key() else "offline")
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "gankd"), name=run_dir.name,
                              group=run_dir.name, dir=str(run_dir), config=config, mode=mode)  # writes RUN/wandb/

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def image(self, step: int, tiles) -> None:
        self.run.log({"samples": self.wandb.Image(tiles)}, step=step)

    def close(self) -> None:
        self.run.finish()


def has_api_key() -> bool:
    """Whether wandb could log in: WANDB_API_KEY, or the ~/.netrc entry `wandb login` writes."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False

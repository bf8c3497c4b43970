"""The training engine: config -> run folder -> loop over recipes, checkpoints, resume, torchrun."""

from gankd.train.run import resolve_run, train

__all__ = ["resolve_run", "train"]

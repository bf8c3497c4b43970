"""Source models shipped inside the package: `builtin:NAME` works wherever a checkpoint path does
(as does a run folder, for its newest checkpoint).

Each was trained with `gankd train` from a config in configs/ (see docs/models.md) and is stored
as G_ema and D in float16 to keep the package small; loading casts them back to float32.
"""

from __future__ import annotations

from pathlib import Path

from gankd.errors import CheckpointError
from gankd.runs import is_run, newest_checkpoint

PREFIX = "builtin:"
MODELS = {
    "emoji32": "32x32 StyleGAN2 of emoji people (portraits, all skin tones), trained without the smileys, "
               "animals, food and flags groups (configs/emoji32-base.yaml, then configs/emoji32.yaml); "
               "those groups are few-shot targets",
}


def resolve_checkpoint(path) -> Path:
    """A path as given, the newest checkpoint of a run folder, or the file of a shipped model
    named `builtin:NAME`."""
    text = str(path)
    if not text.startswith(PREFIX):
        return newest_checkpoint(path) if is_run(path) else Path(path)
    name = text[len(PREFIX):]
    if name not in MODELS:
        raise CheckpointError(f"{text}: no such shipped model; shipped: "
                              f"{', '.join(PREFIX + m for m in MODELS)}")
    file = Path(__file__).with_name(f"{name}.safetensors")
    if not file.is_file():
        raise CheckpointError(f"{text}: the model file is missing from this installation ({file})")
    return file

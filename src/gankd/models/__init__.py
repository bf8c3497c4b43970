"""Source models shipped inside the package: `builtin:NAME` works wherever a checkpoint path does
(as do a run folder, for its newest checkpoint, a pretrained folder, and `hf:OWNER/NAME`, a
pretrained folder on the Hugging Face Hub: `gankd.pretrained`).

Each was trained with `gankd train` from a config in configs/ (see docs/models.md) and is stored
as G_ema and D in float16 to keep the package small; loading casts them back to float32.
"""

from __future__ import annotations

from pathlib import Path

from gankd.errors import CheckpointError
from gankd.runs import MODEL, folder_checkpoint

PREFIX, HUB = "builtin:", "hf:"
MODELS = {
    "emoji32": "32x32 StyleGAN2 of emoji people (portraits, all skin tones), trained without the smileys, "
               "animals, food and flags groups (configs/emoji32-base.yaml, then configs/emoji32.yaml); "
               "those groups are few-shot targets",
}


def resolve_checkpoint(path) -> Path:
    """A path as given, the checkpoint a run or pretrained folder stands for, the file of a shipped
    model named `builtin:NAME`, or the model file of a Hub repository named `hf:OWNER/NAME`."""
    text = str(path)
    if text.startswith(HUB):
        from gankd.pretrained import download

        return download(text[len(HUB):]) / MODEL
    if not text.startswith(PREFIX):
        return folder_checkpoint(path) or Path(path)
    name = text[len(PREFIX):]
    if name not in MODELS:
        raise CheckpointError(f"{text}: no such shipped model; shipped: "
                              f"{', '.join(PREFIX + m for m in MODELS)}")
    file = Path(__file__).with_name(f"{name}.safetensors")
    if not file.is_file():
        raise CheckpointError(f"{text}: the model file is missing from this installation ({file})")
    return file

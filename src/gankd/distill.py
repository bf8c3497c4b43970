"""`gankd distill`: compress a trained translation model into a thinner student, in one command.

It is `gankd train` with the teacher's task and networks (data, resolution, channels, the
`translation.*` settings) at another width (`translation.ngf`), the teacher's method composed with
distillation (`<method>+distill`, `gankd.methods.distill`) and the named distiller's terms; the
distiller `none` trains the student alone (the teacher's method, no teacher), the honest baseline.
Everything else (steps, batch, seed, weights) is a training setting as usual; `--resume` is
`gankd train --resume`.
"""

from __future__ import annotations

import os
from pathlib import Path

from gankd.checkpoint import read_meta
from gankd.errors import CheckpointError, ConfigError
from gankd.methods.distill import DISTILLERS, TERMS, parse_terms
from gankd.runs import checkpoint_of

INHERITED = ("data", "res", "channels", "upscale", "mirror")  # settings a student takes from its teacher


def student_settings(teacher: str, width: int, method: str) -> list[str]:
    """The `gankd train` settings of a student of `teacher` at `width` trained by distiller `method`."""
    ckpt = checkpoint_of(teacher)
    if ckpt is None:
        raise ConfigError(f"--teacher {teacher}: not a checkpoint or run folder")
    meta = read_meta(ckpt)
    if meta.get("arch") != "translation":
        raise CheckpointError(f"{ckpt}: a {meta.get('arch')} model; gankd distill compresses translation models")
    stored = meta.get("training", {}).get("config")
    if stored is None:
        raise CheckpointError(f"{ckpt}: no training settings (an imported model); distil with gankd train "
                              f"method=pix2pix+distill distill.teacher={ckpt} data=TASK distill.terms=srp ...")
    if width < 1:
        raise ConfigError(f"--width must be 1 or more, not {width}")
    if method != "none":
        try:
            parse_terms(method)
        except ConfigError:
            raise ConfigError(f"--method {method}: a distiller ({', '.join(DISTILLERS)}, or terms of "
                              f"{', '.join(TERMS)} joined by +)") from None
    base = stored["method"].partition("+")[0]
    arch = {k: v for k, v in stored["translation"].items() if k != "ngf"}
    settings = [f"{k}={stored[k]}" for k in INHERITED if stored.get(k) is not None]
    settings += [f"translation.{k}={v}" for k, v in arch.items()] + [f"translation.ngf={width}"]
    if method == "none":
        return [*settings, f"method={base}"]
    return [*settings, f"method={base}+distill", f"distill.teacher={Path(ckpt).resolve()}", f"distill.terms={method.replace('+', ',')}"]


def distill(teacher: str, width: int, method: str = "srp", out: str | os.PathLike | None = None,
            config: str | None = None, settings: list[str] | None = None):
    """Train the student; returns `gankd train`'s result (its last checkpoint and step)."""
    from gankd.train import train

    return train(config, [*student_settings(teacher, width, method), *(settings or [])], out)

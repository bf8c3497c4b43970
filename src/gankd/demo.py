"""`gankd demo`: what works today, end to end on built-in data, in one new folder.

Training (`gankd train`) and few-shot adaptation (`gankd adapt`) are not built yet, so the
generator the demo samples from is freshly initialised: its samples show the plumbing, not quality.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from gankd.checkpoint import describe, save_checkpoint
from gankd.data.preview import show
from gankd.data.spec import open_source
from gankd.data.splits import make_split
from gankd.fileio import new_dir
from gankd.generate import generate
from gankd.nets import Discriminator, Generator, StyleGAN2Config

GRIDS = {"emoji.png": "emoji", "emoji-animals.png": "emoji:group=animals,tone=none",
         "glyphs.png": "glyphs:char=g", "digits.png": "digits"}
FEWSHOT_TARGET = "emoji:group=animals,tone=none"


def run_demo(out: str | Path) -> Iterator[str]:
    out = new_dir(out)
    for name, spec in GRIDS.items():
        yield f"grid of {spec}: {show(spec, out / name)}"
    split = make_split(open_source(FEWSHOT_TARGET), shots=10, seed=0, out_dir=out / "split-animals",
                       spec=FEWSHOT_TARGET)
    yield f"10-shot split of {FEWSHOT_TARGET}: {out / 'split-animals'} ({split['total'] - 10} held out)"
    torch.manual_seed(0)
    cfg = StyleGAN2Config(resolution=32, z_dim=256, w_dim=256, channel_base=4096, channel_max=256)
    G, D = Generator(cfg), Discriminator(cfg)
    G.estimate_w_avg()
    ckpt = save_checkpoint(out / "stylegan2-32-untrained.safetensors", {"G": G, "G_ema": G, "D": D}, step=0,
                           note="freshly initialised by `gankd demo`; training arrives with `gankd train`")
    facts = describe(ckpt)
    yield f"untrained StyleGAN2 checkpoint: {ckpt} ({facts['networks']['G']}, {facts['resolution']} px)"
    for path in generate(ckpt, "0-15", grid_path=out / "samples-untrained.png"):
        yield f"samples from it (noise until trained): {path}"

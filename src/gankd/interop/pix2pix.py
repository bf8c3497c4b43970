"""Import of generators saved by junyanz/pytorch-CycleGAN-and-pix2pix (`latest_net_G.pth`,
`latest_net_G_A.pth`: `torch.save` of the network's plain state dict).

gankd's translation networks keep the original's layer order and attribute names (`model`,
nested `model.model` in the U-Net, `conv_block` in residual blocks), so the state dict maps key
for key under gankd's `net.` prefix. The settings come from the tensors' shapes: the generator
kind (U-Net levels, or the number of residual blocks), ngf, the channels in and out, batch norm
(norm layers with a scale) or instance norm (none, and biased convolutions). Two settings cannot be seen in the
weights and take the originals' defaults: dropout (U-Net: on, ResNet: off) and, for a ResNet, the
resolution it is used at (256; a U-Net's levels fix its resolution).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from gankd.errors import CheckpointError
from gankd.interop.imported import Imported
from gankd.nets.translation import TranslationConfig

RESNET_RESOLUTION = 256


def looks_like(data) -> bool:
    return isinstance(data, dict) and any(isinstance(k, str) and k.startswith("model.") for k in data) and \
        all(isinstance(v, torch.Tensor) for v in data.values())


def from_data(path: Path, data: dict) -> Imported:
    state = {k.removeprefix("module."): v.detach().float() if v.is_floating_point() else v for k, v in data.items()}
    if "model.model.0.weight" in state:  # U-Net: level L's keys hold L + 2 times "model." (innermost: L = levels - 1)
        levels = max(k.count("model.") for k in state) - 1
        first, last = state["model.model.0.weight"], state["model.model.3.weight"]
        settings = {"generator": "unet", "resolution": 2 ** levels, "in_channels": first.shape[1],
                    "out_channels": last.shape[1], "ngf": first.shape[0], "dropout": True}
        first_norm, inner_conv = "model.model.1.model.2", "model.model.1.model.1"
    elif "model.1.weight" in state:
        blocks = {int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
        if len(blocks) not in (6, 9):
            raise CheckpointError(f"{path}: a ResNet generator with {len(blocks)} blocks; gankd has 6 and 9")
        first = state["model.1.weight"]
        last = state[max((k for k in state if k.endswith(".weight") and state[k].dim() == 4),
                         key=lambda k: int(k.split(".")[1]))]
        settings = {"generator": f"resnet_{len(blocks)}blocks", "resolution": RESNET_RESOLUTION,
                    "in_channels": first.shape[1], "out_channels": last.shape[0], "ngf": first.shape[0],
                    "dropout": False}
        first_norm, inner_conv = "model.2", "model.1"
    else:
        raise CheckpointError(f"{path}: a state dict of another network (neither pix2pix's U-Net nor CycleGAN's "
                              "ResNet generator)")
    # Batch norm has a scale; instance norm none, but biased convolutions (and, in files written by
    # versions from 2018, running statistics it never uses in training mode, dropped here).
    norm = "batch" if f"{first_norm}.weight" in state else "instance" if f"{inner_conv}.bias" in state else "none"
    drop = ("num_batches_tracked",) if norm == "batch" else ("num_batches_tracked", "running_mean", "running_var")
    state = {f"net.{k}": v for k, v in state.items() if not k.endswith(drop)}
    try:
        cfg = TranslationConfig(norm=norm, **settings)
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None
    return Imported(cfg, {"G": state}, {"imported from": "pytorch-CycleGAN-and-pix2pix generator"}, "pix2pix")

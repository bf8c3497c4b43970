"""Checkpoints of other implementations: recognise, import exactly, export.

`sniff` tells a gankd file, a PyTorch file and a pickle apart by their first bytes; `read` turns a
foreign file into gankd terms (`Imported`): a PyTorch file is loaded once, safely, and its
contents say whose it is (rosinality's StyleGAN2 dict, or a pix2pix/CycleGAN generator's state
dict); a pickle is NVlabs'. Nothing here unpickles code, and nothing here imports the checkpoint
module (gankd.checkpoint turns an `Imported` into a checkpoint).
"""

from __future__ import annotations

from pathlib import Path

from gankd.errors import CheckpointError
from gankd.interop.imported import Imported

FORMATS = {"gankd": "gankd safetensors", "rosinality": "rosinality .pt", "nvlabs": "NVlabs .pkl",
           "pix2pix": "pytorch-CycleGAN-and-pix2pix .pth"}
LEGACY_TORCH = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # torch.save before 1.6: a pickled magic number
W_AVG_SAMPLES = 4096


def sniff(path: Path) -> str:
    """'gankd', 'torch' (any torch.save file) or 'nvlabs' (any other pickle)."""
    if path.is_dir():
        raise CheckpointError(f"{path}: a folder, neither a checkpoint file nor a run folder (no checkpoints/ inside)")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) >= 9 and head[8:9] == b"{":
        return "gankd"
    if head.startswith(b"PK\x03\x04") or head.startswith(LEGACY_TORCH):
        return "torch"
    if head[:1] == b"\x80":
        return "nvlabs"
    raise CheckpointError(f"{path}: unknown checkpoint format (expected gankd .safetensors, "
                          "rosinality .pt, NVlabs .pkl or a pix2pix/CycleGAN .pth)")


def read(path: Path, fmt: str) -> Imported:
    """Import a foreign checkpoint; StyleGAN2 generators without a truncation average get an
    estimated one."""
    from gankd.interop import nvlabs, pix2pix, rosinality
    from gankd.interop.torch_file import load_torch_file
    from gankd.nets.stylegan2 import StyleGAN2Config

    if fmt == "nvlabs":
        imported = nvlabs.read(path)
    else:
        data = load_torch_file(path)
        reader = next((m for m in (rosinality, pix2pix) if m.looks_like(data)), None)
        if reader is None:
            raise CheckpointError(f"{path}: a PyTorch file, but neither a rosinality StyleGAN2 checkpoint (g, g_ema "
                                  "or d state dicts) nor a pix2pix/CycleGAN generator's state dict")
        imported = reader.from_data(path, data)
    if not isinstance(imported.config, StyleGAN2Config):
        return imported
    for role, state in imported.states.items():
        if role != "D" and "w_avg" not in state:
            _estimate_w_avg(imported, role)
            imported.facts["w_avg"] = f"estimated: mean w of {W_AVG_SAMPLES} random z (seed 0)"
    return imported


def _estimate_w_avg(imported: Imported, role: str) -> None:
    from gankd.nets.stylegan2 import Generator

    G = Generator(imported.config)
    missing = G.load_state_dict(imported.states[role], strict=False).missing_keys
    if missing != ["w_avg"]:
        raise CheckpointError(f"{role} weights do not fit the inferred architecture (missing {missing[:3]})")
    imported.states[role]["w_avg"] = G.estimate_w_avg(W_AVG_SAMPLES, seed=0).clone()

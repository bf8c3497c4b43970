"""Import and export of rosinality/stylegan2-pytorch checkpoints (`.pt`, used by CDC, AdAM, RICK, SAM).

The file is a `torch.save` dict: `g`, `d`, `g_ema` (state dicts), optimizer states, `args` (an
argparse.Namespace), `ada_aug_p`; checkpoints converted from TensorFlow hold `g_ema` and
`latent_avg` and sometimes `g`, `d`. gankd's StyleGAN2 uses rosinality's parameter names, so the
state dicts map key for key, except that rosinality also saves its fixed blur kernels (`*.kernel`)
and keeps the truncation average outside the generator (`latent_avg` here, `w_avg` in gankd).

Loading uses `torch.load(weights_only=True)`, which builds tensors and containers only;
argparse.Namespace is allowed in addition, because every rosinality training checkpoint has one.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import torch
from torch import nn

from gankd.errors import CheckpointError
from gankd.interop.imported import Imported, infer_channels
from gankd.nets.layers import make_kernel
from gankd.nets.stylegan2 import StyleGAN2Config

ROLES = {"g": "G", "g_ema": "G_ema", "d": "D"}  # rosinality key -> gankd role
RESERVED = {"c_dim": 0, "img_channels": 3, "lr_mlp": 0.01, "mbstd_group": 4, "blur_kernel": (1, 3, 3, 1),
            "conv_clamp": None, "d_architecture": "resnet"}  # fixed in rosinality's model.py and train.py


def rosinality_channels(res: int, multiplier: int) -> int:
    return 512 if res <= 32 else 2 ** (14 - int(math.log2(res))) * multiplier


def looks_like(data) -> bool:
    return isinstance(data, dict) and any(isinstance(data.get(k), dict) for k in ROLES)


def from_data(path: Path, data: dict) -> Imported:
    args = data.get("args")
    if getattr(args, "arch", "stylegan2") != "stylegan2" or any("dwt" in k for k in data.get("g_ema", {})):
        raise CheckpointError(f"{path}: a SWAGAN checkpoint; gankd imports rosinality's StyleGAN2 only")
    states = {ROLES[k]: _drop_kernels(path, data[k]) for k in ROLES if isinstance(data.get(k), dict)}
    settings: dict = dict(RESERVED)
    channels: dict[int, int] = {}
    for role, state in states.items():
        found, ch = (_discriminator_settings if role == "D" else _generator_settings)(path, state)
        channels.update(ch)
        for key, value in found.items():
            if settings.setdefault(key, value) != value:
                raise CheckpointError(f"{path}: {role} disagrees with the other networks on {key}")
    base, cmax = infer_channels(path, channels)
    cfg = StyleGAN2Config(**settings, channel_base=base, channel_max=cmax)
    facts: dict = {"imported from": "rosinality stylegan2-pytorch checkpoint"}
    latent_avg = data.get("latent_avg")
    if isinstance(latent_avg, torch.Tensor):
        for role in ("G", "G_ema"):
            if role in states:
                states[role]["w_avg"] = latent_avg.detach().float().reshape(-1).clone()
    step = re.fullmatch(r"(\d+)", path.stem)
    if step:
        facts["step (from file name)"] = int(step.group(1))
    if isinstance(data.get("ada_aug_p"), (int, float)):
        facts["ADA p"] = float(data["ada_aug_p"])
    return Imported(cfg, states, facts, "rosinality")


def _drop_kernels(path: Path, state: dict) -> dict[str, torch.Tensor]:
    """Remove the saved FIR kernels, after checking they are the [1, 3, 3, 1] filter gankd rebuilds."""
    base = make_kernel((1, 3, 3, 1))
    out = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: entry {key} is not a tensor")
        if key.endswith(".kernel"):
            gain = 4.0 if key.endswith(("upsample.kernel", "conv.blur.kernel")) else 1.0  # up-sampling FIRs
            if value.shape != (4, 4) or not torch.allclose(value.float(), base * gain):
                raise CheckpointError(f"{path}: {key} is not the [1, 3, 3, 1] blur kernel gankd supports")
            continue
        out[key] = value.detach().float().clone()
    return out


def _indices(state: dict, pattern: str) -> list[int]:
    return sorted({int(m.group(1)) for k in state if (m := re.fullmatch(pattern, k))})


def _generator_settings(path: Path, state: dict) -> tuple[dict, dict[int, int]]:
    try:
        n_mlp = len(_indices(state, r"style\.(\d+)\.weight"))
        latent = state["style.1.weight"].shape[1]
        log_size = len(_indices(state, r"to_rgbs\.(\d+)\.bias")) + 2
        channels = {4: state["conv1.conv.weight"].shape[1]}
        for k in range(log_size - 2):
            channels[2 ** (k + 3)] = state[f"convs.{2 * k + 1}.conv.weight"].shape[1]
        img_channels = state["to_rgb1.conv.weight"].shape[1]
    except KeyError as err:
        raise CheckpointError(f"{path}: generator state dict lacks {err}, so it is not rosinality's StyleGAN2") from None
    return {"resolution": 2 ** log_size, "z_dim": latent, "w_dim": latent, "n_mlp": n_mlp,
            "img_channels": img_channels}, channels


def _discriminator_settings(path: Path, state: dict) -> tuple[dict, dict[int, int]]:
    try:
        blocks = _indices(state, r"convs\.(\d+)\.conv1\.0\.weight")
        log_size = len(blocks) + 2
        channels = {2 ** log_size: state["convs.0.0.weight"].shape[0], 4: state["final_conv.0.weight"].shape[0]}
        for j in blocks:
            channels[2 ** (log_size - j + 1)] = state[f"convs.{j}.conv1.0.weight"].shape[0]
        img_channels = state["convs.0.0.weight"].shape[1]
    except KeyError as err:
        raise CheckpointError(f"{path}: discriminator state dict lacks {err}, "
                              "so it is not rosinality's StyleGAN2") from None
    return {"resolution": 2 ** log_size, "img_channels": img_channels}, channels


def export_problems(cfg: StyleGAN2Config) -> list[str]:
    """What rosinality's model cannot represent in this config (empty when it can)."""
    problems = [f"{k}={getattr(cfg, k)!r} (rosinality: {v!r})" for k, v in RESERVED.items()
                if getattr(cfg, k) != v]
    if cfg.z_dim != cfg.w_dim:
        problems.append(f"z_dim {cfg.z_dim} != w_dim {cfg.w_dim}")
    fits = any(all(cfg.channels(2 ** r) == rosinality_channels(2 ** r, m) for r in range(2, cfg.log_size + 1))
               for m in (1, 2))
    if not fits:
        problems.append("channel counts other than rosinality's (512 up to 32 pixels, then 16384 or 32768 / res)")
    return problems


def write(nets: dict[str, nn.Module], path: Path) -> bytes:
    """The bytes of a rosinality `.pt` holding g, g_ema, d (those present) and latent_avg."""
    cfg = next(iter(nets.values())).cfg
    problems = export_problems(cfg)
    if problems:
        raise CheckpointError(f"{path}: rosinality's StyleGAN2 cannot hold this model: {'; '.join(problems)}")
    keys = {role: key for key, role in ROLES.items()}
    data: dict = {}
    for role, net in nets.items():
        state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items() if k != "w_avg"}
        state.update({k: v.detach().cpu().clone() for k, v in net.named_buffers() if k.endswith(".kernel")})
        data[keys[role]] = state
    gen = nets.get("G_ema", nets.get("G"))
    if gen is not None:
        data["latent_avg"] = gen.w_avg.detach().cpu().clone()
    buffer = io.BytesIO()
    torch.save(data, buffer)
    return buffer.getvalue()

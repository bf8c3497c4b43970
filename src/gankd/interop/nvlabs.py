"""Import of NVlabs StyleGAN2-ADA pickles (stylegan2-ada-pytorch, and StyleGAN2 nets of stylegan3).

Their `.pkl` is a pickle of the networks themselves: each module is stored by
`torch_utils.persistence` as its source code plus its `__dict__`, and unpickling normally
executes that source. Here the source is never run: a stand-in for their reconstruct function
keeps the class name and the state (parameters, buffers, submodules, settings such as
`conv_clamp`), and everything is rebuilt from those, through `safe_pickle`.

Conventions bridged (from NVlabs' `training/networks.py`):
- fully connected `fc{i}` -> `style.{i+1}`; modulated weights gain a leading batch axis;
- scalar `noise_strength` -> `noise.weight`; `noise_const` [r, r] -> `noises.noise_{i}` [1, 1, r, r];
- generator blocks `b{res}` with `conv0` (2x up), `conv1`, `torgb`; discriminator blocks `b{res}`
  with `fromrgb`, `conv0`, `conv1` (2x down), `skip`, and the epilogue `b4` (`conv`, `fc`, `out`);
- the conditional discriminator's `mapping` (embed + MLP) -> `embed`, `cmap` (`d_cond="cmap"`).
NVlabs' fp16 layers run in fp32 here, which matches their `force_fp32=True` output.
"""

from __future__ import annotations

import math
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from gankd.errors import CheckpointError
from gankd.interop.imported import Imported, infer_channels
from gankd.interop.safe_pickle import UnsafePickleError, safe_load
from gankd.nets.layers import make_kernel
from gankd.nets.stylegan2 import StyleGAN2Config


@dataclass
class Persistent:
    """What a pickled NVlabs module holds, without its code: class name and `__dict__`."""

    class_name: str
    state: dict
    version: int | None = None

    def child(self, name: str) -> "Persistent | None":
        return (self.state.get("_modules") or {}).get(name)


def _reconstruct(meta: dict) -> Persistent:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise pickle.UnpicklingError("unexpected persistent object")
    return Persistent(str(meta.get("class_name")), dict(meta.get("state") or {}), meta.get("version"))


STAND_INS = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct,
    ("dnnlib.util", "EasyDict"): dict,
    ("dnnlib", "EasyDict"): dict,
}
HINTS = {
    "dnnlib.tflib": "this is a TensorFlow StyleGAN pickle; convert it first (NVlabs' legacy.py, or rosinality's "
                    "convert_weight.py), then import the result",
    "torch_utils": "an NVlabs object gankd does not know how to rebuild without running its code",
}


def is_nvlabs(data) -> bool:
    return isinstance(data, dict) and any(isinstance(data.get(k), Persistent) for k in ("G", "G_ema", "D"))


def load_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            data = safe_load(f, STAND_INS, HINTS)
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{path}: {err}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, RuntimeError, AttributeError) as err:
        raise CheckpointError(f"{path}: a truncated or damaged pickle ({str(err).splitlines()[0][:120]})") from None
    if not is_nvlabs(data):
        raise CheckpointError(f"{path}: a pickle, but not an NVlabs network pickle (no G, G_ema or D)")
    return data


def read(path: Path) -> Imported:
    data = load_pickle(path)
    roles = {role: data[role] for role in ("G", "G_ema", "D") if isinstance(data.get(role), Persistent)}
    gens = {r: net for r, net in roles.items() if r != "D"}
    settings = [_generator_settings(path, net) for net in gens.values()]
    if "D" in roles:
        settings.append(_discriminator_settings(path, roles["D"]))
    merged: dict = {}
    for s in settings:
        for key, value in s.items():
            if key == "channels":
                merged.setdefault(key, {}).update(value)
            elif merged.setdefault(key, value) != value:
                raise CheckpointError(f"{path}: G and D disagree on {key} ({merged[key]} vs {value}); "
                                      "gankd keeps one setting for both")
    channels = merged.pop("channels")
    base, cmax = infer_channels(path, channels)
    cfg = StyleGAN2Config(**merged, channel_base=base, channel_max=cmax)
    states = {r: _generator_state(net, cfg) for r, net in gens.items()}
    if "D" in roles:
        states["D"] = _discriminator_state(roles["D"], cfg)
    facts = {"imported from": "NVlabs StyleGAN2-ADA pickle"}
    kimg = re.search(r"network-snapshot-(\d+)", path.name)
    if kimg:
        facts["kimg (from file name)"] = int(kimg.group(1))
    training_set = data.get("training_set_kwargs") or {}
    if isinstance(training_set, dict) and training_set.get("path"):
        facts["data"] = str(training_set["path"])
    return Imported(cfg, states, facts, "nvlabs")


def _attr(net: Persistent, name: str, default=None):
    return net.state.get(name, default)


def _need(path: Path, ok: bool, what: str) -> None:
    if not ok:
        raise CheckpointError(f"{path}: unsupported NVlabs network: {what}")


def _check_filter(path: Path, net: Persistent) -> None:
    f = (net.state.get("_buffers") or {}).get("resample_filter")
    if f is not None:
        _need(path, f.shape == (4, 4) and torch.allclose(f.float(), make_kernel((1, 3, 3, 1))),
              "a resample filter other than [1, 3, 3, 1]")


def _lr_mul(net: Persistent) -> float:
    fc0 = net.child("fc0")
    return float(_attr(fc0, "bias_gain", 0.01)) if fc0 else 0.01


def _generator_settings(path: Path, G: Persistent) -> dict:
    _need(path, G.class_name == "Generator", f"top-level class {G.class_name}")
    synthesis, mapping = G.child("synthesis"), G.child("mapping")
    _need(path, synthesis is not None and mapping is not None, "no synthesis or mapping network")
    _need(path, synthesis.child("b4") is not None, "not a StyleGAN2 synthesis network (StyleGAN3 generators "
          "are not supported; StyleGAN2 pickles from the stylegan3 repository are)")
    res = int(_attr(G, "img_resolution"))
    channels, clamps = {}, set()
    for r in (2 ** i for i in range(2, int(math.log2(res)) + 1)):
        block = synthesis.child(f"b{r}")
        _need(path, block is not None, f"synthesis block b{r} missing")
        _need(path, _attr(block, "architecture", "skip") == "skip",
              f"generator architecture {_attr(block, 'architecture')!r} (only 'skip', which all NVlabs configs use)")
        _check_filter(path, block)
        for layer in ("conv0", "conv1"):
            conv = block.child(layer)
            if conv is None:
                continue
            _need(path, _attr(conv, "activation", "lrelu") == "lrelu", "an activation other than lrelu")
            _need(path, _attr(conv, "use_noise", True), "synthesis layers without noise inputs")
            clamps.add(_attr(conv, "conv_clamp"))
        channels[r] = _tensor(block.child("conv1"), "weight").shape[0]
    fcs = [k for k in (mapping.state.get("_modules") or {}) if re.fullmatch(r"fc\d+", k)]
    w_dim, z_dim, c_dim = int(_attr(G, "w_dim")), int(_attr(G, "z_dim")), int(_attr(G, "c_dim"))
    widths = {_tensor(mapping.child(k), "weight").shape[0] for k in fcs}
    _need(path, widths == {w_dim}, "mapping layers narrower or wider than w_dim")
    if c_dim:
        _need(path, _tensor(mapping.child("embed"), "weight").shape[0] == w_dim,
              "a label embedding whose width differs from w_dim")
    _need(path, len(clamps) == 1, "different conv_clamp values across layers")
    return {"resolution": res, "img_channels": int(_attr(G, "img_channels")), "z_dim": z_dim, "w_dim": w_dim,
            "c_dim": c_dim, "n_mlp": len(fcs), "lr_mlp": _lr_mul(mapping), "conv_clamp": clamps.pop(),
            "channels": channels}


def _discriminator_settings(path: Path, D: Persistent) -> dict:
    _need(path, D.class_name == "Discriminator", f"discriminator class {D.class_name}")
    res = int(_attr(D, "img_resolution"))
    first = D.child(f"b{res}")
    _need(path, first is not None, f"discriminator block b{res} missing")
    arch = _attr(first, "architecture", "resnet")
    _need(path, arch in ("resnet", "orig"), f"discriminator architecture {arch!r} (only 'resnet' and 'orig')")
    channels, clamps = {}, set()
    for r in (2 ** i for i in range(int(math.log2(res)), 2, -1)):
        block = D.child(f"b{r}")
        _need(path, block is not None and (r == res) == (block.child("fromrgb") is not None),
              f"discriminator block b{r} missing or of an unknown layout")
        _check_filter(path, block)
        channels[r] = _tensor(block.child("conv0"), "weight").shape[0]
        clamps |= {_attr(block.child(n), "conv_clamp") for n in ("fromrgb", "conv0", "conv1") if block.child(n)}
    epilogue = D.child("b4")
    mbstd = epilogue.child("mbstd")
    _need(path, mbstd is not None and _attr(mbstd, "num_channels", 1) == 1 and _attr(mbstd, "group_size"),
          "a minibatch-stddev layer other than one channel over a fixed group size")
    conv = epilogue.child("conv")
    clamps.add(_attr(conv, "conv_clamp"))
    channels[4] = _tensor(conv, "weight").shape[0]
    _need(path, len(clamps) == 1, "different conv_clamp values across layers")
    settings = {"resolution": res, "img_channels": int(_attr(D, "img_channels")), "c_dim": int(_attr(D, "c_dim")),
                "mbstd_group": int(_attr(mbstd, "group_size")), "conv_clamp": clamps.pop(),
                "d_architecture": arch, "channels": channels}
    if settings["c_dim"]:
        mapping = D.child("mapping")
        _need(path, int(_attr(epilogue, "cmap_dim")) == channels[4], "a cmap_dim other than the 4x4 channel count")
        settings.update(d_cond="cmap", d_cmap_layers=int(_attr(mapping, "num_layers")), lr_mlp=_lr_mul(mapping))
    return settings


def _tensor(net: Persistent, name: str) -> torch.Tensor:
    """A parameter, or a buffer (NVlabs stores frozen FreezeD layers as buffers)."""
    for group in ("_parameters", "_buffers"):
        t = (net.state.get(group) or {}).get(name)
        if t is not None:
            return t.detach().float().clone()
    raise KeyError(name)


def _linear(out: dict, net: Persistent, name: str) -> None:
    out[f"{name}.weight"] = _tensor(net, "weight")
    out[f"{name}.bias"] = _tensor(net, "bias")


def _styled(out: dict, layer: Persistent, name: str, noise_index: int, noises: dict) -> None:
    out[f"{name}.conv.weight"] = _tensor(layer, "weight")[None]
    _linear(out, layer.child("affine"), f"{name}.conv.modulation")
    out[f"{name}.noise.weight"] = _tensor(layer, "noise_strength").reshape(1)
    out[f"{name}.activate.bias"] = _tensor(layer, "bias")
    noises[f"noises.noise_{noise_index}"] = _tensor(layer, "noise_const")[None, None]


def _to_rgb(out: dict, layer: Persistent, name: str) -> None:
    out[f"{name}.conv.weight"] = _tensor(layer, "weight")[None]
    _linear(out, layer.child("affine"), f"{name}.conv.modulation")
    out[f"{name}.bias"] = _tensor(layer, "bias").reshape(1, -1, 1, 1)


def _generator_state(G: Persistent, cfg: StyleGAN2Config) -> dict[str, torch.Tensor]:
    mapping, synthesis = G.child("mapping"), G.child("synthesis")
    out: dict[str, torch.Tensor] = {}
    for i in range(cfg.n_mlp):
        _linear(out, mapping.child(f"fc{i}"), f"style.{i + 1}")
    if cfg.c_dim:
        _linear(out, mapping.child("embed"), "embed")
    if "w_avg" in (mapping.state.get("_buffers") or {}):
        out["w_avg"] = _tensor(mapping, "w_avg")
    noises: dict[str, torch.Tensor] = {}
    b4 = synthesis.child("b4")
    out["input.input"] = _tensor(b4, "const")[None]
    _styled(out, b4.child("conv1"), "conv1", 0, noises)
    _to_rgb(out, b4.child("torgb"), "to_rgb1")
    for k, log_res in enumerate(range(3, cfg.log_size + 1)):
        block = synthesis.child(f"b{2 ** log_res}")
        _styled(out, block.child("conv0"), f"convs.{2 * k}", 2 * k + 1, noises)
        _styled(out, block.child("conv1"), f"convs.{2 * k + 1}", 2 * k + 2, noises)
        _to_rgb(out, block.child("torgb"), f"to_rgbs.{k}")
    return {**out, **noises}


def _conv(out: dict, layer: Persistent, name: str, weight_index: int) -> None:
    """A Conv2dLayer onto a ConvLayer Sequential: weight at `weight_index`, bias in the activation after it."""
    out[f"{name}.{weight_index}.weight"] = _tensor(layer, "weight")
    out[f"{name}.{weight_index + 1}.bias"] = _tensor(layer, "bias")


def _discriminator_state(D: Persistent, cfg: StyleGAN2Config) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    _conv(out, D.child(f"b{cfg.resolution}").child("fromrgb"), "convs.0", 0)
    for j, log_res in enumerate(range(cfg.log_size, 2, -1), start=1):
        block = D.child(f"b{2 ** log_res}")
        _conv(out, block.child("conv0"), f"convs.{j}.conv1", 0)
        _conv(out, block.child("conv1"), f"convs.{j}.conv2", 1)
        if cfg.d_architecture == "resnet":
            out[f"convs.{j}.skip.1.weight"] = _tensor(block.child("skip"), "weight")
    epilogue = D.child("b4")
    _conv(out, epilogue.child("conv"), "final_conv", 0)
    _linear(out, epilogue.child("fc"), "final_linear.0")
    _linear(out, epilogue.child("out"), "final_linear.1")
    if cfg.c_dim:
        mapping = D.child("mapping")
        _linear(out, mapping.child("embed"), "embed")
        for i in range(cfg.d_cmap_layers):
            _linear(out, mapping.child(f"fc{i}"), f"cmap.{i}")
    return out

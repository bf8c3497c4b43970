"""`gankd export`: a translation generator (a distilled student, or any pix2pix/CycleGAN model) in
forms that run without gankd, the point of compressing it.

    OUT/generator.pth   the state dict in pytorch-CycleGAN-and-pix2pix's layout (their code, and
                        `gankd translate`, load it with weights only)
    OUT/generator.pt    TorchScript: torch.jit.load(path)(x), x in [-1, 1], [N, C, R, R]
    OUT/generator.onnx  ONNX (opset 17, dynamic batch), checked with onnxruntime where it is installed
    OUT/export.json     the model, and each form's largest difference from gankd's own forward

The scripted and ONNX forms compute what `gankd translate` computes (each image normalised by its
own statistics: batch norm in training mode on one image is instance norm with the same scale and
shift), with dropout off: a deployed model is deterministic, where pix2pix's test time samples
dropout.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from gankd.checkpoint import load_checkpoint
from gankd.errors import GankdError
from gankd.fileio import atomic_write, check_new_dir, new_dir
from gankd.runs import checkpoint_of


def deployable(G: nn.Module) -> nn.Module:
    """A copy of G that computes `translate`'s forward on any batch, image by image: batch norm
    becomes instance norm with its scale and shift; dropout is off."""
    net = copy.deepcopy(G).eval().requires_grad_(False)
    for parent in list(net.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.BatchNorm2d):
                inst = nn.InstanceNorm2d(child.num_features, eps=child.eps, affine=True)
                inst.weight.data.copy_(child.weight.data)
                inst.bias.data.copy_(child.bias.data)
                setattr(parent, name, inst.requires_grad_(False))
    return net


class Plain(nn.Module):
    """The generator's forward alone (no condition input, no feature taps), for tracing."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.net = G.net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def export(ckpt: str | os.PathLike, out: str | os.PathLike, direction: str = "ab", force: bool = False) -> dict:
    """Write the forms of the module's docstring; returns export.json's contents."""
    path = checkpoint_of(ckpt)
    if path is None:
        raise GankdError(f"{ckpt}: not a checkpoint or run folder")
    model = load_checkpoint(path).require("translation", "gankd export")
    role = {"ab": "G_AB" if "G_AB" in model.roles else "G", "ba": "G_BA"}.get(direction)
    if role is None or role not in model.roles:
        raise GankdError(f"--direction {direction}: this model translates {'both ways (ab, ba)' if 'G_BA' in model.roles else 'one way (ab)'}")
    cfg = model.config
    if cfg.cond_dim:
        raise GankdError(f"{path}: a conditional generator (cond_dim {cfg.cond_dim}); export takes plain ones")
    check_new_dir(out, force)
    G = model.network(role)
    plain = Plain(deployable(G))
    probe = torch.rand(2, cfg.in_channels, cfg.resolution, cfg.resolution, generator=torch.Generator().manual_seed(0))
    probe = probe * 2 - 1
    with torch.no_grad():
        expected = plain(probe)
    folder = new_dir(out, force)
    state = {k.removeprefix("net."): v.detach().clone() for k, v in G.state_dict().items()}
    torch.save(state, folder / "generator.pth")
    with warnings.catch_warnings():  # the tracer's and exporter's notes on code paths a plain generator lacks
        warnings.simplefilter("ignore")
        scripted = torch.jit.trace(plain, probe)
        scripted.save(str(folder / "generator.pt"))
        reloaded = torch.jit.load(str(folder / "generator.pt"))(probe)
        onnx = export_onnx(plain, probe, expected, folder / "generator.onnx")
    report = {"checkpoint": str(path), "role": role, "config": cfg.to_dict(),
              "parameters": sum(p.numel() for p in G.parameters()),
              "max_difference": {"torchscript": float((reloaded - expected).abs().max()), **onnx}}
    atomic_write(folder / "export.json", (json.dumps(report, indent=1) + "\n").encode())
    return report


def export_onnx(net: nn.Module, probe: torch.Tensor, expected: torch.Tensor, path: Path) -> dict:
    """ONNX through torch.onnx, and its largest difference under onnxruntime ("not checked" without it)."""
    try:
        torch.onnx.export(net, (probe,), str(path), input_names=["input"], output_names=["output"], opset_version=17,
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, dynamo=False)
    except Exception as err:  # torch.onnx needs the onnx package; say why and keep the other forms
        return {"onnx": f"not written ({type(err).__name__}: {str(err).splitlines()[0][:120]})"}
    try:
        import onnxruntime
    except ImportError:
        return {"onnx": "not checked (onnxruntime is not installed)"}
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": probe.numpy()})[0]
    return {"onnx": float((torch.from_numpy(got) - expected).abs().max())}

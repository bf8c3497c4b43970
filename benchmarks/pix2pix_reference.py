"""Check gankd's translation networks and its import of pix2pix/CycleGAN generators against the
original code, and write the reference data that tests/test_translation.py replays offline.

Needs the original `models/networks.py` of junyanz/pytorch-CycleGAN-and-pix2pix (not part of
gankd, never committed):
  python benchmarks/pix2pix_reference.py --networks path/to/pytorch-CycleGAN-and-pix2pix/models/networks.py

For a U-Net (pix2pix: batch norm, dropout, 64 px, 6 levels) and a 6-block ResNet generator
(CycleGAN: instance norm), it builds the original network, fills it with deterministic values,
saves its state dict as the original code does (`torch.save(net.state_dict())`), imports that
file with gankd, and compares outputs on the same inputs: the U-Net in eval mode (running
statistics, no dropout), the ResNet in training mode (instance statistics; the two coincide for
it). The PatchGAN is compared too, its state dict loaded directly. It prints the largest
differences, writes them as JSON, and writes tests/data/pix2pix_reference.safetensors (the
original state dicts, inputs and outputs).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from foreign_formats import fill  # noqa: E402

from gankd.checkpoint import load_checkpoint  # noqa: E402
from gankd.nets import PatchDiscriminator  # noqa: E402

RES, NGF, BATCH = 64, 4, 3


def translation_fill(name: str, t: torch.Tensor) -> torch.Tensor:
    """Deterministic values at the scale of trained weights (unit-size activations)."""
    x = fill(name, t.shape)
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "running_var":
        return 1 + 0.5 * x.abs()
    if leaf in ("bias", "running_mean"):
        return 0.1 * x
    if t.dim() == 1:  # norm scales
        return 1 + 0.1 * x
    fan_in = t[0].numel() if t.dim() > 1 else 1
    return x / fan_in ** 0.5


def filled(net: torch.nn.Module, prefix: str) -> torch.nn.Module:
    with torch.no_grad():
        for name, t in list(net.named_parameters()) + list(net.named_buffers()):
            if t.is_floating_point():
                t.copy_(translation_fill(f"{prefix}.{name}", t))
    return net


def cases(original):
    batch, instance = original.get_norm_layer("batch"), original.get_norm_layer("instance")
    return {
        "unet": (original.UnetGenerator(3, 3, 6, NGF, norm_layer=batch, use_dropout=True), "eval"),
        "resnet_6blocks": (original.ResnetGenerator(3, 3, NGF, norm_layer=instance, n_blocks=6), "train"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=Path, required=True, help="the original models/networks.py")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "pix2pix_reference.safetensors")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "pix2pix_reference.json")
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("original_networks", args.networks)
    original = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(original)
    from safetensors.torch import save_file

    torch.manual_seed(0)
    inputs = torch.rand(BATCH, 3, RES, RES) * 2 - 1
    saved, report = {"inputs": inputs}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for case, (net, mode) in cases(original).items():
            net = filled(net, case).train(mode == "train")
            with torch.no_grad():
                expected = net(inputs)
            path = Path(tmp) / f"{case}_net_G.pth"
            torch.save(net.state_dict(), path)
            G = load_checkpoint(path).network("G").train(mode == "train")
            with torch.no_grad():
                got = G(inputs)
            report[case] = {"max_abs_diff": float((got - expected).abs().max()), "mode": mode,
                            "config": load_checkpoint(path).meta["config"]}
            saved.update({f"{case}.state.{k}": v for k, v in net.state_dict().items()})
            saved[f"{case}.output"] = expected
        D_orig = filled(original.NLayerDiscriminator(6, NGF, 3, norm_layer=original.get_norm_layer("batch")), "d")
        D = PatchDiscriminator(dataclasses.replace(load_checkpoint(Path(tmp) / "unet_net_G.pth").config, ndf=NGF))
        D.load_state_dict(D_orig.state_dict())
        pair = torch.cat([inputs, saved["unet.output"]], 1)
        with torch.no_grad():
            report["patchgan"] = {"max_abs_diff": float((D.eval()(pair) - D_orig.eval()(pair)).abs().max())}
    save_file({k: v.contiguous() for k, v in saved.items()}, str(args.out),
              metadata={"cases": json.dumps({k: v["mode"] for k, v in report.items() if "mode" in v})})
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    for case, row in report.items():
        print(f"{case:16s} max |gankd - original| = {row['max_abs_diff']:.3g}")
    print(f"{args.out}, {args.json}")


if __name__ == "__main__":
    main()

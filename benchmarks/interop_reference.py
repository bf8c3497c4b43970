"""Check gankd's checkpoint import against the original StyleGAN2 implementations, and write the
reference data that tests/test_interop.py replays offline.

Needs local clones (not part of gankd, never committed):
  git clone https://github.com/rosinality/stylegan2-pytorch
  git clone https://github.com/NVlabs/stylegan2-ada-pytorch
  python benchmarks/interop_reference.py --rosinality stylegan2-pytorch --nvlabs stylegan2-ada-pytorch

For each case it builds the original networks, fills them with `tests/foreign_formats.fill`,
saves them the way the original code does (rosinality: torch.save of its dict; NVlabs: pickle of
the persistent modules), loads that file with gankd, and compares generator images (same z, c,
truncation, constant noise) and discriminator logits. Both run on CPU in float32 (NVlabs with
force_fp32). It prints the max absolute differences, writes them as JSON, and writes
  tests/data/interop_reference.safetensors  inputs and outputs of the original code, rosinality's
                                            key layout (names, shapes, kernels)
  tests/data/nvlabs_<case>.pkl              the NVlabs pickles with every module's source code
                                            replaced by a placeholder (tensors and state kept)
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from foreign_formats import dump_nvlabs, fill, save_rosinality  # noqa: E402

from gankd.checkpoint import load_checkpoint  # noqa: E402
from gankd.interop.nvlabs import load_pickle  # noqa: E402

ROSINALITY = dict(size=16, style_dim=64, n_mlp=2, channel_multiplier=2)
NVLABS = {  # name -> (Generator kwargs, Discriminator kwargs)
    "cond_clamp": (dict(z_dim=16, c_dim=3, w_dim=24, img_resolution=16, img_channels=3,
                        mapping_kwargs=dict(num_layers=2),
                        synthesis_kwargs=dict(channel_base=128, channel_max=16, num_fp16_res=2, conv_clamp=0.6)),
                   dict(c_dim=3, img_resolution=16, img_channels=3, architecture="resnet", channel_base=128,
                        channel_max=16, num_fp16_res=2, conv_clamp=0.6, epilogue_kwargs=dict(mbstd_group_size=2))),
    "orig_d": (dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                    mapping_kwargs=dict(num_layers=3), synthesis_kwargs=dict(channel_base=64, channel_max=16)),
               dict(c_dim=0, img_resolution=16, img_channels=3, architecture="orig", channel_base=64,
                    channel_max=16, epilogue_kwargs=dict(mbstd_group_size=4))),
}
BATCH, PSI = 4, 0.7


def filled(net: torch.nn.Module, prefix: str, skip=(".kernel", "resample_filter")) -> torch.nn.Module:
    with torch.no_grad():
        for name, t in list(net.named_parameters()) + list(net.named_buffers()):
            if not name.endswith(skip):
                t.copy_(fill(f"{prefix}.{name}", t.shape))
    return net.eval()


def inputs(z_dim: int, c_dim: int, res: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {"z": torch.randn(BATCH, z_dim, generator=g), "x": torch.randn(BATCH, 3, res, res, generator=g)}
    if c_dim:
        out["c"] = torch.eye(c_dim)[torch.arange(BATCH) % c_dim]
    return out


def compare(ckpt_path: Path, ref: dict[str, torch.Tensor], c_dim: int) -> dict[str, float]:
    ckpt = load_checkpoint(ckpt_path)
    c = ref.get("c")
    diffs = {}
    with torch.no_grad():
        for role in ("G", "G_ema"):
            if role in ckpt.roles:
                img = ckpt.network(role)(ref["z"], c, truncation_psi=PSI, noise_mode="const")
                diffs[f"{role} image"] = (img - ref[f"{role}_img"]).abs().max().item()
        D = ckpt.network("D")
        diffs["D logits (real)"] = (D(ref["x"], c) - ref["D_real"]).abs().max().item()
        diffs["D logits (fake)"] = (D(ref["G_ema_img"], c) - ref["D_fake"]).abs().max().item()
    return diffs


def rosinality_case(repo: Path, tmp: Path, tensors: dict, layout: dict) -> dict[str, float]:
    import torch.utils.cpp_extension as ext

    ext.load = lambda *a, **k: types.SimpleNamespace()  # its CUDA kernels; the CPU paths are pure torch
    sys.path.insert(0, str(repo))
    import model  # rosinality's model.py

    cfg = ROSINALITY
    nets = {"g": model.Generator(cfg["size"], cfg["style_dim"], cfg["n_mlp"], cfg["channel_multiplier"]),
            "g_ema": model.Generator(cfg["size"], cfg["style_dim"], cfg["n_mlp"], cfg["channel_multiplier"]),
            "d": model.Discriminator(cfg["size"], cfg["channel_multiplier"])}
    nets = {k: filled(v, f"rosinality.{k}") for k, v in nets.items()}
    latent_avg = fill("rosinality.latent_avg", (cfg["style_dim"],))
    ref = inputs(cfg["style_dim"], 0, cfg["size"], seed=1)
    with torch.no_grad():
        for key, role in (("g", "G"), ("g_ema", "G_ema")):
            ref[f"{role}_img"] = nets[key]([ref["z"]], truncation=PSI, truncation_latent=latent_avg,
                                           randomize_noise=False)[0]
        ref["D_real"] = nets["d"](ref["x"])
        ref["D_fake"] = nets["d"](ref["G_ema_img"])
    path = tmp / "rosinality.pt"
    save_rosinality(path, {k: v.state_dict() for k, v in nets.items()}, latent_avg=latent_avg)
    tensors.update({f"rosinality.{k}": v.contiguous() for k, v in ref.items()})
    for key, net in nets.items():
        layout[key] = {name: list(t.shape) for name, t in net.state_dict().items()}
        tensors.update({f"rosinality.kernel.{key}.{n}": t.contiguous()
                        for n, t in net.state_dict().items() if n.endswith(".kernel")})
    return compare(path, ref, 0)


def nvlabs_case(repo: Path, tmp: Path, name: str, tensors: dict, out_dir: Path) -> dict[str, float]:
    sys.path.insert(0, str(repo))
    from training import networks  # NVlabs' training/networks.py

    g_kwargs, d_kwargs = NVLABS[name]
    G = filled(networks.Generator(**g_kwargs), f"nvlabs.{name}.G")
    G_ema = filled(networks.Generator(**g_kwargs), f"nvlabs.{name}.G_ema")
    D = filled(networks.Discriminator(**d_kwargs), f"nvlabs.{name}.D")
    ref = inputs(g_kwargs["z_dim"], g_kwargs["c_dim"], g_kwargs["img_resolution"], seed=2)
    c = ref.get("c", torch.zeros(BATCH, 0))
    with torch.no_grad():
        for role, net in (("G", G), ("G_ema", G_ema)):
            ref[f"{role}_img"] = net(ref["z"], c, truncation_psi=PSI, noise_mode="const", force_fp32=True)
        ref["D_real"] = D(ref["x"], c, force_fp32=True)
        ref["D_fake"] = D(ref["G_ema_img"], c, force_fp32=True)
    real = tmp / f"{name}.pkl"
    with open(real, "wb") as f:  # as NVlabs' training loop writes its snapshots
        pickle.dump(dict(G=G, D=D, G_ema=G_ema, augment_pipe=None,
                         training_set_kwargs=dict(path="datasets/tiny.zip", resolution=g_kwargs["img_resolution"])), f)
    diffs = compare(real, ref, g_kwargs["c_dim"])
    stripped = out_dir / f"nvlabs_{name}.pkl"
    stripped.write_bytes(dump_nvlabs(load_pickle(real)))
    stripped_diffs = compare(stripped, ref, g_kwargs["c_dim"])
    assert stripped_diffs == diffs, "the source-less copy must load exactly like the original pickle"
    tensors.update({f"nvlabs.{name}.{k}": v.contiguous() for k, v in ref.items()})
    return diffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rosinality", type=Path, required=True, help="clone of rosinality/stylegan2-pytorch")
    parser.add_argument("--nvlabs", type=Path, required=True, help="clone of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "data", help="where the test data goes")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "interop_reference.json")
    args = parser.parse_args()
    from safetensors.torch import save_file

    torch.set_grad_enabled(False)
    tensors: dict[str, torch.Tensor] = {}
    layout: dict = {}
    results = {}
    args.data.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        results["rosinality"] = rosinality_case(args.rosinality, Path(tmp), tensors, layout)
        for name in NVLABS:
            results[f"nvlabs {name}"] = nvlabs_case(args.nvlabs, Path(tmp), name, tensors, args.data)
    meta = {"rosinality": json.dumps({"config": ROSINALITY, "layout": layout}), "psi": str(PSI),
            "nvlabs": json.dumps({name: {"c_dim": g["c_dim"]} for name, (g, _) in NVLABS.items()})}
    save_file(tensors, args.data / "interop_reference.safetensors", metadata=meta)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"torch": torch.__version__, "max_abs_diff": results}, indent=1) + "\n")
    for case, diffs in results.items():
        print(case, " ".join(f"{k}: {v:.2e}" for k, v in diffs.items()))
    worst = max(v for d in results.values() for v in d.values())
    print(f"worst max |difference|: {worst:.2e} ({'within' if worst <= 1e-4 else 'ABOVE'} 1e-4)")


if __name__ == "__main__":
    main()

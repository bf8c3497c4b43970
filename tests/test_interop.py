"""Checkpoint import and export against the formats themselves, and the original implementations' outputs.

tests/data/interop_reference.safetensors holds inputs and outputs computed by rosinality's and
NVlabs' own code (benchmarks/interop_reference.py), plus rosinality's key layout; the NVlabs
pickles there were written by NVlabs' code, with each module's source replaced by a placeholder.
"""

import argparse
import io
import json
import pickle
from pathlib import Path

import pytest
import torch
from foreign_formats import dump_nvlabs, fill, save_rosinality
from safetensors import safe_open

from gankd.checkpoint import load_checkpoint, save_checkpoint
from gankd.errors import CheckpointError
from gankd.interop.nvlabs import load_pickle
from gankd.nets import Discriminator, Generator, StyleGAN2Config

DATA = Path(__file__).parent / "data"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def reference():
    with safe_open(str(DATA / "interop_reference.safetensors"), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return {"meta": {k: json.loads(v) for k, v in meta.items()}, "tensors": tensors}


def ref_case(reference, prefix):
    return {k[len(prefix):]: v for k, v in reference["tensors"].items() if k.startswith(prefix)}


def rosinality_states(reference) -> dict[str, dict[str, torch.Tensor]]:
    """The original layout (names, shapes, kernels) with the reference weights."""
    layout, tensors = reference["meta"]["rosinality"]["layout"], reference["tensors"]
    return {role: {name: tensors[f"rosinality.kernel.{role}.{name}"] if name.endswith(".kernel")
                   else fill(f"rosinality.{role}.{name}", shape) for name, shape in keys.items()}
            for role, keys in layout.items()}


def assert_matches(ckpt, ref, psi):
    c = ref.get("c")
    with torch.no_grad():
        for role in ("G", "G_ema"):
            img = ckpt.network(role)(ref["z"], c, truncation_psi=psi, noise_mode="const")
            assert (img - ref[f"{role}_img"]).abs().max() < TOLERANCE, role
        D = ckpt.network("D")
        assert (D(ref["x"], c) - ref["D_real"]).abs().max() < TOLERANCE
        assert (D(ref["G_ema_img"], c) - ref["D_fake"]).abs().max() < TOLERANCE


@pytest.mark.parametrize("zipfile", [True, False], ids=["zip", "legacy"])
def test_rosinality_import_reproduces_the_original_outputs(reference, tmp_path, zipfile):
    path = tmp_path / "550000.pt"
    save_rosinality(path, rosinality_states(reference), legacy=not zipfile,
                    latent_avg=fill("rosinality.latent_avg", (64,)))
    ckpt = load_checkpoint(path)
    assert ckpt.roles == ["G", "G_ema", "D"]
    assert ckpt.meta["step (from file name)"] == 550000 and ckpt.meta["source format"] == "rosinality .pt"
    assert ckpt.config.resolution == 16 and ckpt.config.z_dim == 64 and ckpt.config.n_mlp == 2
    assert_matches(ckpt, ref_case(reference, "rosinality."), float(reference["meta"]["psi"]))


@pytest.mark.parametrize("case", ["cond_clamp", "orig_d"])
def test_nvlabs_import_reproduces_the_original_outputs(reference, case):
    ckpt = load_checkpoint(DATA / f"nvlabs_{case}.pkl")
    cfg = ckpt.config
    assert ckpt.roles == ["G", "G_ema", "D"] and cfg.resolution == 16
    if case == "cond_clamp":
        assert (cfg.c_dim, cfg.conv_clamp, cfg.d_cond, cfg.mbstd_group, cfg.n_mlp) == (3, 0.6, "cmap", 2, 2)
        assert [cfg.channels(r) for r in (4, 8, 16)] == [16, 16, 8]
    else:
        assert (cfg.c_dim, cfg.conv_clamp, cfg.d_architecture, cfg.n_mlp) == (0, None, "orig", 3)
        assert [cfg.channels(r) for r in (4, 8, 16)] == [16, 8, 4]
    assert_matches(ckpt, ref_case(reference, f"nvlabs.{case}."), float(reference["meta"]["psi"]))


def rosinality_sized(res=16, **kw) -> StyleGAN2Config:
    return StyleGAN2Config(resolution=res, z_dim=64, w_dim=64, n_mlp=2, **kw)


def test_round_trip_gankd_rosinality_gankd_is_bit_exact(run_cli, reference, tmp_path):
    torch.manual_seed(0)
    cfg = rosinality_sized()
    G, G_ema, D = Generator(cfg), Generator(cfg), Discriminator(cfg)
    for net in (G, G_ema, D):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.1)  # no parameter left at its initial constant
    G.w_avg.normal_()
    G_ema.w_avg.copy_(G.w_avg)
    original = save_checkpoint(tmp_path / "a.safetensors", {"G": G, "G_ema": G_ema, "D": D}, step=1234)
    code, out, err = run_cli("convert", original, "--out", tmp_path / "b.pt")
    assert code == 0, err
    exported = torch.load(tmp_path / "b.pt", weights_only=True)
    layout = reference["meta"]["rosinality"]["layout"]  # what rosinality's own model saves
    for key in ("g", "g_ema", "d"):
        assert {k: list(v.shape) for k, v in exported[key].items()} == layout[key]
    assert torch.equal(exported["latent_avg"], G_ema.w_avg)
    code, out, err = run_cli("convert", tmp_path / "b.pt", "--out", tmp_path / "c.safetensors")
    assert code == 0, err
    a, c = load_checkpoint(original), load_checkpoint(tmp_path / "c.safetensors")
    assert a.meta["config"] == c.meta["config"] and a.roles == c.roles
    assert a.tensors.keys() == c.tensors.keys()
    assert all(torch.equal(a.tensors[k], c.tensors[k]) for k in a.tensors)
    assert "b.pt (rosinality .pt)" in c.meta["converted from"]


def test_generator_only_checkpoints_load_and_say_so(run_cli, reference, tmp_path):
    states = rosinality_states(reference)
    converted = tmp_path / "stylegan2-ffhq-config-f.pt"  # the layout of rosinality's convert_weight.py
    torch.save({"g_ema": states["g_ema"], "latent_avg": fill("rosinality.latent_avg", (64,))}, converted)
    code, out, err = run_cli("info", converted)
    assert code == 0, err
    assert "discriminator: no" in out and "resolution: 16" in out and "rosinality .pt" in out
    bare = tmp_path / "g_ema_only.pt"
    torch.save({"g_ema": states["g_ema"]}, bare)
    ckpt = load_checkpoint(bare)
    assert ckpt.roles == ["G_ema"] and "estimated" in ckpt.meta["w_avg"]
    assert ckpt.tensors["G_ema.w_avg"].abs().sum() > 0


def test_info_reads_all_three_formats(run_cli, tmp_path):
    code, out, err = run_cli("info", DATA / "nvlabs_cond_clamp.pkl")
    assert code == 0, err
    for needle in ("NVlabs .pkl", "resolution: 16", "mapping layers: 2", "conv_clamp: 0.6", "discriminator: yes",
                   "conditioning dims: 3", "channels: 4: 16, 8: 16, 16: 8", "datasets/tiny.zip"):
        assert needle in out, (needle, out)
    converted = tmp_path / "network-snapshot-000200.safetensors"
    assert run_cli("convert", DATA / "nvlabs_cond_clamp.pkl", "--out", converted)[0] == 0
    code, out, err = run_cli("info", converted)
    assert "gankd v1" in out and "conv_clamp: 0.6" in out and "nvlabs_cond_clamp.pkl (NVlabs .pkl)" in out
    kimg = tmp_path / "network-snapshot-000200.pkl"
    kimg.write_bytes((DATA / "nvlabs_orig_d.pkl").read_bytes())
    code, out, err = run_cli("info", kimg, "--json")
    facts = json.loads(out)
    assert facts["kimg (from file name)"] == 200 and facts["d_architecture"] == "orig"


def test_exports_refuse_what_rosinality_cannot_hold(run_cli, tmp_path):
    code, out, err = run_cli("convert", DATA / "nvlabs_cond_clamp.pkl", "--out", tmp_path / "x.pt")
    assert code == 2 and "cannot hold this model" in err and "conv_clamp" in err
    assert not (tmp_path / "x.pt").exists()
    code, out, err = run_cli("convert", DATA / "nvlabs_orig_d.pkl", "--out", tmp_path / "x.bin")
    assert code == 2 and "--to gankd|rosinality" in err
    existing = tmp_path / "keep.safetensors"
    existing.write_bytes(b"precious")
    code, out, err = run_cli("convert", DATA / "nvlabs_orig_d.pkl", "--out", existing)
    assert code == 2 and "exists" in err and existing.read_bytes() == b"precious"


class RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_pickles_cannot_run_code(run_cli, tmp_path):
    marker = tmp_path / "pwned"
    evil_pkl = tmp_path / "evil.pkl"
    evil_pkl.write_bytes(pickle.dumps({"G": RunsCommand(marker)}))
    code, out, err = run_cli("info", evil_pkl)
    assert code == 2 and "evil.pkl: refused to unpickle" in err and "system" in err, err
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes((DATA / "nvlabs_orig_d.pkl").read_bytes()[:50000])
    code, out, err = run_cli("info", truncated)
    assert code == 2 and "truncated or damaged pickle" in err and len(err.strip().splitlines()) == 1, err
    evil_pt = tmp_path / "evil.pt"
    torch.save({"g_ema": {}, "args": RunsCommand(marker)}, evil_pt)
    code, out, err = run_cli("generate", evil_pt, "--out", tmp_path / "g.png")
    assert code == 2 and "refused to load a pickled" in err and "system" in err, err
    assert not marker.exists()

    # NVlabs layout, but each module's source would create the marker if it were ever executed
    data = load_pickle(DATA / "nvlabs_orig_d.pkl")
    trojan = tmp_path / "trojan.pkl"
    trojan.write_bytes(dump_nvlabs(data, module_src=f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"))
    assert load_checkpoint(trojan).config.d_architecture == "orig"
    assert not marker.exists()


def test_tensorflow_pickles_get_a_pointer_to_conversion(tmp_path):
    stub = tmp_path / "stylegan2-ffhq-config-f.pkl"  # what NVlabs' TensorFlow pickles start with
    stub.write_bytes(b"\x80\x03cdnnlib.tflib.network\nNetwork\nq\x00)\x81q\x01.")
    with pytest.raises(CheckpointError, match="TensorFlow StyleGAN pickle"):
        load_checkpoint(stub)


def test_safe_unpickler_still_builds_tensors():
    from gankd.interop.safe_pickle import safe_load

    value = {"w": torch.nn.Parameter(torch.arange(6.0).reshape(2, 3)), "n": [1, 2.5, "x", None], "s": {3}}
    loaded = safe_load(io.BytesIO(pickle.dumps(value)))
    assert torch.equal(loaded["w"], value["w"]) and loaded["n"] == value["n"] and loaded["s"] == {3}
    with pytest.raises(CheckpointError, match="argparse.Namespace"):
        safe_load(io.BytesIO(pickle.dumps(argparse.Namespace(a=1))))


def test_no_unrestricted_unpickling_anywhere_in_gankd():
    sources = Path(__file__).parents[1].joinpath("src", "gankd").rglob("*.py")
    offending = [f"{p.name}: {needle}" for p in sources for needle in ("weights_only=False", "pickle.load(",
                                                                         "pickle.loads(", "pickle.Unpickler(")
                 if needle in p.read_text()]
    assert offending == []

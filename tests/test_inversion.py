"""GAN inversion (`gankd project`): lower error than the average w, outputs, determinism, bad input."""

import json

import torch
from safetensors import safe_open

from gankd.checkpoint import load_checkpoint
from gankd.data.spec import open_source
from gankd.data.splits import write_images
from gankd.features import load_extractor
from gankd.inversion import project


def shots(tmp_path, n=4):
    folder = tmp_path / "shots"
    write_images(open_source("emoji:group=food,tone=none"), range(n), folder, 32)
    return folder


def test_projection_lowers_both_errors_and_is_independent_per_image():
    G = load_checkpoint("builtin:emoji32").generator()
    with torch.no_grad():
        targets = G(torch.randn(3, G.cfg.z_dim, generator=torch.Generator().manual_seed(1)), noise_mode="const")
    domain = load_extractor("domain")
    together = project(G, targets, domain, steps=15)
    for key in ("pixel_l1", "perceptual"):
        assert all(end < 0.8 * start for start, end in zip(together.start[key], together.end[key]))
    alone = project(G, targets[1:2], domain, steps=15)
    # Equal up to float rounding, which depends on the batch size and grows over the Adam steps
    # (2.4e-4 measured); coupling between images would move w by far more.
    torch.testing.assert_close(alone.w[0], together.w[1], rtol=1e-3, atol=2e-3)
    assert together.w.shape == (3, G.num_ws, G.cfg.w_dim)


def test_project_command_writes_latents_reconstructions_and_errors(run_cli, tmp_path):
    folder = shots(tmp_path)
    code, out, err = run_cli("project", "builtin:emoji32", folder, "--steps", "10", "--space", "w",
                             "--out", tmp_path / "p")
    assert code == 0, err
    report = json.loads((tmp_path / "p" / "projection.json").read_text())
    assert report["end"]["pixel_l1"] < report["start"]["pixel_l1"] and "after 10 steps" in out
    assert len(list((tmp_path / "p" / "reconstructions").glob("*.png"))) == 4
    with safe_open(tmp_path / "p" / "latents.safetensors", "pt") as f:
        w = f.get_tensor("w")
        assert json.loads(f.metadata()["gankd"])["files"] == sorted(report["per_image"], key=list(report["per_image"]).index)
    assert w.shape[0] == 4 and torch.equal(w[:, 0], w[:, -1])  # space w: one w for every layer
    assert (tmp_path / "p" / "side-by-side.png").stat().st_size > 0


def test_project_bad_input_is_one_line(run_cli, tmp_path):
    folder = shots(tmp_path, 2)
    for args, message in ((["--space", "z"], "inversion space must be one of w, w+"),
                          (["--perceptual", "inception"], "no perceptual distance")):
        code, _, err = run_cli("project", "builtin:emoji32", folder, "--out", tmp_path / "x", *args)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "x").exists()

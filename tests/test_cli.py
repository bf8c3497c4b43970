"""The command line: checkpoints, generation, info, data commands, and one-line errors on bad input."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from gankd.checkpoint import load_checkpoint, save_checkpoint
from gankd.errors import GankdError
from gankd.seeds import parse_seeds
from gankd.nets import Discriminator, Generator, StyleGAN2Config


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    cfg = StyleGAN2Config(resolution=16, z_dim=32, w_dim=32, n_mlp=2, channel_base=256, channel_max=32)
    G, D = Generator(cfg), Discriminator(cfg)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_checkpoint(path, {"G": G, "D": D}, step=1234, data="emoji:group=animals")
    return path


def assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gankd: error:"), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_checkpoint_round_trip(ckpt):
    loaded = load_checkpoint(ckpt)
    G = loaded.generator()
    fresh = Generator(loaded.config)
    fresh.load_state_dict({k[2:]: v for k, v in loaded.tensors.items() if k.startswith("G.")})
    z = torch.randn(2, 32)
    assert torch.equal(G(z, noise_mode="const"), fresh.eval()(z, noise_mode="const"))
    assert loaded.meta["step"] == 1234 and set(loaded.roles) == {"G", "D"}


def test_generate_grid_and_files(run_cli, ckpt, tmp_path):
    code, out, _ = run_cli("generate", ckpt, "--seeds", "0-3,7", "--out", tmp_path / "s")
    assert code == 0
    files = sorted(p.name for p in (tmp_path / "s").glob("*.png"))
    assert files == ["seed0000.png", "seed0001.png", "seed0002.png", "seed0003.png", "seed0007.png"]
    code, out, _ = run_cli("generate", ckpt, "--seeds", "0-3,7", "--out", tmp_path / "g.png")
    assert code == 0 and Image.open(tmp_path / "g.png").size == (3 * 66 + 2, 2 * 66 + 2)  # 5 tiles of 64 px, 3 a row
    code, _, _ = run_cli("generate", ckpt, "--seeds", "7", "--out", tmp_path / "again")
    same = [np.asarray(Image.open(tmp_path / d / "seed0007.png")) for d in ("s", "again")]
    assert np.array_equal(*same)  # a seed always gives the same image


def test_seed_lists_parse_and_bad_ones_are_refused():
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    for bad, why in [("5-1", "runs backwards"), ("abc", "bad seeds"), ("-1", "bad seeds"), ("4294967296", r"2\*\*32")]:
        with pytest.raises(GankdError, match=why):
            parse_seeds(bad)


def test_info(run_cli, ckpt):
    code, out, _ = run_cli("info", ckpt, "--json")
    facts = json.loads(out)
    assert code == 0 and facts["resolution"] == 16 and facts["step"] == 1234
    assert facts["data"] == "emoji:group=animals"
    n_params = sum(p.numel() for p in Generator(load_checkpoint(ckpt).config).parameters())
    assert facts["networks"]["G"] == f"{n_params:,} parameters"


def test_data_commands(run_cli, tmp_path):
    code, out, _ = run_cli("data", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and rows["emoji"]["images"] == 3926 and rows["digits"]["images"] == 1797
    assert rows["emoji"]["fields"]["group"] >= 10
    code, out, _ = run_cli("data", "show", "emoji:group=animals,tone=none", "--out", tmp_path / "grid.png", "--n", "16")
    assert code == 0 and Image.open(tmp_path / "grid.png").mode == "RGB"
    code, out, _ = run_cli("data", "export", "digits:digit=3", "--out", tmp_path / "threes", "--res", "16")
    assert code == 0 and len(list((tmp_path / "threes").glob("*.png"))) == 183
    code, out, _ = run_cli("data", "split", "digits:digit=3", "--out", tmp_path / "split", "--shots", "10", "--seed", "0")
    assert code == 0 and len(list((tmp_path / "split" / "train").glob("*.png"))) == 10
    code, out, _ = run_cli("data", "verify", tmp_path / "split")
    assert code == 0 and "OK" in out


def test_bad_data_inputs(run_cli, tmp_path):
    assert_one_line_error(*run_cli("data", "show", tmp_path / "missing")[::2], "no such folder")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(*run_cli("data", "show", tmp_path / "empty")[::2], "is empty")
    (tmp_path / "noimg").mkdir()
    (tmp_path / "noimg" / "a.txt").write_text("x")
    assert_one_line_error(*run_cli("data", "export", tmp_path / "noimg", "--out", tmp_path / "o")[::2], "has no images")
    bad = tmp_path / "bad"
    bad.mkdir()
    Image.new("RGB", (20, 20)).save(bad / "a.png")
    (bad / "b.png").write_bytes((bad / "a.png").read_bytes()[:40])
    assert_one_line_error(*run_cli("data", "export", bad, "--out", tmp_path / "o2", "--res", "16")[::2], "b.png")
    assert_one_line_error(*run_cli("data", "show", "emoji:colour=red")[::2], "no field or option 'colour'")
    assert_one_line_error(*run_cli("data", "show", "emojii")[::2], "unknown data set 'emojii' (did you mean 'emoji'?)")
    assert_one_line_error(*run_cli("data", "show", "emoji:group=dragons")[::2], "no emoji image matches")


def test_small_image_without_upscaling(tmp_path):
    from gankd.data import ImageDataset, open_source
    from gankd.errors import DataError

    d = tmp_path / "small"
    d.mkdir()
    Image.new("RGB", (20, 20)).save(d / "a.png")
    with pytest.raises(DataError, match=r"small/a.png \(20x20\) is smaller than the resolution 32"):
        ImageDataset(open_source(str(d)), 32)


def test_bad_checkpoints(run_cli, ckpt, tmp_path):
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(ckpt.read_bytes()[:5000])
    assert_one_line_error(*run_cli("info", truncated)[::2], "not a readable gankd checkpoint")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, foreign)
    assert_one_line_error(*run_cli("generate", foreign, "--out", tmp_path / "x.png")[::2], "not a gankd checkpoint")
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    assert_one_line_error(*run_cli("info", text)[::2], "unknown checkpoint format")
    assert_one_line_error(*run_cli("info", tmp_path / "nope.safetensors")[::2], "no such checkpoint")
    assert not (tmp_path / "x.png").exists()


def test_outputs_are_never_overwritten(run_cli, ckpt, tmp_path):
    existing = tmp_path / "grid.png"
    existing.write_bytes(b"precious")
    assert_one_line_error(*run_cli("generate", ckpt, "--out", existing)[::2], "exists")
    assert_one_line_error(*run_cli("data", "show", "digits", "--out", existing)[::2], "exists")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("keep")
    assert_one_line_error(*run_cli("data", "export", "digits:digit=1", "--out", full)[::2], "not an empty folder")
    assert_one_line_error(*run_cli("generate", ckpt, "--out", full)[::2], "not an empty folder")
    assert existing.read_bytes() == b"precious" and (full / "keep.txt").read_text() == "keep"
    assert len(list(full.iterdir())) == 1
    code, _, _ = run_cli("generate", ckpt, "--out", existing, "--force")
    assert code == 0 and existing.read_bytes().startswith(b"\x89PNG")


def test_demo_runs_end_to_end(run_cli, tmp_path):
    code, out, err = run_cli("demo", "--out", tmp_path / "demo", "--steps", "2")
    assert code == 0, err
    demo = tmp_path / "demo"
    assert {"emoji.png", "glyphs.png", "digits.png", "split-animals", "samples-emoji32.png", "eval-source",
            "adapt-finetune", "adapt-d3t", "comparison.png", "report.md"} <= {p.name for p in demo.iterdir()}
    assert len(list((demo / "split-animals" / "train").glob("*.png"))) == 10
    for method in ("finetune", "d3t"):
        assert (demo / f"adapt-{method}" / "run" / "checkpoints" / "step-0000002.safetensors").is_file()
    reports = [json.loads(p.read_text()) for p in [demo / "eval-source" / "metrics.json",
                                                   *demo.glob("adapt-*/eval-step-2/metrics.json")]]
    assert len(reports) == 3
    for report in reports:
        assert set(report["metrics"]) == {"kid", "fid", "precision", "recall", "intra_lpips", "copying"}
        assert report["reference"].endswith("split-animals") and report["reference_images"] == 142
    text = (demo / "report.md").read_text()
    fid = f"{reports[1]['metrics']['fid']['value']:.4f}"
    assert "](comparison.png)" in text and fid in text and "| d3t |" in text and "| source |" in text
    assert Image.open(demo / "comparison.png").size[1] == 4 * (64 + 2) + 2  # shots, source, finetune, d3t
    assert run_cli("demo", "--out", demo)[0] == 2  # never over an earlier demo


def test_the_shipped_source_model_generates(run_cli, tmp_path):
    code, out, err = run_cli("generate", "builtin:emoji32", "--seeds", "0-7", "--out", tmp_path / "s")
    assert code == 0, err
    images = [np.asarray(Image.open(p)) for p in sorted((tmp_path / "s").glob("*.png"))]
    assert len(images) == 8 and images[0].shape == (32, 32, 3)
    assert np.std([im.mean() for im in images]) > 1  # different seeds, different images
    code, out, _ = run_cli("info", "builtin:emoji32")
    assert code == 0 and load_checkpoint("builtin:emoji32").meta["data"] in out and "D:" in out
    code, _, err = run_cli("info", "builtin:nope")
    assert code == 2 and "no such shipped model; shipped: builtin:emoji32" in err


def test_generate_renders_the_latents_of_a_projection(run_cli, ckpt, tmp_path):
    images = "emoji:group=flags,tone=none,subgroup=country-flag,name=flag: Japan|flag: Andorra"
    code, _, err = run_cli("project", ckpt, images, "--steps", "3", "--out", tmp_path / "p")
    assert code == 0, err
    code, _, err = run_cli("generate", ckpt, "--latents", tmp_path / "p" / "latents.safetensors",
                           "--out", tmp_path / "g")
    assert code == 0, err
    rendered = sorted(p.name for p in (tmp_path / "g").glob("*.png"))
    assert rendered == sorted(p.name for p in (tmp_path / "p" / "reconstructions").iterdir()) and len(rendered) == 2
    for name in rendered:  # the same w through the same synthesis, constant noise: the same picture
        assert np.array_equal(np.asarray(Image.open(tmp_path / "g" / name)),
                              np.asarray(Image.open(tmp_path / "p" / "reconstructions" / name)))
    assert_one_line_error(*run_cli("generate", ckpt, "--latents", tmp_path / "p" / "latents.safetensors",
                                   "--seeds", "1", "--out", tmp_path / "x.png")[::2], "give --latents alone")
    # Fixed latents stored in a checkpoint as its prior: seed i renders row i.
    from gankd.checkpoint import load_checkpoint, save_checkpoint
    from gankd.priors import Latents

    latents = Latents.read(tmp_path / "p" / "latents.safetensors")
    save_checkpoint(tmp_path / "fixed.safetensors", {"G_ema": load_checkpoint(ckpt).generator()}, prior=latents)
    code, _, err = run_cli("generate", tmp_path / "fixed.safetensors", "--seeds", "1,0", "--out", tmp_path / "f")
    assert code == 0, err
    for seed, name in ((0, latents.names[0]), (1, latents.names[1])):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "f" / f"seed{seed:04d}.png")),
                              np.asarray(Image.open(tmp_path / "g" / f"{name}.png")))
    assert_one_line_error(*run_cli("generate", tmp_path / "fixed.safetensors", "--seeds", "2",
                                   "--out", tmp_path / "y.png")[::2], "seed 2 names no latent: there are 2")
    assert_one_line_error(*run_cli("generate", "builtin:emoji32", "--latents", tmp_path / "p" / "latents.safetensors",
                                   "--out", tmp_path / "x.png")[::2], "this generator takes 8 of 256")

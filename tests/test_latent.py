"""`gankd latent`: the style-mixing grid, walks and truncation sweeps against `gankd generate`'s
images of the same seeds (rendered one at a time, so that batching cannot move a pixel), and
`gankd generate --latents` through another generator of the same shape."""

import json
import sys

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

from gankd.checkpoint import load_checkpoint, save_checkpoint
from gankd.generate import sample
from gankd.images import to_uint8
from gankd.nets import Generator, StyleGAN2Config
from gankd.nets.biggan import BigGANConfig, Generator as BigGAN
from gankd.priors import Latents
from test_cli import assert_one_line_error

EMOJI = "builtin:emoji32"
CPU = ("--device", "cpu", "--batch", "1")
TILE = 64 + 2  # a 32 px image enlarged to 64, and the padding after it


def picture(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def tile(image: np.ndarray, row: int, col: int, top: int = 0, left: int = 0, res: int = 32) -> np.ndarray:
    """The `res` px image at (row, col) of a grid of tiles enlarged to 64 px (one pixel of each block)."""
    y, x, step = top + 2 + row * TILE, left + 2 + col * TILE, 64 // res
    return image[y:y + 64:step, x:x + 64:step]


def samples(seeds, **sampling) -> dict[int, np.ndarray]:
    return dict(zip(seeds, sample(EMOJI, seeds, batch_size=1, **sampling)))


def test_mix_grid_swaps_exactly_the_chosen_styles(run_cli, tmp_path):
    rows, cols = [0], [2, 3]
    plain, truncated = samples(rows + cols), samples(rows + cols, truncation=0.7)
    grids = {}
    for layers, psi in (("0-7", "1"), ("none", "0.7"), (None, "1")):
        out = tmp_path / f"mix-{layers}.png"
        code, stdout, err = run_cli("latent", "mix", EMOJI, "--rows", "0", "--cols", "2,3", "--trunc", psi,
                                    "--out", out, *CPU, *(("--layers", layers) if layers else ()))
        assert code == 0 and stdout.strip() == str(out), err
        grids[layers] = picture(out)
    assert grids["none"].shape == (2 * TILE + 2, 3 * TILE + 2, 3)  # (rows + 1) x (cols + 1) tiles
    for layers, expected in (("0-7", plain), ("none", truncated)):
        grid = grids[layers]
        assert (tile(grid, 0, 0) == 255).all()  # the white corner
        assert all(np.array_equal(tile(grid, 0, 1 + j), expected[s]) for j, s in enumerate(cols))
        assert np.array_equal(tile(grid, 1, 0), expected[0])
    for j, c in enumerate(cols):
        assert np.array_equal(tile(grids["0-7"], 1, 1 + j), plain[c])  # every style from the column
        assert np.array_equal(tile(grids["none"], 1, 1 + j), truncated[0])  # none: the row's own image
        mixed = tile(grids[None], 1, 1 + j).astype(int)  # the coarse styles (0-3) from the column
        assert np.abs(mixed - plain[0]).mean() > 2 and np.abs(mixed - plain[c]).mean() > 2


def test_walk_passes_through_its_keys_as_png_and_gif(run_cli, tmp_path):
    keys = samples([0, 5])
    code, _, err = run_cli("latent", "interpolate", EMOJI, "--seeds", "0,5", "--frames", "4",
                           "--out", tmp_path / "walk.png", *CPU)
    assert code == 0, err
    strip = picture(tmp_path / "walk.png")
    assert strip.shape == (TILE + 2, 4 * TILE + 2, 3)
    assert np.array_equal(tile(strip, 0, 0), keys[0]) and np.array_equal(tile(strip, 0, 2), keys[5])
    between = tile(strip, 0, 1).astype(int)
    assert np.abs(between - keys[0]).mean() > 1 and np.abs(between - keys[5]).mean() > 1

    code, _, err = run_cli("latent", "interpolate", EMOJI, "--seeds", "0,5", "--frames", "6", "--fps", "10",
                           "--out", tmp_path / "walk.gif")
    assert code == 0, err
    frames = iio.imread(tmp_path / "walk.gif", index=None)
    assert frames.shape == (6, 64, 64, 3) and iio.immeta(tmp_path / "walk.gif")["duration"] == 100
    assert np.abs(frames[3, ::2, ::2, :3].astype(int) - keys[5]).mean() < 3  # GIF's palette: nearly the key

    code, _, err = run_cli("latent", "interpolate", EMOJI, "--seeds", "0,5", "--frames", "4", "--space", "z",
                           "--out", tmp_path / "z.png", *CPU)
    assert code == 0, err
    in_z = picture(tmp_path / "z.png")
    assert all(np.abs(tile(in_z, 0, 2 * k).astype(int) - keys[s]).max() <= 1 for k, s in enumerate((0, 5)))
    assert not np.array_equal(tile(in_z, 0, 1), tile(strip, 0, 1))  # another path between the same keys


def test_walk_as_mp4_where_imageio_ffmpeg_is_installed(run_cli, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    code, _, err = run_cli("latent", "interpolate", EMOJI, "--seeds", "0,5", "--frames", "4", "--fps", "8",
                           "--out", tmp_path / "walk.mp4")
    assert code == 0, err
    assert iio.imread(tmp_path / "walk.mp4", index=None).shape == (4, 64, 64, 3)
    assert iio.immeta(tmp_path / "walk.mp4")["fps"] == 8


@pytest.fixture(scope="module")
def projected(tmp_path_factory):
    """A latents file as `gankd project` writes it: w+ codes [2, 8, 256] of emoji32 (each style its
    own), named by their images."""
    from safetensors.torch import save_file

    G = load_checkpoint(EMOJI).generator()
    torch.manual_seed(0)
    with torch.no_grad():
        ws = G.mapping(torch.randn(16, 256)).view(2, 8, 256)
    path = tmp_path_factory.mktemp("projection") / "latents.safetensors"
    save_file({"w": ws.contiguous()}, path, metadata={"gankd": json.dumps({"files": ["japan", "andorra"]})})
    return path


def test_generate_and_walk_render_projected_latents_through_another_generator(run_cli, projected, tmp_path):
    G = load_checkpoint(EMOJI).generator()
    with torch.no_grad():  # an "adapted" generator: the same shape, other weights
        for p in G.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_checkpoint(tmp_path / "adapted.safetensors", {"G_ema": G})
    code, _, err = run_cli("generate", tmp_path / "adapted.safetensors", "--latents", projected,
                           "--out", tmp_path / "g", "--batch", "1")
    assert code == 0, err
    prior = Latents.read(projected)
    rendered = {name: np.asarray(Image.open(tmp_path / "g" / f"{name}.png")) for name in prior.names}
    adapted, source = to_uint8(G.synthesis(prior.ws, noise_mode="const")), sample(EMOJI, [0, 1], prior=prior)
    for got, want, own in zip(rendered.values(), adapted, source):
        assert np.abs(got.astype(int) - want).max() <= 1  # the adapted G's images of these codes
        assert np.abs(got.astype(int) - own).mean() > 1  # not emoji32's

    code, _, err = run_cli("latent", "interpolate", tmp_path / "adapted.safetensors", "--latents", projected,
                           "--frames", "4", "--out", tmp_path / "walk.png", *CPU)
    assert code == 0, err
    strip = picture(tmp_path / "walk.png")
    assert all(np.array_equal(tile(strip, 0, 2 * k), image) for k, image in enumerate(rendered.values()))

    cfg = StyleGAN2Config(resolution=16, z_dim=32, w_dim=32, n_mlp=2, channel_base=256, channel_max=32)
    save_checkpoint(tmp_path / "small.safetensors", {"G": Generator(cfg)})
    for command in (("generate", tmp_path / "small.safetensors", "--latents", projected, "--out", tmp_path / "x.png"),
                    ("latent", "interpolate", tmp_path / "small.safetensors", "--latents", projected,
                     "--out", tmp_path / "x.gif")):
        assert_one_line_error(*run_cli(*command)[::2], "the latents are 8 styles of 256 values; "
                                                       "this generator takes 6 of 32")
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.gif").exists()
    assert_one_line_error(*run_cli("latent", "interpolate", EMOJI, "--latents", projected, "--space", "z",
                                   "--out", tmp_path / "y.gif")[::2], "--space z needs --seeds")


def test_truncation_sweep_runs_from_the_average_to_the_samples(run_cli, tmp_path):
    code, _, err = run_cli("latent", "truncation", EMOJI, "--seeds", "0-1", "--psi", "0,0.5,1",
                           "--out", tmp_path / "t.png", *CPU)
    assert code == 0, err
    sweep = picture(tmp_path / "t.png")
    assert sweep.shape == (16 + 2 * TILE + 2, 90 + 3 * TILE + 2, 3)  # header, label column, 2 x 3 tiles
    at = {psi: samples([0, 1], truncation=psi) for psi in (0.5, 1.0)}
    for r in range(2):
        assert np.array_equal(tile(sweep, r, 2, top=16, left=90), at[1.0][r])
        assert np.array_equal(tile(sweep, r, 1, top=16, left=90), at[0.5][r])
        assert np.array_equal(tile(sweep, r, 0, top=16, left=90), tile(sweep, 0, 0, top=16, left=90))  # all w_avg
    assert np.abs(tile(sweep, 0, 0, top=16, left=90).astype(int) - at[1.0][0]).mean() > 2


@pytest.fixture(scope="module")
def biggan(tmp_path_factory):
    torch.manual_seed(0)
    G = BigGAN(BigGANConfig(resolution=16, c_dim=3, ch=2, d_ch=2, z_dim=8, shared_dim=4)).eval()
    G.w_avg.normal_()
    path = tmp_path_factory.mktemp("biggan") / "biggan.safetensors"
    save_checkpoint(path, {"G": G})
    return path


def test_biggan_sweeps_and_walks_but_does_not_mix(run_cli, biggan, tmp_path):
    code, _, err = run_cli("latent", "truncation", biggan, "--seeds", "0,1", "--psi", "0,1", "--class", "2",
                           "--out", tmp_path / "t.png", *CPU)
    assert code == 0, err
    plain = sample(biggan, [0, 1], class_index=2, batch_size=1)
    sweep = picture(tmp_path / "t.png")
    assert all(np.array_equal(tile(sweep, r, 1, top=16, left=90, res=16), plain[r]) for r in range(2))
    assert np.array_equal(tile(sweep, 0, 0, top=16, left=90, res=16), tile(sweep, 1, 0, top=16, left=90, res=16))
    code, _, err = run_cli("latent", "interpolate", biggan, "--seeds", "0,1", "--class", "2", "--frames", "4",
                           "--out", tmp_path / "w.gif", *CPU)
    assert code == 0, err
    assert_one_line_error(*run_cli("latent", "mix", biggan, "--class", "2", "--out", tmp_path / "m.png")[::2],
                          "one style input")
    assert_one_line_error(*run_cli("latent", "truncation", biggan, "--out", tmp_path / "m.png")[::2],
                          "pass --class")
    assert_one_line_error(*run_cli("latent", "truncation", biggan, "--class", "3", "--out", tmp_path / "m.png")[::2],
                          "--class must be in 0..2")
    assert_one_line_error(*run_cli("latent", "truncation", EMOJI, "--class", "1", "--out", tmp_path / "m.png")[::2],
                          "this generator is unconditional")


def test_bad_input_is_one_line_and_writes_nothing(run_cli, tmp_path, monkeypatch):
    out = tmp_path / "x.png"
    for args, needle in [(("mix", "--layers", "0-8"), "styles are 0-7"), (("mix", "--layers", "3-1"), "runs upwards"),
                         (("mix", "--layers", "a"), "bad --layers"), (("mix", "--rows", "0-99", "--cols", "0-99"),
                                                                      "at most 1024"),
                         (("truncation", "--psi", "0,x"), "bad --psi"), (("truncation", "--psi", "nan"), "bad --psi"),
                         (("interpolate", "--seeds", "3"), "two key latents"),
                         (("interpolate", "--seeds", "0-4", "--frames", "3"), "--frames must be in 5..1000"),
                         (("interpolate", "--space", "x"), "--space must be w or z"),
                         (("interpolate", "--seeds", "1,2", "--latents", "l.safetensors"), "not both"),
                         (("mix", "--noise", "loud"), "noise mode must be")]:
        assert_one_line_error(*run_cli("latent", args[0], EMOJI, *args[1:], "--out", out)[::2], needle)
    assert_one_line_error(*run_cli("latent", "interpolate", EMOJI, "--out", tmp_path / "x.jpg")[::2],
                          "write a .gif, .mp4 or .png")
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if the package were not installed
    assert_one_line_error(*run_cli("latent", "interpolate", EMOJI, "--out", tmp_path / "x.mp4")[::2],
                          "pip install imageio-ffmpeg")
    assert not list(tmp_path.iterdir())
    out.write_bytes(b"keep")
    assert_one_line_error(*run_cli("latent", "truncation", EMOJI, "--out", out)[::2], "pass --force")
    assert out.read_bytes() == b"keep"

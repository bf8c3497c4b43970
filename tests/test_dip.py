"""DIP: the prior fitted on the training features only and kept exactly, sampling that depends on
seeds alone, label layers that start at zero (projection D with W = 0 is the unconditional D),
composition with other methods, and one clear line for each bad input."""

import numpy as np
import pytest
import torch

from gankd.bench.common import settings_for
from gankd.checkpoint import load_checkpoint
from gankd.config import resolve
from gankd.data.splits import load_split, make_split
from gankd.data.spec import open_source
from gankd.errors import ConfigError
from gankd.features import load_extractor
from gankd.generate import sample
from gankd.methods import adapting_methods, recipe_class
from gankd.methods.dip import DIPOptions, embed_images, fit_prior
from gankd.nets.stylegan2 import Discriminator, StyleGAN2Config
from gankd.priors import Mixture
from gankd.train import train
from test_kd_dlgan import BIGGAN, tensors
from test_train import TINY, metrics

DATA = "emoji:group=animals|food,tone=none"


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dip") / "split"
    make_split(open_source(DATA), 12, 0, folder, DATA)
    return folder


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return train(overrides=[*TINY, "steps=2"], out=tmp_path_factory.mktemp("dip-source") / "run").checkpoint


def train_images(split_folder, res=16):
    from gankd.data.dataset import ImageDataset

    data = ImageDataset(load_split(split_folder)[0], res, 3)
    return torch.stack([data.uint8(i) for i in range(len(data))])


# The prior --------------------------------------------------------------------------------------

def test_the_prior_is_fitted_on_the_training_features_only_and_kept_exactly(split, tmp_path):
    settings = [*BIGGAN, f"data={split / 'train'}", "method=scratch+dip", "dip.components=1", "ema.decay=0.9"]
    whole = train(overrides=[*settings, "steps=4"], out=tmp_path / "whole")
    train(overrides=[*settings, "steps=2"], out=tmp_path / "half")
    resumed = train(overrides=["steps=4"], resume=tmp_path / "half")
    a, b = tensors(whole.checkpoint), tensors(resumed.checkpoint)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # exact resume, prior included
    prior = load_checkpoint(whole.checkpoint).prior()
    assert isinstance(prior, Mixture) and prior.values["extractor"] == "clip-gankd"
    # One full-covariance component: the training features' mean and (biased) covariance, plus
    # scikit-learn's 1e-6 on the diagonal. Eval images would move both.
    e = embed_images(load_extractor("clip-gankd"), train_images(split), True, str).astype(np.float64)
    np.testing.assert_allclose(prior.means[0].numpy(), e.mean(0), atol=1e-6)
    cov = (prior.scale_tril[0] @ prior.scale_tril[0].T).numpy()
    np.testing.assert_allclose(cov, np.cov(e, rowvar=False, bias=True) + 1e-6 * np.eye(e.shape[1]), atol=1e-6)
    assert torch.equal(a["prior.means"], a["part.recipe.dip.prior.means"])  # the checkpoint's and the recipe's


def test_generate_gives_the_same_images_for_the_same_seeds_and_prior(split, tmp_path):
    run = train(overrides=[*BIGGAN, f"data={split / 'train'}", "method=scratch+dip", "steps=1"], out=tmp_path / "r")
    first = sample(run.checkpoint, [0, 1, 2, 3], noise_mode="random", batch_size=4)
    again = sample(run.checkpoint, [0, 1, 2, 3], noise_mode="random", batch_size=4)
    assert np.array_equal(first, again) and not np.array_equal(first[0], first[1])
    prior = load_checkpoint(run.checkpoint).prior()
    torch.testing.assert_close(prior.conditioning([3]), prior.conditioning([1, 3])[1:])  # per seed, not per batch
    assert torch.allclose(prior.conditioning(range(20)).norm(dim=1), torch.ones(20))  # back on the sphere


def test_mixture_sampling_follows_weights_and_kmeans_draws_centres():
    means = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    kmeans = Mixture(torch.tensor([1.0, 0.0, 3.0]), means, None, {})
    e = kmeans.conditioning(range(400))
    picked = (e[:, None] == means[None]).all(-1)
    assert picked.any(1).all() and not picked[:, 1].any()  # centres as they are; never a weight-0 one
    assert 0.65 < picked[:, 2].float().mean() < 0.85  # 3:1
    features = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32)
    fitted = fit_prior(features, DIPOptions(fit="kmeans", components=4), 0, {})
    assert fitted.scale_tril is None and fitted.weights.sum() == 40 and fitted.values["components"] == 4
    auto = fit_prior(features, DIPOptions(), 0, {})
    assert auto.values["components"] == 4 and auto.scale_tril.shape == (4, 3, 3)  # min(10, n // 10)
    with pytest.raises(ConfigError, match="more than the 40 training images"):
        fit_prior(features, DIPOptions(components=41), 0, {})


# Label layers that start at zero ----------------------------------------------------------------

def test_a_projection_discriminator_with_w_zero_is_the_unconditional_one():
    torch.manual_seed(0)
    cfg = StyleGAN2Config(resolution=16, channel_base=128, channel_max=32, z_dim=8, w_dim=8, n_mlp=2)
    D = Discriminator(cfg).eval()
    x, e = torch.randn(4, 3, 16, 16), torch.randn(4, 5)
    conditional = D.relabelled(5).eval()
    torch.testing.assert_close(conditional(x, e), D(x))
    with torch.no_grad():
        conditional.project.weight.normal_()
    logits, feats = conditional(x, e, return_features=True)
    phi = feats["phi"]  # psi(phi) + <W e, phi> / sqrt(dim), by hand
    by_hand = D(x) + (phi * (e @ conditional.project.weight.T * conditional.project.scale)).sum(1, keepdim=True) / 32 ** 0.5
    torch.testing.assert_close(logits, by_hand)
    assert "project.weight" not in conditional.relabelled(0).state_dict()


def test_without_projection_d_never_sees_the_prior(source, split, tmp_path):
    run = train(overrides=[*TINY, f"data={split / 'train'}", f"source={source}", "method=finetune+dip", "steps=2",
                           "dip.project=false"], out=tmp_path / "r")
    D = load_checkpoint(run.checkpoint).network("D")
    assert D.cfg.c_dim > 0 and not D.project.weight.any() and not D.project.bias.any()  # held at W = 0
    with pytest.raises(ConfigError, match="BigGAN's spectral norm"):
        train(overrides=[*BIGGAN, f"data={split / 'train'}", "method=scratch+dip", "dip.project=false", "steps=1"],
              out=tmp_path / "b")


def test_an_unconditional_generator_takes_on_labels_without_changing(source):
    G = load_checkpoint(source).network("G").eval()
    conditional = G.relabelled(6).eval()
    z = torch.randn(3, G.cfg.z_dim)
    for e in (torch.zeros(3, 6), torch.randn(3, 6)):
        torch.testing.assert_close(conditional.mapping(z, e), G.mapping(z))
    recipe = recipe_class("finetune+dip")(resolve(overrides=[*TINY, f"source={source}", "method=finetune+dip"]))
    assert recipe.name == "finetune+dip" and recipe.adapts
    columns = torch.randn(G.cfg.w_dim, G.cfg.w_dim)  # `finetune.new_labels=random`: they start as given
    started = G.relabelled(6, columns).eval()
    assert torch.equal(started.style[1].weight[:, G.cfg.z_dim:], columns)
    assert not torch.allclose(started.mapping(z, torch.randn(3, 6)), G.mapping(z))
    with pytest.raises(ConfigError, match="new_labels must be zero or random"):
        recipe_class("cdc+dip")(resolve(overrides=[*TINY, f"source={source}", "method=cdc+dip", "cdc.new_labels=one"]))


# Composition ------------------------------------------------------------------------------------

def test_composition_runs_both_methods_terms(source, split, tmp_path):
    for method, theirs in (("cdc+dip", "G_main/cdc"), ("d3t+dip", "D_main/kd_real")):
        run = tmp_path / method
        train(overrides=[*TINY, f"data={split / 'train'}", f"source={source}", f"method={method}", "steps=2",
                         "dip.consistency=0.5", "d3t.invert_steps=1" if method.startswith("d3t") else "cdc.kl_weight=1"],
              out=run)
        logged = {k for line in metrics(run) for k in line}
        assert {f"loss/{theirs}", "loss/G_main/dip_consistency"} <= logged, method
        assert load_checkpoint(run / "checkpoints" / "step-0000002.safetensors").config.c_dim > 0
    kd = train(overrides=[*BIGGAN, f"data={split / 'train'}", "method=kd-dlgan+dip", "steps=1", "kd-dlgan.hidden=8",
                          "kd-dlgan.prompts=an animal emoji|a food emoji"], out=tmp_path / "kd")
    logged = {k for line in metrics(tmp_path / "kd") for k in line}
    assert {"loss/D_main/agkd", "loss/D_main/cgkd"} <= logged and kd.checkpoint.is_file()


def test_dip_settings_reach_only_methods_with_dip():
    methods = ["cdc", "cdc+dip", "finetune"]
    given = ["cdc.kl_weight=5", "dip.fit=kmeans", "steps=9"]
    assert settings_for("cdc", given, methods) == ["cdc.kl_weight=5", "steps=9"]
    assert settings_for("cdc+dip", given, methods) == given
    assert settings_for("finetune", given, methods) == ["steps=9"]
    assert "d3t+dip" in adapting_methods(composed=True) and "d3t+dip" not in adapting_methods()
    cfg = resolve(overrides=["data=x", "method=cdc+dip", "cdc.kl_weight=5", "dip.fit=kmeans"])
    assert cfg.options["cdc"]["kl_weight"] == 5 and cfg.options["dip"]["fit"] == "kmeans"
    assert resolve(base=cfg.to_dict()).options == cfg.options  # stored and read back


# Bad input --------------------------------------------------------------------------------------

def test_bad_input_gives_one_line(source, split, tmp_path, run_cli):
    base = ["train", "--out", tmp_path / "bad", *BIGGAN, f"data={split / 'train'}", "steps=1"]
    for settings, said in ((["method=scratch+dip", "dip.extractor=nope"], "unknown feature extractor 'nope'"),
                           (["method=scratch+dip", f"dip.weights={tmp_path / 'missing.pt'}"], "dip.extractor clip-gankd"),
                           (["method=scratch+dip", "dip.extractor=domain"], "never trains through its judge"),
                           (["method=scratch+gan"], "composes with dip or distill only"),
                           (["method=pix2pix+dip"], "+dip is for methods of the latent family")):
        code, _, err = run_cli(*base, *settings)
        assert code == 2 and said in err and len(err.strip().splitlines()) == 1, (settings, err)
    code, _, err = run_cli("generate", source, "--prior-image", tmp_path / "x.png", "--out", tmp_path / "g.png")
    assert code == 2 and "trained without DIP" in err
    run = train(overrides=[*BIGGAN, f"data={split / 'train'}", "method=scratch+dip", "steps=1"], out=tmp_path / "dip")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    for image, said in ((tmp_path / "broken.png", "broken.png: not a readable image"), (tmp_path / "none.png", "cannot read it")):
        code, _, err = run_cli("generate", run.checkpoint, "--prior-image", image, "--out", tmp_path / "g.png")
        assert code == 2 and said in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "g.png").exists()


def test_generate_draws_variations_and_interpolations_of_real_images(split, tmp_path, run_cli):
    run = train(overrides=[*BIGGAN, f"data={split / 'train'}", "method=scratch+dip", "steps=1"], out=tmp_path / "r")
    shots = sorted((split / "train").glob("*.png"))[:2]
    code, out, _ = run_cli("generate", run.checkpoint, "--seeds", "0-2", "--prior-image", shots[0], "--prior-image",
                           shots[1], "--interpolate", "4", "--out", tmp_path / "o", "--noise", "const")
    assert code == 0
    names = sorted(p.stem for p in (tmp_path / "o").glob("*.png"))
    assert names == sorted(f"interp{k:02d}-seed{s:04d}" for k in range(4) for s in range(3))
    from PIL import Image

    ends = [np.asarray(Image.open(tmp_path / "o" / f"interp{k:02d}-seed0001.png")) for k in (0, 3)]
    code, _, _ = run_cli("generate", run.checkpoint, "--seeds", "1", "--prior-image", shots[0], "--out", tmp_path / "v",
                         "--noise", "const")
    assert code == 0 and np.array_equal(np.asarray(Image.open(tmp_path / "v" / f"{shots[0].stem}-seed0001.png")), ends[0])
    assert not np.array_equal(ends[0], ends[1])

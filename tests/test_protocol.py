"""The few-shot protocol's parts against hand-computed cases: the distillation losses, CDC's
distance consistency and its layers, EMA, style mixing, x-flips, noise strengths, where each
method's gradients go, and that no method trains through the network that evaluates it."""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gankd.checkpoint import load_checkpoint
from gankd.config import resolve
from gankd.errors import ConfigError
from gankd.features import load_extractor
from gankd.features.base import Extractor
from gankd.losses.distill import distance_consistency, feature_kd, mmd2_rbf
from gankd.families import FAMILIES
from gankd.methods import RECIPES, PhaseData, recipe_class
from gankd.train import train
from gankd.families.latent import mix_styles, random_flips, update_ema
from test_fewshot import TARGET
from test_train import TINY


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return train(overrides=[*TINY, "steps=2"], out=tmp_path_factory.mktemp("source") / "run").checkpoint


def recipe_for(method: str, source: Path, *settings: str):
    """A method's recipe and networks, on the tiny few-shot data (translation and aging methods: small
    data of their own)."""
    family = FAMILIES[recipe_class(method).family]
    base = {"latent": [*TINY, f"data={TARGET}", f"source={source}"],
            "translation": ["data=glyphs-bold", "res=32", "translation.ngf=4", "translation.ndf=4"],
            "aging": ["data=inter:chars=AB,weights=100|500,styles=normal,size=16", "res=16", "aging.attribute=weight",
                      "aging.ngf=4", "aging.ndf=4", "aging.d_layers=2"]}[family.name]
    cfg = resolve(overrides=[*base, f"method={method}", *settings])
    recipe = recipe_class(method)(cfg)
    return recipe, recipe.build(family.data_info(family.dataset(cfg)))


# Losses against closed forms ---------------------------------------------------------------------

def test_mmd2_rbf_of_two_points_is_its_closed_form():
    x, y = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]])
    # One pair of distinct rows, squared distance 25: the bandwidth unit.
    for bandwidths in [(1.0,), (0.5, 2.0)]:
        expected = 2 * len(bandwidths) - 2 * sum(math.exp(-25 / (b * 25)) for b in bandwidths)
        assert mmd2_rbf(x, y, bandwidths).item() == pytest.approx(expected, rel=1e-6)
    same = torch.randn(5, 3)
    assert mmd2_rbf(same, same.clone()).item() == pytest.approx(0, abs=1e-6)


def test_mmd2_rbf_of_two_point_sets_by_hand():
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[3.0], [5.0]])
    pts = [0.0, 1.0, 3.0, 5.0]
    d2 = np.array([[(a - b) ** 2 for b in pts] for a in pts])
    scale = np.median(d2[np.triu_indices(4, 1)])  # 1, 9, 25, 4, 16, 4 -> 6.5
    k = np.exp(-d2 / scale)
    expected = k[:2, :2].mean() + k[2:, 2:].mean() - 2 * k[:2, 2:].mean()
    assert mmd2_rbf(x, y, (1.0,)).item() == pytest.approx(expected, rel=1e-6)


def test_feature_kd_weighs_layers_equally_and_never_moves_the_teacher():
    student = {"a": torch.ones(2, 3, requires_grad=True), "b": torch.zeros(1, 4, requires_grad=True)}
    teacher = {"a": torch.zeros(2, 3, requires_grad=True), "b": torch.full((1, 4), 2.0, requires_grad=True)}
    loss = feature_kd(student, teacher, ["a", "b"])
    assert loss.item() == pytest.approx((1 + 4) / 2)  # mean over layers of each layer's mean squared error
    loss.backward()
    assert teacher["a"].grad is None and teacher["b"].grad is None
    assert torch.allclose(student["a"].grad, torch.full((2, 3), 2 * 1 / 6 / 2))
    assert feature_kd(student, teacher, ["a"]).item() == pytest.approx(1.0)


def test_distance_consistency_is_kl_source_to_target_over_each_rows_softmax():
    source = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    target = torch.tensor([[1.0, 0.2], [0.3, 1.0], [-1.0, 1.0]])

    def rows(f):
        f = f / np.linalg.norm(f, axis=1, keepdims=True)
        cos = f @ f.T
        return np.array([[cos[i, j] for j in range(3) if j != i] for i in range(3)])

    def softmax(r):
        e = np.exp(r - r.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    p, q = softmax(rows(source.numpy())), softmax(rows(target.numpy()))
    expected = (p * (np.log(p) - np.log(q))).mean()  # nn.KLDivLoss(log q, p): KL(P_source || P_target), mean
    layer0 = torch.zeros(3, dtype=torch.long)
    assert distance_consistency([source], [target], layer0).item() == pytest.approx(expected, rel=1e-5)
    reverse = (q * (np.log(q) - np.log(p))).mean()
    assert abs(expected - reverse) > 1e-4  # the direction matters, and this is CDC's
    # Each row at its own layer: row i reads layer_of_row[i].
    mixed = distance_consistency([source, target], [target, target], torch.tensor([0, 1, 1]))
    assert mixed.item() == pytest.approx((p[0] * (np.log(p[0]) - np.log(q[0]))).sum() / 6, rel=1e-5)


@dataclass
class StubCfg:
    z_dim: int = 4


class StubG(nn.Module):
    """A generator whose feature taps are fixed tensors (to check which layers CDC reads)."""

    def __init__(self, features: dict[str, torch.Tensor]):
        super().__init__()
        self.cfg, self.features, self.scale = StubCfg(), features, nn.Parameter(torch.ones(()))

    def forward(self, z, c=None, return_features=False):
        feats = {k: v[:len(z)] * self.scale for k, v in self.features.items()}
        return z, feats


def test_cdc_compares_a_fresh_batch_at_every_block_but_the_4x4_one(source):
    recipe, nets = recipe_for("cdc", source)
    same = torch.randn(4, 6)
    data = PhaseData(step=1, nets=nets, real=torch.zeros(4, 3, 16, 16), real_c=None, z=torch.randn(8, 32))
    nets.frozen["G_s"] = StubG({"b4": torch.randn(4, 5), "b8": same})
    nets.roles["G"] = StubG({"b4": torch.randn(4, 5), "b8": same.clone()})
    assert recipe.losses("G_main", data)["cdc"].item() == pytest.approx(0, abs=1e-4)  # b4 differs: not read
    nets.roles["G"] = StubG({"b4": nets.frozen["G_s"].features["b4"].clone(), "b8": torch.randn(4, 6)})
    assert recipe.losses("G_main", data)["cdc"].item() > 1e-2
    assert recipe.options.batch == 4 and recipe.options.anchor_std == 0.1  # the reference's values
    assert not recipe.style_mixing(0) and recipe.style_mixing(1)  # anchor steps are not mixed


# EMA, mixing, flips, noise ------------------------------------------------------------------------

def ema_pair(value: float):
    G, G_ema = nn.Linear(2, 2), nn.Linear(2, 2)
    nn.init.constant_(G.weight, value), nn.init.constant_(G.bias, value)
    nn.init.zeros_(G_ema.weight), nn.init.zeros_(G_ema.bias)
    return G, G_ema


def test_ema_fixed_decay_and_ramped_half_life():
    G, G_ema = ema_pair(1.0)
    update_ema(G_ema, G, resolve(overrides=["data=x", "ema.decay=0.9"]), images=10**9)
    assert torch.allclose(G_ema.weight, torch.full((2, 2), 0.1))
    G, G_ema = ema_pair(1.0)
    cfg = resolve(overrides=["data=x", "batch=4", "ema.kimg=10", "ema.rampup=0.05"])
    update_ema(G_ema, G, cfg, images=100)  # half-life min(10000, 100 * 0.05) = 5 images
    assert G_ema.weight[0, 0].item() == pytest.approx(1 - 0.5 ** (4 / 5))
    G, G_ema = ema_pair(1.0)
    update_ema(G_ema, G, cfg, images=10**7)  # ramp long over: the half-life is ema.kimg
    assert G_ema.weight[0, 0].item() == pytest.approx(1 - 0.5 ** (4 / 10000), rel=1e-5)  # float32


def test_style_mixing_takes_a_second_latent_from_a_random_layer_on(source):
    G = load_checkpoint(source).generator()
    z = torch.randn(3, G.cfg.z_dim)
    state = torch.get_rng_state()
    assert torch.equal(mix_styles(G, z, None, 0.0), G.mapping(z))
    assert torch.equal(torch.get_rng_state(), state)  # no mixing draws nothing: old runs stay bit-identical
    cutoffs = set()
    for _ in range(20):
        ws = mix_styles(G, z, None, 1.0)
        first = G.mapping(z)
        assert ws.shape == (3, G.num_ws, G.cfg.w_dim)
        cutoff = next(i for i in range(G.num_ws) if not torch.allclose(ws[:, i], first))
        assert 1 <= cutoff < G.num_ws and torch.allclose(ws[:, :cutoff], first[:, None].expand(-1, cutoff, -1))
        assert torch.allclose(ws[:, cutoff:], ws[:, cutoff:cutoff + 1].expand(-1, G.num_ws - cutoff, -1))
        cutoffs.add(cutoff)
    assert len(cutoffs) > 1


def test_random_flips_flip_about_half_of_the_images():
    images = torch.arange(1000 * 4, dtype=torch.float32).view(1000, 1, 1, 4)
    out = random_flips(images)
    flipped = (out == images.flip(3)).all(dim=(1, 2, 3))
    assert ((out == images).all(dim=(1, 2, 3)) | flipped).all()
    assert 400 < int(flipped.sum()) < 600


def test_noise_strengths_train_unless_told_not_to(source, tmp_path):
    start = dict(load_checkpoint(source).network("G").named_parameters())
    for train_noise in (True, False):
        result = train(overrides=[*TINY, f"data={TARGET}", "steps=3", "method=finetune", f"source={source}",
                                  f"finetune.train_noise={str(train_noise).lower()}", "loss.r1_gamma=10"],
                       out=tmp_path / str(train_noise))
        noise = [n for n, _ in result.nets.G.named_parameters() if n.endswith("noise.weight")]
        kept = [torch.equal(dict(result.nets.G.named_parameters())[n].cpu(), start[n]) for n in noise]
        assert noise and (not any(kept) if train_noise else all(kept))


# Where gradients go ---------------------------------------------------------------------------------

def test_finetune_starts_from_exactly_the_source_networks(source):
    src = load_checkpoint(source)
    for method in ("finetune", "freezed", "cdc", "d3t"):
        _, nets = recipe_for(method, source)
        for role in ("G", "G_ema", "D"):
            built, stored = getattr(nets, role).state_dict(), src.network(role).state_dict()
            assert built.keys() == stored.keys()
            assert all(torch.equal(built[k], stored[k]) for k in stored), (method, role)


def test_the_d3t_pair_term_moves_only_the_target_generator(source):
    recipe, nets = recipe_for("d3t", source, "d3t.invert_steps=2")
    z = torch.randn(4, nets.G.cfg.z_dim)
    fake, feats = nets.G(z, return_features=True)
    data = PhaseData(step=0, nets=nets, real=recipe.shots[:4], real_c=None, z=z, fake=fake, fake_features=feats)
    for module in (nets.D, nets.G):
        module.zero_grad(set_to_none=True)
    recipe.losses("G_main", data)["pair"].backward()
    assert all(p.grad is None for p in nets.D.parameters())
    moved = {n for n, p in nets.G.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert moved and not any(n.startswith("style.") for n in moved)  # the shots' w are fixed: no mapping
    for frozen in nets.frozen.values():
        assert all(not p.requires_grad and p.grad is None for p in frozen.parameters())


def test_no_method_trains_through_the_network_that_evaluates_it(source, tmp_path, run_cli):
    judge = load_extractor(resolve(overrides=["data=x"]).eval.features)
    with_dip = [f"{m}+dip" for m, cls in RECIPES.items() if cls.family == "latent"]
    for method in [*RECIPES, *with_dip]:
        _, nets = recipe_for(method, source)
        modules = nets.all()
        extractors = [m for net in modules for m in net.modules() if isinstance(m, Extractor)]
        assert judge.id not in {e.id for e in extractors}, method
        judge_params = {id(p) for p in judge.parameters()}
        assert not any(id(p) in judge_params for net in modules for p in net.parameters()), method
    for method, setting in (("d3t", "d3t.perceptual=domain"), ("finetune+dip", "dip.extractor=domain")):
        with pytest.raises(ConfigError, match="never trains through its judge"):
            recipe_for(method, source, setting, "eval.features=domain")
    # A model trained through domain features is not judged by them afterwards either.
    run = train(overrides=[*TINY, f"data={TARGET}", "steps=1", "method=d3t", f"source={source}",
                           "d3t.perceptual=domain", "eval.features=inception", "d3t.invert_steps=1"],
                out=tmp_path / "run")
    code, _, err = run_cli("evaluate", run.checkpoint, "--ref", TARGET, "--n", "8", "--out", tmp_path / "e")
    assert code == 2 and "never judged by its own teacher" in err

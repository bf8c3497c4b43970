"""The continuous aging network: the aging basis is the estimator's rows, the personalised
residual makes the estimated age the identity path, the estimate is differentiable."""

import pytest
import torch

from gankd.nets.aging import AgingConfig, AgingGenerator


def net(**settings) -> AgingGenerator:
    torch.manual_seed(0)
    cfg = AgingConfig(**{"resolution": 16, "ngf": 4, "enc_blocks": 1, "dec_blocks": 2, "d_layers": 2, "min_age": 10, "max_age": 20,
                         "age_step": 2.5, **settings})
    return AgingGenerator(cfg)


def test_the_basis_is_the_estimators_rows_and_interpolates_between_them():
    G = net()
    W = G.estimator.weight
    assert G.cfg.classes == 5 and torch.equal(G.ages, torch.tensor([10, 12.5, 15, 17.5, 20]))
    assert torch.equal(G.basis(G.ages), W)  # exactly the rows at the class ages
    mid = G.basis(torch.tensor([11.25, 18.75]))
    assert torch.allclose(mid, torch.stack([(W[0] + W[1]) / 2, (W[3] + W[4]) / 2]))
    assert torch.equal(G.basis(torch.tensor([0.0, 99.0])), W[[0, 4]])  # outside the range: the end rows


def test_hard_residual_makes_the_estimated_age_the_identity_path():
    G = net(residual="hard")
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    _, parts = G(x, torch.tensor([10.0, 15.0, 20.0]), return_parts=True)
    e_hat = G.embedding(parts["v"], parts["logits"], parts["estimate"])
    assert torch.allclose(e_hat, parts["v"], atol=1e-6)  # e_ŷ = v: the input's own embedding
    s, t = torch.tensor([11.0, 13.0, 19.0]), torch.tensor([17.0, 12.0, 10.0])
    for residual in ("hard", "soft"):  # any residual: moving the target moves e along the basis only
        G2 = net(residual=residual)
        _, p = G2(x, s, return_parts=True)
        e_s, e_t = (G2.embedding(p["v"], p["logits"], a) for a in (s, t))
        assert torch.allclose(e_t - e_s, G2.basis(t) - G2.basis(s), atol=1e-6)
    G3 = net(residual="none")
    _, p = G3(x, t, return_parts=True)
    assert torch.allclose(p["e"], G3.basis(t))  # the ablation: e_t = a(t), no person in it


def test_the_estimate_is_a_differentiable_expectation():
    G = net()
    v = torch.randn(2, G.cfg.embed_dim, dtype=torch.float64, requires_grad=True)
    G = G.double()
    assert torch.autograd.gradcheck(lambda u: G.expected(G.estimator(u)), (v,))
    logits = G.estimator(v)
    estimate = G.expected(logits)
    assert torch.allclose(estimate, (logits.softmax(1) * G.ages).sum(1))
    assert ((G.cfg.min_age <= estimate) & (estimate <= G.cfg.max_age)).all()
    x = (torch.rand(2, 3, 16, 16, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    G(x, torch.tensor([12.0, 18.0], dtype=torch.float64), return_parts=True)[1]["estimate"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("inject", ["modulate", "concat"])
def test_outputs_have_the_inputs_shape_and_follow_the_target(inject):
    G = net(inject=inject)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    young, old = G(x, torch.tensor([10.0, 10.0])), G(x, torch.tensor([20.0, 20.0]))
    assert young.shape == x.shape and young.abs().max() <= 1
    if inject == "concat":  # the modulated blocks start as plain ones (γ = β = 0): the target acts once trained
        assert not torch.allclose(young, old)


def test_bad_settings_are_named():
    for settings, said in (({"residual": "x"}, "residual must be one of"), ({"min_age": 100}, "max_age > min_age"),
                           ({"age_step": 0}, "age_step > 0"), ({"resolution": 24}, "power of two"),
                           ({"estimator": "separate"}, "needs basis=table"),
                           ({"resolution": 16}, "d_layers must be at most 2")):
        with pytest.raises(ValueError, match=said):
            AgingConfig(**settings)


def test_the_group_baseline_is_a_one_hot_code_of_the_nearest_group():
    G = net(interpolate="nearest", basis="table", residual="none")
    q = G.weights(torch.tensor([10.0, 11.0, 11.5, 19.0]))
    assert torch.equal(q, torch.eye(5)[[0, 0, 1, 4]])  # 11.5 is nearer 12.5 than 10
    assert torch.equal(G.basis(torch.tensor([11.0])), G.table[[0]])  # the group's row of its own table
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    _, p = G(x, torch.tensor([10.0, 14.0]), return_parts=True)
    assert torch.equal(p["e"], G.table[[0, 2]])  # no person in it: the group's code alone
    lin = net().weights(torch.tensor([11.0]))
    assert torch.allclose(lin, torch.tensor([[0.6, 0.4, 0, 0, 0]]))  # linear: the soft label of 11


def test_the_frozen_estimator_passes_gradient_to_images_only():
    for estimator, basis in (("embedded", "estimator"), ("separate", "table")):
        G = net(estimator=estimator, basis=basis)
        x = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_(True)
        logits = G.classify(x, frozen=True)
        assert torch.allclose(logits, G.classify(x))
        G.expected(logits).sum().backward()
        assert x.grad.abs().sum() > 0
        assert all(p.grad is None for p in G.parameters())
        if estimator == "separate":  # its own encoder, not E: E gets no gradient from the estimate
            G.zero_grad()
            G.expected(G.classify(x)).sum().backward()
            assert all(p.grad is None for p in G.encoder.parameters())
            assert all(p.grad is not None for p in G.separate.parameters() if p.requires_grad)


# Data with a continuous attribute ------------------------------------------------------------------

TEN = "inter:chars=ABCDEFGHIJ,weights=100|300|500,styles=normal,size=16"


def test_attribute_data_holds_values_out_and_splits_by_identity():
    from gankd.data.attribute import attribute_value, open_attribute, parse_values

    data = open_attribute(TEN, "weight", "char", "300")
    assert len(data.source) == 30 and data.held_out == (300.0,)
    train_ids = {data.identities[i] for i in data.train}
    test_ids = {data.identities[i] for i in data.test}
    assert test_ids == {"E", "J"} and not train_ids & test_ids  # every fifth identity, unseen in training
    assert sorted(data.values[data.train].tolist()) == [100.0] * 8 + [500.0] * 8  # no held-out value in training
    assert len(data.test) == 6  # the test identities at every value, held-out ones included
    e100 = next(i for i in data.test if data.identities[i] == "E" and data.values[i] == 100)
    j = data.truth(e100, 300.0)
    assert data.identities[j] == "E" and data.values[j] == 300.0 and data.truth(e100, 700.0) is None
    assert attribute_value("tone", "medium-dark", "x") == 4.0 and parse_values("medium|250") == (3.0, 250.0)
    with pytest.raises(Exception, match="tone is 'none', not a number or one of light"):
        attribute_value("tone", "none", "emoji 1")
    with pytest.raises(Exception, match="hold-out 400: no image"):
        open_attribute(TEN, "weight", "char", "400")
    with pytest.raises(Exception, match="has no label 'age'"):
        open_attribute(TEN, "age")


# Training, `gankd age` and the judge ---------------------------------------------------------------

AGING = ["method=aging", f"data={TEN}", "res=16", "aging.attribute=weight", "aging.identity=char",
         "aging.hold_out=300", "aging.ngf=4", "aging.ndf=4", "aging.d_layers=2", "aging.enc_blocks=1", "aging.dec_blocks=1",
         "batch=4", "log_every=1", "sample_every=1000", "threads=1"]


@pytest.fixture(scope="module")
def aged_run(tmp_path_factory):
    from gankd.train import train

    out = tmp_path_factory.mktemp("aging") / "run"
    train(overrides=[*AGING, "steps=2"], out=out)
    return out


def test_training_logs_every_term_and_the_classes_sit_at_the_trained_values(aged_run, run_cli):
    import json

    from gankd.checkpoint import load_checkpoint

    lines = [json.loads(line) for line in (aged_run / "metrics.jsonl").read_text().splitlines()]
    for term in ("G_main/adv", "G_main/age", "G_main/estimator", "G_main/mean", "G_main/reconstruction",
                 "G_main/cycle", "D_main/adv_real", "D_main/adv_fake"):
        assert f"loss/{term}" in lines[-1], term
    G = load_checkpoint(next((aged_run / "checkpoints").iterdir())).network("G")
    assert G.ages.tolist() == [100.0, 500.0]  # classes at the training values (step: their gap); 300 lies between
    assert torch.allclose(G.basis(torch.tensor([300.0])), G.estimator.weight.mean(0, keepdim=True))
    code, out, err = run_cli("info", aged_run)
    assert code == 0 and "100-500 in 2 classes of 400" in out, err
    code, _, err = run_cli("generate", aged_run, "--out", aged_run.parent / "g")
    assert code == 2 and "use gankd age" in err


def test_age_command_writes_progressions_gifs_and_estimates(aged_run, tmp_path, run_cli):
    from PIL import Image

    code, out, err = run_cli("age", aged_run, "inter:chars=AB,weights=300,styles=normal,size=16", "--to", "100-500:100",
                             "--out", tmp_path / "aged")
    assert code == 0, err
    files = sorted(p.name for p in (tmp_path / "aged").iterdir() if not p.name.startswith("."))
    assert files == ["ages.csv", "inter-00000-A.gif", "inter-00000-A.png", "inter-00001-B.gif", "inter-00001-B.png",
                     "progressions.png"]
    gif = Image.open(tmp_path / "aged" / "inter-00000-A.gif")
    durations = []
    for k in range(gif.n_frames):  # Pillow merges equal neighbours, adding their times
        gif.seek(k)
        durations.append(gif.info["duration"])
    assert sum(durations) == 5 * 250 and gif.size == (64, 64)  # a frame time per target, enlarged to 64 px
    strip = Image.open(tmp_path / "aged" / "inter-00000-A.png")
    assert strip.size == (64 * 6, 64)  # the input, then the five targets
    rows = (tmp_path / "aged" / "ages.csv").read_text().splitlines()
    assert rows[0] == "image,estimated_age,at_100,at_200,at_300,at_400,at_500" and len(rows) == 3
    assert all(100 <= float(v) <= 500 for v in rows[1].split(",")[1:])  # the expectation stays in the range
    for args, said in (([aged_run, "inter:chars=A", "--to", "x", "--out", tmp_path / "b"], "--to: a list"),
                       ([aged_run.parent / "nowhere", "inter", "--to", "1", "--out", tmp_path / "c"], "not a checkpoint"),
                       ([aged_run, "inter:chars=A", "--to", "300", "--out", tmp_path / "aged"], "exists")):
        code, _, err = run_cli("age", *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and said in err, err


def test_bad_aging_settings_are_one_line(run_cli, tmp_path):
    for setting, said in (("aging.residual=hard2", "residual must be one of"), ("aging.groups=1", "2 groups at least"),
                          ("eval.every=1", "gankd bench aging"), ("aging.identity_net=domain", "never trains through")):
        code, _, err = run_cli("train", "--out", tmp_path / "x", *AGING, "steps=1", setting)
        assert code == 2 and len(err.strip().splitlines()) == 1 and said in err, (setting, err)


def test_trajectory_scores_by_hand_and_the_judge_learns_a_value():
    from gankd.metrics.attribute import train_judge, trajectory_scores

    even = trajectory_scores(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    assert even == {"monotone": 1.0, "unevenness": 0.0}
    bumpy = trajectory_scores(torch.tensor([[1.0, 3.0, 2.0, 4.0]]))  # steps 2, -1, 2
    assert bumpy["monotone"] == pytest.approx(2 / 3) and bumpy["unevenness"] == pytest.approx(2 ** 0.5 * 3 / 5)
    torch.manual_seed(0)
    values = torch.randint(0, 5, (200,)).float() * 100
    images = (values / 200 - 1)[:, None, None, None].expand(-1, 1, 16, 16) + 0.05 * torch.randn(200, 1, 16, 16)
    judge = train_judge(images, values, steps=300)
    assert (judge.predict(images) - values).abs().mean() < 40  # a value range of 400: the brightness is read
    assert torch.equal(judge.predict(images), train_judge(images, values, steps=300).predict(images))  # seeded


def test_aging_bench_scores_rows_against_ground_truth_and_resumes(tmp_path, run_cli):
    tiny = [f"data={TEN}", "aging.identity=char", "aging.hold_out=300", "res=16", "aging.ngf=4", "aging.ndf=4",
            "aging.d_layers=2", "aging.enc_blocks=1", "aging.dec_blocks=1", "steps=2", "batch=4"]
    args = ["bench", "aging", "--tasks", "inter", "--rows", "continuous,groups", "--seeds", "1", "--threads", "1",
            "--out", tmp_path / "bench", *tiny]
    code, out, err = run_cli(*args)
    assert code == 0, err
    results = (tmp_path / "bench" / "results.md").read_text()
    for row in ("| inter | input unchanged |", "| inter | continuous |", "| inter | groups |", "The judge's own error"):
        assert row in results, row
    import csv

    rows = {r["method"]: r for r in csv.DictReader((tmp_path / "bench" / "results.csv").open())}
    unchanged = rows["input unchanged"]
    assert float(unchanged["l1_trained"]) > 0 and float(unchanged["monotone"]) == 0.0  # a constant trajectory never rises
    assert (tmp_path / "bench" / "inter.png").is_file()
    per_value = list(csv.DictReader((tmp_path / "bench" / "per_value.csv").open()))
    assert len(per_value) == 3 * 3  # 3 models (input unchanged, continuous, groups) at 3 values
    assert {(r["value"], r["held"]) for r in per_value} == {("100.0", "False"), ("300.0", "True"), ("500.0", "False")}
    assert "| model | 100 | 300* | 500 |" in results
    run = tmp_path / "bench" / "runs" / "inter" / "groups" / "seed0"
    assert "groups: 5" in (run / "config.yaml").read_text()  # the task's group count
    stamp = max(p.stat().st_mtime_ns for p in (run / "checkpoints").iterdir())
    code, _, err = run_cli(*args)  # a finished bench reads its runs back
    assert code == 0, err
    assert max(p.stat().st_mtime_ns for p in (run / "checkpoints").iterdir()) == stamp



def test_the_gpu_preset_trains_on_utkface_named_files(tmp_path):
    """The paper-scale preset, made tiny by overrides, on a folder in UTKFace's layout: one command."""
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from gankd.checkpoint import load_checkpoint
    from gankd.train import train

    root = tmp_path / "UTKFace"
    root.mkdir()
    for i, age in enumerate([20, 21, 25, 30, 30, 41, 52, 60, 61, 70, 75, 80]):
        Image.fromarray(np.full((16, 16, 3), 20 * i, np.uint8)).save(root / f"{age}_{i % 2}_0_2017{i:04d}.jpg.chip.jpg")
    preset = Path(__file__).parents[1] / "configs" / "aging-utkface-gpu.yaml"
    train(preset, [f"data=utkface:root={root}", "res=16", "batch=4", "steps=1", "precision=fp32", "aging.ngf=4",
                   "aging.ndf=4", "aging.d_layers=2", "aging.enc_blocks=1", "aging.dec_blocks=1", "aging.identity_net=",
                   "threads=1"], out=tmp_path / "run")
    G = load_checkpoint(next((tmp_path / "run" / "checkpoints").iterdir())).network("G")
    assert G.cfg.classes == 100 and G.cfg.residual == "hard" and G.cfg.basis == "estimator"  # a class per year, 1-100


def test_the_conditional_discriminator_is_told_the_age_and_the_groups_their_centre():
    from gankd.nets.aging import AgingDiscriminator

    cfg = net().cfg
    torch.manual_seed(0)
    D = AgingDiscriminator(cfg)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    young, old = D(x, torch.tensor([10.0, 10.0])), D(x, torch.tensor([20.0, 20.0]))
    assert young.shape == (2, 1, 2, 2) and not torch.allclose(young, old)  # the age plane is an input
    plain = AgingDiscriminator(AgingConfig(**{**cfg.to_dict(), "d_condition": "none"}))
    assert torch.equal(plain(x, torch.tensor([10.0, 10.0])), plain(x, torch.tensor([20.0, 20.0])))
    G = net(interpolate="nearest", basis="table", residual="none")
    assert torch.equal(G.shown_age(torch.tensor([11.0, 14.0, 25.0])), torch.tensor([10.0, 15.0, 20.0]))
    assert torch.allclose(net().shown_age(torch.tensor([11.0, 14.0])), torch.tensor([11.0, 14.0]))


def test_float_noise_is_no_step_of_a_trajectory():
    from gankd.metrics.attribute import trajectory_scores

    flat = torch.tensor([[500.0, 500.0001, 499.9999, 500.0]])  # one image judged in different batches
    assert trajectory_scores(flat) == {"monotone": 0.0, "unevenness": 0.0}


def test_the_identity_term_reads_its_network_and_is_logged(tmp_path):
    import json

    from gankd.train import train

    train(overrides=[*AGING, "steps=1", "aging.identity_net=clip-gankd", "aging.identity_weight=1"], out=tmp_path / "r")
    logged = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[-1])
    assert logged["loss/G_main/identity"] > 0  # G(x, t) and x differ in the identity network's embedding

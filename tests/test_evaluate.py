"""`gankd evaluate` end to end with the shipped domain encoder, and evaluation during training."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from gankd.checkpoint import load_checkpoint
from gankd.data.cache import file_digest
from gankd.devices import cpu_threads
from gankd.data.spec import open_source
from gankd.features.domain import SHIPPED
from gankd.train import train

SOURCE_DATA = load_checkpoint("builtin:emoji32").meta["data"]  # the shipped model's training data


def report(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def test_shipped_model_against_its_training_data_names_the_extractor(run_cli, tmp_path):
    args = ["evaluate", "builtin:emoji32", "--ref", SOURCE_DATA, "--metrics", "fid,kid,pr", "--n", "200"]
    code, out, err = run_cli(*args, "--out", tmp_path / "a")
    assert code == 0, err
    first = report(tmp_path / "a")
    domain_id = f"domain:{file_digest(SHIPPED)[:8]}"
    assert first["features"] == domain_id and f"fid[{domain_id},noise=random]" in out
    assert set(first["metrics"]) == {"fid", "kid", "precision", "recall"}
    assert first["metrics"]["fid"]["value"] > 0 and 0 <= first["metrics"]["recall"]["value"] <= 1
    assert first["reference_images"] == len(open_source(SOURCE_DATA)) and first["samples"] == 200
    # Determinism: the same seed gives the same numbers (the second run reads the cached reference).
    assert run_cli(*args, "--out", tmp_path / "b")[0] == 0
    assert report(tmp_path / "b")["metrics"] == first["metrics"]
    # Random noise (the default, as the papers evaluate) is not the stamped constant noise.
    assert run_cli(*args, "--noise", "const", "--out", tmp_path / "c")[0] == 0
    const = report(tmp_path / "c")["metrics"]
    assert const["fid"]["id"] == f"fid[{domain_id},noise=const]" and const["fid"]["value"] != first["metrics"]["fid"]["value"]


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    from gankd.data.splits import make_split

    folder = tmp_path_factory.mktemp("split") / "animals"
    make_split(open_source("emoji:group=animals,tone=none"), 10, 0, folder, "emoji:group=animals,tone=none")
    return folder


def test_a_set_against_itself_scores_zero(run_cli, split, tmp_path):
    code, _, err = run_cli("evaluate", split / "eval", "--ref", split / "eval", "--metrics", "fid,kid,pr",
                           "--res", "32", "--out", tmp_path / "e")
    assert code == 0, err
    metrics = report(tmp_path / "e")["metrics"]
    assert abs(metrics["fid"]["value"]) < 1e-3
    assert metrics["precision"]["value"] == 1 and metrics["recall"]["value"] == 1


def test_a_generator_that_returns_its_shots_is_flagged(run_cli, split, tmp_path):
    copies = tmp_path / "copies"
    copies.mkdir()
    for shot in sorted((split / "train").glob("*.png")):
        for k in range(25):
            shutil.copy(shot, copies / f"{shot.stem}-{k}.png")
    code, out, err = run_cli("evaluate", copies, "--ref", split, "--metrics", "copying,intra_lpips",
                             "--res", "32", "--out", tmp_path / "c")
    assert code == 0, err
    metrics = report(tmp_path / "c")["metrics"]
    assert metrics["copying"]["flagged"] and metrics["copying"]["value"] < -3 and metrics["copying"]["ratio"] < 0.01
    assert "COPYING" in out
    assert metrics["intra_lpips"]["value"] == pytest.approx(0, abs=1e-6)  # each cluster holds one image 25 times
    assert metrics["intra_lpips"]["sizes"] == [25] * 10
    assert (tmp_path / "c" / "copying.png").stat().st_size > 0


@pytest.mark.parametrize("args, message", [
    (["--metrics", "fid,nope"], "unknown metric 'nope'"),
    (["--metrics", "copying"], "need the training images"),
    (["--features", "resnet"], "unknown feature extractor 'resnet'"),
    (["--metrics", "pr", "--n", "3"], "has 3 images; pr needs at least 4"),
])
def test_bad_input_is_one_line(run_cli, tmp_path, args, message):
    code, _, err = run_cli("evaluate", "builtin:emoji32", "--ref", "emoji:group=flags", "--n", "8", *args,
                           "--out", tmp_path / "x")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_training_evaluates_logs_and_keeps_the_best(tmp_path, run_cli):
    from test_train import DATA as DATA_OF_TINY, TINY

    from gankd.features import _load_extractor

    run = tmp_path / "run"
    _load_extractor.cache_clear()  # the extractor is built (random init, then its weights) in this run
    train(overrides=[*TINY, "steps=4", "eval.every=2", "eval.n=24", "eval.metrics=kid,pr", "eval.best=kid"], out=run)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train(overrides=[*TINY, "steps=4"], out=tmp_path / "plain")
    plain = [json.loads(line) for line in (tmp_path / "plain" / "metrics.jsonl").read_text().splitlines()]
    def losses(lines):
        return [[(k, v) for k, v in line.items() if k.startswith("loss/")] for line in lines if "loss/G_main/adv" in line]

    assert len(losses(plain)) == 4 and losses(lines) == losses(plain)  # evaluating changes nothing in training
    evals = [line for line in lines if "eval/kid" in line]
    assert [line["step"] for line in evals] == [2, 4]
    assert all({"eval/precision", "eval/recall"} <= set(line) for line in evals)
    with safe_open(run / "best.safetensors", "pt") as f:
        meta = json.loads(f.metadata()["gankd"])
    assert meta["kid"] == min(line["eval/kid"] for line in evals)
    assert "lowest kid[domain:" in meta["selected_by"] and "optimistic" in meta["selected_by"]
    # A run folder is evaluated at its last checkpoint, as the training's own evaluation did.
    with cpu_threads(1):  # the run's thread count (TINY): the same sums, so the same numbers
        code, _, err = run_cli("evaluate", run, "--ref", DATA_OF_TINY, "--metrics", "kid", "--n", "24",
                               "--out", tmp_path / "e")
    assert code == 0, err
    assert report(tmp_path / "e")["target_path"].endswith("step-0000004.safetensors")
    assert report(tmp_path / "e")["metrics"]["kid"]["value"] == evals[-1]["eval/kid"]  # the same samples, exactly


def test_a_recipes_prior_reaches_every_sampler(tmp_path, run_cli, monkeypatch):
    """A prior a recipe returns is stored in its checkpoints and is what training-time evaluation,
    `gankd evaluate` and `gankd generate` draw from."""
    from test_train import DATA as DATA_OF_TINY, TINY

    from gankd.generate import sample
    from gankd.images import to_uint8
    from gankd.methods.base import Recipe
    from gankd.priors import PRIORS, Normal, seed_latents

    class Negated(Normal):  # -z: samples unlike the default prior's (G normalises z, so not 2z)
        kind = "negated"

        def inputs(self, seeds, G):
            return {"z": -seed_latents(seeds, G.cfg.z_dim)}

    monkeypatch.setitem(PRIORS, "negated", Negated)
    monkeypatch.setattr(Recipe, "prior", lambda self: Negated())
    run = tmp_path / "run"
    train(overrides=[*TINY, "steps=2", "eval.every=2", "eval.n=24", "eval.metrics=kid"], out=run)
    trained = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["eval/kid"]
    ckpt = load_checkpoint(run / "checkpoints" / "step-0000002.safetensors")
    assert ckpt.meta["prior"] == {"kind": "negated", "values": {}} and isinstance(ckpt.prior(), Negated)
    G = ckpt.generator()
    expected = to_uint8(G(-seed_latents(range(4), G.cfg.z_dim), None, noise_mode="const"))
    assert np.array_equal(sample(ckpt.path, [0, 1, 2, 3]), expected)
    assert not np.array_equal(sample(ckpt.path, [0, 1, 2, 3], prior=Normal()), expected)
    with cpu_threads(1):
        code, out, err = run_cli("evaluate", run, "--ref", DATA_OF_TINY, "--metrics", "kid", "--n", "24",
                                 "--out", tmp_path / "e")
    assert code == 0, err
    assert report(tmp_path / "e")["metrics"]["kid"]["value"] == trained
    code, out, _ = run_cli("info", ckpt.path)
    assert code == 0 and "its stored prior (negated)" in out

"""Pretrained folders: save-pretrained's three files and model card, from_pretrained's exact weights
and samples, the folder wherever a checkpoint goes, the Hub offline (cached or one line)."""

import json
import shutil
import socket

import numpy as np
import pytest
import torch
import yaml

import gankd
from gankd.checkpoint import load_checkpoint
from gankd.errors import CheckpointError
from gankd.train import train

DATA = "emoji:group=animals,tone=none"
TINY = [f"data={DATA}", "res=16", "batch=4", "arch.channel_base=128", "arch.channel_max=32", "arch.z_dim=32",
        "arch.w_dim=32", "arch.n_mlp=1", "log_every=1", "sample_every=1000", "steps=2"]
FID_ID = "fid[domain:804d56a9,noise=random]"


def evaluation(path, metrics: dict, reference: str) -> None:
    """A metrics.json as gankd evaluate writes it (the parts the model card reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"target": "x", "samples": 500, "features": "domain:804d56a9",
                                "reference": reference, "metrics": metrics}))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny trained run inside an adapt folder whose final evaluation is written, with an
    evaluation logged at its last step, and a separate gankd evaluate metrics.json."""
    adapt = tmp_path_factory.mktemp("adapt")
    run = adapt / "run"
    train(overrides=TINY, out=run)
    (adapt / "adapt.json").write_text("{}")
    evaluation(adapt / "eval-step-2" / "metrics.json",
               {"fid": {"value": 12.345, "id": FID_ID},
                "pr": {"precision": 0.5, "recall": 0.25, "id": "pr[domain:804d56a9,noise=random]"}}, "split/eval")
    with (run / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 2, "eval/kid": 0.0123}) + "\n")
    evaluation(adapt / "elsewhere" / "metrics.json", {"kid": {"value": 0.0456, "id": "kid[inception:abc]"}}, DATA)
    return run


@pytest.fixture(scope="module")
def folder(run, tmp_path_factory):
    from gankd.cli import main

    out = tmp_path_factory.mktemp("pretrained") / "tiny-animals"
    main(["save-pretrained", str(run), "--out", str(out), "--license", "mit",
          "--metrics", str(run.parent / "elsewhere" / "metrics.json")])
    return out


def test_folder_holds_weights_config_and_card(folder):
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["library_name"] == "gankd" and config["architecture"] == "stylegan2"
    assert config["config"]["resolution"] == 16 and config["networks"] == ["G", "G_ema", "D"]
    assert config["training"]["data"] == DATA and config["training"]["steps"] == 2
    # networks and prior only: no optimizer moments or RNG states
    assert all(k.split(".")[0] in ("G", "G_ema", "D") for k in load_checkpoint(folder).tensors)


def test_model_card_says_data_command_and_metrics(run, folder):
    card = (folder / "README.md").read_text()
    _, front, body = card.split("---\n", 2)
    front = yaml.safe_load(front)
    assert front["library_name"] == "gankd" and front["license"] == "mit" and front["datasets"] == [DATA]
    assert {"gankd", "stylegan2", "scratch"} <= set(front["tags"])
    assert f"`{DATA}`" in body and "2 steps" in body
    assert "gankd train --config config.yaml" in body and "channel_base: 128" in body
    rows = [line for line in body.splitlines() if line.startswith("| ")][2:]
    assert len(rows) == 4 and rows[0] == f"| kid[domain] | 0.0123 | 1000 | {DATA} | {run / 'metrics.jsonl'} |"
    assert f"| {FID_ID} | 12.345 | 500 | split/eval |" in body
    assert "| pr[domain:804d56a9,noise=random] | precision 0.5, recall 0.25 | 500 |" in body
    assert "| kid[inception:abc] | 0.0456 | 500 |" in body
    assert "gankd generate tiny-animals --seeds 0-15" in body and 'gankd.from_pretrained("tiny-animals")' in body


def test_from_pretrained_gives_the_same_weights_and_samples(run, folder):
    original, loaded = load_checkpoint(run), gankd.from_pretrained(folder)
    assert loaded.roles == original.roles and loaded.config == original.config
    for key, tensor in loaded.tensors.items():
        assert torch.equal(tensor, original.tensors[key]), key
    assert len(loaded.tensors) == sum(k.split(".")[0] in loaded.roles for k in original.tensors)
    seeds = [0, 7, 123]
    assert np.array_equal(gankd.sample(folder, seeds), gankd.sample(run, seeds))


def test_commands_take_the_folder(run, folder, tmp_path, run_cli):
    code, out, err = run_cli("generate", folder, "--seeds", "0-3", "--out", tmp_path / "a.png")
    assert code == 0, err
    run_cli("generate", run, "--seeds", "0-3", "--out", tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    code, out, err = run_cli("info", folder)
    assert code == 0 and "2" in out.split("step:")[1].splitlines()[0]


def test_existing_folder_needs_force(run, folder, run_cli):
    before = (folder / "README.md").read_text()
    code, out, err = run_cli("save-pretrained", run, "--out", folder)
    assert code == 2 and err.count("\n") == 1 and "--force" in err and "Traceback" not in err
    assert (folder / "README.md").read_text() == before
    code, out, err = run_cli("save-pretrained", run, "--out", folder, "--force")
    assert code == 0, err
    assert "mit" not in (folder / "README.md").read_text()  # rewritten, now without a license


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_repo_id_offline_is_one_line(tmp_path, run_cli, no_network):
    code, out, err = run_cli("generate", "hf:nobody/no-such-model", "--seeds", "0-3", "--out", tmp_path / "g.png")
    assert code == 2 and err == ("gankd: error: Hugging Face repository nobody/no-such-model: not in the Hugging "
                                 "Face cache, and downloads are off (HF_HUB_OFFLINE=1)\n")
    with pytest.raises(CheckpointError, match="nobody/no-such-model: not in the Hugging Face cache"):
        gankd.from_pretrained("nobody/no-such-model")


def test_repo_id_offline_reads_the_hub_cache(folder, tmp_path, monkeypatch, run_cli, no_network):
    from huggingface_hub import constants

    commit = "0" * 40
    repo = tmp_path / "models--someone--tiny-animals"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    loaded = gankd.from_pretrained("someone/tiny-animals")
    assert loaded.path == repo / "snapshots" / commit / "model.safetensors"
    code, out, err = run_cli("generate", "hf:someone/tiny-animals", "--seeds", "0-1", "--out", tmp_path / "g.png")
    assert code == 0, err

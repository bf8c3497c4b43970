"""The training engine: config, exact resume after SIGKILL, frozen parameters, NaN stop, torchrun."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankd.checkpoint import load_checkpoint
from gankd.config import resolve
from gankd.errors import TrainingError
from gankd.methods import RECIPES, Recipe, register
from gankd.nets import Generator
from gankd.train import train
from gankd.train.batches import StepBatches

DATA = "emoji:group=animals,tone=none"
TINY = [f"data={DATA}", "res=16", "batch=4", "arch.channel_base=128", "arch.channel_max=32", "arch.z_dim=32",
        "arch.w_dim=32", "arch.n_mlp=1", "log_every=1", "sample_every=1000", "loss.r1_interval=2"]


def metrics(run_dir: Path) -> list[dict]:
    """The logged values of every step, without wall-clock timings."""
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if not k.startswith("time/")} for line in lines]


def as_from_a_terminal() -> None:
    """Ctrl-C reaches a process started from a terminal; a background shell (CI's) ignores SIGINT, and
    its children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def gankd_process(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gankd", "train", *map(str, args)], preexec_fn=as_from_a_terminal,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A tiny trained source checkpoint (G, G_ema, D) to fine-tune from."""
    run = tmp_path_factory.mktemp("source") / "run"
    return train(overrides=[*TINY, "steps=2"], out=run).checkpoint


def test_resume_after_sigkill_continues_exactly(tmp_path):
    args = [*TINY, "steps=24", "checkpoint_every=4", "augment.kind=ada", "augment.p=0.3", "augment.interval=3",
            "loss.pl_weight=2", "loss.pl_interval=3", "threads=1"]  # one count in this process and the killed one
    whole = tmp_path / "whole"
    train(overrides=args, out=whole)

    killed = tmp_path / "killed"
    proc = gankd_process(*args, "--out", killed)
    deadline = time.time() + 120
    while not (killed / "checkpoints" / "step-0000008.safetensors").exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = len(metrics(killed))
    assert done < 24, "the run finished before it was killed"

    result = train(overrides=["steps=24"], resume=killed)
    assert result.step == 24
    assert metrics(killed) == metrics(whole)  # every per-step loss, ADA p and kimg after the kill
    final = [load_checkpoint(run / "checkpoints" / "step-0000024.safetensors").tensors for run in (whole, killed)]
    assert final[0].keys() == final[1].keys()
    for key in final[0]:  # networks, optimizer moments, RNG states
        assert torch.equal(final[0][key], final[1][key]), key


def test_ctrl_c_says_how_to_go_on(tmp_path):
    run = tmp_path / "run"
    proc = gankd_process(*TINY, "steps=100000", "checkpoint_every=2", "--out", run)
    deadline = time.time() + 120
    while not (run / "checkpoints" / "step-0000002.safetensors").exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    last = err.strip().splitlines()[-1]
    assert last.startswith("gankd: interrupted; go on from step-") and f"gankd train --resume {run}" in last, err
    assert "Traceback" not in err


def test_checkpoint_holds_the_training_state(tmp_path, run_cli):
    run = tmp_path / "run"
    train(overrides=[*TINY, "steps=3", "checkpoint_every=1", "keep=2", "augment.kind=ada", "augment.p=0.2"], out=run)
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["step-0000002.safetensors", "step-0000003.safetensors"]  # only the newest `keep`
    ckpt = load_checkpoint(run / "checkpoints" / names[-1])
    training = ckpt.meta["training"]
    assert training["step"] == 3 and training["images"] == 12
    assert training["config"]["augment"]["kind"] == "ada" and "p" in training["parts"]["augment"]
    assert {"rng.0.torch", "rng.0.numpy", "part.path_length.pl_mean"} <= set(ckpt.tensors)
    assert any(k.startswith("optim.G.") and k.endswith("exp_avg_sq") for k in ckpt.tensors)
    assert len(training["rng"][0]["python"][1]) == 625
    assert (run / "config.yaml").is_file() and sorted(p.name for p in (run / "samples").iterdir())[0] == \
        "step-0000000.png"
    # The sample grids show the seeds `gankd generate` shows, not latents drawn from the stream
    # that initialised the networks; a run folder stands for its newest checkpoint.
    code, out, _ = run_cli("generate", run, "--seeds", "0-35", "--out", tmp_path / "g.png")
    assert code == 0
    generated, logged = (np.asarray(Image.open(p), dtype=int) for p in (tmp_path / "g.png", run / "samples" / "step-0000003.png"))
    assert generated.shape == logged.shape and np.abs(generated - logged).max() <= 1
    code, out, _ = run_cli("info", run / "checkpoints" / names[-1])
    assert code == 0 and "resumable: yes" in out and "step: 3" in out
    code, _, err = run_cli("info", tmp_path)
    assert code == 2 and "neither a checkpoint file nor a run folder" in err


def test_freezed_keeps_the_lowest_discriminator_blocks_bit_identical(tmp_path, source):
    src = load_checkpoint(source)
    result = train(overrides=[*TINY, "steps=3", "method=freezed", f"source={source}", "freezed.layers=2"],
                   out=tmp_path / "run")
    D, src_D = result.nets.D, src.network("D")
    for block in range(len(D.convs)):
        same = [torch.equal(a, b) for a, b in zip(D.convs[block].parameters(), src_D.convs[block].parameters())]
        assert all(same) if block < 2 else not all(same), block
    assert not torch.equal(D.final_linear[1].weight, src_D.final_linear[1].weight)
    assert not torch.equal(result.nets.G.conv1.conv.weight, src.network("G").conv1.conv.weight)


def test_finetune_starts_from_the_source_and_trains_everything(tmp_path, source):
    src = load_checkpoint(source)
    result = train(overrides=[*TINY, "steps=2", "method=finetune", f"source={source}"], out=tmp_path / "run")
    for role in ("G", "D"):
        trained, start = getattr(result.nets, role), src.network(role)
        changed = [not torch.equal(a, b) for a, b in zip(trained.parameters(), start.parameters())]
        assert sum(changed) >= len(changed) - 2  # all but parameters without gradient (e.g. unused noise)


@dataclass
class _Options:
    at_step: int = 3


class PoisonedRecipe(Recipe):
    """A test recipe whose extra D term turns non-finite at a chosen step."""

    name = "poisoned"
    Options = _Options

    def losses(self, phase, data):
        if phase == "D_main":
            return {"poison": torch.tensor(float("nan") if data.step == self.options.at_step else 0.0)}
        return {}


@pytest.fixture
def poisoned():
    register(PoisonedRecipe)
    yield
    RECIPES.pop(PoisonedRecipe.name)


def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, run_cli, poisoned):
    run = tmp_path / "run"
    code, _, err = run_cli("train", *TINY, "steps=10", "checkpoint_every=2", "method=poisoned",
                           "poisoned.at_step=3", "--out", run)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "non-finite loss in step 4, D_main (poison)" in err and "step-0000002.safetensors" in err
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-0000002.safetensors"]
    with pytest.raises(TrainingError, match="no checkpoint was written yet"):
        train(overrides=[*TINY, "steps=2", "method=poisoned", "poisoned.at_step=0"], out=tmp_path / "run2")


def test_torchrun_two_processes_keep_replicas_identical(tmp_path):
    out = tmp_path / "ranks"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(Path(__file__).with_name("ddp_worker.py")), str(out), str(tmp_path / "run"),
                           *TINY, "steps=3", "batch=8", "augment.kind=ada", "augment.p=0.5"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ranks = [load_checkpoint(out / f"rank{r}.safetensors") for r in (0, 1)]
    assert ranks[0].tensors.keys() == ranks[1].tensors.keys()
    for key in ranks[0].tensors:
        assert torch.equal(ranks[0].tensors[key], ranks[1].tensors[key]), key
    torch.manual_seed(0)  # the loop builds the initial networks from the seed: training moved them
    initial = Generator(ranks[0].config)
    assert not torch.equal(initial.conv1.conv.weight, ranks[0].network("G").conv1.conv.weight)
    saved = load_checkpoint(tmp_path / "run" / "checkpoints" / "step-0000003.safetensors")
    assert saved.meta["images seen"] == 24  # the global batch, whatever the number of processes
    assert len(saved.meta["training"]["rng"]) == 2


def test_step_batches_are_a_function_of_the_step_and_shard_the_global_batch():
    whole = StepBatches(10, 8, seed=1, stop=6)
    resumed = StepBatches(10, 8, seed=1, start=3, stop=6)
    assert list(whole)[3:] == list(resumed)
    halves = [StepBatches(10, 8, seed=1, rank=r, world=2, stop=6) for r in (0, 1)]
    for step, batch in enumerate(whole):
        assert halves[0].indices(step) + halves[1].indices(step) == batch
    epoch = [i for step in range(5) for i in whole.indices(step)][:10]  # 40 positions = 4 epochs
    assert sorted(epoch) == list(range(10))
    with pytest.raises(ValueError):
        StepBatches(10, 7, seed=0, world=2)


def test_config_file_overrides_and_errors(tmp_path, run_cli):
    yaml_file = tmp_path / "x.yaml"
    yaml_file.write_text("data: emoji\nbatch: 16\nloss:\n  kind: hinge\n  r1_gamma: 1e-3\n")
    cfg = resolve(yaml_file, ["batch=8", "freezed.layers=3", "method=freezed"])
    assert (cfg.batch, cfg.loss.kind, cfg.loss.r1_gamma, cfg.options) == (8, "hinge", 0.001, {"freezed": {
        "train_noise": True, "new_labels": "zero", "layers": 3}})
    stored_before_0_9 = {**cfg.to_dict(), "options": {"train_noise": False, "layers": 1}}  # one flat section
    assert resolve(base=stored_before_0_9).options == {"freezed": {"train_noise": False, "new_labels": "zero",
                                                                   "layers": 1}}
    code, out, _ = run_cli("train", "--config", yaml_file, "--res", "64", "--dry-run", "ema.rampup=none")
    assert code == 0 and "res: 64" in out and "rampup: null" in out and "kind: hinge" in out
    for bad, message in [(["nope=1"], "unknown setting 'nope'; known settings: arch.channel_base"),
                         (["ema.decy=0.9"], "unknown setting 'ema.decy' (did you mean 'ema.decay'?)"),
                         (["method=d3tt"], "unknown method 'd3tt' (did you mean 'd3t'?)"),
                         (["batch=x"], "batch must be an integer"),
                         (["freezed.layers=2"], "unknown setting 'freezed.layers'"),
                         (["method=xyz"], f"unknown method 'xyz'; known methods: {', '.join(sorted(RECIPES))}"),
                         (["loss.kind=wgan"], "loss.kind must be one of nonsat, hinge"),
                         (["arch.resolution=64"], "arch.resolution is set by the data"),
                         (["optim.g_lr=-0.002"], "optim.g_lr must be above 0"),
                         (["optim.beta2=1"], "optim.beta2 must be in [0, 1)"),
                         (["loss.r1_gamma=-1"], "loss.r1_gamma must be 0 or more"),
                         (["device=tpu9"], "device must be auto, cpu, cuda or cuda:N"),
                         (["batch"], "expected key=value")]:
        code, _, err = run_cli("train", "--data", "emoji", "--dry-run", *bad)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (bad, err)


def test_existing_run_folder_is_refused_and_resume_keeps_the_config(tmp_path, run_cli):
    run = tmp_path / "run"
    code, out, _ = run_cli("train", *TINY, "steps=2", "--out", run)
    assert code == 0 and out.strip().endswith("step-0000002.safetensors")
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    code, _, err = run_cli("train", *TINY, "steps=2", "--out", run)
    assert code == 2 and "holds a run; resume it with `gankd train --resume" in err
    code, _, err = run_cli("train", "--resume", run, "batch=8")
    assert code == 2 and "cannot change batch" in err
    code, _, err = run_cli("train", "--resume", run)
    assert code == 2 and "at step 2, the run's end" in err
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before  # nothing touched
    code, _, err = run_cli("train", "--resume", tmp_path / "nothing")
    assert code == 2 and "no such run folder or checkpoint" in err
    code, _, err = run_cli("train", *TINY, "method=finetune", "--out", tmp_path / "ft")
    assert code == 2 and "pass source=PATH" in err
    code, _, err = run_cli("train", *TINY, f"data={tmp_path / 'no-such-folder'}", "--out", tmp_path / "bad")
    assert code == 2 and "no-such-folder" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "ft").exists() and not (tmp_path / "bad").exists()  # failures leave no run folder


def test_the_minimal_recipe_in_the_architecture_doc_trains(tmp_path):
    text = (Path(__file__).parents[1] / "docs" / "architecture.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/architecture.md", "exec"), {"__name__": "doc_example"})
    try:
        train(overrides=[*TINY, "steps=2", "method=feature_matching", "feature_matching.weight=0.5"],
              out=tmp_path / "run")
        logged = metrics(tmp_path / "run")
    finally:
        RECIPES.pop("feature_matching")
    assert all(line["loss/G_main/feature_match"] >= 0 for line in logged) and len(logged) == 2


def test_conditional_data_trains_a_conditional_pair(tmp_path):
    overrides = [*TINY, "data=emoji:group=animals,tone=none,label=subgroup", "steps=2"]
    result = train(overrides=overrides, out=tmp_path / "run")
    assert result.nets.G.cfg.c_dim == 8 and load_checkpoint(result.checkpoint).config.c_dim == 8

"""What a run shows and records as it goes: ETA lines without a terminal, the inversion's progress,
precision=auto resolved and stored, and the optional W&B logger (a fake module: wandb is no dependency)."""

import importlib.machinery
import json
import re
import sys
import types

import pytest
import torch

from gankd import precision
from gankd.checkpoint import read_meta
from gankd.progress import progress
from gankd.train import train
from test_fewshot import d3t_run, shots, source  # noqa: F401 (fixtures)
from test_train import TINY

LINE = re.compile(r"step (\d+)/(\d+)  loss_g \S+  loss_d \S+  \S+ it/s  ETA (\S+)")


@pytest.fixture
def loud(monkeypatch):
    """Progress reports on, as for a user (conftest silences them); stderr is captured, not a terminal."""
    monkeypatch.delenv("GANKD_QUIET", raising=False)
    monkeypatch.delenv("RANK", raising=False)


def test_training_prints_an_eta_line_every_log_every_steps_without_a_terminal(tmp_path, loud, capsys):
    train(overrides=[*TINY, "steps=5", "log_every=2"], out=tmp_path / "run")
    found = [LINE.fullmatch(line) for line in capsys.readouterr().err.splitlines() if line.startswith("step ")]
    assert all(found)
    assert [(m[1], m[2]) for m in found] == [("2", "5"), ("4", "5"), ("5", "5")]  # every 2 steps, and the last
    assert found[-1][3] == "0m00s"


def test_progress_prints_evenly_spaced_lines_only_in_the_main_process(loud, monkeypatch, capsys):
    assert list(progress(range(10), "work", unit="step", lines=2)) == list(range(10))
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["work 5/10", "work 10/10"]
    assert lines[1].endswith("ETA 0m00s")
    monkeypatch.setenv("RANK", "1")  # another torchrun process
    list(progress(range(10), "work", lines=2))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("GANKD_QUIET", "1")
    list(progress(range(10), "work", lines=2))
    assert capsys.readouterr().err == ""


def test_d3t_reports_its_inversion_in_two_lines(source, shots, tmp_path, loud, capsys):  # noqa: F811
    d3t_run(source, shots, tmp_path / "run", "d3t.invert_steps=4")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("d3t: inverting")]
    assert [line.split("  ")[0] for line in lines] == ["d3t: inverting 5 shots 2/4", "d3t: inverting 5 shots 4/4"]


@pytest.mark.parametrize("native, expected", [(True, ("bf16", True)), (False, ("fp32", False))])
def test_auto_precision_follows_the_cpu_and_the_run_stores_what_ran(tmp_path, monkeypatch, native, expected):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert precision.resolved("auto", None, cpu) == expected
    assert precision.resolved("auto", None, cuda) == ("fp32", False)  # fp32 on GPUs, as the papers
    assert precision.resolved("auto", False, cpu) == (expected[0], False)  # an explicit channels_last stays
    assert precision.resolved("fp32", True, cpu) == ("fp32", True)
    result = train(overrides=[*TINY, "steps=1", "device=cpu"], out=tmp_path / "run")
    stored = read_meta(result.checkpoint)["training"]["config"]
    written = (tmp_path / "run" / "config.yaml").read_text()
    assert (stored["precision"], stored["channels_last"]) == expected
    assert f"precision: {expected[0]}\nchannels_last: {str(expected[1]).lower()}\n" in written


def test_resume_keeps_the_stored_precision_on_another_cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    train(overrides=[*TINY, "steps=1", "device=cpu"], out=tmp_path / "run")
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    result = train(overrides=["steps=2"], resume=tmp_path / "run")
    assert read_meta(result.checkpoint)["training"]["config"]["precision"] == "bf16"


class FakeWandb(types.ModuleType):
    """Records what gankd hands to wandb."""

    def __init__(self):
        super().__init__("wandb")
        self.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
        self.inits, self.logged, self.finished = [], [], 0
        fake = self

        class Run:
            def log(self, values, step):
                fake.logged.append((step, values))

            def finish(self):
                fake.finished += 1

        self.run = Run()

    def init(self, **settings):
        self.inits.append(settings)
        return self.run

    class Image:
        def __init__(self, array):
            self.shape = array.shape


def test_wandb_logs_what_metrics_jsonl_holds_offline_without_a_key(tmp_path, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    for name in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: no key
    run = tmp_path / "run"
    train(overrides=[*TINY, "steps=3", "logger=wandb,tensorboard"], out=run)
    assert len(fake.inits) == 1 and fake.finished == 1
    assert fake.inits[0]["mode"] == "offline" and fake.inits[0]["dir"] == str(run)
    assert fake.inits[0]["config"]["steps"] == 3 and fake.inits[0]["config"]["precision"] in ("fp32", "bf16")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    scalars = [{"step": step, **values} for step, values in fake.logged if "samples" not in values]
    assert scalars == rows and [r["step"] for r in rows] == [1, 2, 3]
    assert [step for step, values in fake.logged if "samples" in values] == [0, 3]  # the start and the end
    assert (run / "tb").is_dir()
    monkeypatch.setenv("WANDB_MODE", "disabled")
    train(overrides=[*TINY, "steps=1", "logger=wandb"], out=tmp_path / "second")
    assert fake.inits[1]["mode"] == "disabled"


def test_wandb_missing_is_one_line_before_any_work(tmp_path, run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # not installed
    code, out, err = run_cli("train", *TINY, "steps=1", "logger=wandb", "--out", tmp_path / "run")
    assert code == 2 and err.count("\n") == 1 and "pip install wandb" in err
    assert not (tmp_path / "run").exists()
    code, _, err = run_cli("train", *TINY, "steps=1", "logger=comet", "--out", tmp_path / "run")
    assert code == 2 and "logger must be" in err

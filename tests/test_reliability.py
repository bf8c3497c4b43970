"""A run folder's guarantees and odd input: one writer per folder (lock), no leftovers after a kill,
fallback past a damaged checkpoint, restart of a run that saved nothing, read-only outputs and full
disks as one line, thread and process counts recorded and checked, workers that outlive torchrun."""

import builtins
import errno
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from gankd.checkpoint import load_checkpoint
from gankd.lock import LOCK_FILE, FolderBusy, FolderLock, holder
from gankd.train import train
from gankd.train.state import inexact_resume
from test_train import TINY, gankd_process, metrics

FLAGS = "emoji:group=flags,tone=none,subgroup=country-flag"


def one_line(code, err, *needles):
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("gankd: error:"), err
    for needle in needles:
        assert needle in lines[0], lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return train(overrides=[*TINY, "steps=2"], out=tmp_path_factory.mktemp("source") / "run").checkpoint


@pytest.fixture
def threads():
    """Tests that set torch's thread count give it back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.01)


# One writer per folder ------------------------------------------------------------------------

def test_a_second_train_into_a_running_folder_fails_and_leaves_the_first_alone(tmp_path, run_cli):
    run = tmp_path / "run"
    first = gankd_process(*TINY, "steps=100000", "checkpoint_every=2", "keep=1000", "--out", run)
    try:
        wait_for(run / "checkpoints" / "step-0000002.safetensors", first)
        kept = {p: digest(p) for p in (run / "config.yaml", run / "checkpoints" / "step-0000002.safetensors")}
        for args in (["train", *TINY, "steps=5", "--out", run], ["train", "--resume", run, "steps=5"]):
            one_line(*run_cli(*args)[::2], f"{run} is in use by `gankd train` (pid {first.pid} on")
        wait_for(run / "checkpoints" / "step-0000004.safetensors", first)  # the first goes on
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert {p: digest(p) for p in kept} == kept
    steps = [line["step"] for line in metrics(run)]
    assert steps == list(range(1, len(steps) + 1))  # one run's lines, not two interleaved
    assert len(list((run / "tb").iterdir())) == 1
    assert not (run / LOCK_FILE).exists()  # released on exit (here: Ctrl-C)


def test_folder_lock_names_its_holder_and_a_dead_holders_file_is_taken_over(tmp_path):
    folder = tmp_path / "out"
    with FolderLock(folder, "gankd bench fewshot"):
        assert f"`gankd bench fewshot` (pid {os.getpid()} on" in holder(folder)
        with pytest.raises(FolderBusy, match="is in use by `gankd bench fewshot`"):
            FolderLock(folder, "gankd train").__enter__()
    assert holder(folder) is None and not folder.exists()  # it made the folder, wrote nothing: gone
    folder.mkdir()
    (folder / LOCK_FILE).write_text(json.dumps({"command": "gankd train", "pid": 999999, "host": "h",
                                                "started": 0}))  # left by a process killed with -9
    assert holder(folder) is None
    with FolderLock(folder, "gankd adapt"):
        assert "`gankd adapt`" in holder(folder)
    assert list(folder.iterdir()) == []


# Leftovers, damaged checkpoints and runs that saved nothing ------------------------------------

def test_resume_removes_half_written_checkpoints_and_says_how_much(tmp_path, run_cli):
    run = tmp_path / "run"
    train(overrides=[*TINY, "steps=2", "checkpoint_every=2"], out=run)
    leftover = run / "checkpoints" / ".step-0000004.safetensors.k3j_x9q2"  # what kill -9 in atomic_write leaves
    leftover.write_bytes(b"\0" * 2_500_000)
    (run / "samples" / ".step-0000004.png.a1b2c3d4").write_bytes(b"\0" * 500_000)
    code, _, err = run_cli("train", "--resume", run, "steps=4")
    assert code == 0, err
    assert "removed 2 unfinished writes (3.0 MB)" in err
    assert not any(p.name.startswith(".step") for p in run.rglob("*"))


def test_resume_falls_back_past_a_damaged_newest_checkpoint_exactly(tmp_path, run_cli):
    args = [*TINY, "steps=6", "checkpoint_every=2", "augment.kind=ada", "augment.p=0.3"]
    whole, damaged = tmp_path / "whole", tmp_path / "damaged"
    train(overrides=args, out=whole)
    train(overrides=[*args, "steps=4"], out=damaged)
    newest = damaged / "checkpoints" / "step-0000004.safetensors"
    newest.write_bytes(newest.read_bytes()[:-1000])  # truncated by a crash of the disk, say
    code, _, err = run_cli("train", "--resume", damaged, "steps=6")
    assert code == 0, err
    assert "skipped step-0000004.safetensors (not a readable gankd checkpoint (truncated" in err
    assert "kept as step-0000004.safetensors.broken" in err and "resuming" in err and "step-0000002" in err
    assert (damaged / "checkpoints" / "step-0000004.safetensors.broken").is_file()
    final = [load_checkpoint(run / "checkpoints" / "step-0000006.safetensors").tensors for run in (whole, damaged)]
    for key in final[0]:
        assert torch.equal(final[0][key], final[1][key]), key
    # An older checkpoint named explicitly: refused while a newer one loads (it would be replaced),
    # accepted when every newer one is damaged.
    (damaged / "checkpoints" / "step-0000006.safetensors").write_bytes(b"garbage")
    code, _, err = run_cli("train", "--resume", damaged / "checkpoints" / "step-0000002.safetensors", "steps=8")
    one_line(code, err, "newer checkpoints (step-0000004.safetensors)")
    code, _, err = run_cli("train", "--resume", damaged / "checkpoints" / "step-0000004.safetensors", "steps=8")
    assert code == 0 and "skipped step-0000006.safetensors (unknown checkpoint format" in err, err


def test_a_run_that_saved_no_checkpoint_starts_again_from_step_zero(tmp_path, run_cli):
    run = tmp_path / "run"
    stopped = tmp_path / "stopped"  # a start killed before its first checkpoint, as the folder shows it
    proc = gankd_process(*TINY, "steps=100000", "checkpoint_every=100000", "sample_every=1", "--out", run)
    wait_for(run / "samples" / "step-0000002.png", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "checkpoints").exists() or not list((run / "checkpoints").iterdir())
    code, _, err = run_cli("train", *TINY, "steps=3", "--out", run)
    one_line(code, err, "it saved no checkpoint; start it again with `gankd train --resume")
    code, _, err = run_cli("train", "--resume", run, "steps=3", "checkpoint_every=3", "sample_every=3")
    assert code == 0, err
    assert "has no checkpoint to go on from; starting it again from step 0" in err
    train(overrides=[*TINY, "steps=3", "checkpoint_every=3", "sample_every=3"], out=stopped)
    assert metrics(run) == metrics(stopped)  # the same run as a fresh start, none of the killed one's lines
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-0000000.png", "step-0000003.png"]


def test_non_finite_settings_are_refused(run_cli, tmp_path):
    one_line(*run_cli("train", *TINY, "optim.g_lr=inf", "--out", tmp_path / "r")[::2],
             "optim.g_lr must be a finite number, not 'inf'")
    one_line(*run_cli("train", *TINY, "loss.r1_gamma=nan", "--out", tmp_path / "r")[::2], "loss.r1_gamma")
    assert not (tmp_path / "r").exists()


def test_adapt_checks_every_setting_first_and_resume_redoes_what_was_cut_off(source, run_cli, tmp_path):
    out = tmp_path / "adapt"
    base = ["adapt", "--source", source, "--target", FLAGS, "--shots", "4", "--method", "finetune", "steps=2"]
    one_line(*run_cli(*base, "--eval-n", "1", "--out", out)[::2], "the final evaluation (--eval-n) has 1 image; kid needs at least 2")
    assert not out.exists()
    one_line(*run_cli(*base, "--seed", "-1", "--out", out)[::2], "seed must be in 0..4294967295")
    assert not out.exists()
    code, _, err = run_cli(*base, "--eval-n", "24", "--out", out)
    assert code == 0, err
    first = json.loads((out / "eval-step-2" / "metrics.json").read_text())
    assert first["samples"] == 24
    # Cut off in every part at once: the split lost its manifest, no checkpoint, no evaluation.
    (out / "split" / "manifest.json").unlink()
    for path in (out / "run" / "checkpoints").iterdir():
        path.unlink()
    (out / "eval-step-2").rename(tmp_path / "old-eval")
    code, _, err = run_cli("adapt", "--resume", out)  # remembers --eval-n 24
    assert code == 0, err
    again = json.loads((out / "eval-step-2" / "metrics.json").read_text())
    assert again["samples"] == 24 and again["metrics"]["kid"]["value"] == first["metrics"]["kid"]["value"]


# Outputs that cannot be written ---------------------------------------------------------------

@pytest.fixture
def read_only(monkeypatch):
    """Writes under the given folder fail as on a read-only file system (tests run as root, where
    permissions would not stop them)."""
    roots = []
    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def deny_under(path):
        full = os.path.abspath(os.fspath(path))
        if any(full == r or full.startswith(r + os.sep) for r in roots):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            deny_under(path)
        return real_os_open(path, flags, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        deny_under(path)
        return real_mkdir(path, *args, **kwargs)

    def open_(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and set(mode) & set("wax+"):
            deny_under(file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)
    return lambda folder: roots.append(os.path.abspath(folder))


def test_read_only_outputs_are_one_line(source, run_cli, tmp_path, read_only):
    ro = tmp_path / "ro"
    ro.mkdir()
    read_only(ro)
    commands = {
        "train": ["train", *TINY, "steps=1", "--out", ro / "run"],
        "generate": ["generate", source, "--seeds", "0-3", "--out", ro / "g.png"],
        "data split": ["data", "split", FLAGS, "--out", ro / "split", "--shots", "4"],
        "evaluate": ["evaluate", source, "--ref", FLAGS, "--n", "8", "--out", ro / "eval"],
        "adapt": ["adapt", "--source", source, "--target", FLAGS, "--shots", "4", "--out", ro / "adapt"],
    }
    for name, args in commands.items():
        code, _, err = run_cli(*args)
        one_line(code, err, f"cannot write {ro}", "read-only file system")
    assert list(ro.iterdir()) == []


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path, run_cli, monkeypatch):
    real_fsync = os.fsync

    def fsync(fd):
        if "step-0000004" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    run = tmp_path / "run"
    code, _, err = run_cli("train", *TINY, "steps=6", "checkpoint_every=2", "--out", run)
    one_line(code, err, f"cannot write {run / 'checkpoints' / 'step-0000004.safetensors'}: no space left on device",
             "MB, ", "are free there", "go on from step-0000002.safetensors")
    size = float(err.split("it needs ")[1].split(" MB")[0])
    assert size == pytest.approx((run / "checkpoints" / "step-0000002.safetensors").stat().st_size / 1e6, abs=0.1)
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-0000002.safetensors"]  # no temp file
    assert load_checkpoint(run / "checkpoints" / "step-0000002.safetensors").meta["training"]["step"] == 2


# Odd input ------------------------------------------------------------------------------------

def test_seeds_out_of_range_are_one_line(source, run_cli, tmp_path):
    one_line(*run_cli("train", *TINY, "seed=-1", "--out", tmp_path / "r")[::2], "seed must be in 0..4294967295")
    one_line(*run_cli("data", "split", FLAGS, "--out", tmp_path / "s", "--seed", "-1")[::2], "seed must be in 0..")
    one_line(*run_cli("evaluate", source, "--ref", FLAGS, "--seed", "4294967290", "--n", "8")[::2],
             "--seed must be in 0..4294967295, got 4294967290 .. 4294967290 + 7")
    one_line(*run_cli("generate", source, "--seeds", "0-4294967295", "--out", tmp_path / "g")[::2],
             "name 4,294,967,296 images; at most 1,000,000")
    one_line(*run_cli("generate", source, "--seeds", "0-2000", "--out", tmp_path / "g.png")[::2],
             "a grid shows at most 1024 images, not 2,001")
    assert not any(tmp_path.iterdir())


def test_huge_images_decode_up_to_pils_limit_and_beyond_it_are_one_line(run_cli, tmp_path):
    big, bomb = tmp_path / "big", tmp_path / "bomb"
    for folder, side in ((big, 10000), (bomb, 14000)):
        folder.mkdir()
        Image.new("L", (side, side), 128).save(folder / "a.png")
    code, _, err = run_cli("data", "show", big, "-o", tmp_path / "big.png", "--res", "8")
    assert code == 0 and err == ""  # no DecompressionBombWarning
    one_line(*run_cli("train", "--data", bomb, "--res", "16", "--out", tmp_path / "r")[::2],
             f"{bomb / 'a.png'}: too large to decode safely (Image size (196000000 pixels) exceeds limit")


def test_evaluation_references_follow_trainings_rule_for_small_images(source, run_cli, tmp_path):
    ref = tmp_path / "ref"
    ref.mkdir()
    for i in range(4):
        Image.new("RGB", (1 if i == 2 else 32, 1 if i == 2 else 32), (60 * i, 0, 0)).save(ref / f"{i}.png")
    one_line(*run_cli("evaluate", source, "--ref", ref, "--n", "8", "--out", tmp_path / "e")[::2],
             f"{ref / '2.png'} (1x1) is smaller than the resolution 16", "--upscale")
    one_line(*run_cli("train", "--data", ref, "--res", "16", "--out", tmp_path / "r")[::2],
             f"{ref / '2.png'} (1x1) is smaller than the resolution 16")
    code, _, err = run_cli("evaluate", source, "--ref", ref, "--n", "8", "--upscale", "--out", tmp_path / "e")
    assert code == 0, err


def test_config_files_with_a_key_twice_and_bad_option_values_are_one_line(run_cli, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("steps: 5\nloss:\n  r1_gamma: 1\n  r1_gamma: 2\n")
    one_line(*run_cli("train", "--config", config, "--data", FLAGS)[::2], "'r1_gamma' appears twice (line 4)")
    one_line(*run_cli("train", "--res", "abc")[::2], "Invalid value for '--res'", "(see gankd train --help)")
    one_line(*run_cli("nosuch")[::2], "No such command 'nosuch'")


# Threads, processes and the launcher ------------------------------------------------------------

def test_the_thread_count_is_recorded_and_a_resume_with_another_warns(tmp_path, run_cli, threads):
    run = tmp_path / "run"
    torch.set_num_threads(3)
    code, _, err = run_cli("train", *TINY, "steps=2", "checkpoint_every=2", "threads=1", "--out", run)
    assert code == 0, err
    assert torch.get_num_threads() == 3  # the caller's count is given back (gankd.train is a library call too)
    training = load_checkpoint(run / "checkpoints" / "step-0000002.safetensors").meta["training"]
    assert (training["threads"], training["device"]) == (1, "cpu")
    code, _, err = run_cli("train", "--resume", run, "steps=3", "threads=2")
    assert code == 0 and "warning:" in err
    assert "trained with 1 CPU threads, resumed with 2" in err and "set threads=1" in err
    code, _, err = run_cli("train", "--resume", run, "steps=4", "threads=2")
    assert code == 0 and "warning" not in err  # step 3 was trained with 2


def test_a_resume_with_another_process_count_warns():
    now = torch.get_num_threads()
    training = {"rng": [{}, {}], "threads": now, "device": "cpu"}
    (line,) = inexact_resume(training, world=1)
    assert "trained with 2 process(es), resumed with 1" in line
    assert inexact_resume(training, world=2) == []
    assert len(inexact_resume({**training, "threads": now + 1}, world=2)) == 1
    assert inexact_resume({**training, "threads": now + 1, "device": "cuda"}, world=2) == []  # threads: CPU only


def test_a_batch_that_does_not_split_among_processes_is_refused_before_any_work(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    one_line(*run_cli("train", *TINY, "--out", tmp_path / "r")[::2],
             "batch 4 does not split evenly among 3 processes; use a multiple of 3")
    monkeypatch.setenv("RANK", "1")  # the same message from every rank would be noise: rank 0 says it
    code, _, err = run_cli("train", *TINY, "--out", tmp_path / "r")
    assert code == 2 and err == ""
    assert not (tmp_path / "r").exists()


def test_a_torchrun_worker_stops_when_its_launcher_is_killed(tmp_path):
    ready = tmp_path / "ready"
    worker_code = (f"from gankd.train.dist import Dist; import pathlib, time; Dist.start('cpu'); "
                   f"pathlib.Path({str(ready)!r}).touch(); time.sleep(120)")
    launcher_code = textwrap.dedent(f"""
        import os, subprocess, sys, time
        env = {{**os.environ, "TORCHELASTIC_RUN_ID": "test", "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}}
        worker = subprocess.Popen([sys.executable, "-c", {worker_code!r}], env=env)
        print(worker.pid, flush=True)
        time.sleep(120)
    """)
    launcher = subprocess.Popen([sys.executable, "-c", launcher_code], stdout=subprocess.PIPE, text=True)
    worker = int(launcher.stdout.readline())
    wait_for(ready, launcher, 60)
    launcher.send_signal(signal.SIGKILL)  # torchrun cannot stop its workers now
    launcher.wait()
    deadline = time.time() + 20
    while time.time() < deadline and alive(worker):
        time.sleep(0.1)
    if alive(worker):
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker kept running after its launcher died")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has stopped; only its parent's wait is missing

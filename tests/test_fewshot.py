"""Few-shot methods on a tiny source: named terms, exact zero KD at the start, inversion, ablations."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors import safe_open

from gankd.checkpoint import load_checkpoint
from gankd.config import ConfigError
from gankd.data.dataset import ImageDataset
from gankd.data.spec import open_source
from gankd.features import load_extractor
from gankd.inversion import reconstruction_errors
from gankd.train import train
from test_train import TINY

TARGET = "emoji:group=flags,tone=none,subgroup=country-flag"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("source") / "run"
    return train(overrides=[*TINY, "steps=2"], out=run).checkpoint


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    from gankd.data.splits import write_images

    folder = tmp_path_factory.mktemp("shots") / "flags"
    write_images(open_source(TARGET), range(5), folder, 16)  # 5: not a multiple of the mbstd group
    return folder


def d3t_run(source, shots, out, *extra):
    args = [*TINY, f"data={shots}", "method=d3t", f"source={source}", "steps=3", "d3t.invert_steps=5", *extra]
    return train(overrides=args, out=out)


def logged(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_d3t_logs_its_terms_and_kd_is_zero_while_d_equals_the_source(source, shots, tmp_path):
    run = d3t_run(source, shots, tmp_path / "run")
    lines = logged(tmp_path / "run")
    for term in ("loss/G_main/mmd", "loss/G_main/pair", "loss/D_main/kd_real", "loss/D_main/kd_fake"):
        assert all(term in line for line in lines)
    # Step 1's D_main runs before D_t's first update: D_t = D_s, so the KD terms are exactly zero.
    assert lines[0]["loss/D_main/kd_real"] == 0 and lines[0]["loss/D_main/kd_fake"] == 0
    assert lines[-1]["loss/D_main/kd_real"] > 0
    assert run.nets.frozen["D_s"].state_dict().keys() == run.nets.D.state_dict().keys()
    for name, value in load_checkpoint(source).network("D").state_dict().items():  # the teacher stays frozen
        assert torch.equal(run.nets.frozen["D_s"].state_dict()[name].cpu(), value)


def test_d3t_inversion_lowers_the_reconstruction_error(source, shots, tmp_path):
    run = d3t_run(source, shots, tmp_path / "run", "d3t.invert_steps=30")
    with safe_open(run.checkpoint, "pt") as f:
        w = f.get_tensor(next(k for k in f.keys() if k.endswith("w_shots")))
    G_s = load_checkpoint(source).generator()
    data = ImageDataset(open_source(str(shots)), 16, channels=3)
    targets = torch.stack([data[i]["image"] for i in range(len(data))])
    domain = load_extractor("domain")
    with torch.no_grad():
        at_average = reconstruction_errors(targets, G_s.synthesis(G_s.w_avg.expand(5, G_s.num_ws, -1),
                                                                  noise_mode="const"), domain)
        inverted = reconstruction_errors(targets, G_s.synthesis(w, noise_mode="const"), domain)
    assert (inverted[0] < at_average[0]).all() and (inverted[1] < at_average[1]).all()


def test_d3t_ablations_switch_terms_off(source, shots, tmp_path):
    d3t_run(source, shots, tmp_path / "a", "d3t.mmd_weight=0", "d3t.kd_on=real", "d3t.kd_layers=b4")
    line = logged(tmp_path / "a")[-1]
    assert "loss/G_main/mmd" not in line and "loss/D_main/kd_fake" not in line
    assert "loss/D_main/kd_real" in line and "loss/G_main/pair" in line


@pytest.mark.parametrize("option, message", [
    ("d3t.kd_layers=b99", "no feature 'b99'"),
    ("d3t.kd_on=both", "kd_on must be"),
    ("d3t.invert_space=z", "invert_space must be"),
])
def test_d3t_bad_options_fail_before_training(source, shots, tmp_path, option, message):
    with pytest.raises(ConfigError, match=message):
        d3t_run(source, shots, tmp_path / "bad", option)
    assert not (tmp_path / "bad").exists()


def test_d3t_resumes_exactly_with_its_inverted_shots(source, shots, tmp_path):
    whole = d3t_run(source, shots, tmp_path / "whole", "steps=4", "checkpoint_every=2")
    d3t_run(source, shots, tmp_path / "part", "steps=2", "checkpoint_every=2")
    resumed = train(overrides=["steps=4"], resume=tmp_path / "part")
    strip = lambda lines: [{k: v for k, v in line.items() if not k.startswith("time/")} for line in lines]  # noqa: E731
    assert strip(logged(tmp_path / "part")) == strip(logged(tmp_path / "whole"))
    for name, value in whole.nets.G.state_dict().items():
        assert torch.equal(resumed.nets.G.state_dict()[name], value)


def cdc_run(source, shots, out, *extra):
    return train(overrides=[*TINY, f"data={shots}", "method=cdc", f"source={source}", "steps=4",
                            "checkpoint_every=2", *extra], out=out)


def test_cdc_logs_its_term_trains_its_patch_head_and_resumes_exactly(source, shots, tmp_path):
    whole = cdc_run(source, shots, tmp_path / "whole")
    lines = logged(tmp_path / "whole")
    assert all(line["loss/G_main/cdc"] > -1e-5 for line in lines)  # a KL: >= 0 up to rounding
    assert lines[-1]["loss/G_main/cdc"] > 1e-3  # G_t drifts from G_s, the term grows
    part = cdc_run(source, shots, tmp_path / "part", "steps=2")
    early = {k: v.clone() for k, v in part.nets.aux["patch_head"].state_dict().items()}
    resumed = train(overrides=["steps=4"], resume=tmp_path / "part")
    assert logged(tmp_path / "part")[-1]["loss/D_main/adv_real"] == lines[-1]["loss/D_main/adv_real"]
    head, again = whole.nets.aux["patch_head"].state_dict(), resumed.nets.aux["patch_head"].state_dict()
    assert all(torch.equal(head[k], again[k]) for k in head)
    assert not all(torch.equal(head[k], early[k]) for k in head)  # steps 3 and 4 trained it
    with safe_open(whole.checkpoint, "pt") as f:
        stored = {k.split("patch_head.", 1)[1]: f.get_tensor(k) for k in f.keys() if "patch_head." in k}
    assert stored.keys() == head.keys() and all(torch.equal(stored[k], head[k].cpu()) for k in head)


def test_cdc_distance_consistency_is_zero_for_the_source_itself():
    from gankd.losses.distill import distance_consistency

    feats = [torch.randn(5, 8, 4, 4), torch.randn(5, 16)]
    rows = torch.tensor([0, 1, 1, 0, 1])
    assert distance_consistency(feats, [f.clone() for f in feats], rows) == pytest.approx(0, abs=1e-7)
    assert distance_consistency(feats, [torch.randn(5, 8, 4, 4), torch.randn(5, 16)], rows) > 0


def test_adapt_splits_trains_evaluates_on_held_out_images_and_resumes(source, run_cli, tmp_path):
    out = tmp_path / "adapt"
    args = ["adapt", "--source", source, "--target", TARGET, "--shots", "4", "--method", "freezed",
            "--eval-n", "24", "steps=2", "eval.every=1", "eval.n=16", "eval.metrics=kid,copying"]
    code, stdout, err = run_cli(*args, "--out", out)
    assert code == 0, err
    manifest = json.loads((out / "split" / "manifest.json").read_text())
    assert manifest["shots"] == 4 and len(list((out / "split" / "eval").glob("*.png"))) == manifest["total"] - 4
    evals = [line for line in logged(out / "run") if "eval/kid" in line]
    assert [line["step"] for line in evals] == [1, 2]
    report = json.loads((out / "eval-step-2" / "metrics.json").read_text())
    assert report["reference_images"] == manifest["total"] - 4 and report["training_images"] == 4
    assert "kid[domain:" in stdout
    code, _, err = run_cli("adapt", "--resume", out, "steps=3")
    assert code == 0, err
    first = json.loads((out / "eval-step-3" / "metrics.json").read_text())
    (out / "eval-step-3").rename(tmp_path / "interrupted")  # as if the final evaluation had been cut off
    code, _, err = run_cli("adapt", "--resume", out)  # training is done: only the evaluation runs
    assert code == 0, err
    again = json.loads((out / "eval-step-3" / "metrics.json").read_text())
    assert again["metrics"]["kid"]["value"] == first["metrics"]["kid"]["value"]
    code, _, err = run_cli(*args, "--out", out)
    assert code == 2 and "exists" in err  # never over an earlier adaptation


@pytest.mark.parametrize("args, message", [
    (["--method", "nope"], "unknown few-shot method 'nope'"),
    (["--shots", "0"], "--shots must be between"),
    (["d3t.kd_layers=b99"], "no feature 'b99'"),
    (["batch=x"], "batch"),
])
def test_adapt_bad_input_is_one_line(source, run_cli, tmp_path, args, message):
    code, _, err = run_cli("adapt", "--source", source, "--target", TARGET, "--out", tmp_path / "a", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists()


def test_adapt_refuses_an_evaluation_set_too_small_before_training(source, run_cli, tmp_path):
    folder = tmp_path / "twelve"
    folder.mkdir()
    for i in range(12):
        Image.new("RGB", (32, 32), (20 * i, 0, 0)).save(folder / f"{i}.png")
    code, _, err = run_cli("adapt", "--source", source, "--target", folder, "--out", tmp_path / "a")
    assert code == 2 and "has 2 images; pr needs at least 4" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists()


def test_bench_fewshot_tables_pictures_commands_and_resume(source, run_cli, tmp_path, monkeypatch):
    from gankd.bench import fewshot

    monkeypatch.setitem(fewshot.TARGETS, "country", TARGET)
    out = tmp_path / "bench"
    args = ["bench", "fewshot", "--methods", "finetune,d3t", "--targets", "country", "--seeds", "2",
            "--source", source, "--shots", "4", "--eval-n", "24", "--out", out,
            "steps=2", "eval.every=0", "d3t.invert_steps=3"]
    code, stdout, err = run_cli(*args)
    assert code == 0, err
    rows = list(__import__("csv").DictReader((out / "results.csv").open()))
    assert [(r["target"], r["method"], r["seeds"]) for r in rows] == [("country", "source", "1"),
                                                                        ("country", "finetune", "2"),
                                                                        ("country", "d3t", "2")]
    assert "| country | d3t | 2 |" in (out / "results.md").read_text() and "kid[domain:" in stdout
    source_eval = json.loads((out / "runs" / "country" / "source" / "metrics.json").read_text())
    assert source_eval["target_path"] == str(source) and source_eval["samples"] == 24
    assert float(rows[0]["kid"]) == source_eval["metrics"]["kid"]["value"]
    assert len((out / "commands.txt").read_text().splitlines()) == 5
    pinned = json.loads((out / "bench.json").read_text())["threads"]
    assert pinned == torch.get_num_threads() and f"threads={pinned}" in (out / "commands.txt").read_text()
    run_config = load_checkpoint(out / "runs" / "country" / "d3t" / "seed0" / "run").meta["training"]
    assert run_config["threads"] == pinned == run_config["config"]["threads"]
    assert (out / "country.png").stat().st_size > 0
    # Runs in parallel processes compute what one process computes.
    code, _, err = run_cli(*args[:args.index("--out")], "--out", tmp_path / "parallel", "--jobs", "2",
                           "--threads", str(pinned), *args[args.index("--out") + 2:])
    assert code == 0, err
    assert list(__import__("csv").DictReader((tmp_path / "parallel" / "results.csv").open())) == rows
    stamp = (out / "runs" / "country" / "d3t" / "seed1" / "eval-step-2" / "metrics.json").stat().st_mtime
    assert run_cli(*args)[0] == 0  # a finished bench is read back, not rerun
    assert (out / "runs" / "country" / "d3t" / "seed1" / "eval-step-2" / "metrics.json").stat().st_mtime == stamp
    # Interrupted runs: one during its final evaluation, one before its first checkpoint.
    runs = out / "runs" / "country"
    shutil.rmtree(runs / "d3t" / "seed1" / "eval-step-2")
    shutil.rmtree(runs / "finetune" / "seed1" / "eval-step-2")
    for ckpt in (runs / "finetune" / "seed1" / "run" / "checkpoints").iterdir():
        ckpt.unlink()
    code, _, err = run_cli(*args)
    assert code == 0, err
    assert list(__import__("csv").DictReader((out / "results.csv").open())) == rows  # the same numbers again
    # A bench folder goes on only with the same protocol; no other folder is taken for one.
    code, _, err = run_cli(*args[:-3], "steps=3", "eval.every=0", "d3t.invert_steps=3")
    assert code == 2 and "is a bench run with settings" in err
    code, _, err = run_cli(*args[:12], "--out", runs / "d3t")
    assert code == 2 and "exists and is not an empty folder" in err


def test_adapt_defaults_yield_to_a_config_file_and_settings(tmp_path):
    from gankd.adapt import ADAPT_DEFAULTS
    from gankd.train import resolve_run

    required = ["data=x", "res=256", "method=d3t", "source=s"]
    cfg, _, _ = resolve_run("configs/fewshot-256.yaml", [*required, "eval.n=64"], tmp_path / "r", defaults=ADAPT_DEFAULTS)
    assert (cfg.steps, cfg.batch, cfg.eval.features, cfg.eval.n) == (5000, 4, "inception", 64)
    assert cfg.eval.metrics == "kid,fid,intra_lpips,copying" and cfg.loss.r1_gamma == 10
    dip, _, _ = resolve_run("configs/fewshot-256.yaml", ["data=x", "res=256", "method=d3t+dip", "source=s",
                                                           "dip.extractor=clip:ViT-B-32/openai"], tmp_path / "r",
                            defaults=ADAPT_DEFAULTS)
    assert (dip.steps, dip.options["dip"]["extractor"], dip.options["d3t"]["invert_steps"]) == \
        (5000, "clip:ViT-B-32/openai", 200)
    plain, _, _ = resolve_run(None, required, tmp_path / "r", defaults=ADAPT_DEFAULTS)
    assert (plain.steps, plain.batch, plain.eval.every) == (500, 4, 100)
    # The literature's protocol, for every method alike (docs/fewshot.md gives each setting's source).
    assert (plain.loss.r1_gamma, plain.loss.style_mixing, plain.loss.pl_weight, plain.mirror, plain.ema.decay) == \
        (10, 0.9, 2, True, 0.99778)

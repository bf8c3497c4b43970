"""SRP-KD and the distillers of translation models: relation matrices by hand and across channel
counts, students of pix2pix and CycleGAN teachers (terms logged, teacher untouched, exact resume),
`gankd distill` and its bad input, export (a student runs in `gankd translate`, TorchScript and
ONNX compute gankd's forward), and the compression bench end to end."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankd.checkpoint import load_checkpoint
from gankd.config import resolve
from gankd.export import deployable
from gankd.families.translation import translate
from gankd.losses.relation import batch_relation, relation_loss, relation_matrix, spatial_relation
from gankd.train import train

TINY = ["res=32", "translation.ndf=4", "log_every=1", "sample_every=1000", "threads=1"]


def logged(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def one_line(code, err, needle):
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and needle in lines[0], err


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A pix2pix teacher (U-Net, ngf 8, batch norm, no dropout) trained two steps on glyphs-bold."""
    out = tmp_path_factory.mktemp("teacher") / "run"
    train(overrides=["data=glyphs-bold", "method=pix2pix", "steps=2", "translation.ngf=8", "translation.dropout=false",
                     *TINY], out=out)
    return out


# Relation matrices ---------------------------------------------------------------------------------

def test_relation_matrix_by_hand():
    f = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])  # N = 3 positions, C = 2
    r2, r6 = 1 / math.sqrt(2), 1 / math.sqrt(6)
    expected = torch.tensor([[[r2, 0, r2], [0, r2, r2], [r6, r6, 2 * r6]]])
    assert torch.allclose(relation_matrix(f), expected)
    # SRP reads a [B, C, H, W] map by positions: the same three positions as a 1 x 3 map
    assert torch.allclose(spatial_relation(f.transpose(1, 2).reshape(1, 2, 1, 3), 32), expected)
    # SP relates the images of a batch: two images [1, 0] and [1, 1] (flattened maps)
    batch = torch.tensor([[1.0, 0.0], [1.0, 1.0]]).view(2, 2, 1, 1)
    assert torch.allclose(batch_relation(batch), torch.tensor([[[1, 1], [1, 2]]]) / torch.tensor([[2.0], [5.0]]).sqrt())
    other = torch.zeros_like(expected)
    assert relation_loss(expected, other).item() == pytest.approx(expected.square().mean().item())


def test_relation_needs_no_adapter_across_channel_counts():
    gen = torch.Generator().manual_seed(0)
    wide = torch.randn(2, 64, 8, 8, generator=gen)
    q, _ = torch.linalg.qr(torch.randn(64, 64, generator=gen))
    rotated = torch.einsum("dc,bchw->bdhw", q, wide)  # the same map in other channel coordinates
    padded = torch.cat([wide, torch.zeros(2, 16, 8, 8)], 1)  # 80 channels
    thin = torch.randn(2, 16, 8, 8, generator=gen)
    a = spatial_relation(wide, 32)
    assert a.shape == spatial_relation(thin, 32).shape == (2, 64, 64)
    assert relation_loss(a, spatial_relation(rotated, 32)) < 1e-10
    assert relation_loss(a, spatial_relation(padded, 32)) < 1e-12
    assert relation_loss(a, spatial_relation(thin, 32)) > 1e-4  # a different map relates its positions otherwise
    assert spatial_relation(wide, 4).shape == (2, 16, 16)  # pooled to 4 x 4 positions
    assert batch_relation(thin).shape == (1, 2, 2)


# Students ------------------------------------------------------------------------------------------

def test_pix2pix_student_logs_every_term_leaves_the_teacher_alone_and_resumes_exactly(teacher, tmp_path):
    ckpt = load_checkpoint(teacher / "checkpoints" / "step-0000002.safetensors")
    before = {k: v.clone() for k, v in ckpt.tensors.items()}
    args = ["data=glyphs-bold", "method=pix2pix+distill", f"distill.teacher={teacher}", "distill.terms=kd,feature,sp,srp",
            "translation.ngf=4", "translation.dropout=false", "batch=2", "steps=4", "checkpoint_every=2", *TINY]
    whole = train(overrides=args, out=tmp_path / "whole")
    train(overrides=[*args, "steps=2"], out=tmp_path / "part")
    resumed = train(overrides=["steps=4"], resume=tmp_path / "part")
    line = logged(tmp_path / "whole")[-1]
    assert {"loss/G_main/kd", "loss/G_main/feature", "loss/G_main/sp", "loss/G_main/srp", "loss/G_main/l1"} <= set(line)
    assert all(line[f"loss/G_main/{t}"] > 0 for t in ("kd", "feature", "sp", "srp"))
    after = load_checkpoint(teacher / "checkpoints" / "step-0000002.safetensors").tensors
    assert all(torch.equal(before[k], after[k]) for k in before)
    a, b = (load_checkpoint(r.checkpoint).tensors for r in (whole, resumed))
    assert "part.recipe.distill.adapters.G_down1.weight" in a
    for key in a:
        assert torch.equal(a[key], b[key]), key
    student = load_checkpoint(whole.checkpoint)
    assert student.config.ngf == 4 and student.roles == ["G", "D"]


def test_cyclegan_student_distils_both_directions(tmp_path):
    base = ["data=emoji-tones", "translation.generator=resnet_6blocks", "steps=1", *TINY]
    train(overrides=[*base, "method=cyclegan", "translation.ngf=4"], out=tmp_path / "teacher")
    train(overrides=[*base, "method=cyclegan+distill", f"distill.teacher={tmp_path / 'teacher'}", "translation.ngf=2",
                     "distill.terms=kd,srp,feature"], out=tmp_path / "student")
    line = logged(tmp_path / "student")[-1]
    assert {f"loss/G_main/{t}_{d}" for t in ("kd", "srp", "feature") for d in ("ab", "ba")} <= set(line)
    assert {"loss/G_main/cycle_a", "loss/G_main/adv_ab"} <= set(line)


def test_distill_command_and_its_bad_input(teacher, tmp_path, run_cli):
    code, out, err = run_cli("distill", "--teacher", teacher, "--width", "4", "--method", "kd+srp", "steps=1", "batch=2",
                             "threads=1", "--out", tmp_path / "s")
    assert code == 0, err
    cfg = (tmp_path / "s" / "config.yaml").read_text()
    assert "method: pix2pix+distill" in cfg and "ngf: 4" in cfg and "terms: kd,srp" in cfg and "data: glyphs-bold" in cfg
    code, _, err = run_cli("distill", "--teacher", teacher, "--width", "4", "--method", "none", "steps=1", "threads=1",
                           "--out", tmp_path / "alone")
    assert code == 0 and "method: pix2pix\n" in (tmp_path / "alone" / "config.yaml").read_text()
    code, out, err = run_cli("train", "--data", "glyphs-bold", "--method", "pix2pix+distill", "--teacher", teacher,
                             "distill.terms=srp", *TINY, "translation.ngf=4", "--dry-run")  # --teacher: distill.teacher
    assert code == 0 and f"teacher: {teacher}" in out, err
    base = ["train", "--data", "glyphs-bold", *TINY, "steps=1", "--out", tmp_path / "bad"]
    for settings, said in ((["method=pix2pix+distill", "distill.terms=srp"], "needs a teacher"),
                           (["method=pix2pix+distill", f"distill.teacher={teacher}"], "distill.terms: give one or more"),
                           (["method=pix2pix+distill", f"distill.teacher={teacher}", "distill.terms=srp,xyz"], "not 'xyz'"),
                           (["method=pix2pix+distill", f"distill.teacher={teacher}", "distill.terms=sp"], "batch=2 or more"),
                           (["method=pix2pix+distill", f"distill.teacher={teacher}", "distill.terms=kd",
                             "translation.generator=resnet_6blocks"], "the teacher's generator is unet"),
                           (["method=scratch+distill"], "+distill is for methods of the translation family")):
        one_line(*run_cli(*base, *settings)[::2], said)
    one_line(*run_cli("distill", "--teacher", tmp_path / "nowhere", "--out", tmp_path / "bad")[::2], "not a checkpoint")
    one_line(*run_cli("distill", "--teacher", teacher, "--method", "srp+mmd", "--out", tmp_path / "bad")[::2],
             "--method srp+mmd: a distiller")
    assert not (tmp_path / "bad").exists()
    preset = Path(__file__).parents[1] / "configs" / "srp-kd-horse2zebra-gpu.yaml"  # the GPU preset reads for every row
    for method in ("cyclegan+distill", "cyclegan"):
        cfg = resolve(preset, ["data=x", f"method={method}", f"distill.teacher={teacher}", "distill.terms=srp"]
                      if "+" in method else ["data=x", f"method={method}"])
        assert (cfg.steps, cfg.batch, cfg.optim.decay_from) == (266800, 1, 0.5)


# Export --------------------------------------------------------------------------------------------

def test_exported_student_runs_in_translate_and_computes_gankds_forward(teacher, tmp_path, run_cli):
    code, _, err = run_cli("export", teacher, "--out", tmp_path / "exp")
    assert code == 0, err
    report = json.loads((tmp_path / "exp" / "export.json").read_text())
    assert report["max_difference"]["torchscript"] < 1e-5
    G = load_checkpoint(teacher / "checkpoints" / "step-0000002.safetensors").network("G")
    x = torch.rand(3, G.cfg.in_channels, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():  # batch norm per image (as pix2pix tests) is instance norm: the same outputs, any batch
        assert torch.allclose(deployable(G)(x), translate(G, x), atol=1e-5)
    scripted = torch.jit.load(str(tmp_path / "exp" / "generator.pt"))
    assert torch.allclose(scripted(x), translate(G, x), atol=1e-5)
    for name in ("model", "exp/generator.pth"):
        src = teacher if name == "model" else tmp_path / name
        code, _, err = run_cli("translate", src, "glyphs-bold", "--out", tmp_path / f"tr-{name[:3]}")
        assert code == 0, err
    for png in sorted((tmp_path / "tr-mod").glob("*.png"))[:5]:
        assert np.array_equal(np.asarray(Image.open(png)), np.asarray(Image.open(tmp_path / "tr-exp" / png.name)))
    one_line(*run_cli("export", teacher, "--out", tmp_path / "x", "--direction", "ba")[::2], "one way (ab)")
    pytest.importorskip("onnxruntime")  # without it (or onnx) the ONNX form is not written or not checked
    assert report["max_difference"]["onnx"] < 1e-4


# The bench -----------------------------------------------------------------------------------------

def test_compress_bench_scores_students_and_teacher_measures_speed_and_resumes(teacher, tmp_path, run_cli):
    args = ["bench", "compress", "--teachers", f"glyphs={teacher}", "--widths", "4", "--rows", "none,srp", "--seeds",
            "1", "--threads", "1", "--out", tmp_path / "bench", "steps=2", "batch=2"]
    code, out, err = run_cli(*args)
    assert code == 0, err
    results = (tmp_path / "bench" / "results.md").read_text()
    for row in ("| glyphs | teacher |", "| glyphs | none w4 |", "| glyphs | srp w4 |", "l1[ground truth]"):
        assert row in results, row
    speed = {r["model"]: r for r in csv.DictReader((tmp_path / "bench" / "speed.csv").open())}
    teacher_g = load_checkpoint(teacher / "checkpoints" / "step-0000002.safetensors").network("G")
    assert int(speed["teacher"]["parameters"]) == sum(p.numel() for p in teacher_g.parameters())
    assert int(speed["teacher"]["macs"]) > 3 * int(speed["student w4"]["macs"]) > 0  # ngf 8 -> 4: about 4x fewer
    srp_run = tmp_path / "bench" / "runs" / "glyphs" / "w4" / "srp" / "seed0"
    stamp = max(p.stat().st_mtime_ns for p in (srp_run / "checkpoints").iterdir())
    assert (tmp_path / "bench" / "glyphs.png").is_file()
    code, _, err = run_cli(*args)  # a finished bench reads its runs back
    assert code == 0, err
    assert max(p.stat().st_mtime_ns for p in (srp_run / "checkpoints").iterdir()) == stamp
    other = ["--teachers", f"glyphs={srp_run}", *args[4:]]
    one_line(*run_cli("bench", "compress", *other)[::2], "was benched with the teacher")

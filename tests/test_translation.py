"""Image-to-image translation: the networks against the originals (parameter counts, imported
outputs), the built-in tasks and user layouts, pix2pix and CycleGAN on the one training loop
(exact resume with CycleGAN's image pool), `gankd translate`, evaluation against ground truth."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from gankd.checkpoint import load_checkpoint
from gankd.config import resolve
from gankd.data.translation import TranslationDataset, open_translation
from gankd.devices import cpu_threads
from gankd.errors import DataError
from gankd.losses.adversarial import discriminator_loss, generator_loss
from gankd.metrics.paired import paired_scores
from gankd.nets import PatchDiscriminator, TranslationConfig, Translator
from gankd.train import train
from gankd.train.loop import learning_rate_factor

REFERENCE = Path(__file__).with_name("data") / "pix2pix_reference.safetensors"
TINY = ["res=32", "translation.ngf=4", "translation.ndf=4", "log_every=1", "sample_every=1000", "threads=1"]


def one_line(code, err, *needles):
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("gankd: error:"), err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_networks_have_the_originals_parameter_counts():
    # pix2pix's unet_256 and basic D (6 input channels), CycleGAN's resnet_9blocks, all at 64 filters.
    def count(net) -> int:
        return sum(p.numel() for p in net.parameters())

    with torch.device("meta"):
        assert count(Translator(TranslationConfig(resolution=256, generator="unet"))) == 54_413_955
        assert count(PatchDiscriminator(TranslationConfig(resolution=256))) == 2_768_705
        resnet = TranslationConfig(resolution=256, generator="resnet_9blocks", norm="instance", dropout=False,
                                   d_input="single")
        assert count(Translator(resnet)) == 11_378_179 and count(PatchDiscriminator(resnet)) == 2_764_737


def test_generators_saved_by_the_original_code_import_exactly(tmp_path):
    reference = load_file(str(REFERENCE))
    for case, mode in (("unet", "eval"), ("resnet_6blocks", "train")):
        state = {k.split(".state.", 1)[1]: v for k, v in reference.items() if k.startswith(f"{case}.state.")}
        path = tmp_path / f"latest_net_G_{case}.pth"
        torch.save(state, path)  # what the original code writes: the generator's plain state dict
        ckpt = load_checkpoint(path)
        assert ckpt.meta["source format"] == "pytorch-CycleGAN-and-pix2pix .pth"
        assert ckpt.config.generator == case and ckpt.config.norm == ("batch" if case == "unet" else "instance")
        G = ckpt.network("G").train(mode == "train")
        with torch.no_grad():
            out = G(reference["inputs"])
        assert (out - reference[f"{case}.output"]).abs().max() < 1e-4
    assert load_checkpoint(tmp_path / "latest_net_G_unet.pth").config.resolution == 64  # six U-Net levels


def test_builtin_tasks_split_pairs_and_keep_the_test_truth_unseen():
    tones = open_translation("emoji-tones:a=light,b=dark")
    train_a, train_b = tones.train
    test_a, truth = tones.test
    assert not tones.paired and len(test_a) == len(truth) > 0

    def bases(source) -> list[str]:
        return [source.labels(i)["base"] for i in range(len(source))]

    assert bases(test_a) == bases(truth)  # a test input's ground truth is its own base emoji in tone b
    assert {truth.labels(i)["tone"] for i in range(len(truth))} == {"dark"}
    assert not set(bases(test_a)) & set(bases(train_b)) and not set(bases(test_a)) & set(bases(train_a))
    bold = open_translation("glyphs-bold")
    a, b = bold.test
    for i in range(len(a)):
        la, lb = a.labels(i), b.labels(i)
        assert (la["char"], la["family"], la["style"], la["weight"], lb["weight"]) == \
            (lb["char"], lb["family"], lb["style"], 400, 700)
    assert len(bold.train[0]) + len(a) == len(bold.train[1]) + len(b)
    with pytest.raises(DataError, match="unknown translation task 'edges2emojj' \\(did you mean 'edges2emoji'"):
        open_translation("edges2emojj")


def test_edges2emoji_pairs_an_edge_map_with_its_emoji():
    task = open_translation("edges2emoji")
    edges, emoji = task.train
    assert task.paired and len(edges) == len(emoji) > 3000 and edges.key(5) == emoji.key(5)
    e = edges.image(5)
    assert e.dtype == np.uint8 and set(np.unique(e)) <= {0, 255} and (e == 0).mean() > 0.01  # black lines on white


def ab_folder(root: Path, width: int = 64) -> Path:
    for part in ("train", "test"):
        (root / part).mkdir(parents=True)
        for i in range(3):
            ab = np.zeros((32, width, 3), np.uint8)
            ab[:, : width // 2] = 40 * i
            ab[:, width // 2:] = 200
            Image.fromarray(ab).save(root / part / f"{i}.png")
    return root


def test_user_layouts_and_their_bad_input(tmp_path, run_cli):
    task = open_translation(str(ab_folder(tmp_path / "ab")))
    data = TranslationDataset(*task.train, True, 32)
    item = data[2]
    assert task.paired and torch.allclose(item["a"], torch.full_like(item["a"], 80 / 127.5 - 1))
    assert torch.allclose(item["b"], torch.full_like(item["b"], 200 / 127.5 - 1))
    odd = ab_folder(tmp_path / "odd", width=63)
    one_line(*run_cli("train", "--data", odd, "method=pix2pix", *TINY, "--out", tmp_path / "r")[::2],
             "63 px wide, not two halves (A | B) of one width")
    cycle = tmp_path / "cycle"
    (cycle / "trainA").mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(cycle / "trainA" / "x.png")
    one_line(*run_cli("train", "--data", cycle, "method=cyclegan", *TINY, "--out", tmp_path / "r")[::2],
             "has trainA/ but no trainB/")
    (cycle / "trainB").mkdir()
    Image.new("RGB", (40, 32)).save(cycle / "trainB" / "x.png")
    one_line(*run_cli("train", "--data", f"{cycle}:paired", "method=pix2pix", *TINY, "--out", tmp_path / "r")[::2],
             "is 32x32 but", "is 40x32: a pair must be one size")
    Image.new("RGB", (32, 32)).save(cycle / "trainB" / "y.png")
    with pytest.raises(DataError, match="y.png: missing"):
        open_translation(f"{cycle}:paired")
    assert not (tmp_path / "r").exists()


def logged(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def untimed(run: Path) -> list[dict]:
    return [{k: v for k, v in line.items() if not k.startswith("time/")} for line in logged(run)]


def test_pix2pix_trains_on_the_loop_with_its_terms_and_defaults(tmp_path):
    result = train(overrides=["data=glyphs-bold", "method=pix2pix", "steps=2", *TINY], out=tmp_path / "run")
    line = logged(tmp_path / "run")[-1]
    assert {"loss/G_main/adv", "loss/G_main/l1", "loss/D_main/adv_real", "loss/D_main/adv_fake"} <= set(line)
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.roles == ["G", "D"] and ckpt.meta["arch"] == "translation"
    cfg = resolve(overrides=["data=x", "method=pix2pix"])  # the authors' defaults, under the user's settings
    assert (cfg.batch, cfg.optim.g_lr, cfg.optim.beta1, cfg.loss.kind, cfg.translation.generator) == \
        (1, 0.0002, 0.5, "nonsat", "unet")
    cyc = resolve(overrides=["data=x", "method=cyclegan", "batch=2"])
    assert (cyc.batch, cyc.loss.kind, cyc.translation.generator, cyc.translation.norm) == \
        (2, "lsgan", "resnet_9blocks", "instance")


def test_cyclegan_resumes_exactly_with_its_image_pool(tmp_path):
    args = ["data=emoji-tones", "method=cyclegan", "steps=4", "checkpoint_every=2", "cyclegan.pool=3",
            "translation.generator=resnet_6blocks", *TINY]
    whole = train(overrides=args, out=tmp_path / "whole")
    train(overrides=[*args, "steps=2"], out=tmp_path / "part")
    resumed = train(overrides=["steps=4"], resume=tmp_path / "part")
    line = logged(tmp_path / "whole")[-1]
    assert {"loss/G_main/cycle_a", "loss/G_main/idt_b", "loss/D_main/adv_fake_a", "loss/D_main/adv_real_b"} <= set(line)
    assert untimed(tmp_path / "whole") == untimed(tmp_path / "part")  # every loss after the resume
    a, b = (load_checkpoint(r.checkpoint).tensors for r in (whole, resumed))
    assert a.keys() == b.keys() and "part.recipe.pool_a" in a
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_linear_decay_of_the_learning_rates():
    cfg = resolve(overrides=["data=x", "steps=10", "optim.decay_from=0.5"])
    assert [learning_rate_factor(s, cfg) for s in (0, 5, 6, 9)] == [1.0, 1.0, 0.8, pytest.approx(0.2)]


def test_least_squares_and_paired_metrics_by_hand():
    real, fake = torch.tensor([0.5, 1.5]), torch.tensor([0.0, 2.0])
    assert generator_loss(fake, "lsgan").item() == pytest.approx((1 + 1) / 2)
    terms = discriminator_loss(real, fake, "lsgan")
    assert terms["adv_real"].item() == pytest.approx(0.25) and terms["adv_fake"].item() == pytest.approx(2.0)
    truth = torch.randint(0, 200, (2, 3, 16, 16), dtype=torch.uint8)
    same = paired_scores(truth, truth, ["l1", "ssim"])
    assert same == {"l1": 0.0, "ssim": pytest.approx(1.0)}
    shifted = paired_scores(truth + 51, truth, ["l1", "psnr"])
    assert shifted["l1"] == pytest.approx(0.2) and shifted["psnr"] == pytest.approx(10 * math.log10(1 / 0.04), rel=1e-4)


def test_translate_and_evaluate_a_translation_model_and_refuse_the_wrong_family(tmp_path, run_cli):
    result = train(overrides=["data=glyphs-bold", "method=pix2pix", "steps=1", *TINY], out=tmp_path / "run")
    code, out, err = run_cli("translate", tmp_path / "run", "glyphs-bold", "--out", tmp_path / "t")
    assert code == 0, err
    pngs = [p for p in (tmp_path / "t").glob("*.png") if p.name != "side-by-side.png"]
    assert len(pngs) == len(open_translation("glyphs-bold").test[0]) and (tmp_path / "t" / "side-by-side.png").is_file()
    code, _, err = run_cli("evaluate", tmp_path / "run", "--ref", "glyphs-bold", "--out", tmp_path / "e")
    assert code == 0, err
    report = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert {"fid", "kid", "l1", "psnr", "ssim", "lpips"} <= set(report["metrics"])
    assert report["metrics"]["l1"]["id"] == "l1[ground truth]" and 0 < report["metrics"]["l1"]["value"] < 1
    one_line(*run_cli("generate", result.checkpoint, "--out", tmp_path / "g.png")[::2],
             "a translation model (translation family)", "use gankd translate")
    one_line(*run_cli("translate", tmp_path / "run", "glyphs-bold", "--direction", "ba", "--out", tmp_path / "x")[::2],
             "translates one way only")
    one_line(*run_cli("translate", "builtin:emoji32", "glyphs-bold", "--out", tmp_path / "x")[::2],
             "a stylegan2 model (latent family)", "use gankd generate")


def test_evaluation_during_training_of_a_translation_model_is_gankd_evaluate(tmp_path, run_cli):
    train(overrides=["data=glyphs-bold", "method=pix2pix", "steps=2", "eval.every=2", "eval.metrics=kid,l1,psnr",
                     *TINY], out=tmp_path / "run")
    scores = next(line for line in logged(tmp_path / "run") if "eval/l1" in line)
    with cpu_threads(1):  # the run's thread count (TINY): the same sums, so the same numbers
        code, _, err = run_cli("evaluate", tmp_path / "run", "--ref", "glyphs-bold", "--metrics", "kid,l1,psnr",
                               "--out", tmp_path / "e")
    assert code == 0, err
    report = json.loads((tmp_path / "e" / "metrics.json").read_text())["metrics"]
    assert {m: scores[f"eval/{m}"] for m in ("kid", "l1", "psnr")} == {m: report[m]["value"] for m in ("kid", "l1", "psnr")}
    one_line(*run_cli("train", "--data", "glyphs-bold", "--out", tmp_path / "x", "method=pix2pix", "eval.every=2",
                      "eval.best=kid", *TINY)[::2], "eval.ref and eval.best are for generators")
    one_line(*run_cli("train", "--data", "emoji:group=flags,tone=none", "--res", "16", "--out", tmp_path / "y",
                      "eval.every=2", "eval.metrics=kid,l1")[::2], "l1 need ground truth")

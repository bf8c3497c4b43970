"""KD-DLGAN and what it stands on: BigGAN in the latent family, LeCam, D steps per G step, the KD
terms against hand-computed cases, the switches, the frozen teacher, and gankd's own CLIP."""

import json
import math

import pytest
import torch
from safetensors.torch import save_file

from gankd.checkpoint import load_checkpoint
from gankd.config import resolve
from gankd.errors import ConfigError
from gankd.families.latent import mix_styles
from gankd.features.clip_gankd import PROMPTS, ClipGankd, build_model, shrink_tokens, tokenizer
from gankd.features.clip_gankd_train import contrastive_loss
from gankd.losses.adversarial import LeCam
from gankd.methods import recipe_class
from gankd.methods.kd_dlgan import agkd_terms, cgkd_term, diversity_term, teacher_view
from gankd.nets.biggan import BigGANConfig, Discriminator, Generator
from gankd.train import train
from test_train import metrics

DATA = "emoji:group=animals|food,tone=none"
BIGGAN = [f"data={DATA}", "res=16", "batch=4", "architecture=biggan", "biggan.ch=4", "biggan.d_ch=4", "biggan.z_dim=8",
          "biggan.shared_dim=8", "loss.kind=hinge", "loss.r1_gamma=0", "log_every=1", "sample_every=1000",
          "optim.g_lr=2e-4", "optim.d_lr=2e-4", "optim.beta2=0.999"]


def tensors(checkpoint) -> dict:
    return load_checkpoint(checkpoint).tensors


# BigGAN ------------------------------------------------------------------------------------------

def test_biggan_shapes_taps_and_the_projection_head():
    cfg = BigGANConfig(resolution=32, c_dim=3, ch=4, d_ch=4, z_dim=8, shared_dim=6)
    G, D = Generator(cfg).eval(), Discriminator(cfg).eval()
    z, c = torch.randn(2, 8), torch.eye(3)[[0, 2]]
    image, feats = G(z, c, return_features=True)
    assert image.shape == (2, 3, 32, 32) and image.abs().max() <= 1
    assert {k: v.shape[-1] for k, v in feats.items()} == {"b4": 4, "b8": 8, "b16": 16, "b32": 32}
    assert G.mapping(z, c).shape == (2, 8 + 6) and G.num_ws == 1
    logits, taps = D(image, c, return_features=True)
    assert [(k, v.shape[-1]) for k, v in taps.items() if k != "phi"] == [("block1", 16), ("block2", 8),
                                                                         ("block3", 8), ("block4", 8)]
    phi = taps["phi"]
    torch.testing.assert_close(phi, torch.relu(taps["block4"]).sum((2, 3)))
    torch.testing.assert_close(logits, D.linear(phi) + (D.embed(c) * phi).sum(1, keepdim=True))
    assert not torch.equal(G(z, torch.eye(3)[[1, 1]]), image)  # conditional BN reads the label


def test_biggan_never_mixes_styles():
    G = Generator(BigGANConfig(resolution=16, ch=2, d_ch=2, z_dim=4))
    z = torch.randn(3, 4)
    assert torch.equal(mix_styles(G, z, None, 1.0), z)  # one style input: w stays [B, w_dim]


def test_biggan_trains_conditionally_and_not_and_resumes_exactly(tmp_path):
    for label in ("", ",label=group"):
        settings = [*BIGGAN, f"data={DATA}{label}", "loss.d_steps=2", "loss.lecam=0.3", "augment.kind=diffaugment",
                    "ema.decay=0.9"]
        whole = train(overrides=[*settings, "steps=4"], out=tmp_path / f"whole{label}")
        train(overrides=[*settings, "steps=2"], out=tmp_path / f"half{label}")
        resumed = train(overrides=["steps=4"], resume=tmp_path / f"half{label}")
        a, b = tensors(whole.checkpoint), tensors(resumed.checkpoint)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), label
        assert load_checkpoint(whole.checkpoint).config.c_dim == (2 if label else 0)
        logged = metrics(tmp_path / f"whole{label}")
        assert metrics(tmp_path / f"half{label}") == logged  # the resumed run logs what the whole one did
        assert [any(k.startswith("loss/G_main") for k in line) for line in logged] == [True, False, True, False]
        assert all("loss/D_main/lecam" in line for line in logged)


def test_lecam_is_its_formula_with_moving_averages():
    lecam = LeCam(decay=0.9)
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0])
    # first call: the averages are the batch means (2 and -1)
    expected = ((real - -1.0).clamp(min=0).square().mean() + (2.0 - fake).clamp(min=0).square().mean())
    torch.testing.assert_close(lecam(real, fake), expected)
    real2, fake2 = torch.tensor([0.0]), torch.tensor([1.0])
    ema_real, ema_fake = 0.9 * 2 + 0.1 * 0.0, 0.9 * -1 + 0.1 * 1.0
    expected = (0.0 - ema_fake) ** 2 * (0.0 > ema_fake) + (ema_real - 1.0) ** 2 * (ema_real > 1.0)
    torch.testing.assert_close(lecam(real2, fake2), torch.tensor(expected))
    lecam(torch.tensor([5.0]), torch.tensor([-5.0]), warm=False)  # not yet warm: the averages are the latest means
    assert lecam.ema_real == 5 and lecam.ema_fake == -5


# The KD terms ------------------------------------------------------------------------------------

def test_every_kd_term_vanishes_when_the_head_equals_the_teacher():
    torch.manual_seed(0)
    real, fake, text = torch.randn(4, 5), torch.randn(4, 5), torch.randn(3, 5)
    same, crossed = agkd_terms(real, fake, real.clone(), fake.clone())
    assert same == 0
    torch.testing.assert_close(crossed, 2 * (real - fake).norm(dim=1).mean())
    assert cgkd_term(real, real.clone(), text) == 0 and cgkd_term(fake, fake.clone(), text) == 0
    assert diversity_term("paper", fake, fake.clone(), text, torch.tensor([1, 0, 3, 2])) == 0


def test_kd_terms_by_hand():
    text = torch.eye(2)
    # teacher row [1, 0] -> similarities [1, 0]; student [0, 2] -> [0, 1]: squared difference 2
    assert cgkd_term(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]]), text) == 2
    teacher = torch.tensor([[3.0, 4.0], [0.0, 1.0], [2.0, 0.0]])  # rows normalised: [.6, .8], [0, 1], [1, 0]
    perm = torch.tensor([1, 0, 2])  # the third row is paired with itself: masked
    code = diversity_term("code", teacher, torch.zeros(3, 2), text, perm)
    torch.testing.assert_close(code, torch.tensor(2 * (0.6 ** 2 + 0.2 ** 2)))
    same, crossed = agkd_terms(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([[3.0, 4.0]]), torch.zeros(1, 2))
    assert same == 5 and crossed == 5


def test_kd_dlgan_switches_terms_and_never_moves_its_teacher(tmp_path):
    base = [*BIGGAN, f"data={DATA},label=group", "method=kd-dlgan", "steps=2"]
    cases = {(): {"agkd", "agkd_cross", "cgkd", "cgkd_div", "lecam"},
             ("kd-dlgan.agkd=0",): {"cgkd", "cgkd_div", "lecam"},
             ("kd-dlgan.cgkd=0", "loss.lecam=0"): {"agkd", "agkd_cross"},
             ("kd-dlgan.diversity=off", "kd-dlgan.cross_p=0"): {"agkd", "cgkd", "lecam"},
             ("kd-dlgan.diversity=paper",): {"agkd", "agkd_cross", "cgkd", "cgkd_div", "lecam"}}
    fresh = ClipGankd().state_dict()
    for i, (switches, expected) in enumerate(cases.items()):
        result = train(overrides=[*base, *switches], out=tmp_path / f"run{i}")
        terms = {k.split("/")[2] for line in metrics(tmp_path / f"run{i}") for k in line if k.startswith("loss/D_main")}
        assert terms - {"adv_real", "adv_fake"} == expected, switches
        teacher = result.nets.frozen["teacher"].state_dict()
        assert teacher.keys() == fresh.keys() and all(torch.equal(teacher[k], fresh[k]) for k in fresh)
        assert all(p.grad is None for p in result.nets.frozen["teacher"].parameters())
    ckpt = json.loads(json.dumps(load_checkpoint(result.checkpoint).meta["training"]["teachers"]))
    assert ckpt == ["clip-gankd"]


def test_kd_dlgan_prompts_come_from_the_labels_or_are_asked_for(tmp_path):
    def prompts(*settings):
        cfg = resolve(overrides=[*BIGGAN, "method=kd-dlgan", *settings])
        from gankd.families import FAMILIES

        family = FAMILIES["latent"]
        recipe = recipe_class("kd-dlgan")(cfg)
        recipe.build(family.data_info(family.dataset(cfg)))
        return recipe.prompts

    assert prompts(f"data={DATA},label=group") == ["an emoji from the animals group", "an emoji from the food group"]
    unlabelled = prompts(f"data={DATA}")  # built-in emoji without labels: their sub-groups
    assert "a animal-mammal emoji" in unlabelled and all(p.endswith(" emoji") for p in unlabelled)
    assert prompts(f"data={DATA}", "kd-dlgan.prompts=a cat| a dog ") == ["a cat", "a dog"]
    folder = tmp_path / "folder"
    folder.mkdir()
    from PIL import Image

    for i in range(2):
        Image.new("RGB", (16, 16), (i * 100, 0, 0)).save(folder / f"{i}.png")
    with pytest.raises(ConfigError, match=r"give kd-dlgan\.prompts="):
        prompts(f"data={folder}")


def test_a_missing_teacher_weight_is_one_line(run_cli, tmp_path):
    code, _, err = run_cli("train", "--data", DATA, "--out", tmp_path / "run", *BIGGAN[1:], "method=kd-dlgan",
                           f"kd-dlgan.weights={tmp_path / 'absent.safetensors'}", "steps=1")
    assert code == 2 and err.count("\n") == 1 and "kd-dlgan.teacher clip-gankd" in err and "absent" in err
    assert not (tmp_path / "run" / "checkpoints").exists()


# gankd's CLIP ------------------------------------------------------------------------------------

def test_clip_gankd_ships_only_the_token_rows_it_uses(tmp_path):
    torch.manual_seed(0)
    model = build_model().eval()
    texts = ["an emoji from the food group", PROMPTS["glyphs", "char"]("Q")]
    used = torch.unique(tokenizer()(texts))
    save_file({k: v.contiguous() for k, v in shrink_tokens(model.state_dict(), used).items()}, tmp_path / "w.safetensors")
    assert (tmp_path / "w.safetensors").stat().st_size < sum(v.numel() * 4 for v in model.state_dict().values()) / 2
    teacher = ClipGankd(tmp_path / "w.safetensors")
    with torch.no_grad():
        torch.testing.assert_close(teacher.embed_text(texts), model.encode_text(tokenizer()(texts)))
        images = torch.rand(2, 3, 32, 32) * 2 - 1
        torch.testing.assert_close(teacher.embed(images), model.encode_image(images))
    assert PROMPTS["glyphs", "char"]("Q") == "capital letter q"  # the tokenizer lower-cases: case in words


def test_contrastive_targets_are_shared_by_equal_captions():
    same = torch.ones(2, 4)
    tokens = torch.tensor([[1, 2], [1, 2]])
    # all logits equal, both captions equal: each row's target is (1/2, 1/2), the loss log 2
    torch.testing.assert_close(contrastive_loss(same, same, tokens, torch.tensor(0.0)), torch.tensor(math.log(2)))
    tokens = torch.tensor([[1, 2], [1, 3]])  # distinct captions: the target is the diagonal, still log 2
    torch.testing.assert_close(contrastive_loss(same, same, tokens, torch.tensor(0.0)), torch.tensor(math.log(2)))
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    low = contrastive_loss(image, image, tokens, torch.tensor(math.log(10.0)))
    high = contrastive_loss(image, image.flip(0), tokens, torch.tensor(math.log(10.0)))
    assert low < 0.01 and high > 9


# The limited-data bench --------------------------------------------------------------------------

def test_bench_limited_tables_prompts_picture_and_resume(run_cli, tmp_path, monkeypatch):
    import csv

    from gankd.bench import limited

    tiny = tuple(s for s in BIGGAN if not s.startswith("data=")) + ("steps=2", "checkpoint_every=1")
    monkeypatch.setattr(limited, "SETS", {"tiny": limited.LimitedSet(DATA, 0.25, "group", tiny)})
    out = tmp_path / "bench"
    args = ["bench", "limited", "--rows", "diffaugment,kd-dlgan", "--seeds", "2", "--eval-n", "16", "--out", out]
    code, stdout, err = run_cli(*args)
    assert code == 0, err
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["target"], r["method"], r["seeds"]) for r in rows] == [("tiny", "diffaugment", "2"), ("tiny", "kd-dlgan", "2")]
    assert "fid[domain:" in stdout and (out / "tiny.png").stat().st_size > 0
    manifest = json.loads((out / "splits" / "tiny" / "manifest.json").read_text())
    assert manifest["shots"] == round(0.25 * manifest["total"]) and "train/dataset.json" in manifest["conditioning"]
    commands = (out / "commands.txt").read_text().splitlines()
    assert len(commands) == 4 and all("loss.lecam=0" in c for c in commands[:2])
    assert "'kd-dlgan.prompts=an emoji from the animals group|an emoji from the food group'" in commands[2]
    config = load_checkpoint(out / "runs" / "tiny" / "kd-dlgan" / "seed1" / "checkpoints" / "step-0000002.safetensors")
    assert config.meta["training"]["config"]["loss"]["lecam"] == 0.3 and config.config.c_dim == 2
    # an interrupted run (its last checkpoint lost) is resumed and scores what it scored before
    (out / "runs" / "tiny" / "kd-dlgan" / "seed1" / "checkpoints" / "step-0000002.safetensors").unlink()
    assert run_cli(*args)[0] == 0
    assert list(csv.DictReader((out / "results.csv").open())) == rows
    code, _, err = run_cli(*args, "steps=3")
    assert code == 2 and "is a bench run with settings" in err


def test_gankds_clip_never_judges(run_cli, tmp_path):
    code, _, err = run_cli("evaluate", DATA, "--ref", DATA, "--features", "clip-gankd", "--n", "8", "--out", tmp_path / "e")
    assert code == 2 and "never an evaluation extractor" in err and err.count("\n") == 1
    with pytest.raises(Exception, match="never an evaluation extractor"):
        resolve(overrides=[*BIGGAN, "eval.features=clip-gankd"])


def test_a_real_clip_teaches_from_a_whole_model_file(tmp_path):
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-S-32", pretrained=None).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "clip.safetensors")
    result = train(overrides=[*BIGGAN, f"data={DATA},label=group", "method=kd-dlgan", "steps=1",
                              "kd-dlgan.teacher=clip:ViT-S-32", f"kd-dlgan.weights={tmp_path / 'clip.safetensors'}"],
                   out=tmp_path / "run")
    terms = {k.split("/")[2] for line in metrics(tmp_path / "run") for k in line if k.startswith("loss/D_main")}
    assert {"agkd", "agkd_cross", "cgkd", "cgkd_div"} <= terms
    assert result.nets.aux["kd_head"].net[1].out_features == model.visual.output_dim == 384
    with torch.no_grad():  # the teacher saw D's 16 px images enlarged x14 by nearest neighbours
        recipe_view = result.nets.frozen["teacher"]
        images = torch.rand(2, 3, 16, 16) * 2 - 1
        seen = teacher_view(recipe_view, images)
        torch.testing.assert_close(seen, recipe_view.embed(images.repeat_interleave(14, 2).repeat_interleave(14, 3)))


def test_train_kd_dlgan_on_a_user_folder_from_the_command_line(run_cli, tmp_path):
    from PIL import Image

    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(8):
        Image.new("RGB", (20, 20), (30 * i, 200 - 20 * i, 90)).save(folder / f"{i}.png")
    common = ["train", "--data", folder, "--res", "16", *BIGGAN[2:], "steps=1", "upscale=true"]
    code, out, err = run_cli(*common, "--method", "kd-dlgan", "--teacher", "clip-gankd",
                             "kd-dlgan.prompts=a red square|a green square", "--out", tmp_path / "run")
    assert code == 0, err
    assert load_checkpoint(tmp_path / "run").meta["training"]["config"]["options"]["kd-dlgan"]["teacher"] == "clip-gankd"
    assert "trained through: clip-gankd" in run_cli("info", tmp_path / "run")[1]
    code, _, err = run_cli(*common, "--method", "kd-dlgan", "--out", tmp_path / "run2")
    assert code == 2 and "give kd-dlgan.prompts=" in err and err.count("\n") == 1
    code, _, err = run_cli(*common, "--teacher", "clip-gankd", "--out", tmp_path / "run3")
    assert code == 2 and "--teacher: method scratch has no teacher" in err

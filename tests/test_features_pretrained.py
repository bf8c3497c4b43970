"""The pretrained extractors (inception, clip, lpips) with self-written weights files of the right
shapes and random values: loading, lookup, offline errors and agreement with the libraries."""

from __future__ import annotations

import hashlib
import json
import urllib.request

import lpips
import open_clip
import pytest
import torch
import torch_fidelity.feature_extractor_inceptionv3 as fidelity_inception
import torchvision
from safetensors.torch import save_file
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from gankd.data.cache import file_digest
from gankd.errors import GankdError
from gankd.features.base import clean_resize
from gankd.features.clip import Clip
from gankd.features.inception import WEIGHTS_NAME, Inception, fidelity_network
from gankd.features.lpips import Lpips

CLIP_ARCH = "ViT-S-32"  # a small open_clip architecture: built in well under a second on CPU


def random_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """No weights anywhere gankd or the libraries look, and no network."""
    monkeypatch.setenv("GANKD_CACHE", str(tmp_path / "gankd"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("GANKD_INCEPTION_WEIGHTS", "GANKD_CLIP_WEIGHTS", "GANKD_LPIPS_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("tried the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tmp_path


# --- inception ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def inception_state():
    """torch-fidelity's state dict (built with its loading stubbed), He-initialised so features vary."""
    net = fidelity_network()
    torch.manual_seed(0)
    state = net.state_dict()
    for name, value in state.items():
        if name.endswith("conv.weight"):
            value.normal_(0, (2 / value[0].numel()) ** 0.5)
    return state


@pytest.fixture(scope="module")
def inception_file(inception_state, tmp_path_factory):
    path = tmp_path_factory.mktemp("inception") / WEIGHTS_NAME
    torch.save(inception_state, path)
    return path


def test_inception_loads_the_given_file_safely(inception_file, inception_state, monkeypatch):
    weights_only_flags = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        weights_only_flags.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    extractor = Inception(weights=inception_file)
    assert weights_only_flags == [True]  # ours; torch-fidelity's own unsafe load never ran
    assert extractor.id == "inception:" + file_digest(inception_file)[:8]
    assert extractor.input_size == 299
    assert torch.equal(extractor.net.Mixed_7c.branch_pool.conv.weight, inception_state["Mixed_7c.branch_pool.conv.weight"])
    assert not extractor.has_perceptual


def test_inception_clean_and_legacy_features(inception_file):
    images = random_images(2, 32)
    # Two calls only: a 299 px Inception pass costs seconds on a small CPU, whatever the batch size.
    clean = Inception(weights=inception_file).embed(torch.cat([images, images[:1]]))
    legacy = Inception(weights=inception_file, resize="legacy").embed(images)
    assert clean.shape == (3, 2048) and legacy.shape == (2, 2048) and clean.dtype == legacy.dtype == torch.float32
    assert torch.isfinite(clean).all() and torch.isfinite(legacy).all()
    torch.testing.assert_close(clean[2], clean[0], rtol=1e-5, atol=1e-7)  # wherever the image is in the batch
    assert (clean[0] - clean[1]).abs().max() > 1e-3  # the random network still tells images apart
    assert not torch.allclose(clean[:2], legacy, rtol=1e-3, atol=1e-4)


def test_torch_fidelity_resize_is_the_identity_at_299():
    """What "clean" mode relies on: torch-fidelity resizes our 299 px images once more, exactly."""
    images = torch.randint(0, 256, (2, 3, 299, 299), generator=torch.Generator().manual_seed(0)).float()
    assert torch.equal(interpolate_bilinear_2d_like_tensorflow1x(images, size=(299, 299), align_corners=False), images)


def test_inception_weights_from_the_environment(inception_file, empty_cache, monkeypatch):
    monkeypatch.setenv("GANKD_INCEPTION_WEIGHTS", str(inception_file))
    assert Inception().id == "inception:" + file_digest(inception_file)[:8]


def test_inception_offline_without_weights_says_what_to_download(empty_cache):
    with pytest.raises(GankdError) as err:
        Inception()
    message = str(err.value)
    assert str(empty_cache / "gankd" / "weights" / WEIGHTS_NAME) in message
    assert fidelity_inception.URL_INCEPTION_V3 in message and "offline" in message and "\n" not in message


def test_inception_file_of_the_wrong_shape_names_the_key(inception_state, tmp_path):
    state = dict(inception_state, **{"Conv2d_4a_3x3.conv.weight": torch.zeros(192, 80, 1, 1)})
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(GankdError, match=r"Conv2d_4a_3x3\.conv\.weight has shape \(192, 80, 1, 1\)") as err:
        Inception(weights=tmp_path / "bad.pth")
    assert "\n" not in str(err.value)


# --- clip --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clip_reference():
    """A random open_clip model and its image tower's state dict (keys `visual.*`)."""
    torch.manual_seed(0)
    model = open_clip.create_model(CLIP_ARCH, pretrained=None).eval()
    return model, {f"visual.{k}": v.clone() for k, v in model.visual.state_dict().items()}


def test_clip_loads_an_image_tower_without_text_keys(clip_reference, tmp_path):
    model, visual = clip_reference
    save_file(visual, tmp_path / "visual.safetensors")
    extractor = Clip(CLIP_ARCH, tmp_path / "visual.safetensors")
    assert extractor.input_size == 224 and extractor.id == "clip:" + file_digest(tmp_path / "visual.safetensors")[:8]
    images = random_images(2, 224)
    features = extractor.embed(images)
    assert features.shape == (2, model.visual.output_dim) == (2, 384)
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model.encode_image(((images + 1) / 2 - mean) / std)  # raw, not normalised
    torch.testing.assert_close(features, expected, rtol=1e-4, atol=1e-5)


def test_clip_ignores_text_keys_and_accepts_an_unprefixed_tower(clip_reference, tmp_path):
    _, visual = clip_reference
    torch.save({**visual, "module.text_projection": torch.zeros(3), "logit_scale": torch.zeros(1)}, tmp_path / "full.pt")
    torch.save({k.removeprefix("visual."): v for k, v in visual.items()}, tmp_path / "tower.pt")
    images = random_images(1, 48)
    full, tower = Clip(CLIP_ARCH, tmp_path / "full.pt"), Clip(CLIP_ARCH, tmp_path / "tower.pt")
    assert full.id != tower.id and torch.equal(full.embed(images), tower.embed(images))


def test_clip_embeds_texts_with_a_whole_model_file_only(clip_reference, tmp_path):
    model, visual = clip_reference
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "whole.safetensors")
    save_file(visual, tmp_path / "visual.safetensors")
    texts = ["a photo of a cat", "an emoji from the food group"]
    with torch.no_grad():
        expected = model.encode_text(open_clip.get_tokenizer(CLIP_ARCH)(texts))
    torch.testing.assert_close(Clip(CLIP_ARCH, tmp_path / "whole.safetensors").embed_text(texts), expected)
    with pytest.raises(GankdError, match="only the image tower"):
        Clip(CLIP_ARCH, tmp_path / "visual.safetensors").embed_text(texts)


def test_clip_missing_visual_key_is_named(clip_reference, tmp_path):
    _, visual = clip_reference
    save_file({k: v for k, v in visual.items() if k != "visual.proj"}, tmp_path / "partial.safetensors")
    with pytest.raises(GankdError, match=r"missing visual\.proj") as err:
        Clip(CLIP_ARCH, tmp_path / "partial.safetensors")
    assert "\n" not in str(err.value)


def test_clip_offline_without_weights_says_what_to_download(empty_cache, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(empty_cache / "hf"))
    with pytest.raises(GankdError) as err:
        Clip("ViT-B-32", tag="openai")
    message = str(err.value)
    assert "https://huggingface.co/timm/vit_base_patch32_clip_224.openai/resolve/main/" in message
    assert str(empty_cache / "gankd" / "weights" / "open_clip-ViT-B-32-openai.bin") in message
    assert "offline" in message and "--weights PATH" in message and "\n" not in message


def test_clip_unknown_tag_is_a_gankd_error(empty_cache):
    with pytest.raises(GankdError, match="no ViT-S-32 weights tagged 'openai'"):
        Clip(CLIP_ARCH)


# --- lpips -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory):
    """A random torchvision AlexNet's `features.*` only, and the network it came from."""
    torch.manual_seed(0)
    alexnet = torchvision.models.alexnet().eval()
    path = tmp_path_factory.mktemp("lpips") / "features.pth"
    torch.save({k: v for k, v in alexnet.state_dict().items() if k.startswith("features.")}, path)
    return path, alexnet


@pytest.fixture(scope="module")
def lpips_extractor(alexnet_file):
    return Lpips("alex", alexnet_file[0])


def test_lpips_matches_the_lpips_package(alexnet_file, lpips_extractor, monkeypatch):
    path, alexnet = alexnet_file
    # The reference: lpips' own construction and weights loading, with our AlexNet as "pretrained".
    monkeypatch.setattr(lpips.pretrained_networks.tv, "alexnet", lambda *args, **kwargs: alexnet)
    reference = lpips.LPIPS(net="alex", verbose=False)
    images = random_images(4, 64)
    flat = lpips_extractor.perceptual(images)
    with torch.no_grad():
        for i in range(4):
            for j in range(i + 1, 4):
                expected = reference(images[i:i + 1], images[j:j + 1]).item()
                assert expected > 0
                assert ((flat[i] - flat[j]) ** 2).sum().item() == pytest.approx(expected, rel=1e-4)
    digests = file_digest(path) + file_digest(lpips.__path__[0] + "/weights/v0.1/alex.pth")
    assert lpips_extractor.id == "lpips:" + hashlib.sha256(digests.encode()).hexdigest()[:8]
    assert torch.equal(lpips_extractor.embed(images), flat)


def test_lpips_distance_is_zero_to_itself_and_symmetric(lpips_extractor):
    a, b = random_images(2, 64, seed=1)
    ab, ba, aa = (lpips_extractor.perceptual(torch.stack(pair)) for pair in ((a, b), (b, a), (a, a)))
    distance_ab, distance_ba = (((pair[0] - pair[1]) ** 2).sum().item() for pair in (ab, ba))
    assert ((aa[0] - aa[1]) ** 2).sum() == 0
    assert distance_ab > 0 and distance_ab == pytest.approx(distance_ba, rel=1e-6)


def test_lpips_upsamples_small_images_to_64(lpips_extractor):
    small = random_images(2, 32)
    assert lpips_extractor.prepare(small).shape == (2, 3, 64, 64)
    assert lpips_extractor.prepare(random_images(1, 96)).shape == (1, 3, 96, 96)
    with torch.no_grad():
        upsampled = lpips_extractor._perceptual(clean_resize(small, 64))
    assert torch.equal(lpips_extractor.perceptual(small), upsampled)


def test_lpips_backbone_with_a_wrong_shape_names_the_key(alexnet_file, tmp_path):
    state = torch.load(alexnet_file[0], weights_only=True)
    state["features.3.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(GankdError, match=r"features\.3\.weight has shape \(1,\)") as err:
        Lpips("alex", tmp_path / "bad.pth")
    assert "\n" not in str(err.value)


def test_lpips_offline_without_weights_says_what_to_download(empty_cache):
    with pytest.raises(GankdError) as err:
        Lpips("alex")
    message = str(err.value)
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in message
    assert str(empty_cache / "gankd" / "weights" / "alexnet-owt-7be5be79.pth") in message and "\n" not in message


def test_evaluate_uses_an_inception_file_that_is_present(inception_file, run_cli, tmp_path, monkeypatch):
    """The same `gankd evaluate` command, once the file is where gankd looks: no code change."""
    from gankd.data.spec import open_source
    from gankd.data.splits import write_images

    images = tmp_path / "threes"
    images.mkdir()
    write_images(open_source("digits:digit=3"), range(6), images, 16)
    monkeypatch.setenv("GANKD_INCEPTION_WEIGHTS", str(inception_file))
    code, out, err = run_cli("evaluate", images, "--ref", images, "--features", "inception", "--n", "6",
                             "--metrics", "fid,kid", "--out", tmp_path / "e")
    assert code == 0, err
    report = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert report["metrics"]["fid"]["id"] == "fid[inception:" + file_digest(inception_file)[:8] + "]"
    assert abs(report["metrics"]["fid"]["value"]) < 1e-2  # a set against itself

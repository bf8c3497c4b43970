"""DiffAugment and ADA: differentiable, shape-preserving, exact where a transform is exact, adaptive p."""

import pytest
import torch

from gankd.config import AugmentSettings, ConfigError
from gankd.data.augment import ADA, Augment, DiffAugment, make_augment


def images(b=8, c=3, r=16):
    return torch.rand(b, c, r, r, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.mark.parametrize("aug", [DiffAugment(["color", "translation", "cutout"]),
                                 ADA(["xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness",
                                      "contrast", "lumaflip", "hue", "saturation"], 1.0, 0.6, 4, 500, 8)])
@pytest.mark.parametrize("channels", [1, 3])
def test_augmentations_are_differentiable_and_keep_shapes(aug, channels):
    torch.manual_seed(0)
    x = images(c=channels).requires_grad_(True)
    y = aug(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_moves_whole_pixels_with_zero_fill():
    torch.manual_seed(1)
    x = images(b=16)
    y = DiffAugment(["translation"])(x)
    for xi, yi in zip(x, y):  # each output is the input shifted by integers, zeros coming in
        assert any(torch.equal(torch.roll(torch.nn.functional.pad(xi, [2, 2, 2, 2]), (dy, dx), (1, 2))[:, 2:-2, 2:-2], yi)
                   for dy in range(-2, 3) for dx in range(-2, 3))


def test_cutout_zeroes_one_half_size_square():
    torch.manual_seed(2)
    x = images(b=16).abs() + 0.1
    y = DiffAugment(["cutout"])(x)
    zeros = (y == 0).all(dim=1)  # [B, H, W]: pixels cut in every channel
    assert ((zeros.sum(dim=(1, 2)) > 0) & (zeros.sum(dim=(1, 2)) <= 64)).all()
    assert torch.equal(y[y != 0], x[y != 0])


def test_ada_flip_and_quarter_turns_are_exact():
    torch.manual_seed(3)
    x = images(b=32)
    y = ADA(["xflip", "rotate90"], 1.0, 0.6, 4, 500, 32)(x)
    for xi, yi in zip(x, y):
        candidates = [torch.rot90(v, k, (1, 2)) for v in (xi, xi.flip(-1)) for k in range(4)]
        assert min((c - yi).abs().max() for c in candidates) < 1e-5


def test_ada_identity_at_p_zero_and_p_follows_the_sign_of_real_logits():
    ada = make_augment(AugmentSettings(kind="ada", p=0.0, interval=2, speed_kimg=1.0), batch=10)
    x = images()
    assert ada(x) is x
    for step in (1, 2):
        ada.observe(torch.ones(10, 1))  # D is sure of every real: overfitting
        ada.end_step(step, lambda v: v)
    assert ada.p == pytest.approx(10 * 2 / 1000)
    for step in (3, 4):
        ada.observe(-torch.ones(10, 1))
        ada.end_step(step, lambda v: v)
    assert ada.p == pytest.approx(0.0)
    ada.observe(-torch.ones(10, 1))
    ada.end_step(6, lambda v: v)
    assert ada.p == 0.0  # never negative
    state = ada.state_dict()
    other = make_augment(AugmentSettings(kind="ada"), batch=10)
    other.load_state_dict(state)
    assert other.state_dict() == state


def test_make_augment_policies():
    assert type(make_augment(AugmentSettings(), 8)) is Augment
    assert make_augment(AugmentSettings(kind="diffaugment"), 8).ops == ["color", "translation", "cutout"]
    assert make_augment(AugmentSettings(kind="ada", policy="bg"), 8).ops == {"xflip", "rotate90", "xint", "scale",
                                                                            "rotate", "aniso", "xfrac"}
    with pytest.raises(ConfigError, match="unknown ops blur"):
        make_augment(AugmentSettings(kind="diffaugment", policy="color,blur"), 8)

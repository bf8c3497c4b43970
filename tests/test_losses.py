"""Adversarial losses and regularizers against closed forms."""

import math

import torch

from gankd.losses.adversarial import PathLength, discriminator_loss, generator_loss, r1_penalty


def test_nonsaturating_and_hinge_values():
    logits = torch.tensor([[-1.0], [0.0], [2.0]])
    softplus = lambda v: math.log1p(math.exp(v))  # noqa: E731
    assert torch.isclose(generator_loss(logits, "nonsat"), torch.tensor((softplus(1) + softplus(0) + softplus(-2)) / 3))
    assert torch.isclose(generator_loss(logits, "hinge"), torch.tensor(-1 / 3))
    d = discriminator_loss(logits, -logits, "hinge")
    assert torch.isclose(d["adv_real"], torch.tensor((2 + 1 + 0) / 3))  # relu(1 - real)
    assert torch.isclose(d["adv_fake"], torch.tensor((2 + 1 + 0) / 3))  # relu(1 + fake), fake = -real
    d = discriminator_loss(logits, logits, "nonsat")
    assert torch.isclose(d["adv_real"] + d["adv_fake"],
                         torch.tensor(sum(softplus(-v) + softplus(v) for v in (-1, 0, 2)) / 3))


def test_r1_of_a_linear_discriminator_is_its_squared_weight_norm():
    w = torch.randn(1, 3, 4, 4)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (x * w).sum(dim=(1, 2, 3))
    assert torch.allclose(r1_penalty(logits, x), w.square().sum().expand(5))


def test_path_length_of_a_linear_generator():
    # img = A (sum of the per-layer w): J^T y = A^T y for each layer, so |J^T y| = |A^T y|
    A = torch.randn(3 * 4 * 4, 6)
    ws = torch.randn(16, 2, 6, requires_grad=True)
    imgs = (ws.sum(dim=1) @ A.T).view(16, 3, 4, 4)
    pl = PathLength(decay=0.5)
    torch.manual_seed(0)
    penalty = pl(imgs, ws)
    torch.manual_seed(0)
    y = torch.randn_like(imgs) / 4  # 1/sqrt(pixels)
    lengths = (y.flatten(1) @ A).norm(dim=1)
    assert torch.allclose(pl.pl_mean, 0.5 * lengths.mean())
    assert torch.allclose(penalty, (lengths - 0.5 * lengths.mean()).square(), rtol=1e-4)

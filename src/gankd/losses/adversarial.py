"""Adversarial losses and their regularizers: non-saturating logistic, hinge, least squares, R1,
path length, LeCam.

Formulas as in StyleGAN2 (Karras et al., 2020), for the hinge Lim & Ye (2017), for least squares
Mao et al. (2017) as CycleGAN uses them (targets 1 for real, 0 for fake), LeCam as Tseng et al.
(2021) and their code (google/lecam-gan). The logistic pair is
pix2pix's "vanilla" GAN (binary cross-entropy on logits). R1 and the path-length penalty
differentiate through the networks, so the loop runs them in fp32.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def generator_loss(logits_fake: torch.Tensor, kind: str) -> torch.Tensor:
    """nonsat: E[softplus(-D(G(z)))]; hinge: -E[D(G(z))]; lsgan: E[(D(G(z)) - 1)^2]."""
    logits_fake = logits_fake.float()
    if kind == "lsgan":
        return (logits_fake - 1).square().mean()
    return F.softplus(-logits_fake).mean() if kind == "nonsat" else -logits_fake.mean()


def discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor, kind: str) -> dict[str, torch.Tensor]:
    """The real and fake halves, as two named terms."""
    real, fake = logits_real.float(), logits_fake.float()
    if kind == "nonsat":
        return {"adv_real": F.softplus(-real).mean(), "adv_fake": F.softplus(fake).mean()}
    if kind == "lsgan":
        return {"adv_real": (real - 1).square().mean(), "adv_fake": fake.square().mean()}
    return {"adv_real": F.relu(1 - real).mean(), "adv_fake": F.relu(1 + fake).mean()}


def r1_penalty(logits_real: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per-sample squared gradient norm of D at the real images (Mescheder et al., 2018)."""
    (grad,) = torch.autograd.grad(logits_real.sum(), real, create_graph=True)
    return grad.square().sum(dim=[1, 2, 3])


class PathLength(nn.Module):
    """Path-length regularizer: |J_w^T y| should stay near its running mean `pl_mean`."""

    def __init__(self, decay: float = 0.01):
        super().__init__()
        self.decay = decay
        self.register_buffer("pl_mean", torch.zeros(()))

    def forward(self, images: torch.Tensor, ws: torch.Tensor, mean_over_ranks=lambda x: x) -> torch.Tensor:
        """Per-sample penalty (|J^T y| - pl_mean)^2, y Gaussian noise scaled by 1/sqrt(pixels)."""
        noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
        (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
        lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
        with torch.no_grad():
            self.pl_mean.copy_(self.pl_mean.lerp(mean_over_ranks(lengths.mean()), self.decay))
        return (lengths - self.pl_mean).square()


class LeCam(nn.Module):
    """LeCam regularization: D's outputs on reals are pulled toward the moving average of its outputs on
    fakes and vice versa, mean(relu(D(x) - a_fake)^2) + mean(relu(a_real - D(G(z)))^2). The averages
    (`ema_real`, `ema_fake`) of the batch means decay by `decay` per update once `warm`; before, they
    are the latest means (the reference's first 1000 iterations)."""

    def __init__(self, decay: float = 0.9):
        super().__init__()
        self.decay = decay
        self.register_buffer("ema_real", torch.zeros(()))
        self.register_buffer("ema_fake", torch.zeros(()))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def forward(self, logits_real: torch.Tensor, logits_fake: torch.Tensor, mean_over_ranks=lambda x: x,
                warm: bool = True) -> torch.Tensor:
        real, fake = logits_real.float(), logits_fake.float()
        with torch.no_grad():
            decay = self.decay if warm and int(self.updates) else 0.0
            self.ema_real.copy_(mean_over_ranks(real.mean()).lerp(self.ema_real, decay))
            self.ema_fake.copy_(mean_over_ranks(fake.mean()).lerp(self.ema_fake, decay))
            self.updates += 1
        return F.relu(real - self.ema_fake).square().mean() + F.relu(self.ema_real - fake).square().mean()

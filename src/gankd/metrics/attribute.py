"""Continuity of attribute editing, judged independently: `AttributeJudge`, a small CNN regressor
trained apart from every model, on real images only (never a model's embedded estimator, never
the evaluation features), and the scores of a trajectory of edits (monotone, evenly spaced)."""

from __future__ import annotations

import torch
from torch import nn

TOLERANCE = 1e-5


class AttributeJudge(nn.Module):
    """image [-1, 1] -> the attribute's value: four stride-2 3x3 convs (LeakyReLU), global average,
    a linear output on the range's [0, 1] scale."""

    def __init__(self, channels: int, low: float, high: float, width: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        for k in range(4):
            layers += [nn.Conv2d(channels if k == 0 else width * 2 ** (k - 1), width * 2 ** k, 3, 2, 1),
                       nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width * 8, 1)
        self.register_buffer("span", torch.tensor([low, high], dtype=torch.float32))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        low, high = self.span
        return low + (high - low) * self.head(self.features(images).mean((2, 3)))[:, 0]

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
        self.eval()
        return torch.cat([self(images[i:i + batch].float()) for i in range(0, len(images), batch)])


def train_judge(images: torch.Tensor, values: torch.Tensor, steps: int = 1000, batch: int = 32,
                seed: int = 0) -> AttributeJudge:
    """A judge fitted to real images [N, C, R, R] in [-1, 1] and their values (MSE on the [0, 1]
    scale, Adam 1e-3, a seeded generator of its own)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        judge = AttributeJudge(images.shape[1], float(values.min()), float(values.max()))
    optimizer = torch.optim.Adam(judge.parameters(), lr=1e-3)
    low, high = judge.span
    target = (values.float() - low) / (high - low)
    judge.train()
    for _ in range(steps):
        pick = torch.randint(len(images), (batch,), generator=gen)
        loss = ((judge(images[pick]) - low) / (high - low) - target[pick]).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return judge.eval()


def trajectory_scores(estimates: torch.Tensor) -> dict[str, float]:
    """For estimates [S, T] of S inputs edited to T increasing targets: `monotone`, the share of
    consecutive steps along which the estimate rises; `unevenness`, the mean over inputs of the
    standard deviation of the steps over their mean absolute size (0: evenly spaced). Steps within
    `TOLERANCE` of the largest estimate count as none (one image judged in two batches can differ in
    the last bits)."""
    steps = estimates.diff(dim=1).double()
    steps = torch.where(steps.abs() > TOLERANCE * estimates.abs().max(), steps, 0)  # float noise is no step
    monotone = float((steps > 0).double().mean())
    spread = steps.std(1, unbiased=False) / steps.abs().mean(1).clamp_min(1e-12)
    return {"monotone": monotone, "unevenness": float(spread.mean())}

"""Relation matrices for distillation: how the parts of a representation relate to each other.
A relation matrix has one row and column per part, whatever the channel count, so a thin student's
matrix compares with a wide teacher's without adapters.

- SRP (Li, Jiang and Aarabi, ECCV 2020): the parts are the positions of one image's feature map
  F (C x H x W) taken as f (N x C), N = H W; A = f f^T with each row L2-normalised.
- SP (Tung and Mori, ICCV 2019): the parts are the images of a batch, each feature map flattened;
  G = Q Q^T with each row L2-normalised.
The loss is the mean over the matrices' entries of the squared difference: ||A_t - A_s||_F^2 / N^2
per image (SRP), ||G_t - G_s||_F^2 / B^2 (SP).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def relation_matrix(parts: torch.Tensor) -> torch.Tensor:
    """[B, N, C] -> [B, N, N]: the parts' inner products, each row L2-normalised (fp32)."""
    parts = parts.float()
    return F.normalize(parts @ parts.transpose(1, 2), dim=2)


def spatial_relation(features: torch.Tensor, max_side: int) -> torch.Tensor:
    """SRP's [B, N, N] over the positions of each feature map [B, C, H, W]; a map larger than
    `max_side` on a side is average-pooled to max_side x max_side first (N x N grows as the fourth
    power of the side: 64 x 64 positions would be 16.8 M entries per image)."""
    if max(features.shape[2:]) > max_side:
        features = F.adaptive_avg_pool2d(features.float(), max_side)
    return relation_matrix(features.flatten(2).transpose(1, 2))


def batch_relation(features: torch.Tensor) -> torch.Tensor:
    """SP's [1, B, B] over the images of a batch [B, ...]."""
    return relation_matrix(features.flatten(1)[None])


def relation_loss(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of two relation matrices (the teacher's detached)."""
    return (teacher.detach() - student).square().mean()

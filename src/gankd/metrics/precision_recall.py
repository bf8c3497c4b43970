"""Improved precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union of
balls reaching each feature's k-th nearest neighbour; precision is the share of fakes inside the
real manifold (fidelity), recall the share of reals inside the fake manifold (coverage).
"""

from __future__ import annotations

import torch

CHUNK = 1024


def kth_neighbour_radius(features: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each feature to its k-th nearest other feature."""
    radii = []
    for i in range(0, len(features), CHUNK):
        d = torch.cdist(features[i:i + CHUNK], features)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # the nearest is the point itself
    return torch.cat(radii)


def inside_manifold(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """For each point: does it lie within some centre's ball?"""
    hits = []
    for i in range(0, len(points), CHUNK):
        hits.append((torch.cdist(points[i:i + CHUNK], centres) <= radii[None]).any(1))
    return torch.cat(hits)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict:
    real, fake = torch.as_tensor(real, dtype=torch.float64), torch.as_tensor(fake, dtype=torch.float64)
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} images on each side")
    precision = inside_manifold(fake, real, kth_neighbour_radius(real, k)).double().mean()
    recall = inside_manifold(real, fake, kth_neighbour_radius(fake, k)).double().mean()
    return {"precision": float(precision), "recall": float(recall), "k": k}

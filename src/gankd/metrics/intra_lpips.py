"""Intra-cluster LPIPS (Ojha et al. 2021, CDC), complete and deterministic: every generated sample
joins the cluster of its nearest training shot by the perceptual distance, the pairwise distances
within each cluster are averaged, and the clusters' averages are averaged. Clusters with fewer than
two members have no pairwise distance; they are reported and left out of the mean.
"""

from __future__ import annotations

import torch


def pairwise_sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances [len(a), len(b)] between perceptual vectors (= perceptual distances)."""
    return torch.cdist(a.double(), b.double()).pow(2)


def intra_cluster_distance(samples: torch.Tensor, shots: torch.Tensor) -> dict:
    """{"mean", "clusters": per-shot average or None, "sizes"} from perceptual vectors."""
    nearest = torch.cat([pairwise_sq(samples[i:i + 512], shots).argmin(1) for i in range(0, len(samples), 512)])
    clusters, sizes = [], []
    for j in range(len(shots)):
        members = samples[nearest == j]
        sizes.append(len(members))
        if len(members) < 2:
            clusters.append(None)
            continue
        d = pairwise_sq(members, members)
        n = len(members)
        clusters.append(float(d.sum() / (n * (n - 1))))  # the diagonal is zero
    valid = [c for c in clusters if c is not None]
    return {"mean": float(sum(valid) / len(valid)) if valid else float("nan"), "clusters": clusters, "sizes": sizes}

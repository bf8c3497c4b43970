"""Distillation losses shared by the transfer methods: multi-level feature KD and MMD."""

from __future__ import annotations

import torch


def feature_kd(student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor], layers: list[str]) -> torch.Tensor:
    """Mean over `layers` of the mean squared difference between student and (detached) teacher
    features: sum_l lambda_l ||S_l - T_l||^2 with lambda_l = 1 / (|layers| * size of layer l), so
    that layers of different sizes weigh the same. Zero exactly when the features are equal."""
    terms = [(student[name].float() - teacher[name].detach().float()).pow(2).mean() for name in layers]
    return torch.stack(terms).mean()


def mmd2_rbf(x: torch.Tensor, y: torch.Tensor, bandwidths: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)) -> torch.Tensor:
    """Biased (V-statistic) MMD² between rows of x and y with a sum of RBF kernels, the squared
    bandwidths being multiples of the median squared distance over all pairs of distinct rows of
    both sets (detached; the median heuristic, interpolated as numpy's). Biased so that it is never
    negative and stays smooth with the handful of samples a few-shot batch has."""
    x, y = x.float().flatten(1), y.float().flatten(1)
    both = torch.cat([x, y])
    d2 = (both[:, None] - both[None]).pow(2).sum(-1)  # exact zeros on the diagonal, unlike cdist's mm path
    pairs = d2.detach()[torch.triu_indices(len(both), len(both), 1).unbind()]
    scale = pairs.quantile(0.5) if len(pairs) else d2.new_tensor(1.0)
    scale = scale if scale > 0 else d2.new_tensor(1.0)
    kernel = sum(torch.exp(-d2 / (b * scale)) for b in bandwidths)
    n = len(x)
    return kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()


def cosine_matrix(features: torch.Tensor) -> torch.Tensor:
    """[B, B] cosine similarities between the flattened features of a batch."""
    f = torch.nn.functional.normalize(features.float().flatten(1), dim=1)
    return f @ f.T


def similarity_rows(features: list[torch.Tensor], layer_of_row: torch.Tensor) -> torch.Tensor:
    """[B, B-1]: row i holds sample i's similarities to the others, at layer `layer_of_row[i]`."""
    batch = features[0].shape[0]
    sims = torch.stack([cosine_matrix(f) for f in features])[layer_of_row, torch.arange(batch)]
    return sims[~torch.eye(batch, dtype=torch.bool, device=sims.device)].view(batch, batch - 1)


def distance_consistency(source: list[torch.Tensor], target: list[torch.Tensor],
                         layer_of_row: torch.Tensor) -> torch.Tensor:
    """CDC (Ojha et al. 2021): KL between the softmaxed similarity rows of the source generator's
    (detached) and the target generator's features for the same latents, averaged over all entries
    as CDC's nn.KLDivLoss() does; each row at its own layer, as CDC draws one per sample."""
    p = torch.softmax(similarity_rows([f.detach() for f in source], layer_of_row), dim=1)
    log_q = torch.log_softmax(similarity_rows(target, layer_of_row), dim=1)
    return (p * (p.log() - log_q)).mean()

"""Data-copying: are generated samples closer to the training images than fresh real images are?

Meehan, Chaudhuri and Dasgupta (2020), "A Non-Parametric Test to Detect Data-Copying in Generative
Models". The feature space is partitioned into cells by k-means on the training features. In
each cell, the distances of generated samples to their nearest training image are compared with
the same distances of held-out real images by a Mann-Whitney U test; C_T is the cells' z-scores
averaged with the held-out images' cell frequencies, over the cells that hold at least
`min_generated` samples (their tau = 20/m). C_T well below 0 means copying; Meehan et al. read
C_T < -3 as a clear sign, the threshold used for `flagged`.
"""

from __future__ import annotations

import numpy as np
import torch

FLAG_BELOW = -3.0


def nearest(points: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance to, index of) each point's nearest training feature."""
    d = torch.cdist(torch.as_tensor(points, dtype=torch.float64), torch.as_tensor(train, dtype=torch.float64))
    dist, index = d.min(1)
    return dist.numpy(), index.numpy()


def mann_whitney_z(generated: np.ndarray, heldout: np.ndarray) -> float:
    """z-score of scipy's U = #{(g, h): g > h} + #ties / 2 (the normal approximation, no tie correction);
    negative when generated distances are smaller."""
    from scipy.stats import mannwhitneyu

    n, m = len(generated), len(heldout)
    greater = mannwhitneyu(generated, heldout).statistic
    return float((greater - m * n / 2) / np.sqrt(m * n * (m + n + 1) / 12))


def data_copying(train: np.ndarray, generated: np.ndarray, heldout: np.ndarray, cells: int = 20,
                 min_generated: int = 20, seed: int = 0) -> dict:
    """{"C_T", "flagged", "ratio", "cells_used", "cells", "nearest_distance", "nearest_index"}.

    `ratio` is the mean nearest-training distance of generated samples over that of held-out images
    (below 1: generated samples sit closer to the training set than real unseen images do).
    """
    from sklearn.cluster import KMeans

    train, generated, heldout = (np.asarray(a, np.float64) for a in (train, generated, heldout))
    k = min(cells, len(train))
    kmeans = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(train)
    gen_cell, held_cell = kmeans.predict(generated), kmeans.predict(heldout)
    gen_dist, gen_index = nearest(generated, train)
    held_dist, _ = nearest(heldout, train)
    z_sum = weight_sum = 0.0
    used = 0
    for cell in range(k):
        g, h = gen_dist[gen_cell == cell], held_dist[held_cell == cell]
        if len(g) < min_generated or len(h) == 0:
            continue
        weight = len(h) / len(heldout)
        z_sum += weight * mann_whitney_z(g, h)
        weight_sum += weight
        used += 1
    c_t = z_sum / weight_sum if used else float("nan")
    return {"C_T": c_t, "flagged": bool(c_t < FLAG_BELOW), "ratio": float(gen_dist.mean() / held_dist.mean()),
            "cells_used": used, "cells": k, "min_generated": min_generated,
            "nearest_distance": gen_dist, "nearest_index": gen_index}

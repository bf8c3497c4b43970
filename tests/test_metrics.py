"""Metric formulas against closed forms and independent computations."""

import numpy as np
import pytest
import scipy.linalg
import torch

from gankd.metrics.copying import data_copying, mann_whitney_z
from gankd.metrics.fid import frechet_distance, gaussian
from gankd.metrics.intra_lpips import intra_cluster_distance
from gankd.metrics.kid import kernel_distance, polynomial_mmd2
from gankd.metrics.precision_recall import precision_recall


def random_cov(rng, d):
    a = rng.randn(d, d)
    return a @ a.T / d + 0.1 * np.eye(d)


def fid_sqrtm(mu1, s1, mu2, s2):
    """The textbook route (scipy's general matrix square root), as pytorch-fid computes it."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fid_closed_form_for_commuting_covariances():
    rng = np.random.RandomState(0)
    q, _ = np.linalg.qr(rng.randn(6, 6))
    a, b = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    mu1, mu2 = rng.randn(6), rng.randn(6)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("d", [4, 64, 256])
def test_fid_eigenvalue_route_agrees_with_sqrtm(d):
    rng = np.random.RandomState(d)
    mu1, mu2, s1, s2 = rng.randn(d), rng.randn(d), random_cov(rng, d), random_cov(rng, d)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(fid_sqrtm(mu1, s1, mu2, s2), rel=1e-3)


def test_fid_from_samples_approaches_the_gaussians_value():
    rng = np.random.RandomState(1)
    s1, s2 = random_cov(rng, 5), random_cov(rng, 5)
    mu1, mu2 = np.zeros(5), np.full(5, 0.5)
    x = rng.multivariate_normal(mu1, s1, 40000)
    y = rng.multivariate_normal(mu2, s2, 40000)
    assert frechet_distance(*gaussian(x), *gaussian(y)) == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=0.05)
    assert frechet_distance(*gaussian(x), *gaussian(x)) == pytest.approx(0, abs=1e-9)


def test_kid_matches_a_direct_double_sum():
    rng = np.random.RandomState(2)
    x, y = rng.randn(12, 7), rng.randn(12, 7) + 0.3
    k = lambda a, b: (a @ b / 7 + 1) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert polynomial_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-9)


def test_kid_is_unbiased_near_zero_for_one_distribution_and_seeded():
    rng = np.random.RandomState(3)
    x, y, z = rng.randn(400, 16), rng.randn(400, 16), rng.randn(400, 16) + 0.5
    same = kernel_distance(x, y, subsets=50, subset_size=200)
    assert abs(same["mean"]) < 3 * same["std"] / np.sqrt(50) + 1e-3
    assert kernel_distance(x, z, subsets=50, subset_size=200)["mean"] > 10 * abs(same["mean"])
    assert kernel_distance(x, y, subsets=50, subset_size=200, seed=7) == kernel_distance(x, y, subsets=50,
                                                                                          subset_size=200, seed=7)


def test_precision_recall_of_identical_far_and_collapsed_sets():
    rng = np.random.RandomState(4)
    real = torch.from_numpy(rng.randn(300, 8))
    assert precision_recall(real, real.clone()) == {"precision": 1.0, "recall": 1.0, "k": 3}
    far = precision_recall(real, real + 100)
    assert far["precision"] == 0 and far["recall"] == 0
    collapsed = precision_recall(real, real[:1] + 0.01 * torch.from_numpy(rng.randn(300, 8)))
    assert collapsed["precision"] > 0.9 and collapsed["recall"] < 0.1


def test_intra_cluster_distance_assigns_and_averages_per_cluster():
    shots = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    samples = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [11.0, 0.0], [9.0, 0.0], [0.5, 9.0]])
    result = intra_cluster_distance(samples, shots)
    assert result["sizes"] == [3, 2, 1]
    first = [2.0, 4.0, 2.0]  # squared distances between the three members of cluster 0
    assert result["clusters"][0] == pytest.approx(np.mean(first))
    assert result["clusters"][1] == pytest.approx(4.0)
    assert result["clusters"][2] is None
    assert result["mean"] == pytest.approx((np.mean(first) + 4.0) / 2)


def test_mann_whitney_z_sign_and_scale():
    assert mann_whitney_z(np.zeros(30), np.ones(30)) == pytest.approx(-(30 * 30 / 2) / np.sqrt(30 * 30 * 61 / 12))
    assert mann_whitney_z(np.ones(5), np.ones(5)) == 0
    # U = 5 pairs with g > h (3>1, 3>2, 4>1, 4>2, 4>3) + the tie 3 = 3 counted half: 5.5; mean 3, sd sqrt(3)
    assert mann_whitney_z(np.array([3.0, 4.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(2.5 / np.sqrt(3))


def test_data_copying_flags_copies_and_not_fresh_samples():
    rng = np.random.RandomState(5)
    train, heldout = rng.randn(200, 6), rng.randn(300, 6)
    copies = train[rng.randint(0, 200, 1000)] + 1e-3 * rng.randn(1000, 6)
    fresh = rng.randn(1000, 6)
    copied = data_copying(train, copies, heldout, cells=5)
    honest = data_copying(train, fresh, heldout, cells=5)
    assert copied["flagged"] and copied["C_T"] < -10 and copied["ratio"] < 0.01
    assert not honest["flagged"] and abs(honest["C_T"]) < 3 and 0.8 < honest["ratio"] < 1.25
    assert copied["cells_used"] == 5
    assert data_copying(train, copies, heldout, cells=5)["C_T"] == copied["C_T"]

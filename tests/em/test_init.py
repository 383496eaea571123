from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import em
from em.init import _cut, hc_merges, svd_scaled
from tests.conftest import random_params

ROOT = Path(__file__).parents[2]

# R's mclust 6.0.0, hcVVV on the first 40 rows of sim3 after hcUse = "SVD" (1-based pairs; the
# R lines that print it are in tests/data/mclust/make_golden.R)
MCLUST_HCVVV = (
    "8-17 22-26 5-18 4-21 11-29 3-20 38-40 25-31 6-32 7-36 10-19 7-23 12-33 27-37 11-14 5-34 "
    "2-16 1-3 30-35 9-12 8-28 7-25 2-10 24-39 8-38 1-15 5-6 22-30 4-9 5-11 7-27 8-13 7-24 2-5 "
    "8-22 1-7 4-8 1-4 1-2")


def test_hc_is_mclusts_hcvvv():
    X = pd.read_csv(ROOT / "tests/data/mclust/sim3.csv").to_numpy(dtype=float)[:40]
    ours = " ".join(f"{i + 1}-{j + 1}" for i, j in hc_merges(svd_scaled(X)))
    assert ours == MCLUST_HCVVV


def test_hc_cut_gives_k_clusters(rng):
    X = rng.normal(size=(60, 3))
    merges = hc_merges(svd_scaled(X))
    for K in (1, 2, 5, 60):
        labels = _cut(merges, 60, K)
        assert labels.min() == 0 and labels.max() == K - 1 and len(np.unique(labels)) == K


@pytest.mark.parametrize("init", ["hc", "ward"])
def test_hierarchical_starts_fit(init, rng):
    from models import simulate

    X = simulate(random_params(rng, 3, 2, "VVV"), 300, rng)[0]
    res = em.fit(X, 3, "VVV", init=init, n_init=1)
    assert res.converged and np.isfinite(res.log_likelihood)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_hc_subsamples_large_data(rng):
    from em.init import HC_MAX_ROWS

    X = rng.normal(size=(HC_MAX_ROWS + 500, 2))
    res = em.fit(X, 2, "VVV", init="hc", n_init=1, max_iter=5)
    assert np.isfinite(res.log_likelihood)


def test_nearest_centre_equals_scikit_learns(rng):
    from sklearn.metrics import pairwise_distances_argmin

    from em.init import nearest

    for N, d, K in ((272, 2, 2), (5000, 10, 8), (300, 3, 5)):
        X = rng.normal(size=(N, d)) * rng.uniform(0.1, 10.0, size=d) + 50.0
        centers = X[rng.choice(N, K, replace=False)]
        np.testing.assert_array_equal(nearest(X, centers), pairwise_distances_argmin(X, centers))

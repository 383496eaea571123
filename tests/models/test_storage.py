"""The storage layouts' own maths (models/storage.py), each against a direct computation."""

import numpy as np
import pytest

from models.features import block_stats
from models.storage import STORAGES
from tests.conftest import random_params


def direct_quadratic(X, g, m, Sigma_full):
    dev = X[:, None, :] - m[None]                                      # (N, K, d)
    sol = np.einsum("kij,nkj->nki", np.linalg.inv(Sigma_full), dev)
    return float(np.sum(g * np.einsum("nki,nki->nk", dev, sol)))


@pytest.mark.parametrize("storage", STORAGES, ids=lambda s: s.name)
def test_quadratic_from_the_statistics_is_the_sum_over_rows(rng, storage):
    N, K, d = 50, 3, 4
    X = rng.normal(size=(N, d))
    g = rng.dirichlet(np.ones(K), size=N) * rng.uniform(0.5, 2.0, size=(N, 1))
    p = random_params(rng, K, d, storage.name)
    got = storage.quadratic(block_stats(X, g, storage), p.mu, p.Sigma)
    assert got == pytest.approx(direct_quadratic(X, g, p.mu, p.to_full().Sigma), rel=1e-12)

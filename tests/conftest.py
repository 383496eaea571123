import numpy as np
import pytest

from models import GMMParams, family


def random_scatter(rng, K, d, storage):
    """Random well-conditioned scatter matrices in a storage's statistics layout, with n_k = 1."""
    A = rng.normal(size=(K, d, d))
    full = A @ np.swapaxes(A, 1, 2) / d + 0.5 * np.eye(d)
    return {"full": full, "tied": full.sum(axis=0),
            "diag": np.diagonal(full, axis1=1, axis2=2).copy(),
            "spherical": np.diagonal(full, axis1=1, axis2=2).copy()}[storage]


def random_params(rng, K, d, covariance_type, spread=3.0):
    """Random, well-conditioned mixture parameters of any covariance type (its constraints hold:
    Sigma is the family's maximum-likelihood update of random scatter matrices)."""
    pi = rng.dirichlet(np.full(K, 3.0))
    mu = rng.normal(scale=spread, size=(K, d))
    fam = family(covariance_type)
    Sigma = fam.ml(random_scatter(rng, K, d, fam.storage), np.ones(K))
    return GMMParams(pi, mu, Sigma, covariance_type)


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)

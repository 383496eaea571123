import numpy as np
import pytest

from models import GMMParams


def random_params(rng, K, d, covariance_type, spread=3.0):
    """Random, well-conditioned mixture parameters of any covariance type."""
    pi = rng.dirichlet(np.full(K, 3.0))
    mu = rng.normal(scale=spread, size=(K, d))
    A = rng.normal(size=(K, d, d))
    full = A @ np.swapaxes(A, 1, 2) / d + 0.5 * np.eye(d)
    Sigma = {
        "full": full,
        "tied": full[0],
        "diag": np.diagonal(full, axis1=1, axis2=2).copy(),
        "spherical": np.diagonal(full, axis1=1, axis2=2).mean(axis=1),
    }[covariance_type]
    return GMMParams(pi, mu, Sigma, covariance_type)


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)

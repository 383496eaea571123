import numpy as np
import pytest

from models import SKLEARN_TYPES, load_faithful, load_iris, simulate
from tests.conftest import random_params


@pytest.mark.parametrize("covariance_type", SKLEARN_TYPES)
def test_simulate_reproduces_parameters(covariance_type):
    rng = np.random.default_rng(7)
    params = random_params(rng, 3, 2, covariance_type, spread=5.0)
    n = 200_000
    X, z = simulate(params, n, rng=rng)
    assert X.shape == (n, 2) and z.shape == (n,)
    counts = np.bincount(z, minlength=3)
    se = np.sqrt(params.pi * (1 - params.pi) / n)
    assert np.all(np.abs(counts / n - params.pi) < 5 * se)
    full = params.to_full()
    for k in range(3):
        Xk = X[z == k]
        nk = len(Xk)
        sd = np.sqrt(np.diag(full.Sigma[k]))
        assert np.all(np.abs(Xk.mean(0) - full.mu[k]) < 5 * sd / np.sqrt(nk))
        S = np.cov(Xk.T)
        # standard error of a sample covariance entry: sqrt((S_ii S_jj + S_ij^2) / n)
        se_S = np.sqrt((np.outer(np.diag(full.Sigma[k]), np.diag(full.Sigma[k]))
                        + full.Sigma[k] ** 2) / nk)
        assert np.all(np.abs(S - full.Sigma[k]) < 5 * se_S)


def test_simulate_is_shuffled_and_seeded():
    params = random_params(np.random.default_rng(0), 3, 2, "full")
    X1, z1 = simulate(params, 500, rng=3)
    X2, z2 = simulate(params, 500, rng=3)
    np.testing.assert_array_equal(X1, X2)
    assert np.any(np.diff(z1) < 0)  # not grouped by component
    with pytest.raises(ValueError, match="positive integer"):
        simulate(params, 0)
    with pytest.raises(TypeError):
        simulate("params", 10)


def test_datasets():
    X, cols = load_faithful()
    assert X.shape == (272, 2) and cols == ["eruptions", "waiting"]
    np.testing.assert_allclose(X.mean(0), [3.487783, 70.897059], atol=1e-6)
    Xi, cols_i, species = load_iris()
    assert Xi.shape == (150, 4) and len(cols_i) == 4 and set(species) == {0, 1, 2}

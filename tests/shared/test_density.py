"""One density, two implementations: the PyMC model's logp equals the NumPy spec's."""

import numpy as np
import pytest

from models import Prior, load_faithful, sample_params, simulate
from models import pymc as gmm_pymc
from tests.shared.helpers import EVAL, PYMC_TYPES


@pytest.mark.parametrize("covariance_type", PYMC_TYPES)
def test_marginal_logp_equals_numpy_density(covariance_type):
    X, _ = load_faithful()
    X = X[::4]
    K = 3
    prior = Prior.default(X, K, covariance_type)
    model = gmm_pymc.build_model(X, K, covariance_type, prior, latent="marginal")
    logp = model.compile_logp(jacobian=False, **EVAL)
    to_values = gmm_pymc.value_point_function(model)
    rng = np.random.default_rng(0)
    for _ in range(50):
        params = sample_params(prior, K, 2, covariance_type, rng)
        expected = params.log_pdf(X).sum() + prior.log_density(params)
        assert float(logp(to_values(params))) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("covariance_type", PYMC_TYPES)
def test_explicit_logp_equals_numpy_joint(covariance_type):
    rng = np.random.default_rng(1)
    X, _ = load_faithful()
    K = 2
    prior = Prior.default(X, K, covariance_type)
    model = gmm_pymc.build_model(X[:30], K, covariance_type, prior, latent="explicit")
    logp = model.compile_logp(jacobian=False, **EVAL)
    to_values = gmm_pymc.value_point_function(model)
    for _ in range(10):
        params = sample_params(prior, K, 2, covariance_type, rng)
        _, z = simulate(params, 30, rng)
        joint = params.log_joint(X[:30])[np.arange(30), z].sum()
        expected = joint + prior.log_density(params)
        assert float(logp(to_values(params, z))) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("covariance_type", PYMC_TYPES)
def test_marginal_logp_with_missing_cells_equals_numpy_observed_density(covariance_type):
    # NaN cells: the model's density of each row is that of its observed cells, as the spec's
    # (models.missing, per pattern); d = 3 so that rows miss one or two features
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    X[rng.random(X.shape) < 0.3] = np.nan
    X[np.isnan(X).all(axis=1), 1] = 0.5
    K = 2
    prior = Prior.default(X, K, covariance_type)
    model = gmm_pymc.build_model(X, K, covariance_type, prior, latent="marginal")
    logp = model.compile_logp(jacobian=False, **EVAL)
    to_values = gmm_pymc.value_point_function(model)
    for _ in range(10):
        params = sample_params(prior, K, 3, covariance_type, rng)
        expected = params.log_pdf(X).sum() + prior.log_density(params)
        assert float(logp(to_values(params))) == pytest.approx(expected, rel=1e-8)
    with pytest.raises(ValueError, match="latent='explicit' takes complete data"):
        gmm_pymc.build_model(X, K, covariance_type, prior, latent="explicit")

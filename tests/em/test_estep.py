import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import em
from models import COVARIANCE_TYPES, GMMParams
from tests.conftest import random_params


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_e_step_is_bayes_rule(rng, covariance_type):
    params = random_params(rng, 3, 3, covariance_type)
    X = rng.normal(scale=3, size=(300, 3)) + 100.0  # offset: the kernels must not cancel
    params = GMMParams(params.pi, params.mu + 100.0, params.Sigma, covariance_type)
    full = params.to_full()
    log_joint = np.column_stack([
        np.log(full.pi[k]) + stats.multivariate_normal(full.mu[k], full.Sigma[k]).logpdf(X)
        for k in range(3)])
    log_gamma, log_lik = em.e_step(X, params)
    np.testing.assert_allclose(log_lik, logsumexp(log_joint, axis=1), rtol=1e-10)
    np.testing.assert_allclose(np.exp(log_gamma), np.exp(log_joint - log_lik[:, None]),
                               atol=1e-10)


def test_e_step_rejects_bad_input(rng):
    params = random_params(rng, 2, 2, "full")
    with pytest.raises(TypeError, match="GMMParams"):
        em.e_step(np.zeros((3, 2)), "params")
    with pytest.raises(ValueError, match="3 features but params have d=2"):
        em.e_step(np.zeros((3, 3)), params)

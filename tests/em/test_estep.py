import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import em
from models import SKLEARN_TYPES, GMMParams
from models.features import log_joint_of
from tests.conftest import random_params


@pytest.mark.parametrize("covariance_type", SKLEARN_TYPES)
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


def test_tight_far_component_switches_to_the_precise_form(rng, monkeypatch):
    # a component of standard deviation 1e-3 at distance 1e3 from the centre: the expanded
    # quadratic form loses about eps * (1e3 / 1e-3)^2 = 1e-4 to cancellation, the factored one
    # (as in scikit-learn) about eps * 1e6
    import models.storage

    mu = np.array([[0.0, 0.0], [1e3, 1e3]])
    Sigma = np.stack([np.eye(2), 1e-6 * np.array([[1.0, 0.5], [0.5, 1.0]])])
    params = GMMParams(np.array([0.5, 0.5]), mu, Sigma, "full")
    X = np.vstack([rng.normal(size=(50, 2)), mu[1] + 1e-3 * rng.normal(size=(50, 2))])
    assert log_joint_of(params, X.mean(axis=0), np.float64).precise
    log_joint = np.column_stack([
        np.log(0.5) + stats.multivariate_normal(mu[k], Sigma[k]).logpdf(X) for k in range(2)])
    reference = logsumexp(log_joint, axis=1)
    _, log_lik = em.e_step(X, params)
    np.testing.assert_allclose(log_lik, reference, rtol=1e-10)
    monkeypatch.setattr(models.storage, "PRECISE_ABOVE", np.inf)
    _, expanded = em.e_step(X, params)
    assert np.max(np.abs(expanded - reference)) > 1e-8  # what the switch avoids

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import em
from models import SKLEARN_TYPES, GMMParams
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


def test_normalise_is_softmax_and_logsumexp(rng):
    from em.estep import normalise

    for dtype, tol in ((np.float64, 1e-13), (np.float32, 1e-5)):
        L = (rng.normal(scale=30.0, size=(5, 200)) - 700.0).astype(dtype)  # exp underflows
        ref_lse = logsumexp(L.astype(np.float64), axis=0)
        G = L.copy()
        m, log_t = normalise(G)
        np.testing.assert_allclose(m + log_t, ref_lse, rtol=tol)
        np.testing.assert_allclose(G, np.exp(L - ref_lse), rtol=tol, atol=tol)
        np.testing.assert_allclose(-log_t, (L - ref_lse).max(axis=0), rtol=tol, atol=tol)


def test_float64_sums_match_exact_sums_for_either_dtype(rng):
    import math

    from em.estep import float64_sums

    for dtype in (np.float32, np.float64):
        a = rng.normal(scale=1e3, size=10_001).astype(dtype)
        b = (-np.abs(a)).astype(dtype)
        s_a, s_b = float64_sums(a, b)
        assert isinstance(s_a, float) and isinstance(s_b, float)
        for got, x in ((s_a, a), (s_b, b)):
            exact = math.fsum(x.astype(np.float64))
            assert abs(got - exact) <= 1e-12 * math.fsum(np.abs(x.astype(np.float64)))


def _log_joint(params, X):
    from em._features import features
    from em.estep import log_joint_of

    shift = X.mean(axis=0)
    kernel = log_joint_of(params, shift, np.float64)
    L, row = kernel(features(X, shift, kernel.kind, np.float64))
    return kernel, L + (0.0 if row is None else row)


def test_precise_and_expanded_full_kernels_agree(rng, monkeypatch):
    import em.estep

    params = random_params(rng, 4, 5, "full")
    X = rng.normal(scale=3, size=(400, 5))
    monkeypatch.setattr(em.estep, "PRECISE_ABOVE", np.inf)
    expanded, L_expanded = _log_joint(params, X)
    monkeypatch.setattr(em.estep, "PRECISE_ABOVE", 0.0)
    precise, L_precise = _log_joint(params, X)
    assert precise.precise and not expanded.precise
    np.testing.assert_allclose(L_expanded, L_precise, rtol=1e-12)


def test_tight_far_component_switches_to_the_precise_form(rng, monkeypatch):
    # a component of standard deviation 1e-3 at distance 1e3 from the centre: the expanded
    # quadratic form loses about eps * (1e3 / 1e-3)^2 = 1e-4 to cancellation, the factored one
    # (as in scikit-learn) about eps * 1e6
    import em.estep

    mu = np.array([[0.0, 0.0], [1e3, 1e3]])
    Sigma = np.stack([np.eye(2), 1e-6 * np.array([[1.0, 0.5], [0.5, 1.0]])])
    params = GMMParams(np.array([0.5, 0.5]), mu, Sigma, "full")
    X = np.vstack([rng.normal(size=(50, 2)), mu[1] + 1e-3 * rng.normal(size=(50, 2))])
    kernel, _ = _log_joint(params, X)
    assert kernel.precise
    log_joint = np.column_stack([
        np.log(0.5) + stats.multivariate_normal(mu[k], Sigma[k]).logpdf(X) for k in range(2)])
    reference = logsumexp(log_joint, axis=1)
    _, log_lik = em.e_step(X, params)
    np.testing.assert_allclose(log_lik, reference, rtol=1e-10)
    monkeypatch.setattr(em.estep, "PRECISE_ABOVE", np.inf)
    _, expanded = em.e_step(X, params)
    assert np.max(np.abs(expanded - reference)) > 1e-8  # what the switch avoids

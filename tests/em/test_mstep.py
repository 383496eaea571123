import numpy as np
import pytest

import em
from em.mstep import DegenerateComponentError, params_from_stats, validated
from models import COVARIANCE_TYPES, SKLEARN_TYPES, GMMParams, Prior, family
from models.features import block_stats
from tests.conftest import random_params


def direct_ml(X, gamma, covariance_type):
    """The lecture's updates written out per component, as an independent reference."""
    N, d = X.shape
    N_k = gamma.sum(0)
    mu = gamma.T @ X / N_k[:, None]
    Sigma = np.stack([(gamma[:, k, None] * (X - mu[k])).T @ (X - mu[k]) / N_k[k]
                      for k in range(gamma.shape[1])])
    Sigma = {
        "full": Sigma,
        "tied": (N_k[:, None, None] * Sigma).sum(0) / N,
        "diag": np.diagonal(Sigma, axis1=1, axis2=2),
        "spherical": np.diagonal(Sigma, axis1=1, axis2=2).mean(1),
    }[covariance_type]
    return N_k / N, mu, Sigma


@pytest.mark.parametrize("covariance_type", SKLEARN_TYPES)
def test_ml_m_step_matches_lecture(rng, covariance_type):
    X = rng.normal(size=(100, 3)) * [1.0, 5.0, 0.2] + 40.0
    gamma = rng.dirichlet(np.ones(4), size=100)
    p = em.m_step(X, gamma, covariance_type)
    pi, mu, Sigma = direct_ml(X, gamma, covariance_type)
    np.testing.assert_allclose(p.pi, pi, rtol=1e-12)
    np.testing.assert_allclose(p.mu, mu, rtol=1e-12)
    np.testing.assert_allclose(p.Sigma, Sigma, rtol=1e-9)


@pytest.mark.parametrize("covariance_type", SKLEARN_TYPES)
def test_weighted_m_step_equals_repeated_rows(rng, covariance_type):
    X = rng.normal(size=(60, 2))
    gamma = rng.dirichlet(np.ones(3), size=60)
    w = rng.integers(0, 4, size=60)
    prior = Prior.default(X, 3, covariance_type)
    for pr in (None, prior):
        a = em.m_step(X, gamma, covariance_type, prior=pr, sample_weight=w)
        b = em.m_step(np.repeat(X, w, axis=0), np.repeat(gamma, w, axis=0), covariance_type,
                      prior=pr)
        for x, y in ((a.pi, b.pi), (a.mu, b.mu), (a.Sigma, b.Sigma)):
            np.testing.assert_allclose(x, y, rtol=1e-10)


def unconstrained(params):
    """pi -> log-ratios, Sigma -> Cholesky with log diagonal (or log variances)."""
    ct = params.covariance_type
    parts = [np.log(params.pi[1:] / params.pi[0]), params.mu.ravel()]
    if ct in ("full", "tied"):
        Ls = params.cholesky if ct == "full" else params.cholesky[:1]
        for L in Ls:
            L = L.copy()
            np.fill_diagonal(L, np.log(np.diag(L)))
            parts.append(L[np.tril_indices(params.d)])
    else:
        parts.append(np.log(params.Sigma).ravel())
    return np.concatenate(parts)


def constrained(theta, K, d, ct):
    eta = np.concatenate([[0.0], theta[:K - 1]])
    pi = np.exp(eta - eta.max())
    pi /= pi.sum()
    mu = theta[K - 1:K - 1 + K * d].reshape(K, d)
    rest = theta[K - 1 + K * d:]
    if ct in ("full", "tied"):
        m = d * (d + 1) // 2
        Ls = []
        for i in range(K if ct == "full" else 1):
            L = np.zeros((d, d))
            L[np.tril_indices(d)] = rest[i * m:(i + 1) * m]
            np.fill_diagonal(L, np.exp(np.diag(L)))
            Ls.append(L @ L.T)
        Sigma = np.stack(Ls) if ct == "full" else Ls[0]
    else:
        Sigma = np.exp(rest).reshape((K, d) if ct == "diag" else (K,))
    return GMMParams(pi, mu, Sigma, ct)


@pytest.mark.parametrize("covariance_type", SKLEARN_TYPES)
def test_map_fixed_point_is_stationary(covariance_type):
    rng = np.random.default_rng(3)
    truth = random_params(rng, 3, 2, covariance_type, spread=2.5)
    from models import simulate

    X, _ = simulate(truth, 150, rng)
    prior = Prior(alpha=[1.5, 2.0, 3.0], m0=X.mean(0), kappa0=0.5, nu0=4.0,
                  Psi0=np.cov(X.T) / 3)
    res = em.fit(X, 3, covariance_type, prior=prior, tol=1e-15, max_iter=20000, n_init=2)
    K, d = 3, 2

    def objective(theta):
        p = constrained(theta, K, d, covariance_type)
        return p.log_pdf(X).sum() + prior.log_density(p)

    theta = unconstrained(res.params)
    assert objective(theta) == pytest.approx(res.log_posterior, rel=1e-12)
    h = 1e-5
    grad = np.array([(objective(theta + h * e) - objective(theta - h * e)) / (2 * h)
                     for e in np.eye(theta.size)])
    # gradient per observation vanishes at the MAP
    assert np.abs(grad).max() / X.shape[0] < 1e-6
    # and the point is a maximum along random directions
    for _ in range(5):
        v = rng.normal(size=theta.size) * 1e-3
        assert objective(theta + v) < objective(theta)


def test_m_step_input_checks(rng):
    X = rng.normal(size=(10, 2))
    gamma = rng.dirichlet(np.ones(2), size=10)
    with pytest.raises(ValueError, match=r"gamma must have shape \(N, K\)"):
        em.m_step(X, gamma[:5], "full")
    with pytest.raises(ValueError, match="reg_covar"):
        em.m_step(X, gamma, "full", reg_covar=-1)
    with pytest.raises(ValueError, match="mclust's EII, VII.*spherical, diag, tied, full"):
        em.m_step(X, gamma, "fullish")
    with pytest.raises(ValueError, match="non-negative"):
        em.m_step(X, gamma, "full", sample_weight=-np.ones(10))
    with pytest.raises(TypeError, match="Prior"):
        em.m_step(X, gamma, "full", prior="mclust")


def test_empty_component_without_prior_raises(rng):
    X = rng.normal(size=(10, 2))
    gamma = np.column_stack([np.ones(10), np.zeros(10)])
    with pytest.raises(ValueError, match="Component 1 has no responsibility"):
        em.m_step(X, gamma, "full")
    p = em.m_step(X, gamma, "full", prior=Prior.default(X, 2))
    assert np.all(np.isfinite(p.Sigma))


@pytest.mark.parametrize(("covariance_type", "use_prior"),
                         [(ct, False) for ct in COVARIANCE_TYPES]
                         + [(ct, True) for ct in COVARIANCE_TYPES if family(ct).has_map])
def test_unvalidated_m_step_equals_validated(covariance_type, use_prior):
    """EM's loop skips the constructor's checks: the parameters and factors are the same."""
    fam = family(covariance_type)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(80, 3)) * [1.0, 4.0, 0.3] + 10.0
    gamma = rng.dirichlet(np.ones(3), size=80)
    shift = X.mean(0)
    stats = block_stats(X - shift, gamma, fam.storage)
    prior = Prior.default(X, 3, covariance_type).shifted(shift) if use_prior else None
    start = em.m_step(X, gamma, covariance_type)       # the iterative M-steps start here
    kw = dict(prior=prior, shift=shift, scale=(X - shift).var(0), previous=start)
    checked = params_from_stats(stats, fam, validate=True, covariance_type=covariance_type, **kw)
    fast = params_from_stats(stats, fam, validate=False, covariance_type=covariance_type, **kw)
    for name in ("pi", "mu", "Sigma"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(checked, name))
        assert not getattr(fast, name).flags.writeable
    np.testing.assert_allclose(fast.cholesky, checked.cholesky, rtol=1e-13, atol=1e-15)
    assert fast.cholesky.shape == (3, 3, 3)
    np.testing.assert_allclose(fast.log_pdf(X), checked.log_pdf(X), rtol=1e-13)
    np.testing.assert_array_equal(validated(fast).cholesky, checked.cholesky)


def test_validated_turns_a_broken_invariant_into_a_degenerate_component():
    L = np.eye(2)[None]
    bad = GMMParams.unchecked(np.array([0.7, 0.7]), np.zeros((2, 2)), np.ones((2, 2)),
                              family("diag"), np.broadcast_to(L, (2, 2, 2)))
    with pytest.raises(DegenerateComponentError, match="simplex"):
        validated(bad)
    flat = GMMParams.unchecked(np.array([1.0]), np.zeros((1, 2)),
                               np.array([[[1.0, 0.0], [0.0, 0.0]]]), family("full"), L)
    with pytest.raises(DegenerateComponentError, match="not positive-definite"):
        validated(flat)

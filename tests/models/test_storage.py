"""The storage table: each layout's computations against plain NumPy and SciPy."""

import numpy as np
import pytest
from scipy import stats

from models import FAMILIES, Prior, family
from models.features import block_stats
from models.storage import STORAGES, storage_of_dims
from tests.conftest import random_params

#: one family per layout, with the layout's own free form
LOOSE = {"spherical": "VII", "diag": "VVI", "tied": "EEE", "full": "VVV"}


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_full_form_round_trip(fam, rng):
    p = random_params(rng, 3, 4, fam.name)
    full = fam.storage.to_full(p.Sigma, 3, 4)
    assert full.shape == (3, 4, 4)
    np.testing.assert_array_equal(fam.storage.from_full(full), p.Sigma)
    assert storage_of_dims(fam.storage.dims) is fam.storage


@pytest.mark.parametrize("storage", STORAGES, ids=lambda s: s.name)
def test_scatter_equals_the_sum_of_outer_products(storage, rng):
    K, d, N = 3, 4, 50
    X = rng.normal(size=(N, d))
    g = rng.dirichlet(np.ones(K), size=N)
    N_k = g.sum(0)
    xbar = (g.T @ X) / N_k[:, None]
    dev = X[:, None] - xbar                                              # (N, K, d)
    full = np.einsum("nk,nki,nkj->kij", g, dev, dev)
    M = np.einsum("nk,ni,nj->kij", g, X, X)
    # the statistics' layout: every matrix (full), their sum (tied), every variance (diag and
    # spherical: the spherical M-step sums the variances)
    layout = {True: lambda A: A.sum(0) if storage.shared else A,
              False: lambda A: np.diagonal(A, axis1=1, axis2=2)}[storage.matrix]
    np.testing.assert_allclose(storage.scatter(layout(M), N_k, xbar), layout(full),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(LOOSE.values()))
def test_precisions_and_their_factors(name, rng):
    p = random_params(rng, 3, 4, name)
    storage = p.family.storage
    P = storage.precisions(p.Sigma)
    full = storage.to_full(p.Sigma, 3, 4)
    np.testing.assert_allclose(storage.to_full(P, 3, 4), np.linalg.inv(full), rtol=1e-10)
    np.testing.assert_allclose(storage.from_precisions(P), p.Sigma, rtol=1e-10)
    C = storage.to_full(storage.precision_cholesky(p.Sigma, p.cholesky), 3, 4)
    if storage.matrix:       # upper factors: Sigma^-1 = C C^T
        np.testing.assert_allclose(C @ np.swapaxes(C, 1, 2), np.linalg.inv(full), rtol=1e-10)
    else:
        np.testing.assert_allclose(C**2, np.linalg.inv(full), rtol=1e-12)


@pytest.mark.parametrize("name", list(LOOSE.values()))
def test_the_kernel_is_the_log_joint(name, rng):
    from models.features import features, log_joint_of

    p = random_params(rng, 3, 3, name)
    X = rng.normal(scale=3, size=(40, 3)) + 7.0
    shift = X.mean(0)
    kernel = log_joint_of(p, shift, np.float64)
    L, row = kernel(features(X, shift, kernel.kind, np.float64))
    full = p.to_full()
    ref = np.stack([np.log(full.pi[k]) + stats.multivariate_normal(full.mu[k], full.Sigma[k]).logpdf(X)
                    for k in range(3)])
    np.testing.assert_allclose(L + (0.0 if row is None else row), ref, rtol=1e-10)


@pytest.mark.parametrize("name", list(LOOSE.values()))
def test_the_prior_density_and_draws(name, rng):
    X = rng.normal(size=(100, 3)) * [1.0, 3.0, 0.5]
    prior = Prior.default(X, 2, name)
    storage = family(name).storage
    draws = storage.draw_prior(prior, 4000, rng)
    a, b = storage.prior_scale(prior)
    if storage.matrix:     # E[Sigma^-1] = nu Psi^-1 (Sigma's own mean has heavy tails)
        np.testing.assert_allclose(np.linalg.inv(draws).mean(0), a * np.linalg.inv(b),
                                   rtol=0.1, atol=0.1 * np.abs(a * np.linalg.inv(b)).max())
        ref = sum(stats.invwishart.logpdf(S, df=a, scale=b) for S in draws[:3])
    else:
        np.testing.assert_allclose(np.median(draws, axis=0), stats.invgamma(a, scale=b).median(),
                                   rtol=0.05)
        ref = stats.invgamma.logpdf(draws[:3], a, scale=b).sum()
    assert storage.log_prior(draws[:3], prior) == pytest.approx(ref, rel=1e-12)


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


def posterior_factors(rng, storage, d=3, m=2):
    """A prior and a posterior's (shape, scale) for m factors, from random scatter."""
    from models import Prior

    X = rng.normal(size=(40, d)) @ rng.normal(size=(d, d))
    prior = Prior.default(X, 2, storage.name)
    A = rng.normal(size=(m, d, d))
    full = A @ np.swapaxes(A, 1, 2) + np.eye(d)
    T = full if storage.matrix else np.diagonal(full, axis1=1, axis2=2).copy()
    return prior, storage.posterior_scale(prior, T, np.array([8.0, 15.0][:m]))


def prior_log_density(storage, prior, draws):
    """scipy's log density of the prior, per draw and factor: (n, m)."""
    from scipy import stats

    shape0, scale0 = storage.prior_scale(prior)
    if storage.matrix:
        n, m, d, _ = draws.shape
        flat = np.moveaxis(draws.reshape(n * m, d, d), 0, -1)
        return stats.invwishart.logpdf(flat, df=shape0, scale=scale0).reshape(n, m)
    return stats.invgamma.logpdf(draws, shape0, scale=scale0).reshape(len(draws), draws.shape[1], -1).sum(-1)


def q_log_density(storage, shape, scale, draws):
    from scipy import stats

    if storage.matrix:
        n, m, d, _ = draws.shape
        return np.stack([stats.invwishart.logpdf(np.moveaxis(draws[:, f], 0, -1), df=shape[f],
                                                 scale=scale[f]) for f in range(m)], axis=1)
    a = shape.reshape(shape.shape + (1,) * (scale.ndim - 1))
    return stats.invgamma.logpdf(draws, a, scale=scale).reshape(len(draws), draws.shape[1], -1).sum(-1)


@pytest.mark.parametrize("storage", STORAGES, ids=lambda s: s.name)
def test_log_norm_is_the_normaliser_of_scipys_density(rng, storage):
    from scipy import stats

    _, (shape, scale) = posterior_factors(rng, storage)
    Sigma = storage.draw(shape, scale, 1, rng)[0]
    log_c = storage.log_norm(shape, scale)
    for f in range(len(shape)):
        if storage.matrix:
            d = Sigma.shape[-1]
            kernel = (-(shape[f] + d + 1) / 2 * np.linalg.slogdet(Sigma[f])[1]
                      - 0.5 * np.trace(scale[f] @ np.linalg.inv(Sigma[f])))
            ref = stats.invwishart.logpdf(Sigma[f], df=shape[f], scale=scale[f])
        else:
            kernel = np.sum(-(shape[f] + 1) * np.log(Sigma[f]) - scale[f] / Sigma[f])
            ref = np.sum(stats.invgamma.logpdf(Sigma[f], shape[f], scale=scale[f]))
        assert log_c[f] + kernel == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("storage", STORAGES, ids=lambda s: s.name)
def test_expectations_kl_and_mean_against_draws(rng, storage):
    # E[Lambda], E[log|Lambda|] - log|E[Lambda]|, KL(q || prior) and E[Sigma] by Monte Carlo
    prior, (shape, scale) = posterior_factors(rng, storage)
    d, n = 3, 20000
    draws = storage.draw(shape, scale, n, rng)                         # (n, m, *entry)
    Sigma_hat, gap = storage.expected_precision(shape, scale, d)
    if storage.matrix:
        prec = np.linalg.inv(draws)
        logdet = np.linalg.slogdet(prec)[1]
        np.testing.assert_allclose(prec.mean(axis=0), np.linalg.inv(Sigma_hat), rtol=0.03,
                                   atol=0.03 * np.abs(np.linalg.inv(Sigma_hat)).max())
        mc_gap = logdet.mean(axis=0) - np.linalg.slogdet(np.linalg.inv(Sigma_hat))[1]
    else:
        prec = 1.0 / draws
        np.testing.assert_allclose(prec.mean(axis=0), 1.0 / Sigma_hat, rtol=0.03)
        per = np.log(prec).reshape(n, len(shape), -1).sum(-1)
        mult = 1 if prec.ndim == 3 else d                    # spherical: one variance, d times
        mc_gap = mult * per.mean(axis=0) - mult * np.log(1.0 / Sigma_hat).reshape(len(shape),
                                                                                   -1).sum(-1)
    np.testing.assert_allclose(mc_gap, gap, atol=0.03)
    log_ratio = q_log_density(storage, shape, scale, draws) - prior_log_density(storage, prior,
                                                                                draws)
    se = log_ratio.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(log_ratio.mean(axis=0) - storage.kl(shape, scale, prior)) < 4 * se)
    np.testing.assert_allclose(draws.mean(axis=0), storage.posterior_mean(shape, scale, d),
                               rtol=0.05, atol=0.05 * np.abs(draws.mean(axis=0)).max())

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

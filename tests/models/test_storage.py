"""The storage table: each layout's computations against plain NumPy and SciPy."""

import numpy as np
import pytest
from scipy import stats

from models import FAMILIES, Prior, family
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

"""models.missing: patterns, the Gaussian's marginals and conditionals, imputation, Gibbs's draw.

References: scipy's multivariate normal on sub-vectors, the conditional-Gaussian formulas with
``np.linalg.solve``, ``np.cov``, and moments of many draws against their formulas.
"""

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from models import GMMParams, Prior
from models.missing import (
    conditional,
    draw_missing,
    groups,
    impute_draws,
    log_gauss_observed,
    observed_moments,
    scan,
)
from tests.conftest import random_params


def _holes(rng, N=60, d=4, rate=0.3):
    X = rng.normal(size=(N, d))
    X[rng.random(X.shape) < rate] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 1.0
    return X


def test_scan_finds_the_patterns_and_refuses_empty_rows_columns_and_inf(rng):
    X = _holes(rng)
    miss = scan(X)
    absent = np.isnan(X)
    assert miss.n_cells == absent.sum() and miss.n_incomplete == absent.any(axis=1).sum()
    np.testing.assert_array_equal(miss.rows, np.flatnonzero(absent.any(axis=1)))
    for r, p in zip(miss.rows, miss.row_pattern):
        np.testing.assert_array_equal(miss.observed[p], ~absent[r])
    assert miss.counts.sum() == miss.n_incomplete
    assert len({tuple(o) for o in miss.observed}) == miss.n_patterns
    np.testing.assert_array_equal(miss.column_observed, (~absent).sum(axis=0))
    assert scan(np.ones((3, 2))) is None
    with pytest.raises(ValueError, match=r"no observed value in row 1 \(and 1 more rows\)"):
        scan(np.array([[1.0, 2.0], [np.nan, np.nan], [np.nan, np.nan]]))
    with pytest.raises(ValueError, match="no observed value in column 0; drop that column"):
        scan(np.array([[np.nan, 2.0], [np.nan, 1.0]]))
    with pytest.raises(ValueError, match="inf at row 1"):
        scan(np.array([[np.nan, 2.0], [np.inf, 1.0]]))
    assert scan(np.array([[np.nan, 2.0], [np.nan, 1.0]]), require_columns=False).n_patterns == 1


def test_groups_cover_every_row_once(rng):
    X = _holes(rng)
    rows = np.concatenate([r for _, r in groups(X)])
    assert sorted(rows) == list(range(len(X)))
    for observed, r in groups(X):
        np.testing.assert_array_equal(~np.isnan(X[r]), np.broadcast_to(observed, (len(r), 4)))


def test_marginal_and_conditional_of_one_pattern(rng):
    p = random_params(rng, 3, 4, "full")
    x = np.array([[0.5, np.nan, -1.0, np.nan], [1.5, np.nan, 0.2, np.nan]])
    o = ~np.isnan(x[0])
    log_dens, mean, cov = conditional(p.mu, p.Sigma, x[:, o], o)
    m = ~o
    for k in range(3):
        S = p.Sigma[k]
        ref = stats.multivariate_normal(p.mu[k, o], S[np.ix_(o, o)]).logpdf(x[:, o])
        np.testing.assert_allclose(log_dens[:, k], ref, rtol=1e-12)
        A = np.linalg.solve(S[np.ix_(o, o)], S[np.ix_(o, m)])
        np.testing.assert_allclose(mean[:, k], p.mu[k, m] + (x[:, o] - p.mu[k, o]) @ A,
                                   rtol=1e-11)
        np.testing.assert_allclose(cov[k], S[np.ix_(m, m)] - S[np.ix_(m, o)] @ A, rtol=1e-11)
    stack = np.stack([p.Sigma, p.Sigma * 2])     # leading axes: a stack of draws
    np.testing.assert_allclose(conditional(np.stack([p.mu] * 2), stack, x[:, o], o)[2][1],
                               conditional(p.mu, 2 * p.Sigma, x[:, o], o)[2], rtol=1e-12)


def test_log_pdf_of_rows_with_holes_is_the_observed_features_density(rng):
    p = random_params(rng, 2, 4, "VEV")
    X = _holes(rng, N=30)
    full = p.to_full().Sigma
    ref = [logsumexp([np.log(p.pi[k]) + stats.multivariate_normal(
        p.mu[k, ~np.isnan(x)], full[k][np.ix_(~np.isnan(x), ~np.isnan(x))]).logpdf(
        x[~np.isnan(x)]) for k in range(2)]) for x in X]
    np.testing.assert_allclose(p.log_pdf(X), ref, rtol=1e-12)
    np.testing.assert_allclose(log_gauss_observed(p.mu, full, X) + np.log(p.pi),
                               p.log_joint(X), rtol=1e-12)
    assert np.allclose(p.responsibilities(X).sum(axis=1), 1.0)


def test_observed_moments_are_pairwise_complete(rng):
    X = rng.normal(size=(50, 3)) @ np.array([[1, 0.5, 0], [0, 1, 0.3], [0, 0, 1]])
    mean, cov = observed_moments(X)
    np.testing.assert_allclose(cov, np.cov(X, rowvar=False), rtol=1e-12)
    X[::3, 0] = np.nan
    X[1::5, 2] = np.nan
    mean, cov = observed_moments(X)
    both = ~np.isnan(X[:, 0]) & ~np.isnan(X[:, 2])
    m0, m2 = np.nanmean(X[:, 0]), np.nanmean(X[:, 2])
    ref = ((X[both, 0] - m0) * (X[both, 2] - m2)).sum() / (both.sum() - 1)
    assert cov[0, 2] == pytest.approx(ref, rel=1e-12)
    np.testing.assert_allclose(mean, np.nanmean(X, axis=0), rtol=1e-12)


def test_prior_default_reads_the_observed_cells(rng):
    X = rng.normal(size=(80, 3)) + [1.0, 2.0, 3.0]
    Xm = X.copy()
    Xm[::4, 1] = np.nan
    prior = Prior.default(Xm, 2, "full")
    np.testing.assert_allclose(prior.m0, np.nanmean(Xm, axis=0), rtol=1e-12)
    _, cov = observed_moments(Xm)
    np.testing.assert_allclose(prior.Psi0, cov * (1 / 2) ** (2 / 3), rtol=1e-12)
    complete = Prior.default(X, 2, "full")           # complete data: np.cov, as before
    np.testing.assert_allclose(complete.Psi0, np.cov(X, rowvar=False) * (1 / 2) ** (2 / 3))


def test_condition_is_gmm_regression(rng):
    p = random_params(rng, 3, 4, "EEV")
    x = np.array([0.3, np.nan, -0.7, np.nan])
    observed = ~np.isnan(x)
    c = p.condition(x, observed)
    assert c.covariance_type == "full" and c.d == 2
    full = p.to_full().Sigma
    o, m = observed, ~observed
    lj = [np.log(p.pi[k]) + stats.multivariate_normal(p.mu[k, o], full[k][np.ix_(o, o)])
          .logpdf(x[o]) for k in range(3)]
    np.testing.assert_allclose(c.pi, np.exp(lj - logsumexp(lj)), rtol=1e-10)
    for k in range(3):
        S = full[k]
        A = np.linalg.solve(S[np.ix_(o, o)], S[np.ix_(o, m)])
        np.testing.assert_allclose(c.mu[k], p.mu[k, m] + (x[o] - p.mu[k, o]) @ A, rtol=1e-10)
        np.testing.assert_allclose(c.Sigma[k], S[np.ix_(m, m)] - S[np.ix_(m, o)] @ A,
                                   rtol=1e-10)
    # the joint density factorises: p(x) = p(x_o) p(x_m | x_o)
    xm = np.array([0.1, 0.4])
    xfull = np.array([0.3, 0.1, -0.7, 0.4])
    assert (p.log_pdf(x[None])[0] + c.log_pdf(xm[None])[0]
            == pytest.approx(p.log_pdf(xfull[None])[0], rel=1e-12))
    with pytest.raises(ValueError, match="leave at least one out"):
        p.condition(np.zeros(4), np.ones(4, bool))
    with pytest.raises(ValueError, match=r"x\[1\] = nan is marked observed"):
        p.condition(x, np.array([True, True, False, False]))


@pytest.mark.parametrize(("name", "kept"), [
    ("EII", "EII"), ("VII", "VII"), ("EEI", "EEI"), ("VEI", "VEI"), ("EVI", "full"),
    ("VVI", "VVI"), ("EEE", "EEE"), ("VEE", "VEE"), ("EVE", "full"), ("VVE", "full"),
    ("EEV", "full"), ("VEV", "full"), ("EVV", "full"), ("VVV", "VVV")])
def test_marginal_keeps_the_family_where_it_is_closed(rng, name, kept):
    p = random_params(rng, 3, 4, name)
    m = p.marginal([2, 0])
    assert m.covariance_type == kept
    full = p.to_full().Sigma
    np.testing.assert_allclose(m.to_full().Sigma, full[:, [2, 0]][:, :, [2, 0]], rtol=1e-12)
    np.testing.assert_allclose(m.mu, p.mu[:, [2, 0]])
    X = rng.normal(size=(5, 4))
    Xh = X.copy()
    Xh[:, [1, 3]] = np.nan                 # the marginal's density is the observed features'
    np.testing.assert_allclose(p.marginal([0, 2]).log_pdf(X[:, [0, 2]]), p.log_pdf(Xh),
                               rtol=1e-12)


def test_marginal_by_name(rng):
    p = random_params(rng, 2, 3, "full")
    names = ["a", "b", "c"]
    np.testing.assert_array_equal(p.marginal(["c", "a"], names=names).mu, p.mu[:, [2, 0]])
    with pytest.raises(ValueError, match="pass names="):
        p.marginal(["a"])
    with pytest.raises(ValueError, match="twice"):
        p.marginal([0, 0])


def test_draw_missing_draws_from_the_components_conditional(rng):
    # the Gibbs route's data-augmentation step: x_m ~ N(E[x_m | x_o, z], Cov[x_m | x_o, z])
    p = random_params(rng, 2, 3, "full", spread=1.0)
    X = np.tile([[0.5, np.nan, np.nan], [np.nan, -1.0, 0.2]], (20_000, 1))
    z = np.tile([1, 0], 20_000)
    draws = draw_missing(X, z, p.mu, p.Sigma, np.random.default_rng(3))
    for row, k in ((0, 1), (1, 0)):
        x = X[row]
        o, m = ~np.isnan(x), np.isnan(x)
        S = p.Sigma[k]
        A = np.linalg.solve(S[np.ix_(o, o)], S[np.ix_(o, m)])
        mean = p.mu[k, m] + (x[o] - p.mu[k, o]) @ A
        cov = S[np.ix_(m, m)] - S[np.ix_(m, o)] @ A
        d = draws[row::2][:, m]
        np.testing.assert_array_equal(draws[row::2][:, o], np.broadcast_to(x[o], (20_000, o.sum())))
        se = np.sqrt(np.diag(cov) / len(d))
        assert np.all(np.abs(d.mean(axis=0) - mean) < 4 * se)
        np.testing.assert_allclose(np.atleast_2d(np.cov(d, rowvar=False)), cov, rtol=0.05,
                                   atol=0.01)


def test_posterior_imputations_spread_with_the_parameters(rng):
    # one row, x_2 missing: over draws theta_s that differ, the imputations' variance is the
    # average conditional variance plus the variance of the conditional means
    base = GMMParams([1.0], [[0.0, 0.0]], [[[1.0, 0.8], [0.8, 1.0]]])
    S = 4000
    shifts = rng.normal(scale=0.5, size=S)
    mu = np.stack([[[0.0, s]] for s in shifts])
    Sigma = np.broadcast_to(base.Sigma, (S, 1, 2, 2))
    x = np.array([[1.0, np.nan]])
    out = impute_draws(x, np.ones((S, 1)), mu, Sigma, np.random.default_rng(4))[:, 0, 1]
    cond_mean = shifts + 0.8 * 1.0
    expected = 1.0 - 0.64 + cond_mean.var()
    assert out.var() == pytest.approx(expected, rel=0.08)
    assert out.mean() == pytest.approx(cond_mean.mean(), abs=4 * np.sqrt(expected / S))

"""EM with values missing at random (em.missing), against independent references.

References: the observed-data log-likelihood summed row by row with scipy's multivariate normal
on each row's observed sub-vector; the expected sufficient statistics computed row by row from
the Gaussian conditional with ``np.linalg.solve``; the textbook EM for one multivariate normal
with missing data (Little & Rubin 2002, section 11.2), written here as a loop over rows; and
scipy's optimiser on the observed-data likelihood.
"""

import numpy as np
import pytest
from scipy import optimize, stats
from scipy.special import logsumexp

import em
from em.missing import Missing
from models import MCLUST_NAMES, GMMParams, Prior, family, simulate
from models.missing import scan
from tests.conftest import random_params

MAP_NAMES = [f for f in MCLUST_NAMES if family(f).has_map]
CASES = [(name, False) for name in MCLUST_NAMES] + [(name, True) for name in MAP_NAMES]


def with_holes(X, rng, rate=0.2):
    """``X`` with cells deleted completely at random, every row keeping an observed cell."""
    Xm = np.array(X, dtype=float)
    Xm[rng.random(X.shape) < rate] = np.nan
    empty = np.isnan(Xm).all(axis=1)
    Xm[empty, 0] = X[empty, 0]
    return Xm


def holes_data(rng, K=3, d=3, N=300, rate=0.2):
    truth = random_params(rng, K, d, "VVV", spread=2.5)
    X, _ = simulate(truth, N, rng)
    return X, with_holes(X, rng, rate)


def observed_loglik(X, p):
    """sum_n log sum_k pi_k N(x_n,o | mu_k,o, Sigma_k,oo), row by row with scipy."""
    full = p.to_full().Sigma
    total = 0.0
    for x in X:
        o = ~np.isnan(x)
        terms = [np.log(p.pi[k]) + stats.multivariate_normal(p.mu[k, o], full[k][np.ix_(o, o)])
                 .logpdf(x[o]) for k in range(p.K)]
        total += logsumexp(terms)
    return total


@pytest.mark.parametrize(("name", "use_prior"), CASES)
def test_objective_is_the_observed_likelihood_and_never_decreases(name, use_prior):
    rng = np.random.default_rng(sum(map(ord, name)) + use_prior)
    _, Xm = holes_data(rng)
    prior = Prior.default(Xm, 3, name) if use_prior else None
    res = em.fit(Xm, 3, name, prior=prior, n_init=1, random_state=0, max_iter=300, tol=1e-8)
    ref = observed_loglik(Xm, res.params)
    assert res.log_likelihood == pytest.approx(ref, rel=1e-10)
    if prior is not None:
        assert res.log_posterior == pytest.approx(ref + prior.log_density(res.params), rel=1e-10)
    h = res.history
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:])), np.diff(h).min()
    n = Xm.shape[0]
    assert res.bic == pytest.approx(-2 * ref + res.params.n_parameters * np.log(n), rel=1e-10)


def expected_stats(X, p, shift):
    """N_k, sum gamma E[x | x_o, k] and sum gamma E[x x^T | x_o, k] (centred), row by row."""
    full = p.to_full().Sigma
    K, d = p.K, p.d
    N_k, s, M = np.zeros(K), np.zeros((K, d)), np.zeros((K, d, d))
    for x in X:
        o, m = ~np.isnan(x), np.isnan(x)
        lj = np.array([np.log(p.pi[k]) + stats.multivariate_normal(
            p.mu[k, o], full[k][np.ix_(o, o)]).logpdf(x[o]) for k in range(K)])
        g = np.exp(lj - logsumexp(lj))
        for k in range(K):
            S = full[k]
            xhat, C = x.copy(), np.zeros((d, d))
            if m.any():
                A = np.linalg.solve(S[np.ix_(o, o)], S[np.ix_(o, m)])
                xhat[m] = p.mu[k, m] + (x[o] - p.mu[k, o]) @ A
                C[np.ix_(m, m)] = S[np.ix_(m, m)] - S[np.ix_(m, o)] @ A
            xc = xhat - shift
            N_k[k] += g[k]
            s[k] += g[k] * xc
            M[k] += g[k] * (np.outer(xc, xc) + C)
    return N_k, s, M


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_pass_statistics_are_the_expected_sufficient_statistics(rng, covariance_type):
    from em.fit import em_pass

    _, Xm = holes_data(rng, N=120, rate=0.3)
    p = random_params(rng, 3, 3, covariance_type)
    shift = np.nanmean(Xm, axis=0)
    stats_, log_lik, _ = em_pass(Xm, None, shift, p, np.float64, 37,
                                 missing=Missing(scan(Xm)))
    N_k, s, M = expected_stats(Xm, p, shift)
    np.testing.assert_allclose(stats_.N_k, N_k, rtol=1e-10)
    np.testing.assert_allclose(stats_.s, s, rtol=1e-9, atol=1e-9 * np.abs(s).max())
    M_layout = p.family.storage.moments_from_full(M)
    np.testing.assert_allclose(stats_.M, M_layout, rtol=1e-9, atol=1e-9 * np.abs(M).max())
    assert log_lik == pytest.approx(observed_loglik(Xm, p), rel=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "VEV"])
def test_e_step_uses_each_rows_observed_features(rng, covariance_type):
    _, Xm = holes_data(rng, N=80, rate=0.3)
    Xm[:, 1] = np.nan                      # a feature missing in every row: new data may do that
    Xm[np.isnan(Xm).all(axis=1), 0] = 0.5
    p = random_params(rng, 3, 3, covariance_type)
    log_gamma, log_lik = em.e_step(Xm, p)
    ref = p.log_joint(Xm)                  # models.missing: per pattern, Sigma_oo's Cholesky
    np.testing.assert_allclose(log_lik, logsumexp(ref, axis=1), rtol=1e-11)
    np.testing.assert_allclose(np.exp(log_gamma), p.responsibilities(Xm), atol=1e-11)
    row = Xm[3]
    o = ~np.isnan(row)
    k_ref = [np.log(p.pi[k]) + stats.multivariate_normal(p.mu[k, o], p.to_full().Sigma[k][
        np.ix_(o, o)]).logpdf(row[o]) for k in range(3)]
    assert log_lik[3] == pytest.approx(logsumexp(k_ref), rel=1e-12)


def test_e_step_in_the_precise_form(rng, monkeypatch):
    # a tight component far from the data's centre: the full kernel's factored form, corrected
    import models.storage

    monkeypatch.setattr(models.storage, "PRECISE_ABOVE", 0.0)
    _, Xm = holes_data(rng, N=60, rate=0.3)
    p = random_params(rng, 2, 3, "full")
    log_gamma, log_lik = em.e_step(Xm, p)
    np.testing.assert_allclose(log_lik, p.log_pdf(Xm), rtol=1e-11)


def _unpack(theta, K, d):
    logits = np.concatenate([[0.0], theta[:K - 1]])
    pi = np.exp(logits - logsumexp(logits))
    mu = theta[K - 1:K - 1 + K * d].reshape(K, d)
    L = np.zeros((K, d, d))
    i, j = np.tril_indices(d)
    vals = theta[K - 1 + K * d:].reshape(K, -1)
    L[:, i, j] = vals
    idx = np.arange(d)
    L[:, idx, idx] = np.exp(L[:, idx, idx])
    return GMMParams(pi, mu, L @ np.swapaxes(L, 1, 2))


def _pack(p):
    d = p.d
    L = np.linalg.cholesky(p.Sigma)
    idx = np.arange(d)
    L[:, idx, idx] = np.log(L[:, idx, idx])
    i, j = np.tril_indices(d)
    return np.concatenate([np.log(p.pi[1:] / p.pi[0]), p.mu.ravel(), L[:, i, j].ravel()])


def test_one_pattern_fixed_point_maximises_the_observed_likelihood(rng):
    # one pattern of missingness (the last feature absent in 40 % of rows): at EM's fixed point
    # the finite-difference gradient of the observed-data log-likelihood vanishes, and BFGS
    # started there finds nothing higher
    truth = GMMParams([0.4, 0.6], [[0, 0, 0], [3, 1, -1]],
                      np.stack([np.eye(3) + 0.3, [[1, 0.5, 0.2], [0.5, 2, 0.3], [0.2, 0.3, 1]]]))
    X, _ = simulate(truth, 400, rng)
    X[rng.random(400) < 0.4, 2] = np.nan
    assert scan(X).n_patterns == 1
    res = em.fit(X, 2, "full", tol=1e-15, max_iter=20_000, random_state=0)
    theta = _pack(res.params)

    def nll(t):
        return -_unpack(t, 2, 3).log_pdf(X).sum()

    assert nll(theta) == pytest.approx(-res.log_likelihood, rel=1e-12)
    grad = optimize.approx_fprime(theta, nll, 1e-6)
    assert np.abs(grad).max() < 1e-3, grad
    better = optimize.minimize(nll, theta, method="BFGS", options={"gtol": 1e-8})
    assert better.fun >= nll(theta) - 1e-7


def textbook_em_one_gaussian(X, n_iter=2000, tol=1e-13):
    """EM for one multivariate normal with data missing at random, row by row."""
    N, d = X.shape
    mu = np.nanmean(X, axis=0)
    Sigma = np.diag(np.nanvar(X, axis=0))
    for _ in range(n_iter):
        T1, T2 = np.zeros(d), np.zeros((d, d))
        for x in X:
            m, o = np.isnan(x), ~np.isnan(x)
            xhat, C = x.copy(), np.zeros((d, d))
            if m.any():
                B = Sigma[np.ix_(m, o)] @ np.linalg.inv(Sigma[np.ix_(o, o)])
                xhat[m] = mu[m] + B @ (x[o] - mu[o])
                C[np.ix_(m, m)] = Sigma[np.ix_(m, m)] - B @ Sigma[np.ix_(o, m)]
            T1 += xhat
            T2 += np.outer(xhat, xhat) + C
        new_mu = T1 / N
        new_Sigma = T2 / N - np.outer(new_mu, new_mu)
        done = np.abs(new_mu - mu).max() < tol and np.abs(new_Sigma - Sigma).max() < tol
        mu, Sigma = new_mu, new_Sigma
        if done:
            break
    return mu, Sigma


def test_one_component_is_the_textbook_em_for_one_gaussian(rng):
    A = rng.normal(size=(4, 4))
    X = rng.multivariate_normal([1.0, -2.0, 0.5, 3.0], A @ A.T + np.eye(4), size=150)
    X = with_holes(X, rng, 0.25)
    mu, Sigma = textbook_em_one_gaussian(X)
    res = em.fit(X, 1, "full", tol=1e-15, max_iter=10_000)
    # both stop on a change of 1e-13 to 1e-15, where EM's linear convergence leaves ~1e-8
    np.testing.assert_allclose(res.params.mu[0], mu, rtol=1e-6)
    np.testing.assert_allclose(res.params.Sigma[0], Sigma, rtol=1e-6)


def test_complete_data_take_the_complete_data_pass(rng, monkeypatch):
    # no NaN: the missing-data machinery is never built, and the fit is the one it always was
    X, _ = holes_data(rng, N=100)
    before = em.fit(X, 2, "full", n_init=1, random_state=0)

    def refuse(*args, **kwargs):
        raise AssertionError("the missing-data pass ran on complete data")

    monkeypatch.setattr(Missing, "__init__", refuse)
    after = em.fit(X, 2, "full", n_init=1, random_state=0)
    np.testing.assert_array_equal(before.params.Sigma, after.params.Sigma)
    assert em.e_step(X, after.params)[1].sum() == pytest.approx(after.log_likelihood, rel=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_chunked_memmap_and_dask_equal_in_memory(tmp_path, rng, covariance_type):
    _, Xm = holes_data(rng, N=400, rate=0.2)
    kw = dict(n_init=1, random_state=0, tol=1e-12, max_iter=500)
    ref = em.fit(Xm, 2, covariance_type, **kw)
    path = tmp_path / "X.npy"
    np.save(path, Xm)
    mm = np.load(path, mmap_mode="r")
    for X, extra in ((Xm, {"chunk_size": 29}), (mm, {"chunk_size": 64})):
        res = em.fit(X, 2, covariance_type, init=ref.params, **{**kw, **extra})
        assert res.log_likelihood == pytest.approx(ref.log_likelihood, rel=1e-10)
    import dask
    import dask.array as da

    with dask.config.set(scheduler="synchronous"):
        res = em.fit(da.from_array(Xm, chunks=(97, 3)), 2, covariance_type, init=ref.params, **kw)
        assert res.log_likelihood == pytest.approx(ref.log_likelihood, rel=1e-10)
        np.testing.assert_allclose(res.params.mu, ref.params.mu, rtol=1e-5)


def test_impute_is_the_conditional_mean(rng):
    _, Xm = holes_data(rng, N=50, rate=0.3)
    p = random_params(rng, 3, 3, "VEV")
    full = p.to_full().Sigma
    done = em.impute(Xm, p)
    for x, y in zip(Xm, done):
        o, m = ~np.isnan(x), np.isnan(x)
        np.testing.assert_array_equal(y[o], x[o])
        if not m.any():
            continue
        lj = [np.log(p.pi[k]) + stats.multivariate_normal(p.mu[k, o], full[k][np.ix_(o, o)])
              .logpdf(x[o]) for k in range(3)]
        g = np.exp(lj - logsumexp(lj))
        cond = [p.mu[k, m] + full[k][np.ix_(m, o)] @ np.linalg.solve(full[k][np.ix_(o, o)],
                                                                      x[o] - p.mu[k, o])
                for k in range(3)]
        np.testing.assert_allclose(y[m], g @ np.array(cond), rtol=1e-10, atol=1e-12)


def test_multiple_imputations_have_the_conditional_moments(rng):
    p = random_params(rng, 2, 3, "full", spread=1.0)
    x = np.array([[0.3, np.nan, np.nan]])
    draws = em.impute(x, p, n_imputations=40_000, random_state=5)[:, 0, 1:]
    cond = p.condition(x[0], ~np.isnan(x[0]))                # a mixture of two Gaussians
    mean = cond.pi @ cond.mu
    second = np.einsum("k,kij->ij", cond.pi, cond.Sigma + np.einsum("ki,kj->kij", cond.mu,
                                                                     cond.mu))
    cov = second - np.outer(mean, mean)
    se = np.sqrt(np.diag(cov) / len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 4 * se)
    np.testing.assert_allclose(np.cov(draws, rowvar=False), cov, rtol=0.05, atol=0.02)
    again = em.impute(x, p, n_imputations=3, random_state=5)
    np.testing.assert_array_equal(again, em.impute(x, p, n_imputations=3, random_state=5))


def test_estimator_takes_nan(rng):
    X, Xm = holes_data(rng, N=300)
    gm = em.GaussianMixture(3, random_state=0, tol=1e-8, max_iter=500).fit(Xm)
    p = gm.params_
    np.testing.assert_allclose(gm.score_samples(Xm), p.log_pdf(Xm), rtol=1e-6)
    assert gm.score(Xm) == pytest.approx(p.log_pdf(Xm).mean(), rel=1e-6)
    np.testing.assert_allclose(gm.predict_proba(Xm), p.responsibilities(Xm), atol=1e-6)
    assert (gm.predict(Xm) == p.responsibilities(Xm).argmax(axis=1)).all()
    # its lower bound is the observed-data log-likelihood per sample (reg_covar's ridge aside)
    assert gm.lower_bound_ == pytest.approx(p.log_pdf(Xm).mean(), rel=1e-6)


def test_fits_with_cells_deleted_centre_on_the_complete_data_fits():
    # 20 simulated sets (N = 5000, d = 4, K = 3): each fitted complete and with 20 % of its cells
    # deleted at random; the mean difference of every parameter is within 3 standard errors of
    # zero, the standard errors from the spread over the 20 sets (labels matched by the start)
    rng = np.random.default_rng(30)
    truth = GMMParams([0.3, 0.3, 0.4], [[0, 0, 0, 0], [4, 0, 2, 0], [0, 4, 0, -2]],
                      np.stack([np.eye(4), 0.5 * np.eye(4) + 0.2, np.diag([1.0, 2.0, 0.5, 1.0])]))
    diffs = []
    for _ in range(20):
        X, _ = simulate(truth, 5000, rng)
        Xm = with_holes(X, rng, 0.2)
        a = em.fit(X, 3, "full", init=truth, tol=1e-10).params
        b = em.fit(Xm, 3, "full", init=truth, tol=1e-10).params
        diffs.append(np.concatenate([b.pi - a.pi, (b.mu - a.mu).ravel(),
                                     (b.Sigma - a.Sigma).ravel()]))
    diffs = np.array(diffs)
    mean, se = diffs.mean(axis=0), diffs.std(axis=0, ddof=1) / np.sqrt(len(diffs))
    z = np.abs(mean) / np.where(se > 0, se, np.inf)
    assert z.max() < 3.0, z.max()


def test_patterns_looked_up_per_block_equal_the_kept_ones(rng):
    # the rows' patterns, looked up block by block (a Dask block's way), equal the kept ones
    _, Xm = holes_data(rng, N=500, rate=0.4)
    miss = Missing(scan(Xm))
    look = Missing(scan(Xm, keep_rows=False))
    for start in range(0, 500, 61):
        block = Xm[start:start + 61]
        rows_a, pats_a = miss.block(start, block)
        rows_b, pats_b = look.block(0, block)
        np.testing.assert_array_equal(rows_a, rows_b)
        np.testing.assert_array_equal(pats_a, pats_b)


def test_a_component_collapsing_through_missing_cells_is_a_failed_fit():
    # scikit-learn's wine (unscaled), a tenth of the cells deleted, VVV with K = 4 by ML: a
    # component of about 36 rows holds only about 9 complete ones (d = 13), so its covariance
    # can shrink towards their hyperplane while the incomplete rows' observed cells stay
    # likely; the observed-data likelihood is unbounded, its standardised covariance reaches an
    # eigenvalue of 1e-10 and the pass's arithmetic breaks (the objective falls, then reaches
    # +5e5). Every restart fails with one line, and the same data with K = 3 VVE fit.
    from sklearn.datasets import load_wine

    X = load_wine().data
    X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    with pytest.raises(em.DegenerateComponentError,
                       match=r"^The objective fell at iteration \d+ \(from .* to .*\): a "
                             r"component's covariance is numerically singular"):
        em.fit(X, 4, "VVV")
    res = em.fit(X, 3, "VVE")
    assert res.converged and np.all(np.diff(res.history) >= -1e-6 * np.abs(res.history[1:]))

"""Variational Bayes under models.Prior (em/variational.py), through em.fit(method="vb")."""

import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaln, multigammaln
from sklearn.exceptions import ConvergenceWarning

import em
from em.estep import log_joint_rows
from em.variational import kernel, kl, posterior
from models import GMMParams, Prior, family, load_faithful, simulate
from models.features import block_stats

CONJUGATE = ["VVV", "EEE", "VVI", "EEI", "VII", "EII"]


def three_clusters(n=300, seed=3):
    truth = GMMParams([0.5, 0.3, 0.2], [[0.0, 0.0], [5.0, 1.0], [1.0, 6.0]],
                      [[[1.0, 0.3], [0.3, 0.8]], [[0.6, -0.2], [-0.2, 1.2]], [[0.5, 0.0],
                                                                              [0.0, 0.5]]])
    return simulate(truth, n, rng=seed)[0]


def log_evidence(X, z, K, fam, prior):
    """``log p(X, z)`` of the conjugate model, by the chain rule of posterior predictive t's.

    An independent reference for the exact ELBO: with one-hot responsibilities, the ELBO at the
    optimal ``q(theta)`` is the log evidence of the labelled data.
    """
    N, d = X.shape
    alpha = prior.alpha_for(K)
    N_k = np.bincount(z, minlength=K)
    lp = (gammaln(alpha.sum()) - gammaln(alpha.sum() + N)
          + np.sum(gammaln(alpha + N_k) - gammaln(alpha)))
    factors = 1 if fam.shared_prior else K
    kappa, m = np.full(K, prior.kappa0), np.tile(prior.m0, (K, 1))
    matrix = fam.storage.matrix
    if matrix:
        nu, Psi = np.full(factors, prior.nu0), np.tile(prior.Psi0, (factors, 1, 1))
    else:
        a0, b0 = fam.storage.prior_scale(prior)
        a, b = np.full(factors, a0), np.tile(np.atleast_1d(b0), (factors, 1))
    per_feature = not matrix and b.shape[1] == d
    for x, k in zip(X, z):
        f = 0 if fam.shared_prior else k
        c = (kappa[k] + 1) / kappa[k]
        dev = x - m[k]
        if matrix:
            df = nu[f] - d + 1
            lp += stats.multivariate_t.logpdf(x, m[k], Psi[f] * c / df, df=df)
            Psi[f] += kappa[k] / (kappa[k] + 1) * np.outer(dev, dev)
            nu[f] += 1
        elif per_feature:        # one variance per feature: independent t's
            lp += stats.t.logpdf(x, 2 * a[f], m[k], np.sqrt(b[f] / a[f] * c)).sum()
            b[f] += 0.5 * kappa[k] / (kappa[k] + 1) * dev**2
            a[f] += 0.5
        else:                    # one variance for the d coordinates
            lp += stats.multivariate_t.logpdf(x, m[k], np.eye(d) * b[f, 0] / a[f] * c,
                                              df=2 * a[f])
            b[f] += 0.5 * kappa[k] / (kappa[k] + 1) * np.sum(dev**2)
            a[f] += 0.5 * d
        m[k] = (kappa[k] * m[k] + x) / (kappa[k] + 1)
        kappa[k] += 1
    return lp


@pytest.mark.parametrize("covariance_type", CONJUGATE)
def test_elbo_is_the_log_evidence_of_labelled_data(covariance_type):
    # one-hot r: sum_nk r_nk log rho_nk - KL(q || p) at q's M-step equals log p(X, z), all
    # constants included; measured agreement 1e-13
    X = load_faithful()[0][:60]
    K = 3
    z = np.random.default_rng(0).integers(0, K, size=len(X))
    fam = family(covariance_type)
    prior = Prior.default(X, K, covariance_type, alpha=[1.0, 2.0, 0.5])
    r = np.eye(K)[z]
    shift = X.mean(axis=0)
    q = posterior(block_stats(X - shift, r, fam.storage), fam, prior.shifted(shift), shift)
    log_rho = log_joint_rows(X, kernel(q, shift), shift, fam.storage)
    elbo = np.sum(r * log_rho) - kl(q, prior)
    assert elbo == pytest.approx(log_evidence(X, z, K, fam, prior), rel=1e-12)


@pytest.mark.parametrize("covariance_type", CONJUGATE)
def test_elbo_never_decreases(covariance_type):
    X = three_clusters()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = em.fit(X, 4, covariance_type, prior=Prior.default(X, 4, covariance_type),
                     method="vb", init="random", n_init=2, max_iter=60, tol=0.0)
    assert len(res.history) > 30           # it ran until the bound stopped changing at all
    assert np.all(np.diff(res.history) >= -1e-10 * abs(res.history[-1]))
    assert res.history[-1] - res.history[0] > 1.0            # it climbed from a random start
    assert res.elbo == res.history[-1] == max(res.restarts)


@pytest.mark.parametrize("covariance_type", ["VVV", "EEE", "VVI", "EII"])
def test_elbo_equals_a_monte_carlo_estimate_from_draws_of_q(covariance_type):
    # ELBO = E_q[log p(X, z, theta) - log q(z) - log q(theta)] with theta drawn from q: the
    # complete-data log-likelihood from the statistics of r, the prior's and q's densities
    # scipy's (Prior.log_density); within 4 Monte-Carlo standard errors
    X = three_clusters(n=200)
    K, d = 3, X.shape[1]
    fam = family(covariance_type)
    prior = Prior.default(X, K, covariance_type)
    res = em.fit(X, K, covariance_type, prior=prior, method="vb", tol=1e-12)
    q, r = res.posterior, res.gamma
    stats_r = block_stats(X, r, fam.storage)
    entropy = -np.sum(r * np.log(np.maximum(r, 1e-300)))
    draws = q.draw(400, np.random.default_rng(1))
    values = []
    for pi, mu, Sigma in zip(draws["pi"], draws["mu"], draws["Sigma"]):
        p = GMMParams(pi, mu, Sigma, covariance_type)
        log_det = 2 * np.log(np.diagonal(p.cholesky, axis1=1, axis2=2)).sum(axis=1)
        complete = (stats_r.N_k @ (np.log(pi) - 0.5 * d * np.log(2 * np.pi) - 0.5 * log_det)
                    - 0.5 * fam.storage.quadratic(stats_r, mu, Sigma))
        values.append(complete + prior.log_density(p) - q.log_density(pi, mu, Sigma))
    values = np.asarray(values) + entropy
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert abs(values.mean() - res.elbo) < 4 * se
    assert se < 0.5                                  # precise enough to see a missing constant


def test_draws_of_q_have_its_means():
    X = three_clusters(n=200)
    res = em.fit(X, 3, "VVV", prior=Prior.default(X, 3, "VVV"), method="vb")
    q = res.posterior
    draws = q.draw(4000, np.random.default_rng(2))
    mean = q.mean()
    np.testing.assert_allclose(draws["pi"].mean(axis=0), mean["pi"], atol=0.01)
    np.testing.assert_allclose(draws["mu"].mean(axis=0), mean["mu"], atol=0.05)
    np.testing.assert_allclose(draws["Sigma"].mean(axis=0), mean["Sigma"], atol=0.05)


def test_full_covariance_under_equal_priors_is_the_drop_in():
    # the same model: scikit-learn's Dirichlet-distribution prior with alpha_0 = alpha,
    # beta_0 = kappa0, m_0 = m0, nu_0 = nu0, W_0^{-1} = Psi0; its lower bound drops constants
    X, _ = load_faithful()
    K, N, d = 2, X.shape[0], X.shape[1]
    prior = Prior.default(X, K, "full", alpha=2.0)
    res = em.fit(X, K, "full", prior=prior, method="vb", tol=1e-14, max_iter=5000)
    drop_in = em.BayesianGaussianMixture(
        n_components=K, weight_concentration_prior_type="dirichlet_distribution",
        weight_concentration_prior=2.0, mean_prior=prior.m0, mean_precision_prior=prior.kappa0,
        degrees_of_freedom_prior=prior.nu0, covariance_prior=prior.Psi0, reg_covar=0.0,
        tol=1e-12, max_iter=5000, random_state=0).fit(X)
    q = res.posterior
    ours, theirs = np.argsort(q.m[:, 0]), np.argsort(drop_in.means_[:, 0])
    np.testing.assert_allclose(q.m[ours], drop_in.means_[theirs], rtol=1e-7)
    np.testing.assert_allclose(res.params.Sigma[ours], drop_in.covariances_[theirs], rtol=1e-6)
    for a, b in ((q.alpha, drop_in.weight_concentration_), (q.kappa, drop_in.mean_precision_),
                 (q.shape, drop_in.degrees_of_freedom_)):
        np.testing.assert_allclose(a[ours], b[theirs], rtol=1e-6)
    # the constants scikit-learn leaves out (its Wishart normaliser also drops the pi term)
    log_c0 = (0.5 * prior.nu0 * np.linalg.slogdet(prior.Psi0)[1]
              - 0.5 * prior.nu0 * d * np.log(2) - multigammaln(0.5 * prior.nu0, d))
    constant = (gammaln(2.0 * K) - K * gammaln(2.0) + K * log_c0
                + K * d * (d - 1) / 4 * np.log(np.pi) + 0.5 * d * K * np.log(prior.kappa0)
                - 0.5 * N * d * np.log(2 * np.pi))
    assert res.elbo - drop_in.lower_bound_ == pytest.approx(constant, rel=1e-10)


def test_effective_n_components_counts_the_weights_above_the_threshold():
    X = three_clusters(n=600)
    K = 6
    res = em.fit(X, K, "VVV", prior=Prior.default(X, K, "VVV", alpha=1e-3), method="vb",
                 init="random", n_init=1)
    assert res.params.pi.shape == (K,) and res.params.mu.shape == (K, 2)
    assert res.params.Sigma.shape == (K, 2, 2) and res.gamma.shape == (600, K)
    assert res.effective_n_components_ == 3
    assert np.sum(res.params.pi > 1e-3) == 3
    loose = em.fit(X, K, "VVV", prior=Prior.default(X, K, "VVV", alpha=1e-3), method="vb",
                   init="random", n_init=1, weight_threshold=0.0)
    assert loose.effective_n_components_ == K


@pytest.mark.parametrize(("kw", "match"), [
    (dict(covariance_type="VEV"), "conjugate families EII, VII, EEI, VVI, EEE and VVV"),
    (dict(prior=None), "needs a proper prior"),
    (dict(prior=Prior.flat()), "needs a proper prior"),
    (dict(method="gibbs"), "method='gibbs' is not supported"),
    (dict(weight_threshold=-1.0), "weight_threshold"),
])
def test_bad_arguments_are_refused_in_one_line(kw, match):
    X = three_clusters(n=60)
    args = dict(covariance_type="VVV", prior=Prior.default(X, 2, "VVV"), method="vb") | kw
    with pytest.raises(ValueError, match=match) as info:
        em.fit(X, 2, **args)
    assert "\n" not in str(info.value)


def test_the_mclust_prior_is_refused():
    X = three_clusters(n=60)
    with pytest.raises(ValueError, match="mclust=True"):
        em.fit(X, 2, "EII", prior=Prior.default(X, 2, "EII", mclust=True), method="vb")


def test_a_dask_array_gives_the_in_memory_fit():
    import dask
    import dask.array as da

    X, _ = load_faithful()
    prior = Prior.default(X, 2, "full")
    kw = dict(prior=prior, method="vb", init="k-means++", n_init=1)
    with dask.config.set(scheduler="synchronous"):
        lazy = em.fit(da.from_array(X, chunks=(50, 2)), 2, **kw)
    ref = em.fit(X, 2, **kw)
    assert lazy.elbo == pytest.approx(ref.elbo, rel=1e-12)
    np.testing.assert_allclose(lazy.params.mu, ref.params.mu, rtol=1e-10)
    np.testing.assert_allclose(lazy.gamma, ref.gamma, atol=1e-10)

import contextlib
import io
import re
import warnings

import numpy as np
import pytest
from scipy.special import gammaln, multigammaln
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.mixture import BayesianGaussianMixture as SkBGMM
from sklearn.utils.estimator_checks import check_estimator

import em
from em.bayesian import (
    WEIGHT_PRIORS,
    expected_log_rho,
    initial_stats,
    log_wishart_norm,
    variational_kernel,
)
from em.estep import log_joint_rows
from em.fit import em_pass
from models.families import family

TYPES = ["full", "tied", "diag", "spherical"]
PRIORS = ["dirichlet_process", "dirichlet_distribution"]
POSTERIOR = ["weight_concentration_", "mean_precision_", "means_", "degrees_of_freedom_",
             "covariances_", "precisions_", "precisions_cholesky_", "weights_"]


def blobs(n=200, d=3, seed=1, dtype=np.float64):
    """Three correlated clusters of different sizes and spreads."""
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(size=(n, d)) * s + c for s, c in [(1, 0), (0.5, 4), (2, -5)]])
    return (X @ rng.normal(size=(d, d)) + 10.0).astype(dtype)


def fit_both(X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SkBGMM(**kw).fit(X), em.BayesianGaussianMixture(**kw).fit(X)


def close(actual, desired, tol, name=""):
    """Elementwise within ``tol`` relative, or ``tol`` of the array's largest entry (entries
    near zero)."""
    desired = np.asarray(desired, np.float64)
    np.testing.assert_allclose(actual, desired, rtol=tol, atol=tol * np.abs(desired).max(),
                               err_msg=name)


def assert_same_fit(sk, ours, X, rtol_bound=1e-6, tol_params=1e-5):
    """The issue's figures: lower bound within 1e-6 relative, weights and means within 1e-5."""
    assert ours.n_iter_ == sk.n_iter_ and ours.converged_ == sk.converged_
    sk_bound = float(np.squeeze(sk.lower_bound_))
    assert ours.lower_bound_ == pytest.approx(sk_bound, rel=rtol_bound)
    np.testing.assert_allclose(ours.lower_bounds_, np.squeeze(sk.lower_bounds_), rtol=rtol_bound)
    close(ours.weights_, sk.weights_, tol_params, "weights_")
    close(ours.means_, sk.means_, tol_params, "means_")
    for name in POSTERIOR:
        a, b = getattr(ours, name), getattr(sk, name)
        for x, y in (zip(a, b) if isinstance(b, tuple) else [(a, b)]):
            close(x, y, 10 * tol_params, name)
    close(ours.predict_proba(X), sk.predict_proba(X), 10 * tol_params, "predict_proba")
    close(ours.score_samples(X), sk.score_samples(X), tol_params, "score_samples")
    assert ours.score(X) == pytest.approx(sk.score(X), rel=tol_params)


@pytest.mark.parametrize("weight_type", PRIORS)
@pytest.mark.parametrize("covariance_type", TYPES)
def test_same_fit_as_sklearn(covariance_type, weight_type):
    # scikit-learn's defaults (k-means start, tol 1e-3 on the total bound): the same iterations;
    # measured agreement 1e-13 relative or better, against the 1e-6 / 1e-5
    X = blobs()
    kw = dict(n_components=6, covariance_type=covariance_type,
              weight_concentration_prior_type=weight_type, random_state=0)
    sk, ours = fit_both(X, **kw)
    assert_same_fit(sk, ours, X, rtol_bound=1e-11, tol_params=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert (ours.fit_predict(X) == sk.predict(X)).all()


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("init_params", ["k-means++", "random", "random_from_data"])
def test_every_init_params_as_sklearn(covariance_type, init_params):
    # tied from k-means++ / random_from_data: scikit-learn's first scatter is taken about the
    # origin (initial_stats reproduces it)
    X = load_iris().data
    kw = dict(n_components=5, covariance_type=covariance_type, init_params=init_params,
              random_state=3, max_iter=300)
    sk, ours = fit_both(X, **kw)
    assert_same_fit(sk, ours, X, rtol_bound=1e-11, tol_params=1e-8)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_streamed_blocks_as_sklearn(covariance_type):
    # N = 5000, d = 5: several row blocks per pass
    X = blobs(n=1700, d=5, seed=4)
    kw = dict(n_components=8, covariance_type=covariance_type, random_state=1,
              weight_concentration_prior=0.01, max_iter=60)
    sk, ours = fit_both(X, **kw)
    assert_same_fit(sk, ours, X, rtol_bound=1e-10, tol_params=1e-8)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_given_priors_as_sklearn(covariance_type):
    X = blobs(seed=2)
    d = X.shape[1]
    cov = {"full": np.cov(X.T) * 0.5 + np.eye(d), "tied": np.cov(X.T) * 2,
           "diag": X.var(axis=0) * 0.3, "spherical": 1.7}[covariance_type]
    kw = dict(n_components=4, covariance_type=covariance_type, random_state=5,
              weight_concentration_prior_type="dirichlet_distribution",
              weight_concentration_prior=2.5, mean_precision_prior=0.3,
              mean_prior=np.arange(d, dtype=float), degrees_of_freedom_prior=d + 3.5,
              covariance_prior=cov, reg_covar=1e-4)
    sk, ours = fit_both(X, **kw)
    assert_same_fit(sk, ours, X, rtol_bound=1e-11, tol_params=1e-9)
    for name in ("weight_concentration_prior_", "mean_precision_prior_", "mean_prior_",
                 "degrees_of_freedom_prior_", "covariance_prior_"):
        np.testing.assert_array_equal(getattr(ours, name), getattr(sk, name))


def test_tight_far_component_as_sklearn():
    # a tight cluster far from the centre switches the full kernel to its factored form
    rng = np.random.default_rng(7)
    X = np.vstack([rng.normal(size=(300, 2)), 1e3 + 1e-3 * rng.normal(size=(100, 2))])
    kw = dict(n_components=3, random_state=0, reg_covar=0.0, max_iter=300)
    sk, ours = fit_both(X, **kw)
    assert_same_fit(sk, ours, X, rtol_bound=1e-9, tol_params=1e-7)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_warm_start_as_sklearn(covariance_type):
    # one iteration per fit, as scikit-learn's test_monotonic_likelihood drives it, then new data
    X, X2 = blobs(seed=3), blobs(seed=6)
    kw = dict(n_components=5, covariance_type=covariance_type, warm_start=True, max_iter=1,
              random_state=0)
    sk, ours = SkBGMM(**kw), em.BayesianGaussianMixture(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for data in [X] * 6 + [X2] * 3:
            sk.fit(data)
            ours.fit(data)
            assert ours.lower_bound_ == pytest.approx(float(np.squeeze(sk.lower_bound_)), rel=1e-11)
    assert_same_fit(sk, ours, X2, rtol_bound=1e-11, tol_params=1e-9)


def test_n_init_keeps_sklearns_best():
    X = load_iris().data
    kw = dict(n_components=4, n_init=4, init_params="random", random_state=11)
    sk, ours = fit_both(X, **kw)
    assert_same_fit(sk, ours, X, rtol_bound=1e-11, tol_params=1e-9)


def test_max_iter_zero_keeps_the_initialisation():
    X = blobs()
    kw = dict(n_components=3, max_iter=0, n_init=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)     # no warning at max_iter = 0
        sk, ours = SkBGMM(**kw).fit(X), em.BayesianGaussianMixture(**kw).fit(X)
    assert ours.lower_bound_ == sk.lower_bound_ == -np.inf
    assert ours.n_iter_ == 0 and ours.lower_bounds_ == [] and not ours.converged_
    close(ours.means_, sk.means_, 1e-12)
    close(ours.covariances_, sk.covariances_, 1e-12)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_float32_input_as_sklearn(covariance_type):
    # scikit-learn fits in float64 but starts from a float32 k-means and a float32 first M-step
    # (its tied one in the data's coordinates): agreement to float32's precision, the same dtypes
    X = blobs(dtype=np.float32)
    kw = dict(n_components=6, covariance_type=covariance_type, random_state=0)
    sk, ours = fit_both(X, **kw)
    assert_same_fit(sk, ours, X, rtol_bound=1e-5, tol_params=1e-4)
    for name in POSTERIOR + ["mean_prior_", "covariance_prior_"]:
        a, b = getattr(ours, name), getattr(sk, name)
        assert type(a) is type(b) and np.asarray(a).dtype == np.asarray(b).dtype, name
    assert ours.predict_proba(X).dtype == ours.score_samples(X).dtype == np.float64


def test_verbose_prints_sklearns_messages():
    X = blobs()
    for verbose in (1, 2):
        out = []
        for cls in (SkBGMM, em.BayesianGaussianMixture):
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                cls(n_components=3, verbose=verbose, verbose_interval=3, n_init=2, random_state=0,
                    max_iter=50).fit(X)
            out.append(re.sub(r"time lapse [0-9.]+s", "time lapse Ts", buf.getvalue()))
        assert out[0] == out[1]


def test_log_wishart_norm_is_the_wishart_normaliser():
    # Bishop B.79 is -nu/2 log|W| - nu d/2 log 2 - log Gamma_d(nu / 2); the function leaves out
    # Gamma_d's pi term, d (d - 1) / 4 log pi, as scikit-learn's does
    rng = np.random.default_rng(0)
    d, nu = 4, rng.uniform(4, 30, size=5)
    log_det_W = rng.normal(size=5)
    reference = (-0.5 * nu * log_det_W - 0.5 * nu * d * np.log(2)
                 - np.array([multigammaln(0.5 * n, d) for n in nu]))
    np.testing.assert_allclose(log_wishart_norm(nu, log_det_W, d),
                               reference + d * (d - 1) / 4 * np.log(np.pi), rtol=1e-13)
    alpha = rng.uniform(0.1, 5, size=6)
    assert WEIGHT_PRIORS["dirichlet_distribution"].log_norm(alpha) == pytest.approx(
        gammaln(alpha.sum()) - gammaln(alpha).sum(), rel=1e-14)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_entropy_from_the_statistics(covariance_type):
    # -sum r log r = sum_n log sum_k rho_nk - sum_nk r_nk log rho_nk, the last sum taken from the
    # pass's statistics: against the responsibilities computed row by row
    X = blobs(seed=8)
    ours = em.BayesianGaussianMixture(n_components=5, covariance_type=covariance_type,
                                      max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X)
    post, shift = ours._posterior(), X.mean(axis=0) + 0.3
    kernel = variational_kernel(post, shift)
    log_rho = log_joint_rows(X, kernel, shift, family(covariance_type).storage)
    log_norm = np.logaddexp.reduce(log_rho, axis=1)
    r = np.exp(log_rho - log_norm[:, None])
    stats, total, _ = em_pass(X, None, shift, post.params, np.float64, 64, kernel=kernel)
    assert total == pytest.approx(log_norm.sum(), rel=1e-13)
    assert expected_log_rho(post, stats, shift, covariance_type) == pytest.approx(
        np.sum(r * log_rho), rel=1e-12)


def test_initial_tied_stats_are_sklearns_about_the_origin():
    X = blobs()
    resp = np.zeros((X.shape[0], 3))
    resp[[0, 250, 500], [0, 1, 2]] = 1
    shift = X.mean(axis=0)
    stats = initial_stats(X - shift, resp, family("tied").storage, shift)
    N_k = stats.N_k
    xbar = stats.s / N_k[:, None] + shift
    S = (stats.M - (stats.s.T / N_k) @ stats.s) / N_k.sum()
    np.testing.assert_allclose(S, (X.T @ X - (N_k * xbar.T) @ xbar) / N_k.sum(), rtol=1e-10)


def test_bad_input_messages():
    X = blobs()
    d = X.shape[1]
    cases = [
        (dict(degrees_of_freedom_prior=d - 1.0), ValueError,
         rf"'degrees_of_freedom_prior' should be greater than {d - 1}, but got {d - 1:.3f}\."),
        (dict(covariance_type="VVV"), ValueError, r"covariance_type='VVV' is not supported; use "
         r"one of 'full', 'tied', 'diag', 'spherical'"),
        (dict(weight_concentration_prior_type="dp"), ValueError, r"'dirichlet_process'"),
        (dict(init_params="hc"), ValueError, r"init_params='hc' is not supported"),
        (dict(mean_prior=np.zeros(d + 1)), ValueError, r"'mean_prior' should have the shape"),
        (dict(covariance_prior=np.eye(d + 1)), ValueError, r"shape of \(3, 3\)"),
        (dict(covariance_prior=-np.eye(d)), ValueError, "symmetric, positive-definite"),
        (dict(covariance_type="diag", covariance_prior=-np.ones(d)), ValueError, "positive"),
        (dict(covariance_type="spherical", covariance_prior=0.0), ValueError, "positive number"),
        (dict(weight_concentration_prior=0.0), ValueError, "weight_concentration_prior"),
        (dict(n_components=X.shape[0] + 1), ValueError, "n_samples >= n_components"),
    ]
    for kw, exc, message in cases:
        with pytest.raises(exc, match=message) as info:
            em.BayesianGaussianMixture(**kw).fit(X)
        assert "\n" not in str(info.value), kw
    with pytest.raises(NotFittedError, match="not fitted yet"):
        em.BayesianGaussianMixture().predict(X)
    fitted = em.BayesianGaussianMixture(n_components=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="'n_samples': 0"):
        fitted.sample(0)
    with pytest.raises(ValueError, match="3 features"):
        fitted.predict(X[:, :2])


def test_sample_draws_from_the_fitted_mixture():
    X = blobs()
    ours = em.BayesianGaussianMixture(n_components=3, random_state=0).fit(X)
    Xs, y = ours.sample(60_000)
    assert Xs.shape == (60_000, 3) and Xs.dtype == np.float64 and (np.diff(y) >= 0).all()
    np.testing.assert_allclose(np.bincount(y, minlength=3) / len(y), ours.weights_, atol=0.01)
    for k in range(3):
        np.testing.assert_allclose(Xs[y == k].mean(axis=0), ours.means_[k], atol=0.1)
        np.testing.assert_allclose(np.cov(Xs[y == k].T), ours.covariances_[k], rtol=0.05, atol=0.05)


def test_check_estimator():
    results = check_estimator(em.BayesianGaussianMixture(), on_fail=None, on_skip=None)
    failed = [(r["check_name"], str(r["exception"])) for r in results if r["status"] == "failed"]
    assert not failed, failed
    skipped = [r["check_name"] for r in results if r["status"] == "skipped"]
    assert set(skipped) <= {"check_array_api_input"}, skipped
    assert sum(r["status"] == "passed" for r in results) > 30

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import em
from models import SKLEARN_TYPES, GMMParams, Prior, load_faithful, simulate
from tests.conftest import random_params


def precisions(params):
    S = params.Sigma
    return np.linalg.inv(S) if params.covariance_type in ("full", "tied") else 1.0 / S


@pytest.mark.parametrize("covariance_type", SKLEARN_TYPES)
def test_parity_with_sklearn(covariance_type):
    rng = np.random.default_rng(11)
    truth = random_params(rng, 3, 3, covariance_type, spread=2.0)
    X, _ = simulate(truth, 2000, rng)
    start = random_params(rng, 3, 3, covariance_type, spread=2.0)
    T = 25
    sk = SkGaussianMixture(3, covariance_type=covariance_type, reg_covar=0.0, tol=0.0,
                           max_iter=T, weights_init=start.pi, means_init=start.mu,
                           precisions_init=precisions(start))
    with pytest.warns(ConvergenceWarning):
        sk.fit(X)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        res = em.fit(X, 3, covariance_type, init=start, max_iter=T, tol=0.0)
    assert res.n_iter == T
    np.testing.assert_allclose(res.params.pi, sk.weights_, rtol=1e-8)
    np.testing.assert_allclose(res.params.mu, sk.means_, rtol=1e-8)
    np.testing.assert_allclose(res.params.Sigma, sk.covariances_, rtol=1e-8)
    sk_params = GMMParams(sk.weights_, sk.means_, sk.covariances_, covariance_type)
    assert res.log_likelihood == pytest.approx(sk_params.log_pdf(X).sum(), rel=1e-8)
    assert res.log_likelihood == pytest.approx(sk.score(X) * len(X), rel=1e-8)


def test_parameter_recovery_within_standard_errors():
    rng = np.random.default_rng(5)
    K, d, n = 4, 3, 50_000
    mu = np.array([[0, 0, 0], [8, 0, 0], [0, 8, 0], [0, 0, 8]], dtype=float)
    A = rng.normal(size=(K, d, d)) * 0.3
    Sigma = A @ np.swapaxes(A, 1, 2) + np.eye(d)
    truth = GMMParams([0.1, 0.2, 0.3, 0.4], mu, Sigma)
    X, _ = simulate(truth, n, rng)
    res = em.fit(X, K, "full", random_state=0)
    cost = ((res.params.mu[:, None, :] - truth.mu[None]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    est = res.params.permute(rows[np.argsort(cols)])
    n_k = n * truth.pi
    assert np.all(np.abs(est.pi - truth.pi) < 4 * np.sqrt(truth.pi * (1 - truth.pi) / n))
    se_mu = np.sqrt(np.diagonal(truth.Sigma, axis1=1, axis2=2) / n_k[:, None])
    assert np.all(np.abs(est.mu - truth.mu) < 4 * se_mu)
    v = np.diagonal(truth.Sigma, axis1=1, axis2=2)
    se_S = np.sqrt((v[:, :, None] * v[:, None, :] + truth.Sigma**2) / n_k[:, None, None])
    assert np.all(np.abs(est.Sigma - truth.Sigma) < 4 * se_S)


@pytest.mark.parametrize("covariance_type", SKLEARN_TYPES)
def test_integer_weights_equal_repeated_rows(covariance_type):
    rng = np.random.default_rng(2)
    X, _ = simulate(random_params(rng, 3, 2, covariance_type), 300, rng)
    w = rng.integers(0, 4, size=300)
    start = random_params(rng, 3, 2, covariance_type)
    for prior in (None, Prior.default(X, 3, covariance_type)):
        kw = dict(init=start, max_iter=30, tol=0.0, prior=prior)
        with pytest.warns(ConvergenceWarning):
            a = em.fit(X, 3, covariance_type, sample_weight=w, **kw)
        with pytest.warns(ConvergenceWarning):
            b = em.fit(np.repeat(X, w, axis=0), 3, covariance_type, **kw)
        assert a.log_likelihood == pytest.approx(b.log_likelihood, rel=1e-10)
        for x, y in ((a.params.pi, b.params.pi), (a.params.mu, b.params.mu),
                     (a.params.Sigma, b.params.Sigma)):
            np.testing.assert_allclose(x, y, rtol=1e-10)
        assert a.bic == pytest.approx(b.bic, rel=1e-10)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), K=st.integers(1, 4), d=st.integers(1, 3),
       covariance_type=st.sampled_from(SKLEARN_TYPES), use_prior=st.booleans())
def test_objective_never_decreases(seed, K, d, covariance_type, use_prior):
    rng = np.random.default_rng(seed)
    X, _ = simulate(random_params(rng, K, d, covariance_type, spread=1.5), 120, rng)
    prior = Prior.default(X, K, covariance_type) if use_prior else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = em.fit(X, K, covariance_type, prior=prior, n_init=1, max_iter=200,
                         random_state=seed)
    except em.DegenerateComponentError:
        assert prior is None  # only maximum likelihood may degenerate
        return
    h = res.history
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:]))
    assert np.isfinite(h).all()


@pytest.mark.parametrize("covariance_type", SKLEARN_TYPES)
@pytest.mark.parametrize("scale", [1e-6, 1e6])
def test_scale_invariance(covariance_type, scale):
    X, _ = load_faithful()
    X = (X - X.mean(0)) / X.std(0)
    start = random_params(np.random.default_rng(0), 2, 2, covariance_type, spread=1.0)
    scaled = GMMParams(start.pi, start.mu * scale, start.Sigma * scale**2, covariance_type)
    kw = dict(max_iter=40, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0: a fixed iteration count
        base = em.fit(X, 2, covariance_type, init=start, **kw)
        res = em.fit(X * scale, 2, covariance_type, init=scaled, **kw)
    np.testing.assert_allclose(res.params.pi, base.params.pi, rtol=1e-8)
    np.testing.assert_allclose(res.params.mu / scale, base.params.mu, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.params.Sigma / scale**2, base.params.Sigma, rtol=1e-8)
    assert res.log_likelihood == pytest.approx(
        base.log_likelihood - X.size * np.log(scale), rel=1e-10)
    # the default (k-means++) fit finds the same optimum at every scale
    a = em.fit(X * scale, 2, covariance_type, random_state=1)
    b = em.fit(X, 2, covariance_type, random_state=1)
    assert a.log_likelihood == pytest.approx(b.log_likelihood - X.size * np.log(scale), rel=1e-9)


@pytest.mark.parametrize("covariance_type", SKLEARN_TYPES)
def test_float32_input(covariance_type):
    X, _ = load_faithful()
    res64 = em.fit(X, 2, covariance_type, random_state=0)
    res32 = em.fit(X.astype(np.float32), 2, covariance_type, random_state=0)
    assert res32.log_likelihood == pytest.approx(res64.log_likelihood, rel=1e-6)


def test_restarts_are_deterministic_and_best_wins():
    X, _ = load_faithful()
    a = em.fit(X, 3, random_state=4, n_init=4)
    b = em.fit(X, 3, random_state=4, n_init=4)
    np.testing.assert_array_equal(a.params.mu, b.params.mu)
    assert a.history[-1] == pytest.approx(np.nanmax(a.restarts), rel=1e-14)
    for init in ("kmeans", "random"):
        r = em.fit(X, 2, init=init, random_state=0)
        assert r.converged and r.log_likelihood == pytest.approx(-1130.26396, rel=1e-6)


def test_information_criteria_match_sklearn():
    X, _ = load_faithful()
    res = em.fit(X, 2, "full")
    sk = SkGaussianMixture(2, reg_covar=0, tol=1e-12, max_iter=1000, n_init=5,
                           random_state=0).fit(X)
    assert res.bic == pytest.approx(sk.bic(X), rel=1e-8)
    assert res.aic == pytest.approx(sk.aic(X), rel=1e-8)
    hard = np.log(res.gamma.max(axis=1)).sum()
    assert res.icl == pytest.approx(res.bic - 2 * hard, rel=1e-12)
    assert res.icl >= res.bic


class TestDegenerateData:
    def collapse_data(self):
        rng = np.random.default_rng(0)
        return np.vstack([np.tile([[5.0, 5.0]], (30, 1)), rng.normal(size=(100, 2))])

    def test_component_collapsing_on_a_point(self):
        X = self.collapse_data()
        with pytest.raises(ValueError, match="collapsed onto a point or a subspace.*Add a prior"):
            em.fit(X, 2, "full", n_init=1, random_state=0)
        res = em.fit(X, 2, "full", prior=Prior.default(X, 2), random_state=0)
        assert np.isfinite(res.log_posterior) and np.all(np.isfinite(res.params.Sigma))

    def test_component_collapsing_on_a_subspace(self):
        rng = np.random.default_rng(1)
        t = rng.normal(size=60)
        X = np.vstack([np.column_stack([t, 2 * t + 10]), rng.normal(size=(60, 2))])
        with pytest.raises(ValueError, match="collapsed"):
            em.fit(X, 2, "full", n_init=1)
        res = em.fit(X, 2, "full", prior=Prior.default(X, 2))
        assert np.isfinite(res.log_posterior)

    def test_constant_column(self):
        X = np.column_stack([np.random.default_rng(0).normal(size=50), np.full(50, 3.0)])
        with pytest.raises(ValueError, match="Column 1 of X is constant"):
            em.fit(X, 2)
        for ct in SKLEARN_TYPES:
            # a prior keeps every covariance proper; where the MAP empties a component, the
            # fit fails (N_k < 1), and with check_collapse=False it is kept, as scikit-learn's
            prior = Prior.default(X, 2, ct)
            res = em.fit(X, 2, ct, prior=prior, check_collapse=False, n_init=1)
            assert np.isfinite(res.log_posterior)
            if res.gamma.sum(0).min() >= 1:
                assert em.fit(X, 2, ct, prior=prior, n_init=1).log_posterior == res.log_posterior
            else:
                with pytest.raises(em.DegenerateComponentError,
                                   match=r"^component \d is empty .*: K = 2 is too many for "
                                   f"{ct} here. Lower n_components.$"):
                    em.fit(X, 2, ct, prior=prior, n_init=1)

    def test_duplicated_points_and_k_close_to_n(self):
        X = np.repeat(np.random.default_rng(0).normal(size=(6, 2)), 2, axis=0)
        with pytest.raises(ValueError, match="lower n_components"):
            em.fit(X, 5, "full")
        for ct in SKLEARN_TYPES:
            res = em.fit(X, 5, ct, prior=Prior.default(X, 5, ct))
            assert np.all(np.isfinite(res.params.mu)) and np.isfinite(res.log_posterior)
            assert np.all(np.isfinite(res.gamma))


@pytest.mark.parametrize(
    ("X", "kwargs", "exc", "match"),
    [
        (np.array([[np.nan, np.nan], [2.0, 3.0]]), {}, ValueError, "no observed value in row 0"),
        (np.array([[1.0, np.nan], [2.0, np.nan]]), {}, ValueError,
         "no observed value in column 1"),
        (np.array([[1.0, np.inf], [2.0, 3.0]]), {}, ValueError, "inf at row 0"),
        (np.array([["a", "b"], ["c", "d"]]), {}, TypeError, "must hold numbers"),
        (np.arange(5.0), {}, ValueError, "reshape"),
        (np.zeros((2, 2, 2)), {}, ValueError, "must be 2-D"),
        (np.zeros((3, 2)), {"n_components": 4}, ValueError, "exceeds the number of observations"),
        (np.eye(3), {"sample_weight": [1.0, -1.0, 1.0]}, ValueError, r"sample_weight\[1\]"),
        (np.eye(3), {"sample_weight": [0.0, 0.0, 0.0]}, ValueError, "sums to zero"),
        (np.eye(3), {"sample_weight": [1.0, 1.0]}, ValueError, r"shape \(N,\)"),
        (np.eye(3), {"init": "kmeans+++"}, ValueError, "'k-means\\+\\+', 'kmeans', 'random'"),
        (np.eye(3), {"n_components": 2, "init": GMMParams([1.0], [[0, 0, 0]], [1.0], "spherical")},
         ValueError, "init has K=1"),
        (np.eye(3), {"covariance_type": "ful"}, ValueError, "covariance_type='ful'"),
        (np.eye(3), {"n_components": 0}, ValueError, "n_components == 0, must be > 0"),
        (np.eye(3), {"n_components": 1.5}, TypeError, "n_components must be an instance of int"),
        (np.eye(3), {"tol": -1.0}, ValueError, r"tol == -1.0, must be >= 0"),
        (np.eye(3), {"prior": "mclust"}, TypeError, "models.Prior"),
    ],
)
def test_input_checks(X, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        em.fit(X, **kwargs)


def test_prior_of_wrong_dimension():
    X, _ = load_faithful()
    with pytest.raises(ValueError, match="d=1 features but the data have d=2"):
        em.fit(X, 2, prior=Prior.default(X[:, :1], 2))


@pytest.mark.slow(cpu_s=90)
def test_reaches_mclusts_maxima_and_bic_choice():
    # Golden values from R's mclust 6.0.0 (tests/data/mclust/make_golden.R writes golden.csv):
    # every maximum-likelihood fit of mclust's 14 models, G = 1..5, on Old Faithful, iris and two
    # simulated sets. EM's default start must reach mclust's log-likelihood (higher allowed) with
    # mclust's parameter count, and BIC over these fits must pick mclust's model on each set.
    import pandas as pd

    root = Path(__file__).parents[2]
    golden = pd.read_csv(root / "tests/data/mclust/golden.csv")
    golden = golden[(golden["prior"] == "none") & golden["loglik"].notna()
                    & golden["data"].isin(["faithful", "iris", "sim3", "sim2"])]
    assert len(golden) == 278 and golden["model"].nunique() == 14
    paths = {"faithful": root / "models/data/faithful.csv"}
    for name in ("iris", "sim3", "sim2"):
        paths[name] = root / f"tests/data/mclust/{name}.csv"
    for name, rows in golden.groupby("data"):
        X = pd.read_csv(paths[name]).to_numpy(dtype=float)
        ours = {}
        for r in rows.itertuples():
            res = em.fit(X, int(r.G), r.model)
            assert res.log_likelihood >= r.loglik - 0.01, (name, r.model, r.G)
            assert res.params.n_parameters == r.df
            ours[r.model, r.G] = res.bic
        best = rows.loc[rows["bic"].idxmax()]          # mclust's BIC: higher is better
        assert min(ours, key=ours.get) == (best["model"], best["G"]), name
        assert ours[best["model"], best["G"]] <= -best["bic"] + 0.02     # our sign: lower is better


def _wine():
    from sklearn.datasets import load_wine

    return load_wine().data


def test_restart_params_are_each_restarts_end():
    # each restart's parameters give its objective, recomputed from the densities
    X, _ = load_faithful()
    prior = Prior.default(X, 3, "full")
    res = em.fit(X, 3, prior=prior, n_init=3, random_state=1)
    assert len(res.restart_params) == len(res.restarts) == len(res.restart_errors) == 5
    for lp, p, why in zip(res.restarts, res.restart_params, res.restart_errors):
        assert why == ""
        assert p.log_pdf(X).sum() + prior.log_density(p) == pytest.approx(lp, rel=1e-12)
    best = int(np.argmax(res.restarts))
    np.testing.assert_array_equal(res.restart_params[best].mu, res.params.mu)


def test_small_complete_data_build_their_features_once_per_run(monkeypatch):
    # the features of the rows do not depend on the parameters: a run over small data in memory
    # builds them once and every pass reads them (the same numbers as a pass that builds its own)
    import sys

    fit_module = sys.modules["em.fit"]
    built, runs = [], []
    features, iterate = fit_module.features, fit_module.iterate
    monkeypatch.setattr(fit_module, "features", lambda *a, **k: built.append(1) or features(*a, **k))
    monkeypatch.setattr(fit_module, "iterate", lambda *a, **k: runs.append(1) or iterate(*a, **k))
    X, _ = load_faithful()
    res = em.fit(X, 2, "full", n_init=2)
    assert len(runs) >= 2 and len(built) == len(runs)
    shift = X.mean(axis=0)
    kept = {}
    for _ in range(2):
        a = fit_module.em_pass(X, None, shift, res.params, np.float64, 1000, kept=kept)
        b = fit_module.em_pass(X, None, shift, res.params, np.float64, 1000)
        for u, v in zip((a[0].N_k, a[0].s, a[0].M, a[1], a[2]), (b[0].N_k, b[0].s, b[0].M, b[1], b[2])):
            np.testing.assert_array_equal(u, v)
    assert len(kept) == 1
    # past KEEP_FEATURES values, every pass builds its own (block by block, in cache)
    built.clear(), runs.clear()
    big = np.tile(X, (300, 1)) + np.random.default_rng(0).normal(size=(300 * X.shape[0], 2))
    em.fit(big, 1, "full", max_iter=3)
    assert len(built) > len(runs)


def test_a_restart_from_the_same_numbers_is_not_run_again(monkeypatch):
    # restarts whose starts are equal (K = 1: all seven; k-means++ seeds that pick the same
    # partition; hc and Ward cutting alike) take the first run's outcome, a failure included;
    # with a callback, which sees every restart's passes, each runs: the results agree to the bit
    import sys

    fit_module = sys.modules["em.fit"]
    runs = []
    iterate = fit_module.iterate
    monkeypatch.setattr(fit_module, "iterate", lambda *a, **k: runs.append(1) or iterate(*a, **k))
    faithful, _ = load_faithful()
    small = simulate(GMMParams([0.5, 0.5], [[0.0, 0.0], [3.0, 0.0]], np.stack([np.eye(2)] * 2)),
                     40, np.random.default_rng(1))[0]
    t = np.linspace(0.0, 1.0, 20)
    lines = np.concatenate([np.c_[t, np.zeros(20)], np.c_[t, np.full(20, 5.0)]])  # VVV collapses
    cases = ((faithful, 1, {}), (small, 2, {}), (small, 2, {"prior": Prior.default(small, 2)}),
             (lines, 2, {}))
    for X, K, kwargs in cases:
        results = []
        for callback in (None, lambda *a: None):
            runs.clear()
            try:
                results.append(em.fit(X, K, "VVV", callback=callback, **kwargs))
            except em.DegenerateComponentError as exc:
                results.append(exc)
            results.append(len(runs))
        once, n_once, every, n_every = results
        assert n_once < n_every, (K, n_once, n_every)
        if isinstance(once, Exception):
            assert str(once) == str(every)
            continue
        assert once.log_likelihood == every.log_likelihood and once.n_iter == every.n_iter
        np.testing.assert_array_equal(once.restarts, every.restarts)
        assert once.restart_errors == every.restart_errors
        for a, b in zip(once.restart_params, every.restart_params, strict=True):
            np.testing.assert_array_equal(a.Sigma, b.Sigma)
            np.testing.assert_array_equal(a.mu, b.mu)
        np.testing.assert_array_equal(once.params.Sigma, every.params.Sigma)


def test_an_empty_component_is_a_failed_fit_as_in_mclust():
    # wine unscaled, VVI, mclust's prior: every restart empties components (pi = (5e-16, 1, 0),
    # three equal means, log-likelihood -7315 against the MLE's -3294). mclust returns no fit
    # for K = 2 or 3 (mclustBIC(X, G = 1:3, modelNames = "VVI", prior = priorControl()): BIC
    # -15071.39, NA, NA); neither does em.fit, with one line that says why and what to do.
    X = _wine()
    for K in (2, 3):
        with pytest.raises(em.DegenerateComponentError) as info:
            em.fit(X, K, "VVI", prior=Prior.default(X, K, "VVI"), n_init=1)
        msg = str(info.value)
        assert "\n" not in msg
        assert re.fullmatch(rf"component \d is empty \(N_k = .* observations\): K = {K} is too "
                            r"many for VVI here, and the columns' variances differ by a factor "
                            r"of 6\.4e\+06\. Lower n_components, or scale the columns\.", msg), msg
    assert em.fit(X, 1, "VVI", prior=Prior.default(X, 1, "VVI")).bic == pytest.approx(
        15071.39, abs=0.01)
    # scaled, the same model holds three components (the three cultivars' sizes: 59, 71, 48)
    Xs = (X - X.mean(0)) / X.std(0)
    res = em.fit(Xs, 3, "VVI", prior=Prior.default(Xs, 3, "VVI"), n_init=1)
    assert res.converged and np.sort(res.gamma.sum(0)).min() > 45
    # scikit-learn's rule (check_collapse=False) keeps the empty components
    kept = em.fit(X, 3, "VVI", prior=Prior.default(X, 3, "VVI"), check_collapse=False, n_init=1)
    assert kept.converged and kept.gamma.sum(0).min() < 1e-10


def test_the_best_restart_that_did_not_collapse_wins():
    # two starts on Old Faithful: one with a component far from the data (it empties), one
    # from the two clusters; the fit is the second's, and the first says why it failed
    X, _ = load_faithful()
    prior = Prior.default(X, 3, "full")
    good = em.fit(X, 3, prior=prior, random_state=0)
    far = GMMParams(np.array([0.98, 0.01, 0.01]),
                    np.array([[3.5, 70.0], [30.0, 900.0], [40.0, 1000.0]]),
                    np.stack([np.cov(X.T)] * 3), "full")
    res = em.fit(X, 3, prior=prior, init=[far, good.params])
    assert res.restart_errors[0].startswith("component ") and "is empty" in res.restart_errors[0]
    assert np.isnan(res.restarts[0]) and res.restart_params[0] is None
    assert res.restart_errors[1] == "" and res.gamma.sum(0).min() >= 1
    assert res.log_posterior == pytest.approx(good.log_posterior, rel=1e-9)
    with pytest.raises(em.DegenerateComponentError, match="K = 3 is too many for full"):
        em.fit(X, 3, prior=prior, init=[far])


def test_one_observation_is_the_mean_weight():
    # with weights, one observation's worth is the mean weight: weights of 0.01 leave every
    # N_k (1.74 and 0.98 here) near or below 1 but far above 0.01, and the fit holds; the empty
    # wine components stay empty
    X, _ = load_faithful()
    w = np.full(len(X), 0.01)
    res = em.fit(X, 2, prior=Prior.default(X, 2), sample_weight=w, n_init=1)
    N_k = w @ res.gamma
    assert N_k.min() < 1 and N_k.min() > 0.5 and res.converged
    X = _wine()
    with pytest.raises(em.DegenerateComponentError, match="is empty"):
        em.fit(X, 2, "VVI", prior=Prior.default(X, 2, "VVI"), sample_weight=np.full(len(X), 0.5),
               n_init=1)

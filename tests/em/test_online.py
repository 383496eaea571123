"""Streaming: online EM by partial_fit (em/online.py) and em.fit over a source of row blocks."""

import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import em
from em.online import step_size
from models import GMMParams, Prior, simulate


def stream_truth(d=10, K=8, seed=0):
    """Well-separated components with random correlations."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(K, d, d)) / np.sqrt(d)
    return GMMParams(rng.dirichlet(np.full(K, 5.0)), rng.normal(scale=3.0, size=(K, d)),
                     A @ np.swapaxes(A, 1, 2) + 0.3 * np.eye(d))


def blocks_of(truth, n_blocks, rows, dtype=np.float32):
    """A callable source: each call a fresh iterator over the same simulated blocks."""
    def blocks():
        for b in range(n_blocks):
            yield simulate(truth, rows, rng=1000 + b)[0].astype(dtype)
    return blocks


def mean_log_lik(source, params):
    total, n = 0.0, 0
    for Xb in source():
        total += em.score_samples(Xb, params).sum()
        n += Xb.shape[0]
    return total / n


@pytest.mark.slow(cpu_s=10)
def test_one_pass_of_partial_fit_reaches_the_batch_fit():
    # the check: d = 10, K = 8, full, 100 blocks of 10,000 rows (float32); the batch
    # fit is EM over the same source (one pass per iteration) from the true parameters.
    # Measured: 2e-6 below the batch fit's mean log-likelihood; partial_fit took 0.56 MB beyond
    # its 0.4 MB block at the peak.
    truth = stream_truth()
    source = blocks_of(truth, 100, 10_000)
    batch = em.fit(source, 8, "full", init=truth, tol=1e-6, tol_per_sample=True)
    gm = em.GaussianMixture(8, n_init=3, random_state=0, max_iter=200)
    stream = source()
    gm.partial_fit(next(stream))             # fits the first block: its memory is the fit's
    tracemalloc.start()
    peak = 0                                 # memory partial_fit takes beyond its block
    for Xb in stream:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        gm.partial_fit(Xb)
        peak = max(peak, tracemalloc.get_traced_memory()[1] - before)
    tracemalloc.stop()
    assert gm.n_samples_seen_ == 1_000_000
    gap = batch.log_likelihood / batch.n_samples - mean_log_lik(source, gm.params_)
    assert abs(gap) < 1e-3
    assert peak < 2 * 10_000 * 10 * 4       # under two float32 blocks; the stream is 40 MB


def test_partial_fit_is_the_stochastic_approximation_of_the_statistics():
    # three blocks by hand: s_t = (1 - rho_t) s_{t-1} + rho_t s(X_t) / n_t, then the M-step on
    # n s_t for the n rows seen (here rho_t = (t + 1)^(-0.8))
    truth = stream_truth(d=2, K=2, seed=1)
    blocks = list(blocks_of(truth, 3, 500, np.float64)())
    gm = em.GaussianMixture(2, random_state=0, learning_decay=0.8, learning_offset=1.0)
    gm.partial_fit(blocks[0])
    shift = blocks[0].mean(axis=0)

    def per_row(X, params):
        g = em.predict_proba(X, params)
        Xc = X - shift
        return [g.mean(axis=0), g.T @ Xc / len(X), np.einsum("nk,ni,nj->kij", g, Xc, Xc) / len(X)]

    params, mean = gm.params_, per_row(blocks[0], gm.params_)
    for t, X in enumerate(blocks[1:], start=1):
        rho = step_size(t, 0.8, 1.0)
        mean = [(1 - rho) * a + rho * b for a, b in zip(mean, per_row(X, params))]
        N_k, s, M = (500 * (t + 1) * a for a in mean)
        mu = s / N_k[:, None]
        Sigma = (M - N_k[:, None, None] * np.einsum("ki,kj->kij", mu, mu)) / N_k[:, None, None]
        Sigma += gm.reg_covar * np.eye(2)
        params = GMMParams(N_k / N_k.sum(), mu + shift, Sigma)
        gm.partial_fit(X)
        np.testing.assert_allclose(gm.params_.mu, params.mu, rtol=1e-9)
        np.testing.assert_allclose(gm.params_.Sigma, params.Sigma, rtol=1e-9)
        np.testing.assert_allclose(gm.params_.pi, params.pi, rtol=1e-9)


def test_bayesian_partial_fit_reaches_the_batch_fit():
    # one pass over 40 blocks of the drop-in's online VB against its fit on every row
    truth = stream_truth(d=3, K=3, seed=2)
    source = blocks_of(truth, 40, 1000, np.float64)
    X = np.vstack(list(source()))
    batch = em.BayesianGaussianMixture(n_components=3, random_state=0, max_iter=500).fit(X)
    online = em.BayesianGaussianMixture(n_components=3, random_state=0, max_iter=500)
    for Xb in source():
        online.partial_fit(Xb)
    assert online.n_samples_seen_ == 40_000
    assert abs(batch.score(X) - online.score(X)) < 1e-3
    order_b, order_o = np.argsort(batch.means_[:, 0]), np.argsort(online.means_[:, 0])
    np.testing.assert_allclose(online.means_[order_o], batch.means_[order_b], atol=0.02)
    np.testing.assert_allclose(online.weights_[order_o], batch.weights_[order_b], atol=0.01)


@pytest.mark.parametrize("method", ["em", "vb"])
def test_fit_over_a_source_of_blocks_is_the_fit_in_memory(method):
    truth = stream_truth(d=3, K=3, seed=3)
    source = blocks_of(truth, 7, 300, np.float64)
    X = np.vstack(list(source()))
    prior = Prior.default(X, 3, "full") if method == "vb" else None
    kw = dict(prior=prior, method=method, random_state=5, init="k-means++", n_init=1, tol=1e-8)
    ref = em.fit(X, 3, "full", **kw)
    for given in (source, list(source())):       # a callable, and a sequence of blocks
        got = em.fit(given, 3, "full", **kw)
        np.testing.assert_allclose(got.params.mu, ref.params.mu, rtol=1e-9)
        np.testing.assert_allclose(got.params.Sigma, ref.params.Sigma, rtol=1e-9)
        np.testing.assert_allclose(got.gamma, ref.gamma, atol=1e-9)
        assert got.history[-1] == pytest.approx(ref.history[-1], rel=1e-12)


def test_a_large_source_starts_from_a_subsample_read_in_one_pass():
    truth = stream_truth(d=2, K=2, seed=4)
    calls = []

    def source():
        calls.append(1)
        return iter(list(blocks_of(truth, 4, 1000, np.float64)()))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = em.fit(source, 2, "full", init="k-means++", n_init=1, init_subsample=500,
                     max_iter=3)
    # one pass to check, two for the column means and variances, one for the subsample, then
    # one per iteration
    assert len(calls) == 4 + res.n_iter + 1
    assert res.n_samples == 4000


@pytest.mark.parametrize(("source", "match"), [
    ([np.zeros((3, 2)), np.zeros((3, 3))], "block 1 of X has shape"),
    ([np.full((3, 2), np.nan)], "NaN or inf at row 0"),
    (lambda: iter([]), "yielded no rows"),
])
def test_a_bad_source_is_refused_in_one_line(source, match):
    with pytest.raises(ValueError, match=match) as info:
        em.fit(source, 1)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("decay", [0.5, 1.5])
def test_the_step_size_schedule_is_checked(decay):
    X = simulate(stream_truth(d=2, K=2), 200, rng=0)[0]
    with pytest.raises(ValueError, match=r"learning_decay=.* must lie in \(0.5, 1\]"):
        em.GaussianMixture(2, learning_decay=decay).partial_fit(X)
    with pytest.raises(ValueError, match=r"learning_decay"):
        em.BayesianGaussianMixture(n_components=2, learning_decay=decay).partial_fit(X)

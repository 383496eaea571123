"""Chunked, memmap and Dask EM give the in-memory answer."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import em
from models import SKLEARN_TYPES, Prior, simulate
from tests.conftest import random_params


def _data(covariance_type, n=3000):
    rng = np.random.default_rng(8)
    truth = random_params(rng, 3, 3, covariance_type, spread=3.0)
    X, _ = simulate(truth, n, rng)
    w = rng.integers(0, 3, size=n).astype(float)
    start = random_params(np.random.default_rng(1), 3, 3, covariance_type, spread=3.0)
    return X, w, start


def _fit(X, ct, start, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return em.fit(X, 3, ct, init=start, max_iter=30, tol=0.0, **kw)


def _assert_same(a, b):
    assert a.log_likelihood == pytest.approx(b.log_likelihood, rel=1e-10)
    for x, y in ((a.params.pi, b.params.pi), (a.params.mu, b.params.mu),
                 (a.params.Sigma, b.params.Sigma)):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("covariance_type", SKLEARN_TYPES)
@pytest.mark.parametrize("use_prior", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_chunked_equals_in_memory(covariance_type, use_prior, weighted):
    X, w, start = _data(covariance_type)
    kw = dict(prior=Prior.default(X, 3, covariance_type) if use_prior else None,
              sample_weight=w if weighted else None)
    _assert_same(_fit(X, covariance_type, start, chunk_size=217, **kw),
                 _fit(X, covariance_type, start, **kw))


def test_memmap_equals_in_memory(tmp_path):
    X, _, start = _data("full")
    mm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float64, shape=X.shape)
    mm[:] = X
    mm.flush()
    ro = np.load(tmp_path / "X.npy", mmap_mode="r")
    _assert_same(_fit(ro, "full", start, chunk_size=500), _fit(X, "full", start))


def test_zarr_equals_in_memory(tmp_path):
    import zarr

    X, _, start = _data("diag")
    z = zarr.open_array(tmp_path / "X.zarr", mode="w", shape=X.shape, chunks=(400, 3),
                        dtype="f8")
    z[:] = X
    _assert_same(_fit(z, "diag", start, chunk_size=400), _fit(X, "diag", start))


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_dask_threads_equals_in_memory(covariance_type):
    import dask.array as da

    X, w, start = _data(covariance_type)
    Xd = da.from_array(X, chunks=(700, 3))
    prior = Prior.default(X, 3, covariance_type)
    _assert_same(_fit(Xd, covariance_type, start, prior=prior, sample_weight=w),
                 _fit(X, covariance_type, start, prior=prior, sample_weight=w))


def test_dask_lazy_predictions():
    import dask.array as da

    X, _, start = _data("full")
    Xd = da.from_array(X, chunks=(1000, 3))
    proba = em.predict_proba(Xd, start)
    scores = em.score_samples(Xd, start)
    assert isinstance(proba, da.Array) and isinstance(scores, da.Array)
    np.testing.assert_allclose(proba.compute(), em.predict_proba(X, start), rtol=1e-12)
    np.testing.assert_allclose(scores.compute(), em.score_samples(X, start), rtol=1e-12)


@pytest.mark.slow(cpu_s=20)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")
def test_dask_local_cluster_two_workers():
    import dask.array as da
    import dask.distributed as distributed

    X, w, start = _data("full")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        Xd = da.from_array(X, chunks=(500, 3))
        res = _fit(Xd, "full", start, sample_weight=w)
        # the default start's every kind (hc, Ward, k-means++) on the cluster; one k-means++
        # restart instead of five, each EM iteration being a round trip to the workers
        default = em.fit(Xd, 3, "full", random_state=0, n_init=1)
    _assert_same(res, _fit(X, "full", start, sample_weight=w))
    assert default.converged
    assert default.log_likelihood == pytest.approx(
        em.fit(X, 3, "full", random_state=0, n_init=1).log_likelihood, rel=1e-6)

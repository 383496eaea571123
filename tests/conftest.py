"""Shared fixtures; and one BLAS thread per test process when the tests run in parallel."""

import os

# With pytest-xdist, each worker is one process per core: BLAS threads beyond the worker's share
# only spin against the other workers (as scikit-learn's own conftest limits them). The
# variables reach the processes tests start; threadpoolctl limits the libraries loaded here.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
_THREADS = max((os.cpu_count() or 1) // _WORKERS, 1) if _WORKERS else None
if _THREADS:
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, str(_THREADS))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.linalg  # noqa: E402,F401  (loads SciPy's own BLAS, so that the limit covers it)
from threadpoolctl import threadpool_limits  # noqa: E402

from models import GMMParams, family  # noqa: E402

if _THREADS:
    threadpool_limits(_THREADS)


def random_scatter(rng, K, d, storage):
    """Random well-conditioned scatter matrices in a storage's statistics layout, with n_k = 1."""
    A = rng.normal(size=(K, d, d))
    full = A @ np.swapaxes(A, 1, 2) / d + 0.5 * np.eye(d)
    return {"full": full, "tied": full.sum(axis=0),
            "diag": np.diagonal(full, axis1=1, axis2=2).copy(),
            "spherical": np.diagonal(full, axis1=1, axis2=2).copy()}[storage.name]


def random_params(rng, K, d, covariance_type, spread=3.0):
    """Random, well-conditioned mixture parameters of any covariance type (its constraints hold:
    Sigma is the family's maximum-likelihood update of random scatter matrices)."""
    pi = rng.dirichlet(np.full(K, 3.0))
    mu = rng.normal(scale=spread, size=(K, d))
    fam = family(covariance_type)
    Sigma = fam.ml(random_scatter(rng, K, d, fam.storage), np.ones(K))
    return GMMParams(pi, mu, Sigma, covariance_type)


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)


def pytest_collection_modifyitems(config, items):
    """Run the slow tests first, the costliest first (``@pytest.mark.slow(cpu_s=...)``, in CPU
    seconds on a fresh machine; 30 if not given), the rest in collection order.

    With ``--maxschedchunk 1`` (the Makefile's), pytest-xdist then hands the longest tests out
    first and fills in with short ones: no worker is left with a long test at the end.
    """
    def cost(item):
        marker = item.get_closest_marker("slow")
        return 0.0 if marker is None else float(marker.kwargs.get("cpu_s", 30))

    items.sort(key=cost, reverse=True)      # stable: equal costs keep their order

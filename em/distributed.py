"""Dask arrays: the same EM, one map-reduce pass per iteration.

Each row block computes its sufficient statistics (``N_k``, ``sum gamma x``, the second moments)
and its log-likelihood contribution; the partial results are summed by a tree reduction and the
small M-step runs on the client. The (N, K) responsibilities are never materialised. Dask is an
optional dependency (``pip install 'gmm-suite[dask]'``); a ``dask.distributed.Client`` in scope
(local or ``Client("scheduler-address")``) runs the blocks, with no change to this code.
"""

from __future__ import annotations

import numpy as np

from models.features import SufficientStats


def is_dask(X):
    """True when ``X`` is a ``dask.array.Array``."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "to_delayed")


def check_dask_X(X):
    """Validate a Dask data matrix lazily (one pass for NaN/inf) and persist it.

    Parameters
    ----------
    X : dask.array.Array of shape (N, d)

    Returns
    -------
    dask.array.Array
        Float32/float64, one block along the columns, persisted in (distributed) memory.
    """
    import dask.array as da

    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must hold numbers, got dtype {X.dtype}.")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D of shape (N, d), got shape {X.shape}.")
    if X.dtype != np.float32:
        X = X.astype(np.float64)
    X = X.rechunk({1: -1}).persist()
    if not bool(da.isfinite(X).all().compute()):
        raise ValueError("X contains NaN or inf; drop or impute those rows first.")
    return X


def _offsets(X):
    return np.concatenate([[0], np.cumsum(X.chunks[0])])


def _block(block_pass, Xb, wb, shift, params, dtype, chunk, with_stats):
    return block_pass(Xb, wb, shift, params, dtype, chunk, with_stats)


def _combine(a, b):
    stats = None
    if a[0] is not None:
        stats = SufficientStats(a[0].N_k + b[0].N_k, a[0].s + b[0].s, a[0].M + b[0].M)
    return stats, a[1] + b[1], a[2] + b[2]


def dask_pass(block_pass, X, w, shift, params, dtype, chunk, with_stats=True):
    """``block_pass`` (:func:`em.fit.em_pass`) over the blocks of a Dask array, tree-summed."""
    import dask

    off = _offsets(X)
    parts = [dask.delayed(_block)(block_pass, b, None if w is None else w[off[i]:off[i + 1]], shift, params,
                                  dtype, chunk, with_stats)
             for i, b in enumerate(X.to_delayed().ravel())]
    while len(parts) > 1:
        parts = [dask.delayed(_combine)(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return dask.compute(parts[0])[0]


def column_moments(X, w):
    """Weighted column mean and variance and the total weight of a Dask array."""
    import dask.array as da

    if w is None:
        mean, var = da.compute(X.mean(axis=0), X.var(axis=0))
        return np.asarray(mean, np.float64), np.asarray(var, np.float64), float(X.shape[0])
    wd = da.from_array(w, chunks=(X.chunks[0],))
    wsum = float(w.sum())
    mean = np.asarray((X * wd[:, None]).sum(axis=0).compute(), np.float64) / wsum
    var = np.asarray((((X - mean) ** 2) * wd[:, None]).sum(axis=0).compute(), np.float64) / wsum
    return mean, var, wsum


def lazy_e_step(e_step, X, params):
    """Lazy ``(log_gamma, log_lik)`` of a Dask array, block by block, by ``e_step``."""
    K = params.K
    log_gamma = X.map_blocks(lambda b: e_step(b, params)[0], chunks=(X.chunks[0], (K,)),
                             dtype=np.float64)
    log_lik = X.map_blocks(lambda b: e_step(b, params)[1], chunks=(X.chunks[0],), drop_axis=1,
                           dtype=np.float64)
    return log_gamma, log_lik

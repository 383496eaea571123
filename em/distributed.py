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


def check_dask_X(X, allow_nan=False):
    """Validate a Dask data matrix lazily (one pass for NaN/inf) and persist it.

    Parameters
    ----------
    X : dask.array.Array of shape (N, d)
    allow_nan : bool
        Let NaN through (missing cells: :func:`dask_missingness` checks and describes them).

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
    if allow_nan:
        if bool(da.isinf(X).any().compute()):
            raise ValueError("X contains inf; drop or fix those rows (NaN marks a missing value).")
    elif not bool(da.isfinite(X).all().compute()):
        raise ValueError("X contains NaN or inf; drop or impute those rows first.")
    return X


def dask_missingness(X):
    """The patterns of missingness of a checked Dask array, one task per block; None if complete.

    Rows and columns with nothing observed are refused, as for arrays
    (:func:`models.missing.scan`).

    Parameters
    ----------
    X : dask.array.Array of shape (N, d)

    Returns
    -------
    models.missing.Missingness or None
    """
    import dask

    from models.missing import block_patterns, merge

    if not bool(dask.array.isnan(X).any().compute()):
        return None
    empty = dask.array.isnan(X).all(axis=1)
    if bool(empty.any().compute()):
        i = int(dask.array.argmax(empty).compute())
        raise ValueError(f"X has no observed value in row {i}; drop the rows with none.")
    parts = dask.compute(*[dask.delayed(block_patterns)(b) for b in X.to_delayed().ravel()])
    miss = merge(list(parts), X.shape[0])
    if (miss.column_observed == 0).any():
        j = int(np.flatnonzero(miss.column_observed == 0)[0])
        raise ValueError(f"X has no observed value in column {j}; drop that column.")
    return miss


def _offsets(X):
    return np.concatenate([[0], np.cumsum(X.chunks[0])])


def _block(block_pass, Xb, wb, shift, params, dtype, chunk, with_stats, factors):
    return block_pass(Xb, wb, shift, params, dtype, chunk, with_stats, missing=factors)


def _combine(a, b):
    stats = None
    if a[0] is not None:
        stats = SufficientStats(a[0].N_k + b[0].N_k, a[0].s + b[0].s, a[0].M + b[0].M)
    return stats, a[1] + b[1], a[2] + b[2]


def dask_pass(block_pass, X, w, shift, params, dtype, chunk, with_stats=True, missing=None):
    """``block_pass`` (:func:`em.fit.em_pass`) over the blocks of a Dask array, tree-summed.

    With missing cells (``missing``, an :class:`em.missing.Missing`), the patterns' factors are
    computed once on the client and every block's task gets them.
    """
    import dask

    off = _offsets(X)
    factors = None if missing is None else missing.factors(params, shift)
    parts = [dask.delayed(_block)(block_pass, b, None if w is None else w[off[i]:off[i + 1]], shift, params,
                                  dtype, chunk, with_stats, factors)
             for i, b in enumerate(X.to_delayed().ravel())]
    while len(parts) > 1:
        parts = [dask.delayed(_combine)(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return dask.compute(parts[0])[0]


def column_moments(X, w, missing=False):
    """Weighted column mean and variance (of the observed cells) and the total weight of a Dask array."""
    import dask.array as da

    if w is None and not missing:
        mean, var = da.compute(X.mean(axis=0), X.var(axis=0))
        return np.asarray(mean, np.float64), np.asarray(var, np.float64), float(X.shape[0])
    wd = da.ones(X.shape[0], chunks=(X.chunks[0],)) if w is None else da.from_array(
        w, chunks=(X.chunks[0],))
    wsum = float(X.shape[0] if w is None else w.sum())
    seen = ~da.isnan(X)
    n = np.asarray((seen * wd[:, None]).sum(axis=0).compute(), np.float64)
    mean = np.asarray(da.where(seen, X * wd[:, None], 0.0).sum(axis=0).compute(), np.float64) / n
    var = np.asarray(da.where(seen, (X - mean) ** 2 * wd[:, None], 0.0).sum(axis=0).compute(),
                     np.float64) / n
    return mean, var, wsum


def lazy_e_step(e_step, X, params):
    """Lazy ``(log_gamma, log_lik)`` of a Dask array, block by block, by ``e_step``."""
    K = params.K
    log_gamma = X.map_blocks(lambda b: e_step(b, params)[0], chunks=(X.chunks[0], (K,)),
                             dtype=np.float64)
    log_lik = X.map_blocks(lambda b: e_step(b, params)[1], chunks=(X.chunks[0],), drop_axis=1,
                           dtype=np.float64)
    return log_gamma, log_lik

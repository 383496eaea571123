r"""E-step: the responsibilities gamma(z_nk), in log space.

The log joint of every covariance type is linear in the features ``z(x)`` of
:mod:`models.features`: ``log pi_k + log N(x | mu_k, Sigma_k) = A_k . z(x)`` (plus, for tied, the
term ``-x^T Lambda x / 2`` that every component shares), with

.. math:: A_k = \bigl(\log \pi_k - \tfrac d2 \log 2\pi + \tfrac12 \log|\Lambda_k|
    - \tfrac12 \mu_k^T \Lambda_k \mu_k,\ \ \Lambda_k \mu_k,\ \ -\tfrac12 \Lambda_{k,ii},
    \ -\Lambda_{k,ij}\ (i < j)\bigr)

for the precision ``Lambda_k = Sigma_k^{-1}`` and data centred at the global mean. So the E-step
of a block is one matrix product ``A @ Z`` for all components at once
(:class:`models.features.LogJoint`, built by :meth:`models.storage.Storage.kernel`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from em.distributed import is_dask, lazy_e_step
from em.missing import Missing, observed_log_joint
from models.features import default_chunk, features, log_joint_of
from models.missing import scan
from models.params import GMMParams
from models.validation import check_source, check_X, is_block_source, iter_blocks


def e_step(X, params):
    r"""E-step: log responsibilities and per-observation log-likelihood.

    .. math:: \log \gamma(z_{nk}) = \log \pi_k + \log \mathcal{N}(x_n \mid \mu_k, \Sigma_k)
        - \log \sum_j \pi_j \mathcal{N}(x_n \mid \mu_j, \Sigma_j)

    (lecture notes, section 2.1; computed with logsumexp). A row with missing cells (NaN) takes
    the density of its observed cells, ``N(x_o | mu_{k,o}, Sigma_{k,oo})`` (:mod:`em.missing`).

    Parameters
    ----------
    X : array-like of shape (N, d)
        NaN where a value is missing (a row needs one observed value).
    params : GMMParams

    Returns
    -------
    log_gamma : ndarray of shape (N, K)
        ``log gamma(z_nk)`` (a lazy Dask array for Dask input, as is ``log_lik``).
    log_lik : ndarray of shape (N,)
        ``log p(x_n)``.
    """
    if not isinstance(params, GMMParams):
        raise TypeError(f"params must be a models.GMMParams, got {type(params).__name__}.")
    if is_dask(X):
        return lazy_e_step(e_step, X, params)
    if is_block_source(X):      # block by block, concatenated
        parts = [e_step(B, params) for B in check_source(X).blocks()]
        return np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    X = check_X(X, finite=False)
    if X.shape[1] != params.d:
        raise ValueError(f"X has {X.shape[1]} features but params have d={params.d}.")
    missing = scan(X, require_columns=False)
    if missing is not None:
        seen = ~np.isnan(X)                # the observed cells' means (0 for an empty column)
        shift = np.where(seen, X, 0.0).sum(axis=0, dtype=np.float64) / np.maximum(
            seen.sum(axis=0), 1)
        lj = observed_log_joint(X, params, Missing(missing), shift)
        log_lik = logsumexp(lj, axis=1)
        return lj - log_lik[:, None], log_lik
    shift = X.mean(axis=0, dtype=np.float64)  # centring keeps the quadratic forms accurate
    kernel = log_joint_of(params, shift, np.float64)
    log_joint = log_joint_rows(X, kernel, shift, params.family.storage)
    log_lik = logsumexp(log_joint, axis=1)
    return log_joint - log_lik[:, None], log_lik


def log_joint_rows(X, kernel, shift, storage):
    """The kernel's log joint of every row, streamed over row blocks, in float64.

    Parameters
    ----------
    X : ndarray of shape (N, d)
        Checked float32 or float64 rows.
    kernel : LogJoint
        From :func:`log_joint_of` at the same ``shift`` and float64 (or any kernel with its
        coefficients, such as variational Bayes's, :mod:`em.bayesian`).
    shift : ndarray of shape (d,)
    storage : models.storage.Storage
        The family's layout (sets the block size).

    Returns
    -------
    ndarray of shape (N, K)
        The log joint, the tied row term included.
    """
    K = kernel.A.shape[0]
    log_joint = np.empty((X.shape[0], K))
    rows = default_chunk(K, X.shape[1], storage)
    for start, Xb in iter_blocks(X, rows):
        L, row = kernel(features(Xb, shift, kernel.kind, np.float64))
        if row is not None:
            L += row
        log_joint[start:start + Xb.shape[0]] = L.T
    return log_joint


def predict_proba(X, params):
    """Responsibilities ``gamma(z_nk)`` of each row (lazy for a Dask array).

    Parameters
    ----------
    X : array-like or dask.array.Array of shape (N, d)
    params : GMMParams

    Returns
    -------
    ndarray or dask.array.Array of shape (N, K)
    """
    log_gamma, _ = e_step(X, params)
    return np.exp(log_gamma)


def score_samples(X, params):
    """Log density ``log p(x_n)`` of each row (lazy for a Dask array).

    Parameters
    ----------
    X : array-like or dask.array.Array of shape (N, d)
    params : GMMParams

    Returns
    -------
    ndarray or dask.array.Array of shape (N,)
    """
    return e_step(X, params)[1]

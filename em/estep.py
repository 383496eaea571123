"""E-step: the responsibilities gamma(z_nk), in log space.

Each covariance type has one kernel that turns a block of centred data into the log joint
``log pi_k + log N(x_n | mu_k, Sigma_k)``. The kernels use precision Cholesky factors
``U_k`` (``Sigma_k^{-1} = U_k U_k^T``) so the Mahalanobis terms of all components come out of
one matrix product, and ``log |Sigma_k|^{-1/2}`` is the sum of ``log diag(U_k)``.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg
from scipy.special import logsumexp

from em._validation import check_X
from models import GMMParams

_LOG_2PI = np.log(2 * np.pi)


def _precision_full(params, shift, dtype):
    d, K = params.d, params.K
    eye = np.eye(d)
    U = np.stack([linalg.solve_triangular(L, eye, lower=True).T for L in params.cholesky])
    mu = params.mu - shift
    return {
        "W": U.transpose(1, 0, 2).reshape(d, K * d).astype(dtype),
        "b": np.einsum("kd,kde->ke", mu, U).reshape(K * d).astype(dtype),
        # sums each component's d squared coordinates with one matrix product
        "S": np.kron(np.eye(K), np.ones((d, 1))).astype(dtype),
        "log_det": np.log(np.diagonal(U, axis1=1, axis2=2)).sum(axis=1),
        "d": d,
    }


def _log_gauss_full(Xb, P):
    Y = Xb @ P["W"]          # (n, K d): U_k^T x_n for every component at once
    Y -= P["b"]
    Y *= Y
    maha = (Y @ P["S"]).astype(np.float64, copy=False)
    return P["log_det"] - 0.5 * (P["d"] * _LOG_2PI + maha)


def _precision_tied(params, shift, dtype):
    d = params.d
    U = linalg.solve_triangular(params.cholesky[0], np.eye(d), lower=True).T
    mu_U = (params.mu - shift) @ U
    return {
        "U": U.astype(dtype),
        "muU": mu_U.T.astype(dtype),
        "muU2": (mu_U**2).sum(axis=1),
        "log_det": np.log(np.diag(U)).sum(),
        "d": d,
    }


def _log_gauss_tied(Xb, P):
    Y = Xb @ P["U"]
    maha = (Y * Y).sum(axis=1, dtype=np.float64)[:, None] - 2.0 * (Y @ P["muU"]) + P["muU2"]
    return P["log_det"] - 0.5 * (P["d"] * _LOG_2PI + maha)


def _precision_diag(params, shift, dtype):
    prec = 1.0 / params.Sigma
    mu = params.mu - shift
    return {
        "prec": prec.T.astype(dtype),
        "mu_prec": (2.0 * mu * prec).T.astype(dtype),
        "mu2_prec": (mu**2 * prec).sum(axis=1),
        "log_det": 0.5 * np.log(prec).sum(axis=1),
        "d": params.d,
    }


def _log_gauss_diag(Xb, P):
    maha = (Xb * Xb) @ P["prec"] - Xb @ P["mu_prec"] + P["mu2_prec"]
    return P["log_det"] - 0.5 * (P["d"] * _LOG_2PI + maha)


def _precision_spherical(params, shift, dtype):
    prec = 1.0 / params.Sigma
    mu = params.mu - shift
    return {
        "prec": prec,
        "mu_prec": (2.0 * mu * prec[:, None]).T.astype(dtype),
        "mu2_prec": (mu**2).sum(axis=1) * prec,
        "log_det": 0.5 * params.d * np.log(prec),
        "d": params.d,
    }


def _log_gauss_spherical(Xb, P):
    x2 = (Xb * Xb).sum(axis=1, dtype=np.float64)
    maha = x2[:, None] * P["prec"] - Xb @ P["mu_prec"] + P["mu2_prec"]
    return P["log_det"] - 0.5 * (P["d"] * _LOG_2PI + maha)


#: covariance type -> (precompute from GMMParams, log N(x | mu_k, Sigma_k) of a centred block)
KERNELS = {
    "full": (_precision_full, _log_gauss_full),
    "tied": (_precision_tied, _log_gauss_tied),
    "diag": (_precision_diag, _log_gauss_diag),
    "spherical": (_precision_spherical, _log_gauss_spherical),
}


def precompute(params, shift, dtype):
    """Precision factors of ``params`` for data centred at ``shift``.

    Parameters
    ----------
    params : GMMParams
    shift : ndarray of shape (d,)
        The offset subtracted from every row before the kernel sees it.
    dtype : numpy dtype
        float32 or float64: the dtype of the large matrix products.

    Returns
    -------
    (dict, callable)
        The precomputed factors and the kernel that takes ``(Xb, factors)``.
    """
    pre, kernel = KERNELS[params.covariance_type]
    P = pre(params, shift, dtype)
    with np.errstate(divide="ignore"):
        log_pi = np.log(params.pi)
    return P, lambda Xb: kernel(Xb, P) + log_pi


def e_step(X, params):
    r"""E-step: log responsibilities and per-observation log-likelihood.

    .. math:: \log \gamma(z_{nk}) = \log \pi_k + \log \mathcal{N}(x_n \mid \mu_k, \Sigma_k)
        - \log \sum_j \pi_j \mathcal{N}(x_n \mid \mu_j, \Sigma_j)

    (lecture notes, section 2.1; computed with logsumexp).

    Parameters
    ----------
    X : array-like of shape (N, d)
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
    from em.distributed import is_dask, lazy_e_step

    if is_dask(X):
        return lazy_e_step(X, params)
    X = check_X(X)
    if X.shape[1] != params.d:
        raise ValueError(f"X has {X.shape[1]} features but params have d={params.d}.")
    X = X.astype(np.float64, copy=False)
    shift = X.mean(axis=0)  # centring keeps the expanded quadratic forms free of cancellation
    _, log_joint_of = precompute(params, shift, np.float64)
    log_joint = log_joint_of(X - shift)
    log_lik = logsumexp(log_joint, axis=1)
    return log_joint - log_lik[:, None], log_lik


def normalise(log_joint):
    r"""Turn a block of log joints into responsibilities, in place, and return log p(x_n).

    .. math:: \log p(x_n) = m_n + \log \sum_k e^{\ell_{nk} - m_n}, \quad
        \gamma_{nk} = e^{\ell_{nk} - m_n} / \sum_j e^{\ell_{nj} - m_n}, \quad m_n = \max_k \ell_{nk}

    This is logsumexp fused with the softmax it normalises: the hot loop needs both, and
    ``scipy.special.logsumexp`` followed by ``exp`` takes the exponentials twice (0.45 s against
    0.05 s for a 1e6 x 8 block here).

    Parameters
    ----------
    log_joint : ndarray of shape (n, K)
        Overwritten with ``gamma``.

    Returns
    -------
    log_lik : ndarray of shape (n,)
    log_max_gamma : ndarray of shape (n,)
        ``max_k log gamma_nk`` (for ICL).
    """
    m = log_joint.max(axis=1, keepdims=True)
    log_joint -= m
    np.exp(log_joint, out=log_joint)
    total = log_joint.sum(axis=1, keepdims=True)
    log_joint /= total
    log_total = np.log(total[:, 0])
    return m[:, 0] + log_total, -log_total


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

r"""E-step: the responsibilities gamma(z_nk), in log space.

The log joint of every covariance type is linear in the features ``z(x)`` of
:mod:`em._features`: ``log pi_k + log N(x | mu_k, Sigma_k) = A_k . z(x)`` (plus, for tied, the
term ``-x^T Lambda x / 2`` that every component shares), with

.. math:: A_k = \bigl(\log \pi_k - \tfrac d2 \log 2\pi + \tfrac12 \log|\Lambda_k|
    - \tfrac12 \mu_k^T \Lambda_k \mu_k,\ \ \Lambda_k \mu_k,\ \ -\tfrac12 \Lambda_{k,ii},
    \ -\Lambda_{k,ij}\ (i < j)\bigr)

for the precision ``Lambda_k = Sigma_k^{-1}`` and data centred at the global mean. So the E-step
of a block is one matrix product ``A @ Z`` for all components at once.

The expanded quadratic form loses ``eps * lambda_max(Lambda) * |x|^2`` to cancellation. For full
covariance, when that could exceed about 1e-10 (a very tight component far from the data's
centre), the kernel switches to the factored form ``|U_k^T x - U_k^T mu_k|^2`` with the precision
Cholesky factor ``U_k`` (``Lambda_k = U_k U_k^T``), as scikit-learn computes it: its error is
``eps * |U_k^T x|`` instead of ``eps * |U_k^T x|^2``, for one (K d, d) product and ``3 K d``
operations per row more.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numba
import numpy as np
from scipy.linalg import lapack
from scipy.special import logsumexp

from em._features import KIND, LINEAR, default_chunk, features, vech_index
from em.distributed import is_dask, lazy_e_step
from models import GMMParams
from models._validation import check_X, iter_blocks

_LOG_2PI = np.log(2 * np.pi)

#: precise (factored) Mahalanobis terms for full covariance above this conditioning figure
#: ``max_k tr(Lambda_k) * max_k (|mu_k|^2 + tr Sigma_k)`` (centred coordinates): the expanded
#: form's absolute error is about ``eps`` times it.
PRECISE_ABOVE = 1e6


@dataclass(frozen=True)
class LogJoint:
    """``log pi_k + log N(x | mu_k, Sigma_k)`` of feature blocks, for one set of parameters.

    Attributes
    ----------
    kind : int
        Feature kind (:data:`em._features.KIND`) the kernel reads.
    A : ndarray of shape (K, p)
        Coefficients of the features, in the working dtype.
    U : ndarray or None
        Precision Cholesky factors: (d, d) for tied (the shared row term), (K d, d) stacked
        ``U_k^T`` for full in precise mode, else None.
    b : ndarray or None
        Stacked ``U_k^T mu_k``, shape (K d, 1), in precise mode.
    Lam : ndarray or None
        Tied: the shared precision ``Lambda`` (d, d) in float64, so a pass can add
        ``-<Lambda, sum_n w_n x_n x_n^T> / 2`` to the log-likelihood instead of the row terms.
    """

    kind: int
    A: np.ndarray
    U: np.ndarray | None = None
    b: np.ndarray | None = None
    Lam: np.ndarray | None = None

    @functools.cached_property
    def A_lin(self):
        """Tied: the coefficients of ``x``, contiguous (the constant is ``A[:, 0]``)."""
        return np.ascontiguousarray(self.A[:, 1:])

    @property
    def precise(self):
        """True when the full-covariance Mahalanobis terms use the factored form."""
        return self.b is not None

    def __call__(self, Z, out=None, shared=True):
        """Log joint of a feature block.

        Parameters
        ----------
        Z : ndarray of shape (p, n)
            Features from :func:`em._features.features`.
        out : ndarray or None
            Flat buffer of at least ``K * n`` elements to hold the result.
        shared : bool
            Compute the tied row term (False: the caller accounts for it through ``Lam``).

        Returns
        -------
        L : ndarray of shape (K, n)
            The log joint, less the shared row term.
        row : ndarray of shape (n,) or None
            The term every component shares (tied), to add to ``log p(x_n)``.
        """
        K, n = self.A.shape[0], Z.shape[1]
        L = None if out is None else out[:K * n].reshape(K, n)
        if self.precise:
            d = self.U.shape[1]
            Y = self.U @ Z[1:d + 1]
            Y -= self.b
            Y *= Y
            L = np.sum(Y.reshape(K, d, n), axis=1, out=L)
            L *= -0.5
            L += self.A[:, :1]
            return L, None
        if self.kind != LINEAR:
            return np.matmul(self.A, Z, out=L), None
        L = np.matmul(self.A_lin, Z, out=L)       # BLAS needs contiguous operands
        L += self.A[:, :1]
        if not shared:
            return L, None
        Y = self.U @ Z
        Y *= Y
        return L, -0.5 * Y.sum(axis=0, dtype=np.float64)


def _precision_factors(params):
    """Upper-triangular ``U_k = L_k^{-T}`` with ``Sigma_k^{-1} = U_k U_k^T``, shape (K or 1, d, d).

    LAPACK's triangular inverse (``trtri``) of each Cholesky factor ``L_k``.
    """
    inv = [lapack.dtrtri(L, lower=1)[0] for L in params.cholesky]
    return np.swapaxes(np.stack(inv), 1, 2)


def log_joint_of(params, shift, dtype):
    """The E-step kernel of ``params`` for data centred at ``shift``.

    Parameters
    ----------
    params : GMMParams
    shift : ndarray of shape (d,)
        The offset subtracted from every row before the features are built.
    dtype : numpy dtype
        float32 or float64: the dtype of the large matrix products.

    Returns
    -------
    LogJoint
    """
    ct, d, K = params.family.storage, params.d, params.K
    mu = params.mu - shift
    with np.errstate(divide="ignore"):
        c = np.log(params.pi) - 0.5 * d * _LOG_2PI
    if ct in ("diag", "spherical"):
        prec = 1.0 / params.Sigma
        prec = prec if ct == "diag" else np.repeat(prec[:, None], d, axis=1)
        lin = mu * prec
        c = c + 0.5 * np.log(prec).sum(axis=1) - 0.5 * (mu * lin).sum(axis=1)
        return LogJoint(KIND[ct], np.column_stack([c, lin, -0.5 * prec]).astype(dtype))
    U = _precision_factors(params)
    Lam = U @ np.swapaxes(U, 1, 2)
    c0 = c + np.log(np.diagonal(U, axis1=1, axis2=2)).sum(axis=1)
    lin = np.einsum("kij,kj->ki", np.broadcast_to(Lam, (K, d, d)), mu)
    c = c0 - 0.5 * np.einsum("ki,ki->k", mu, lin)
    if ct == "tied":
        A = np.column_stack([c, lin])
        return LogJoint(KIND[ct], A.astype(dtype), U[0].T.astype(dtype), Lam=Lam[0])
    spread = np.max((mu**2).sum(axis=1) + np.trace(params.Sigma, axis1=1, axis2=2))
    if np.max(np.trace(Lam, axis1=1, axis2=2)) * spread > PRECISE_ABOVE:
        b = np.einsum("kij,ki->kj", U, mu).reshape(K * d, 1)
        U_T = np.swapaxes(U, 1, 2).reshape(K * d, d)
        return LogJoint(KIND[ct], c0[:, None].astype(dtype), U_T.astype(dtype), b.astype(dtype))
    i, j = vech_index(d)
    quad = -Lam[:, i, j] * np.where(i == j, 0.5, 1.0)
    return LogJoint(KIND[ct], np.column_stack([c, lin, quad]).astype(dtype))


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
    if is_dask(X):
        return lazy_e_step(e_step, X, params)
    X = check_X(X)
    if X.shape[1] != params.d:
        raise ValueError(f"X has {X.shape[1]} features but params have d={params.d}.")
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
    storage : str
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


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _subtract_max(L, m):  # pragma: no cover - compiled
    K, n = L.shape
    for r in range(n):
        m[r] = L[0, r]
    for k in range(1, K):
        for r in range(n):
            m[r] = max(m[r], L[k, r])
    for k in range(K):
        for r in range(n):
            L[k, r] -= m[r]


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _divide_by_sum(L, inv_t):  # pragma: no cover - compiled
    K, n = L.shape
    for r in range(n):
        inv_t[r] = L[0, r]
    for k in range(1, K):
        for r in range(n):
            inv_t[r] += L[k, r]
    for r in range(n):
        inv_t[r] = 1.0 / inv_t[r]
    for k in range(K):
        for r in range(n):
            L[k, r] *= inv_t[r]


@numba.njit(cache=True, nogil=True, boundscheck=False, fastmath={"reassoc"})
def _sums(a, b):  # pragma: no cover - compiled
    s, t = 0.0, 0.0
    for r in range(a.shape[0]):
        s += np.float64(a[r])
        t += np.float64(b[r])
    return s, t


def float64_sums(a, b):
    """``(sum(a), sum(b))`` accumulated in float64, for two vectors of one length.

    One compiled pass: NumPy's ``sum(dtype=float64)`` of float32 takes about 6x as long (it casts
    through a buffer), 0.12 of the 0.82 ms of a float32 EM pass at d = 2
    (``benchmarks/em_pass_profile.py``).

    Parameters
    ----------
    a, b : ndarray of shape (n,)

    Returns
    -------
    (float, float)
    """
    return _sums(a, b)


def normalise(L):
    r"""Turn a (K, n) block of log joints into responsibilities, in place.

    .. math:: \log p(x_n) = m_n + \log t_n, \quad
        \gamma_{kn} = e^{\ell_{kn} - m_n} / t_n, \quad m_n = \max_k \ell_{kn}, \quad
        t_n = \sum_k e^{\ell_{kn} - m_n}

    This is logsumexp fused with the softmax it normalises: the hot loop needs both, and
    ``scipy.special.logsumexp`` followed by ``exp`` takes the exponentials twice. Components run
    along the first axis, so every step is a vectorised pass over contiguous rows of length n:
    two compiled loops (max and shift; sum and scale) around NumPy's SIMD ``exp`` (7-10 % faster
    than the same steps as NumPy calls, measured at N = 1e6, d = 10, K = 8).

    Parameters
    ----------
    L : ndarray of shape (K, n)
        Overwritten with ``gamma``.

    Returns
    -------
    m : ndarray of shape (n,)
        ``max_k log p(x_n, z_n = k)``.
    log_t : ndarray of shape (n,)
        ``log t_n``: ``log p(x_n) = m + log_t``, and ``max_k log gamma_kn = -log_t`` (for ICL).
    """
    n = L.shape[1]
    m, log_t = np.empty(n, L.dtype), np.empty(n, L.dtype)
    _subtract_max(L, m)
    np.exp(L, out=L)
    _divide_by_sum(L, log_t)
    np.log(log_t, out=log_t)
    return m, np.negative(log_t, out=log_t)


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

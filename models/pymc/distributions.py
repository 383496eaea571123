"""The inverse-Wishart distribution, its Cholesky transform, and the mixture's log densities."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.logprob.transforms import Transform
from scipy import stats
from scipy.special import multigammaln

from models.families import family
from models.storage import DIAG, FULL, SPHERICAL, TIED

_LOG_2PI = float(np.log(2 * np.pi))


class CholeskyLogDiag(Transform):
    """``Sigma = L L^T`` with ``L`` lower-triangular and ``log diag(L)`` free.

    The unconstrained value packs the lower triangle of ``L`` (row-major), with the diagonal
    replaced by its logarithm: ``d (d + 1) / 2`` numbers per matrix. The log-Jacobian of
    ``Sigma(u)`` is ``d log 2 + sum_i (d - i + 2) log L_ii`` (``i = 1..d``).

    Parameters
    ----------
    d : int
        Matrix dimension.
    """

    name = "cholesky_log_diag"
    ndim_supp = 2

    def __init__(self, d):
        self.d = d
        self.rows, self.cols = np.tril_indices(d)
        self.diag_pos = np.flatnonzero(self.rows == self.cols)
        self.power = np.asarray(self.d - np.arange(1, d + 1) + 2, dtype="float64")

    def forward(self, value, *inputs):
        """Sigma (..., d, d) -> packed (..., d(d+1)/2)."""
        L = pt.linalg.cholesky(value, lower=True)
        packed = L[..., self.rows, self.cols]
        return pt.set_subtensor(packed[..., self.diag_pos], pt.log(packed[..., self.diag_pos]))

    def _L(self, value):
        u = pt.as_tensor_variable(value)
        vals = pt.set_subtensor(u[..., self.diag_pos], pt.exp(u[..., self.diag_pos]))
        L = pt.zeros((*tuple(u.shape)[:-1], self.d, self.d), dtype=u.dtype)
        L = pt.set_subtensor(L[..., self.rows, self.cols], vals)
        # as PyMC tags a Cholesky factor: PyTensor then rewrites cholesky(L @ L.T) to L, so the
        # log density factors no covariance it was handed as a factor (the prior's, the mean's
        # prior's and the likelihood's Cholesky are gone from the gradient NUTS computes)
        L.tag.lower_triangular = True
        return L

    def backward(self, value, *inputs):
        """Packed (..., d(d+1)/2) -> Sigma (..., d, d)."""
        L = self._L(value)
        return L @ pt.swapaxes(L, -1, -2)

    def log_jac_det(self, value, *inputs):
        """Log-Jacobian of :meth:`backward`, shape (...)."""
        log_diag = pt.as_tensor_variable(value)[..., self.diag_pos]
        return self.d * np.log(2.0) + (log_diag * self.power).sum(axis=-1)


def _invwishart_logp_for(nu, Psi):
    """Log InvWishart(value | nu, Psi) for value (..., d, d), with nu and Psi fixed numbers."""
    d = Psi.shape[-1]
    C = np.linalg.cholesky(Psi)
    const = (0.5 * nu * 2.0 * np.log(np.diag(C)).sum() - 0.5 * nu * d * np.log(2.0)
             - multigammaln(0.5 * nu, d))

    def logp(value, *_):
        L = pt.linalg.cholesky(value, lower=True)
        LinvC = _lower_inverse(L) @ C
        tr = pt.sqr(LinvC).sum(axis=(-2, -1))
        log_det = 2.0 * pt.log(pt.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
        return const - 0.5 * (nu + d + 1) * log_det - 0.5 * tr

    return logp


def _invwishart_random(nu, Psi, rng=None, size=None):
    nu, Psi = np.asarray(nu, dtype=np.float64), np.asarray(Psi, dtype=np.float64)
    d = Psi.shape[-1]
    batch = tuple(size) if size is not None else np.broadcast_shapes(nu.shape, Psi.shape[:-2])
    nu_b = np.broadcast_to(nu, batch).reshape(-1)
    Psi_b = np.broadcast_to(Psi, (*batch, d, d)).reshape(-1, d, d)
    draws = [stats.invwishart.rvs(df=n, scale=P, random_state=rng) for n, P in zip(nu_b, Psi_b)]
    return np.asarray(draws, dtype=np.float64).reshape(*batch, d, d)


def _flat_matrix_logp(value, nu, Psi):
    return pt.zeros(value.shape[:-2])


def InverseWishart(name, nu, Psi, flat=False, **kwargs):
    r"""Inverse-Wishart random variable on a covariance matrix (``CustomDist``).

    .. math:: \log p(\Sigma) = \tfrac{\nu}{2}\log|\Psi| - \tfrac{\nu d}{2}\log 2
        - \log\Gamma_d(\tfrac{\nu}{2}) - \tfrac{\nu + d + 1}{2}\log|\Sigma|
        - \tfrac12 \operatorname{tr}(\Psi\Sigma^{-1})

    Parameters
    ----------
    name : str
    nu : float
        Degrees of freedom, ``nu > d - 1``.
    Psi : array-like of shape (d, d)
        Scale matrix.
    flat : bool
        Use the improper flat density on positive-definite matrices instead (for the MLE).
    **kwargs
        Passed to ``pm.CustomDist`` (``dims``, ``shape``, ``initval``...).

    Returns
    -------
    TensorVariable
        A value of shape (..., d, d), sampled through :class:`CholeskyLogDiag`.
    """
    Psi = np.asarray(Psi, dtype="float64")
    return pm.CustomDist(
        name, np.asarray(nu, dtype=np.float64), Psi,
        logp=_flat_matrix_logp if flat else _invwishart_logp_for(float(nu), Psi),
        random=_invwishart_random,
        signature="(),(n,n)->(n,n)",
        transform=CholeskyLogDiag(Psi.shape[0]),
        **kwargs,
    )


#: up to this many features the triangular inverses below are written out, and the observed-cell
#: densities factor every row's masked covariance with a Cholesky written out entry by entry over
#: the (K, N) batch, a few fused elementwise operations per entry (NUTS's gradient at d = 2 four
#: times faster with missing cells); beyond, with batched solves and factorisations, as the
#: written-out ones grow as d^3 (and from d = 8 fuse past the 32 operands PyTensor's Python
#: linker takes)
UNROLL_MAX = 6


def _lower_inverse(L):
    """``L^-1`` (..., d, d) for lower-triangular ``L`` (..., d, d).

    Written out entry by entry (the textbook recurrence, elementwise over the batch) where d is
    static and at most :data:`UNROLL_MAX`; one batched triangular solve beyond. On the JAX
    routes each solve, and each in its gradient, is a LAPACK call whose overhead outweighs a
    small matrix's arithmetic many times.
    """
    d = L.type.shape[-1]
    if d is None or d > UNROLL_MAX:
        return pt.linalg.solve_triangular(L, pt.eye(L.shape[-1]), lower=True)
    zero = pt.zeros_like(L[..., 0, 0])
    X = {}
    for i in range(d):
        X[i, i] = 1.0 / L[..., i, i]
        for j in range(i - 1, -1, -1):
            X[i, j] = -sum(L[..., i, m] * X[m, j] for m in range(j, i)) * X[i, i]
    return pt.stack([pt.stack([X.get((i, j), zero) for j in range(d)], axis=-1)
                     for i in range(d)], axis=-2)


def _log_gauss_full(x, mu, Sigma):
    """Compute log N(x_n | mu_k, Sigma_k) for x (N, d), mu (K, d), Sigma (K, d, d) -> (N, K)."""
    d = x.shape[-1]
    L = pt.linalg.cholesky(Sigma, lower=True)                          # (K, d, d)
    # L^-1 of each d x d factor, then one batched product with the data: a triangular solve
    # against all N columns is far slower here (31 ms against 0.1 ms per gradient, N=1500)
    L_inv = _lower_inverse(L)                                          # (K, d, d)
    y = L_inv @ pt.swapaxes(x[None, :, :] - mu[:, None, :], 1, 2)      # (K, d, N)
    maha = pt.sqr(y).sum(axis=1).T                                     # (N, K)
    log_det = 2.0 * pt.log(pt.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
    return -0.5 * (d * _LOG_2PI + log_det + maha)


def _log_gauss_tied(x, mu, Sigma):
    d = x.shape[-1]
    L = pt.linalg.cholesky(Sigma, lower=True)
    L_inv = _lower_inverse(L)
    y = (x[:, None, :] - mu[None]) @ L_inv.T                           # (N, K, d)
    maha = pt.sqr(y).sum(axis=-1)
    log_det = 2.0 * pt.log(pt.diagonal(L)).sum()
    return -0.5 * (d * _LOG_2PI + log_det + maha)


def _log_gauss_diag(x, mu, Sigma):
    z2 = pt.sqr(x[:, None, :] - mu[None]) / Sigma[None]
    return -0.5 * (_LOG_2PI + pt.log(Sigma)[None] + z2).sum(axis=-1)


def _log_gauss_spherical(x, mu, Sigma):
    d = x.shape[-1]
    r2 = pt.sqr(x[:, None, :] - mu[None]).sum(axis=-1) / Sigma[None]
    return -0.5 * (d * _LOG_2PI + d * pt.log(Sigma)[None] + r2)


#: each covariance layout's ``log N(x_n | mu_k, Sigma_k)`` (N, K), and the mixture's signature
LOG_GAUSS = {
    FULL: (_log_gauss_full, "(k),(k,d),(k,d,d)->(d)"),
    TIED: (_log_gauss_tied, "(k),(k,d),(d,d)->(d)"),
    DIAG: (_log_gauss_diag, "(k),(k,d),(k,d)->(d)"),
    SPHERICAL: (_log_gauss_spherical, "(k),(k,d),(k)->(d)"),
}


def data_values(X):
    """``X`` as ``pm.Data`` holds it: a missing cell (NaN, which ``pm.Data`` refuses) as +inf.

    The observed-cell densities read a cell that is not finite as missing, so the JAX routes,
    which pass the data (NaN and all) as an argument, and ``pm.Data`` agree.

    Parameters
    ----------
    X : ndarray of shape (N, d)

    Returns
    -------
    ndarray of shape (N, d)
    """
    return np.where(np.isnan(X), np.inf, X)


def _observed(x):
    """The observed-cell mask (float, 1 where observed) and ``x`` with its missing cells at 0."""
    absent = ~pt.isfinite(x)
    return 1.0 - absent, pt.switch(absent, 0.0, x)


def _masked_covariances(o, Sigma):
    """``o o^T * Sigma + diag(1 - o)`` per row: the observed block, the identity elsewhere.

    Its Cholesky factor is the observed block's with ones on the missing diagonal, so a
    Gaussian of it at a row zeroed where missing is ``N(x_o | mu_o, Sigma_oo)`` times
    ``(2 pi)^(-m / 2)``.
    """
    d = o.shape[-1]
    return o[..., :, None] * o[..., None, :] * Sigma + (1.0 - o)[..., :, None] * pt.eye(d)


def _unrolled_observed(o, x0, mu, Sigma, d):
    """``log N(x_{n,o} | mu_{k,o}, Sigma_{k,oo})`` (N, K), for static ``d``.

    ``Sigma`` is (K, d, d) (or (1, d, d): one shared), so each entry of the masked covariance
    ``o o^T * Sigma + diag(1 - o)`` is a (K, N) array; its Cholesky factor and the forward
    substitution of the masked residuals are written out entry by entry (the textbook
    recurrences), so the whole batch moves through elementwise operations.
    """
    def S(i, j):
        entry = (o[:, i] * o[:, j])[None, :] * Sigma[:, i, j][:, None]
        return entry + (1.0 - o[:, i])[None, :] if i == j else entry

    L = {}
    for j in range(d):
        L[j, j] = pt.sqrt(S(j, j) - sum((pt.sqr(L[j, m]) for m in range(j)), start=0.0))
        for i in range(j + 1, d):
            L[i, j] = (S(i, j) - sum((L[i, m] * L[j, m] for m in range(j)), start=0.0)) / L[j, j]
    y = []
    for i in range(d):
        diff = (x0[:, i][None, :] - mu[:, i][:, None]) * o[:, i][None, :]
        y.append((diff - sum((L[i, m] * y[m] for m in range(i)), start=0.0)) / L[i, i])
    quad = sum(2.0 * pt.log(L[i, i]) + pt.sqr(y[i]) for i in range(d))
    return (-0.5 * (o.sum(-1)[None, :] * _LOG_2PI + quad)).T


def _static_d(Sigma):
    d = Sigma.type.shape[-1]
    return d if d is not None and d <= UNROLL_MAX else None


def _log_gauss_observed_full(x, mu, Sigma):
    """``log N(x_{n,o} | mu_{k,o}, Sigma_{k,oo})`` (N, K) for x (N, d) with NaN where missing."""
    o, x0 = _observed(x)
    d = _static_d(Sigma)
    if d is not None:
        return _unrolled_observed(o, x0, mu, Sigma, d)
    S = _masked_covariances(o[None, :, :], Sigma[:, None, :, :])       # (K, N, d, d)
    L = pt.linalg.cholesky(S, lower=True)
    diff = (x0[None, :, :] - mu[:, None, :]) * o[None, :, :]          # (K, N, d)
    y = pt.linalg.solve_triangular(L, diff[..., None], lower=True)[..., 0]
    log_det = 2.0 * pt.log(pt.diagonal(L, axis1=-2, axis2=-1)).sum(-1)  # (K, N)
    return (-0.5 * (o.sum(-1)[None, :] * _LOG_2PI + log_det + pt.sqr(y).sum(-1))).T


def _log_gauss_observed_tied(x, mu, Sigma):
    o, x0 = _observed(x)
    d = _static_d(Sigma)
    if d is not None:
        return _unrolled_observed(o, x0, mu, Sigma[None], d)
    L = pt.linalg.cholesky(_masked_covariances(o, Sigma[None, :, :]), lower=True)  # (N, d, d)
    diff = (x0[None, :, :] - mu[:, None, :]) * o[None, :, :]          # (K, N, d)
    y = pt.linalg.solve_triangular(L[None], diff[..., None], lower=True)[..., 0]
    log_det = 2.0 * pt.log(pt.diagonal(L, axis1=-2, axis2=-1)).sum(-1)  # (N,)
    return (-0.5 * ((o.sum(-1) * _LOG_2PI + log_det)[None, :] + pt.sqr(y).sum(-1))).T


def _log_gauss_observed_diag(x, mu, Sigma):
    o, x0 = _observed(x)
    z2 = pt.sqr(x0[:, None, :] - mu[None]) / Sigma[None]
    return -0.5 * (o[:, None, :] * (_LOG_2PI + pt.log(Sigma)[None] + z2)).sum(axis=-1)


def _log_gauss_observed_spherical(x, mu, Sigma):
    o, x0 = _observed(x)
    r2 = (o[:, None, :] * pt.sqr(x0[:, None, :] - mu[None])).sum(axis=-1) / Sigma[None]
    n_obs = o.sum(-1)[:, None]
    return -0.5 * (n_obs * (_LOG_2PI + pt.log(Sigma)[None]) + r2)


#: the same densities of each row's observed cells (NaN where missing), exact for a Gaussian:
#: the marginal of x_o is N(mu_o, Sigma_oo)
LOG_GAUSS_OBSERVED = {
    FULL: (_log_gauss_observed_full, LOG_GAUSS[FULL][1]),
    TIED: (_log_gauss_observed_tied, LOG_GAUSS[TIED][1]),
    DIAG: (_log_gauss_observed_diag, LOG_GAUSS[DIAG][1]),
    SPHERICAL: (_log_gauss_observed_spherical, LOG_GAUSS[SPHERICAL][1]),
}


def core(param, ndim):
    """Drop leading length-1 batch dimensions down to ``ndim``."""
    while param.ndim > ndim:
        param = param[0]
    return param


def mixture_random(covariance_type):
    """The mixture's draw function for ``pm.CustomDist``: z, then x given z, per draw."""
    fam = family(covariance_type)

    def random(pi, mu, Sigma, rng=None, size=None):
        K, d = np.shape(mu)[-2:]
        full = fam.to_full(Sigma, K, d)
        n = int(np.prod(size)) if size is not None else 1
        z = rng.choice(K, size=n, p=np.asarray(pi) / np.sum(pi))
        L = np.linalg.cholesky(full)
        x = np.asarray(mu)[z] + np.einsum("nij,nj->ni", L[z], rng.standard_normal((n, d)))
        return x.reshape((tuple(size) if size is not None else ()) + (d,))

    return random

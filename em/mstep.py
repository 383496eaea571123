r"""M-step: closed-form updates of ``pi``, ``mu`` and ``Sigma`` from weighted sufficient statistics.

The statistics of a block of centred data ``x_n`` with responsibilities ``gamma_nk`` and weights
``w_n`` are

.. math:: N_k = \sum_n w_n \gamma_{nk}, \quad s_k = \sum_n w_n \gamma_{nk} x_n, \quad
    M_k = \sum_n w_n \gamma_{nk} x_n x_n^T

(``M`` reduced to what each covariance layout needs: :mod:`models.storage`). They add over
blocks, which is what makes chunked and distributed EM give the same answer as in memory.

Maximum likelihood (lecture section 2.2): ``mu_k = s_k / N_k``, ``Sigma_k = S_k / N_k`` with the
scatter ``S_k = M_k - N_k mu_k mu_k^T``, ``pi_k = N_k / N``.

MAP under :class:`models.Prior` (the exact mode of the complete-data log posterior, derived by
setting its gradient in ``(mu, Sigma)`` to zero), with ``xbar_k = s_k / N_k`` and
``B_k = kappa0 N_k / (N_k + kappa0) (xbar_k - m0)(xbar_k - m0)^T``:

.. math::
    \mu_k = \frac{N_k \bar x_k + \kappa_0 m_0}{N_k + \kappa_0}, \qquad
    \pi_k = \frac{N_k + \alpha_k - 1}{N + \sum_j \alpha_j - K}

=========  =====================================================================================
full       Sigma_k = (Psi0 + S_k + B_k) / (nu0 + N_k + d + 2)                          (MAP-F)
tied       Sigma   = (Psi0 + sum_k [S_k + B_k]) / (nu0 + N + K + d + 1)                (MAP-T)
diag       sigma2_kj = (Psi0_jj + S_kjj + B_kjj) / (nu0 + N_k + 3)                      (MAP-D)
spherical  sigma2_k = (tr Psi0 + tr S_k + tr B_k) / (nu0 d + N_k d + d + 2)             (MAP-S)
=========  =====================================================================================

The denominators count the powers of ``|Sigma|`` (or ``sigma2``) in likelihood, the conditional
normal prior of ``mu`` and the inverse-Wishart (``nu0 + d + 1``) or inverse-gamma (``a + 1``)
prior.
"""

from __future__ import annotations

import numpy as np

from models.families import family
from models.features import block_stats
from models.params import GMMParams
from models.prior import check_prior
from models.validation import check_sample_weight, check_X

#: each fix an error can suggest, in the API's terms (the command line says its own)
FIXES = {"prior": "add a prior (prior=Prior.default(X, K, covariance_type))",
         "reg_covar": "raise reg_covar", "n_components": "lower n_components",
         "drop_column": "drop the column", "scale": "scale the columns"}


class FixableError(ValueError):
    """A fit that cannot go on, with what happened and the fixes, kept apart.

    The message is the diagnosis followed by the fixes in the API's terms; the command line
    reads ``diagnosis``, ``fixes`` and ``columns`` and says the fixes as its own options.

    Parameters
    ----------
    diagnosis : str
        What happened, one sentence.
    fixes : sequence of str
        Keys of :data:`FIXES`, in the order suggested.
    columns : sequence of int
        The data columns the error is about, if any; the diagnosis names the first
        (:attr:`column`).
    """

    def __init__(self, diagnosis, fixes, columns=()):
        self.diagnosis, self.fixes, self.columns = diagnosis, tuple(fixes), tuple(columns)
        advice = [FIXES[f] for f in self.fixes]
        said = advice[0] if len(advice) == 1 else ", ".join(advice[:-1]) + ", or " + advice[-1]
        super().__init__(f"{diagnosis} {said[0].upper()}{said[1:]}.")

    @property
    def column(self):
        """The column the diagnosis names, or None."""
        return self.columns[0] if self.columns else None

    def __reduce__(self):                    # pickled by its parts (a process pool's error)
        return type(self), (self.diagnosis, self.fixes, self.columns)


class DegenerateComponentError(FixableError):
    """A component's covariance became singular: it collapsed onto a point or a subspace."""

    def __init__(self, diagnosis, fixes=("prior", "reg_covar", "n_components"), columns=()):
        super().__init__(diagnosis, fixes, columns)


def params_from_stats(stats, fam, prior=None, reg_covar=0.0, shift=None, scale=None,
                      previous=None, validate=True, covariance_type=None):
    """Closed-form M-step from sufficient statistics (ML, or MAP under ``prior``).

    Parameters
    ----------
    stats : models.features.SufficientStats
        Statistics of data centred at ``shift``, in the layout of the family's storage.
    fam : models.Family
    prior : Prior or None
        A proper prior, already shifted to the centred coordinates, or None for ML. A flat prior
        must be passed as None for ``mu``/``Sigma`` (its Dirichlet part is read from ``alpha``).
    reg_covar : float
        Added to the diagonal of every covariance. When positive, an empty component
        (``N_k = 0``) does not raise: ``N_k`` is floored at ``10 eps``, as scikit-learn does.
    shift : ndarray of shape (d,) or None
        Offset added back to the means.
    scale : ndarray of shape (d,) or None
        Column variances of the data; a component whose conditional variance falls below
        ``1000 eps`` of them counts as collapsed (checked without a proper prior).
    previous : GMMParams or None
        The parameters the statistics were computed at: the iterative M-steps start from them.
    validate : bool, default True
        Build the result through ``GMMParams``'s validating constructor. False (EM's loop,
        which validates its final estimate) skips the checks this step's own arithmetic
        guarantees: the result is still checked finite and positive-definite, and its Cholesky
        factors are the ones that check computed.
    covariance_type : str or None
        The name the result carries (default ``fam.name``).

    Returns
    -------
    GMMParams
    """
    storage = fam.storage
    covariance_type = fam.name if covariance_type is None else covariance_type
    N_k, K, d = stats.N_k, stats.s.shape[0], stats.s.shape[1]
    proper = prior if (prior is not None and not prior.is_flat) else None
    empty = N_k <= 0
    if reg_covar > 0 and proper is None and empty.any():
        # a ridge keeps an empty component's covariance proper: keep it alive with the floor
        # scikit-learn puts under N_k (its mean then sits at the shift, its weight near zero)
        N_k = N_k + 10 * np.finfo(float).eps
        empty = N_k <= 0
    if proper is None and empty.any():
        k = int(np.flatnonzero(empty)[0])
        raise DegenerateComponentError(
            f"Component {k} has no responsibility (N_k = 0): it is empty.",
            ("n_components", "prior"))
    safe_N_k = np.where(empty, 1.0, N_k)
    xbar = stats.s / safe_N_k[:, None]
    S = storage.scatter(stats.M, N_k, xbar)
    if proper is None:
        mu, B = xbar, None
    else:
        kappa0, m0 = proper.kappa0, proper.m0
        mu = (N_k[:, None] * xbar + kappa0 * m0) / (N_k + kappa0)[:, None]
        B = storage.outer(kappa0 * N_k / (N_k + kappa0), xbar - m0)
    if reg_covar and proper is None:
        # the ridge enters the scatter (n_k reg_covar I), so every family keeps its constraints;
        # for VII, VVI, EEE and VVV this is scikit-learn's Sigma_k + reg_covar I
        S = storage.ridge(S, reg_covar, N_k, d)
    start = None if previous is None else fam.to_full(previous.Sigma, K, d)
    Sigma = fam.m_step(S, B, N_k, proper, start=start)
    if reg_covar and proper is not None:
        Sigma = storage.plus(Sigma, reg_covar, d)
    Sigma = storage.symmetrised(Sigma)
    alpha = np.ones(K) if prior is None else prior.alpha_for(K)
    numer = N_k + alpha - 1.0
    if np.any(numer < 0):
        k = int(np.flatnonzero(numer < 0)[0])
        raise ValueError(
            f"The MAP weight of component {k} is negative (N_k + alpha_k - 1 = {numer[k]:.3g}): "
            "a Dirichlet alpha below 1 has its mode on the boundary. Use alpha >= 1."
        )
    pi = numer / numer.sum()
    L = _check_collapse(Sigma, storage, proper is None, scale)
    if shift is not None:
        mu = mu + shift
    if not validate and all(np.isfinite(a).all() for a in (pi, mu, Sigma)):
        L = (fam.to_full(np.sqrt(Sigma), K, d) if L is None     # variances
             else np.broadcast_to(L, (K, d, d)))  # full's factors, or tied's one repeated
        return GMMParams.unchecked(pi, mu, Sigma, fam, L, covariance_type)
    try:
        return GMMParams(pi, mu, Sigma, covariance_type)
    except ValueError as exc:
        raise _invalid(exc) from None


def validated(params):
    """``params`` checked by ``GMMParams``'s constructor; a failure is a degenerate component.

    Parameters
    ----------
    params : GMMParams
        From :func:`params_from_stats` with ``validate=False``.

    Returns
    -------
    GMMParams

    Raises
    ------
    DegenerateComponentError
        An invariant does not hold: the M-step met a collapsed component.
    """
    try:
        return params.validated()
    except ValueError as exc:
        raise _invalid(exc) from None


def _invalid(exc):
    return DegenerateComponentError(
        f"A component collapsed onto a point or a subspace: the M-step produced an invalid "
        f"covariance ({str(exc).splitlines()[0]}).")


def _check_collapse(Sigma, storage, check_scale, scale):
    """Raise DegenerateComponentError when a covariance is singular relative to the data.

    Returns the lower Cholesky factors of the matrices (full: (K, d, d); tied: (1, d, d)), or
    None for variances.
    """
    L, cond, bad = storage.factor(Sigma)
    if check_scale and scale is not None:
        small = (cond / scale < 1e3 * np.finfo(float).eps).any(axis=1)
        if small.any():
            bad = np.union1d(bad, np.flatnonzero(small))
    if bad.size:
        k = int(bad[0])
        which = "The shared covariance" if storage.shared else f"Component {k}"
        raise DegenerateComponentError(
            f"{which} collapsed onto a point or a subspace (its covariance is singular relative "
            "to the data's scale).")
    return L


def m_step(X, gamma, covariance_type, prior=None, sample_weight=None, reg_covar=0.0):
    r"""M-step: closed-form ``pi``, ``mu`` and ``Sigma`` from responsibilities.

    .. math:: N_k = \sum_n \gamma(z_{nk}), \quad \mu_k = \frac{1}{N_k}\sum_n
        \gamma(z_{nk}) x_n, \quad \Sigma_k = \frac{1}{N_k}\sum_n \gamma(z_{nk})(x_n-\mu_k)
        (x_n-\mu_k)^T, \quad \pi_k = \frac{N_k}{N}

    (lecture section 2.2; weighted by ``sample_weight``; MAP equations MAP-F..MAP-S of this
    module under ``prior``).

    Parameters
    ----------
    X : array-like of shape (N, d)
    gamma : array-like of shape (N, K)
        Responsibilities, each row on the simplex.
    covariance_type : str
        One of :data:`models.COVARIANCE_TYPES` (mclust's 14 models and scikit-learn's names).
    prior : Prior or None
        None (or ``Prior.flat()``) gives maximum likelihood.
    sample_weight : array-like of shape (N,) or None
    reg_covar : float, default 0.0
        Non-negative ridge added to every covariance diagonal.

    Returns
    -------
    GMMParams
    """
    fam = family(covariance_type)
    X = check_X(X).astype(np.float64, copy=False)
    gamma = np.asarray(gamma, dtype=np.float64)
    N, d = X.shape
    if gamma.ndim != 2 or gamma.shape[0] != N:
        raise ValueError(f"gamma must have shape (N, K) with N={N}, got {gamma.shape}.")
    if not np.all(np.isfinite(gamma)) or np.any(gamma < 0):
        raise ValueError("gamma must hold finite non-negative responsibilities.")
    check_prior(prior, gamma.shape[1], d, fam)
    if not np.isfinite(reg_covar) or reg_covar < 0:
        raise ValueError(f"reg_covar must be a non-negative number, got {reg_covar!r}.")
    w = check_sample_weight(sample_weight, N)
    shift = X.mean(axis=0) if w is None else w @ X / w.sum()
    Xc = X - shift
    g = gamma if w is None else gamma * w[:, None]
    stats = block_stats(Xc, g, fam.storage)
    scale = (Xc**2).mean(axis=0) if w is None else w @ Xc**2 / w.sum()
    prior_c = None if prior is None else prior.shifted(shift)
    return params_from_stats(stats, fam, prior_c, reg_covar, shift,
                             scale if np.all(scale > 0) else None, covariance_type=covariance_type)

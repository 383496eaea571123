r"""The conjugate prior on ``(pi, mu, Sigma)``, defined once for EM (MAP) and PyMC.

For every covariance type,

.. math:: \pi \sim \mathrm{Dirichlet}(\alpha)

and, per covariance type, with hyperparameters ``m0`` (d,), ``kappa0``, ``nu0`` and ``Psi0`` (d, d):

=========  ======================================================================================
full       :math:`\Sigma_k \sim \mathcal{W}^{-1}(\nu_0, \Psi_0)`,
           :math:`\mu_k \mid \Sigma_k \sim \mathcal{N}(m_0, \Sigma_k / \kappa_0)`
tied       one :math:`\Sigma \sim \mathcal{W}^{-1}(\nu_0, \Psi_0)`,
           :math:`\mu_k \mid \Sigma \sim \mathcal{N}(m_0, \Sigma / \kappa_0)`
diag       :math:`\sigma^2_{kj} \sim \mathrm{InvGamma}(\nu_0 / 2, \Psi_{0,jj} / 2)`,
           :math:`\mu_{kj} \mid \sigma^2_{kj} \sim \mathcal{N}(m_{0j}, \sigma^2_{kj}/\kappa_0)`
spherical  :math:`\sigma^2_k \sim \mathrm{InvGamma}(\nu_0 d / 2, \operatorname{tr}\Psi_0 / 2)`,
           :math:`\mu_k \mid \sigma^2_k \sim \mathcal{N}(m_0, \sigma^2_k I / \kappa_0)`
=========  ======================================================================================

The diag prior is the inverse-Wishart's one-dimensional analogue applied to each feature (an
inverse-Wishart on a 1x1 matrix with ``nu0`` degrees of freedom and scale ``Psi0[j, j]`` is exactly
``InvGamma(nu0 / 2, Psi0[j, j] / 2)``). The spherical prior pools the ``d`` features: one variance
with ``nu0 d`` degrees of freedom and scale ``tr Psi0``, i.e. the product of the ``d`` diag priors
constrained to one common variance.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.special import gammaln, multigammaln, xlogy

from models.params import GMMParams, check_covariance_type

_LOG_2PI = np.log(2 * np.pi)


def _frozen(a):
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Prior:
    """Conjugate prior on a Gaussian mixture (see the module docstring for the densities).

    Parameters
    ----------
    alpha : float or array-like of shape (K,)
        Dirichlet concentration on ``pi``; a scalar is used for every component.
    m0 : array-like of shape (d,) or None
        Prior mean of ``mu_k``.
    kappa0 : float or None
        Prior sample size of ``mu_k`` (the shrinkage): ``mu_k | Sigma_k ~ N(m0, Sigma_k / kappa0)``.
    nu0 : float or None
        Inverse-Wishart degrees of freedom, ``nu0 > d - 1``.
    Psi0 : array-like of shape (d, d) or None
        Inverse-Wishart scale matrix, symmetric positive-definite.

    Notes
    -----
    With ``m0 = kappa0 = nu0 = Psi0 = None`` (see :meth:`flat`) ``mu`` and ``Sigma`` get the
    improper flat prior, so the MAP estimate is the maximum-likelihood estimate.
    """

    alpha: np.ndarray | float = 1.0
    m0: np.ndarray | None = None
    kappa0: float | None = None
    nu0: float | None = None
    Psi0: np.ndarray | None = None

    def __post_init__(self):
        alpha = np.asarray(self.alpha, dtype=np.float64)
        if alpha.ndim > 1 or not np.all(np.isfinite(alpha)) or np.any(alpha <= 0):
            raise ValueError(
                f"alpha must be a positive scalar or a 1-D array of positive values, got {self.alpha!r}."
            )
        object.__setattr__(self, "alpha", _frozen(alpha))
        given = [v is not None for v in (self.m0, self.kappa0, self.nu0, self.Psi0)]
        if any(given) and not all(given):
            missing = [n for n, g in zip(("m0", "kappa0", "nu0", "Psi0"), given) if not g]
            raise ValueError(
                "m0, kappa0, nu0 and Psi0 must be given together (a proper prior) or all be None "
                f"(flat prior); got None for {missing}."
            )
        if not any(given):
            return
        m0 = np.asarray(self.m0, dtype=np.float64)
        if m0.ndim != 1 or not np.all(np.isfinite(m0)):
            raise ValueError(f"m0 must be a finite 1-D array of length d, got {self.m0!r}.")
        d = m0.shape[0]
        Psi0 = np.asarray(self.Psi0, dtype=np.float64)
        if Psi0.shape != (d, d):
            raise ValueError(f"Psi0 must have shape (d, d) = ({d}, {d}) to match m0, got {Psi0.shape}.")
        if not np.all(np.isfinite(Psi0)) or not np.allclose(Psi0, Psi0.T, rtol=1e-10, atol=0):
            raise ValueError("Psi0 must be a finite symmetric matrix.")
        try:
            np.linalg.cholesky(Psi0)
        except np.linalg.LinAlgError:
            raise ValueError(
                f"Psi0 must be positive-definite; its eigenvalues are {np.linalg.eigvalsh(Psi0)}."
            ) from None
        kappa0, nu0 = float(self.kappa0), float(self.nu0)
        if not (np.isfinite(kappa0) and kappa0 > 0):
            raise ValueError(f"kappa0 must be a positive finite number, got {self.kappa0!r}.")
        if not (np.isfinite(nu0) and nu0 > d - 1):
            raise ValueError(
                f"nu0 must exceed d - 1 = {d - 1} for a proper inverse-Wishart, got {self.nu0!r}; "
                f"mclust's default is d + 2 = {d + 2}."
            )
        object.__setattr__(self, "m0", _frozen(m0))
        object.__setattr__(self, "Psi0", _frozen(Psi0))
        object.__setattr__(self, "kappa0", kappa0)
        object.__setattr__(self, "nu0", nu0)

    # -- constructors -----------------------------------------------------------------------
    @classmethod
    def flat(cls, alpha=1.0):
        """Improper flat prior on ``mu`` and ``Sigma``; uniform Dirichlet on ``pi``.

        Under it the MAP estimate equals the maximum-likelihood estimate.

        Parameters
        ----------
        alpha : float, default 1.0
            Dirichlet concentration (1 is uniform on the simplex).

        Returns
        -------
        Prior
        """
        return cls(alpha=alpha)

    @classmethod
    def default(cls, X, K, covariance_type="full", alpha=1.0):
        """Mclust's ``defaultPrior``: shrinkage 0.01, ``m0`` the column means, ``nu0 = d + 2``.

        The scale is ``var(X) / K^(2/d)``: the sample covariance for full and tied, its diagonal
        for diag, and the mean variance times the identity for spherical (mclust's ``VII``).
        A zero-variance column (constant data) would make the scale singular; its variance is
        then floored at 1e-6 times the largest column variance (or 1 if every column is constant).

        Parameters
        ----------
        X : array-like of shape (N, d)
        K : int
            Number of components.
        covariance_type : {"full", "tied", "diag", "spherical"}
        alpha : float, default 1.0
            Dirichlet concentration on ``pi`` (mclust puts no prior on the weights; 1 is uniform).

        Returns
        -------
        Prior
        """
        check_covariance_type(covariance_type)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 2:
            raise ValueError(f"X must have shape (N, d) with N >= 2, got {X.shape}.")
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or inf; drop or impute those rows first.")
        if int(K) != K or K < 1:
            raise ValueError(f"K must be a positive integer, got {K!r}.")
        d = X.shape[1]
        fac = (1.0 / K) ** (2.0 / d)
        cov = np.atleast_2d(np.cov(X, rowvar=False))
        var = np.diag(cov).copy()
        floor = 1e-6 * var.max() if var.max() > 0 else 1.0
        var_floored = np.maximum(var, floor)
        if covariance_type in ("full", "tied"):
            Psi0 = cov + np.diag(var_floored - var)
            if np.linalg.eigvalsh(Psi0)[0] <= 1e-12 * np.abs(Psi0).max():
                Psi0 = Psi0 + floor * np.eye(d)
        elif covariance_type == "diag":
            Psi0 = np.diag(var_floored)
        else:
            Psi0 = var_floored.mean() * np.eye(d)
        return cls(alpha=alpha, m0=X.mean(axis=0), kappa0=0.01, nu0=d + 2.0, Psi0=fac * Psi0)

    # -- properties -------------------------------------------------------------------------
    @property
    def is_flat(self):
        """True when ``mu`` and ``Sigma`` have the improper flat prior."""
        return self.m0 is None

    @property
    def d(self):
        """Number of features (``None`` for the flat prior)."""
        return None if self.is_flat else self.m0.shape[0]

    def alpha_for(self, K):
        """Dirichlet concentration broadcast to ``K`` components.

        Parameters
        ----------
        K : int

        Returns
        -------
        ndarray of shape (K,)
        """
        if self.alpha.ndim == 1 and self.alpha.shape[0] != K:
            raise ValueError(
                f"alpha has {self.alpha.shape[0]} entries but the model has K={K} components."
            )
        return np.broadcast_to(self.alpha, (K,)).astype(np.float64)

    def check_compatible(self, K, d):
        """Raise ``ValueError`` unless the prior fits a model with ``K`` components in ``d`` dims.

        Parameters
        ----------
        K, d : int
        """
        self.alpha_for(K)
        if not self.is_flat and self.d != d:
            raise ValueError(
                f"The prior is for d={self.d} features but the data have d={d}; "
                "build it with Prior.default(X, K, covariance_type)."
            )

    def inverse_gamma(self, covariance_type):
        """Shape and scale of the inverse-gamma prior of diag / spherical variances.

        Parameters
        ----------
        covariance_type : {"diag", "spherical"}

        Returns
        -------
        a : float
            Shape, ``nu0 / 2`` (diag) or ``nu0 d / 2`` (spherical).
        b : ndarray of shape (d,) or float
            Scale, ``diag(Psi0) / 2`` (diag) or ``tr(Psi0) / 2`` (spherical).
        """
        if covariance_type == "diag":
            return self.nu0 / 2.0, np.diag(self.Psi0) / 2.0
        if covariance_type == "spherical":
            return self.nu0 * self.d / 2.0, np.trace(self.Psi0) / 2.0
        raise ValueError(f"inverse-gamma parameters exist for diag and spherical, not {covariance_type!r}.")

    def shifted(self, offset):
        """The same prior for data translated by ``-offset`` (``m0 - offset``).

        Parameters
        ----------
        offset : array-like of shape (d,)

        Returns
        -------
        Prior
        """
        if self.is_flat:
            return self
        return dataclasses.replace(self, m0=self.m0 - np.asarray(offset, dtype=np.float64))

    # -- density ----------------------------------------------------------------------------
    def log_density(self, params):
        """Exact log prior density of ``params`` (in ``Sigma``-space, no Jacobian).

        Parameters
        ----------
        params : GMMParams

        Returns
        -------
        float
            ``log p(pi) + log p(mu, Sigma)``; for the flat prior only the Dirichlet term.
        """
        if not isinstance(params, GMMParams):
            raise TypeError(f"params must be a models.GMMParams, got {type(params).__name__}.")
        K, d = params.K, params.d
        self.check_compatible(K, d)
        alpha = self.alpha_for(K)
        lp = gammaln(alpha.sum()) - gammaln(alpha).sum() + xlogy(alpha - 1.0, params.pi).sum()
        if self.is_flat:
            return float(lp)
        return float(lp + _LOG_DENSITY[params.covariance_type](self, params))


def _log_invwishart(L, nu, Psi):
    """Log InvWishart(Sigma | nu, Psi) for Sigma = L L^T, L of shape (..., d, d)."""
    d = Psi.shape[0]
    log_det_Sigma = 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
    # tr(Psi Sigma^-1) = ||L^-1 C||_F^2 with Psi = C C^T
    C = np.linalg.cholesky(Psi)
    LinvC = np.linalg.solve(L, np.broadcast_to(C, L.shape))
    tr = (LinvC**2).sum(axis=(-2, -1))
    log_det_Psi = 2.0 * np.log(np.diag(C)).sum()
    return (0.5 * nu * log_det_Psi - 0.5 * nu * d * np.log(2.0) - multigammaln(0.5 * nu, d)
            - 0.5 * (nu + d + 1) * log_det_Sigma - 0.5 * tr)


def _log_mvn_scaled(mu, m0, L, kappa0):
    """Log N(mu | m0, L L^T / kappa0) for mu (K, d) and L (K, d, d) or (d, d)."""
    d = mu.shape[-1]
    diff = (mu - m0)[..., None]
    y = np.linalg.solve(np.broadcast_to(L, (mu.shape[0], d, d)), diff)[..., 0]
    log_det = 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1) - d * np.log(kappa0)
    return -0.5 * (d * _LOG_2PI + log_det + kappa0 * (y**2).sum(-1))


def _log_inverse_gamma(s2, a, b):
    return a * np.log(b) - gammaln(a) - (a + 1.0) * np.log(s2) - b / s2


def _log_normal(x, m, var):
    return -0.5 * (_LOG_2PI + np.log(var) + (x - m) ** 2 / var)


def _full(prior, p):
    L = p.cholesky
    return (_log_invwishart(L, prior.nu0, prior.Psi0).sum()
            + _log_mvn_scaled(p.mu, prior.m0, L, prior.kappa0).sum())


def _tied(prior, p):
    L = p.cholesky[0]
    return (_log_invwishart(L, prior.nu0, prior.Psi0)
            + _log_mvn_scaled(p.mu, prior.m0, L, prior.kappa0).sum())


def _diag(prior, p):
    a, b = prior.inverse_gamma("diag")
    return (_log_inverse_gamma(p.Sigma, a, b).sum()
            + _log_normal(p.mu, prior.m0, p.Sigma / prior.kappa0).sum())


def _spherical(prior, p):
    a, b = prior.inverse_gamma("spherical")
    return (_log_inverse_gamma(p.Sigma, a, b).sum()
            + _log_normal(p.mu, prior.m0, p.Sigma[:, None] / prior.kappa0).sum())


_LOG_DENSITY = {"full": _full, "tied": _tied, "diag": _diag, "spherical": _spherical}


def _invwishart_rvs(nu, Psi, size, rng):
    d = Psi.shape[0]
    draws = stats.invwishart(df=nu, scale=Psi).rvs(size=size, random_state=rng)
    return np.asarray(draws, dtype=np.float64).reshape(*np.atleast_1d(size), d, d)


def _draw_sigma(prior, K, d, covariance_type, rng):
    if covariance_type == "full":
        return _invwishart_rvs(prior.nu0, prior.Psi0, K, rng)
    if covariance_type == "tied":
        return _invwishart_rvs(prior.nu0, prior.Psi0, 1, rng)[0]
    a, b = prior.inverse_gamma(covariance_type)
    shape = (K, d) if covariance_type == "diag" else (K,)
    return b / rng.gamma(a, 1.0, size=shape)


def sample_params(prior, K, d, covariance_type, rng=None):
    """Draw mixture parameters from the prior (the first half of the generative story).

    Parameters
    ----------
    prior : Prior
        A proper prior (not :meth:`Prior.flat`).
    K, d : int
        Number of components and of features; ``d`` must match the prior.
    covariance_type : {"full", "tied", "diag", "spherical"}
    rng : numpy.random.Generator or int or None
        Source of randomness.

    Returns
    -------
    GMMParams
    """
    check_covariance_type(covariance_type)
    if not isinstance(prior, Prior):
        raise TypeError(f"prior must be a models.Prior, got {type(prior).__name__}.")
    if prior.is_flat:
        raise ValueError("Cannot draw from the improper flat prior; use Prior.default(X, K) "
                         "or give m0, kappa0, nu0 and Psi0.")
    prior.check_compatible(K, d)
    rng = np.random.default_rng(rng)
    pi = rng.dirichlet(prior.alpha_for(K))
    pi = pi / pi.sum()
    Sigma = _draw_sigma(prior, K, d, covariance_type, rng)
    full = GMMParams(np.full(K, 1.0 / K), np.zeros((K, d)), Sigma, covariance_type).cholesky
    mu = prior.m0 + np.einsum("kij,kj->ki", full, rng.standard_normal((K, d))) / np.sqrt(prior.kappa0)
    return GMMParams(pi, mu, Sigma, covariance_type)

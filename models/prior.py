r"""The conjugate prior on ``(pi, mu, Sigma)``, defined once for EM (MAP) and PyMC.

mclust's prior (Fraley & Raftery 2007, ``priorControl()``/``defaultPrior``), with hyperparameters
``m0`` (d,), ``kappa0``, ``nu0`` and ``Psi0`` (d, d), and a Dirichlet on the weights (mclust puts
none: ``alpha = 1``, uniform):

.. math:: \pi \sim \mathrm{Dirichlet}(\alpha), \qquad
    \mu_k \mid \Sigma_k \sim \mathcal{N}(m_0, \Sigma_k / \kappa_0)

and on the covariance, by the family's storage (:mod:`models.families`):

=========  ======================================================================================
full       :math:`\Sigma_k \sim \mathcal{W}^{-1}(\nu_0, \Psi_0)`
tied       one :math:`\Sigma \sim \mathcal{W}^{-1}(\nu_0, \Psi_0)` (EEE)
diag       :math:`\sigma^2_{kj} \sim \mathrm{InvGamma}(\nu_0 / 2, \Psi_{0,jj} / 2)`
spherical  :math:`\sigma^2_k \sim \mathrm{InvGamma}(\nu_0 / 2, \operatorname{tr}\Psi_0 / (2d))`
=========  ======================================================================================

A family whose covariance is shared by every component (EII, EEI, EEE) has the prior once; the
others have it per component. VEI, EVI, EEV and VEV have mclust's improper prior, the density its
MAP M-steps maximise (:mod:`models.families`); they have no draws, and the other four models
(VEE, EVE, VVE, EVV) no prior at all, as in mclust. The diag prior is the
inverse-Wishart's one-dimensional analogue on each feature; the spherical prior is mclust's
inverse-gamma with ``nu0`` degrees of freedom on one variance, scaled by the mean of
``diag(Psi0)``. The densities are scipy.stats'.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from models.families import FAMILIES, family
from models.missing import observed_moments, scan
from models.params import GMMParams
from models.storage import cholesky_factors
from models.validation import check_X

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
    mclust : bool, default False
        Reproduce mclust 6's EM updates where they are not the mode of this prior: its EII
        leaves the scale out (for K > 1) and its EEI the mean prior's ``|Sigma|^(-K/2)``. MAP
        fits then equal mclust's ``Mclust(..., prior = priorControl())``; the prior is no longer
        the one the PyMC model samples, so :mod:`models.pymc` and :func:`sample_params` refuse it.
        The other eight models' updates are the same either way.

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
    mclust: bool = False

    def __post_init__(self):
        if not isinstance(self.mclust, bool | np.bool_):
            raise TypeError(f"mclust must be True or False, got {self.mclust!r}.")
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
    def default(cls, X, K, covariance_type="full", alpha=1.0, mclust=False):
        """Mclust's ``defaultPrior``: shrinkage 0.01, ``m0`` the column means, ``nu0 = d + 2``.

        The scale is ``var(X) / K^(2/d)``: the sample covariance for the full-orientation families
        (EEE ... VVV), and the mean column variance times the identity for the axis-aligned ones
        (EII ... VVI), as mclust does. A zero-variance column (constant data) would make the scale
        singular; its variance is then floored at 1e-6 times the largest column variance (or 1 if
        every column is constant).

        With missing values (NaN), the means and covariances come from the observed cells: each
        mean over its column's observed cells, each covariance over the rows where both columns
        are observed (:func:`models.missing.observed_moments`).

        Parameters
        ----------
        X : array-like of shape (N, d)
            NaN where a value is missing.
        K : int
            Number of components.
        covariance_type : str
            One of :data:`models.COVARIANCE_TYPES`.
        alpha : float, default 1.0
            Dirichlet concentration on ``pi`` (mclust puts no prior on the weights; 1 is uniform).
        mclust : bool, default False
            mclust's own EII and EEI updates (see :class:`Prior`).

        Returns
        -------
        Prior
        """
        fam = family(covariance_type)
        X = check_X(X, min_rows=2, finite=False).astype(np.float64, copy=False)
        missing = scan(X, keep_rows=False)
        if isinstance(K, bool) or int(K) != K or K < 1:
            raise ValueError(f"K must be a positive integer, got {K!r}.")
        d = X.shape[1]
        fac = (1.0 / K) ** (2.0 / d)
        if missing is None:
            m0, cov = X.mean(axis=0), np.atleast_2d(np.cov(X, rowvar=False))
        else:
            m0, cov = observed_moments(X)
        var = np.diag(cov).copy()
        floor = 1e-6 * var.max() if var.max() > 0 else 1.0
        Psi0 = fam.storage.default_scale(cov, np.maximum(var, floor), floor)
        return cls(alpha=alpha, m0=m0, kappa0=0.01, nu0=d + 2.0, Psi0=fac * Psi0, mclust=mclust)

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

    def constant(self, name, compute):
        """A number that depends on this prior only, computed once: ``compute()``, kept by ``name``.

        EM evaluates the prior's density once per iteration; its normalising terms (the
        Dirichlet's for K, the inverse-Wishart's and ``Psi0``'s factor) do not change.

        Parameters
        ----------
        name : hashable
        compute : callable
            Called once, with no arguments.

        Returns
        -------
        object
            What ``compute`` returned (its arrays read-only).
        """
        kept = self.__dict__.setdefault("_constants", {})
        if name not in kept:
            value = compute()
            for a in value if isinstance(value, tuple) else (value,):
                if isinstance(a, np.ndarray):
                    a.flags.writeable = False
            kept[name] = value
        return kept[name]

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
        from scipy.special import gammaln, xlogy  # SciPy only where a density is evaluated

        alpha = self.alpha_for(K)
        lp = self.constant(("dirichlet", K), lambda: gammaln(alpha.sum()) - gammaln(alpha).sum()) \
            + xlogy(alpha - 1.0, params.pi).sum()
        if self.is_flat:
            return float(lp)
        return float(lp + _log_density_mu_sigma(self, params))


def _log_density_mu_sigma(prior, p):
    r"""Log p(mu, Sigma).

    mu_k | Sigma_k ~ N(m0, Sigma_k / kappa0) for each component,

    .. math:: \log N(\mu_k \mid m_0, \Sigma_k / \kappa_0) = -\tfrac12 \bigl(d \log 2\pi
        + \log|\Sigma_k| - d \log \kappa_0 + \kappa_0 |L_k^{-1} (\mu_k - m_0)|^2\bigr)

    with the Cholesky factor ``Sigma_k = L_k L_k^T``, then the covariance prior: the
    inverse-Wishart / inverse-gamma once per distinct covariance for the conjugate families
    (:meth:`models.storage.Storage.log_prior`), mclust's unnormalised one
    (:meth:`models.families.Family.log_prior_sigma`) for the others. NumPy throughout: EM
    evaluates this once per iteration, and scipy.stats' distribution objects cost 20 times the
    arithmetic (equal to them to 1e-10, ``tests/models/test_prior.py``).
    """
    fam, K, d = p.family, p.K, p.d
    fam.require_map()
    full = fam.to_full(p.Sigma, K, d)
    L = np.asarray(p.cholesky)
    if fam.shared_prior:   # one covariance for every mean
        L = np.broadcast_to(L[:1], (K, d, d))
    y = np.linalg.solve(L, (p.mu - prior.m0)[:, :, None])[:, :, 0]
    logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
    lp = float(-0.5 * (K * d * (_LOG_2PI - np.log(prior.kappa0)) + logdet.sum()
                       + prior.kappa0 * (y**2).sum()))
    if not fam.conjugate or prior.mclust:
        return lp + fam.log_prior_sigma(full, prior)
    Sigma = fam.per_component(p.Sigma, K)
    return lp + fam.storage.log_prior(Sigma[:1] if fam.shared_prior else Sigma, prior)


def check_prior(prior, K, d, fam, proper=False, exact=False):
    """The one check of a ``prior`` argument, at the public edge.

    Parameters
    ----------
    prior : Prior or None
    K, d : int
        The model's components and features.
    fam : Family
        The model's covariance family: a proper prior needs one with a MAP (a conjugate prior).
    proper : bool
        Refuse ``None`` and :meth:`Prior.flat` (a posterior to sample needs a proper prior).
    exact : bool
        Refuse ``Prior(mclust=True)``, whose EM updates are not the mode of a density a model can
        state (the PyMC model and the samplers).

    Returns
    -------
    Prior or None
        ``prior``.
    """
    if prior is None and not proper:
        return None
    if prior is not None and not isinstance(prior, Prior):
        raise TypeError(f"prior must be a models.Prior or None, got {type(prior).__name__}; build "
                        f"one with Prior.default(X, K, {fam.name!r}).")
    if prior is None or prior.is_flat:
        if proper:
            raise ValueError(
                f"prior={'None' if prior is None else 'Prior.flat()'} is the improper flat prior, "
                "whose posterior is improper for a mixture; sampling needs a proper prior, e.g. "
                f"prior=Prior.default(X, K, {fam.name!r}).")
        prior.check_compatible(K, d)
        return prior
    prior.check_compatible(K, d)
    if exact and prior.mclust:
        raise ValueError("Prior(mclust=True) reproduces mclust's EM updates: not a distribution "
                         "to draw from, nor the mode of a prior the model can state; use "
                         f"Prior.default(X, K, {fam.name!r}) (mclust=False).")
    fam.require_map()
    return prior


def sample_params(prior, K, d, covariance_type, rng=None):
    """Draw mixture parameters from the prior (the first half of the generative story).

    Parameters
    ----------
    prior : Prior
        A proper prior (not :meth:`Prior.flat`).
    K, d : int
        Number of components and of features; ``d`` must match the prior.
    covariance_type : str
        A family with a proper conjugate prior: EII, VII, EEI, VVI, EEE, VVV (or spherical, diag,
        tied, full).
    rng : numpy.random.Generator or int or None
        Source of randomness.

    Returns
    -------
    GMMParams
    """
    fam = family(covariance_type)
    if not fam.conjugate:
        raise ValueError(
            f"covariance_type={covariance_type!r} has no proper conjugate prior to draw from; "
            "draw from one of "
            f"{', '.join(f.name for f in FAMILIES if f.conjugate)} (or scikit-learn's four names).")
    check_prior(prior, K, d, fam, proper=True, exact=True)
    rng = np.random.default_rng(rng)
    pi = rng.dirichlet(prior.alpha_for(K))
    pi = pi / pi.sum()
    S = fam.storage.draw_prior(prior, 1 if fam.shared_prior else K, rng)
    Sigma = fam.storage.from_components(S, K)
    L, _ = cholesky_factors(fam.to_full(Sigma, K, d))     # GMMParams below checks Sigma
    mu = prior.m0 + np.einsum("kij,kj->ki", L, rng.standard_normal((K, d))) / np.sqrt(prior.kappa0)
    return GMMParams(pi, mu, Sigma, covariance_type)

r"""The parameter container of a Gaussian mixture: ``pi``, ``mu`` and ``Sigma``.

The mixture density of the lecture notes (section 2),

.. math:: p(x) = \sum_{k=1}^K \pi_k \, \mathcal{N}(x \mid \mu_k, \Sigma_k),

is stored once, in :class:`GMMParams`, which every other module of the suite takes and returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from models.families import COVARIANCE_TYPES, SKLEARN_TYPES, Family, family
from models.missing import conditional, log_gauss_observed, scan
from models.storage import cholesky_factors
from models.validation import check_X

__all__ = ["COVARIANCE_TYPES", "SKLEARN_TYPES", "GMMParams", "log_joint_stack", "sigma_shape",
           "to_full_covariance"]


def sigma_shape(covariance_type, K, d):
    """Shape of ``Sigma`` for a covariance type (scikit-learn's ``covariances_`` shapes).

    Parameters
    ----------
    covariance_type : str
        One of :data:`COVARIANCE_TYPES`.
    K, d : int
        Number of components and of features.

    Returns
    -------
    tuple of int
        ``(K, d, d)``, ``(d, d)``, ``(K, d)`` or ``(K,)`` (the family's storage).
    """
    return family(covariance_type).sigma_shape(K, d)


def to_full_covariance(Sigma, covariance_type, K, d):
    """Expand ``Sigma`` of any covariance type to a ``(K, d, d)`` stack of matrices.

    Parameters
    ----------
    Sigma : ndarray
        Covariances, of shape :func:`sigma_shape` ``(covariance_type, K, d)``.
    covariance_type : str
        One of :data:`COVARIANCE_TYPES`.
    K, d : int
        Number of components and of features.

    Returns
    -------
    ndarray of shape (K, d, d)
    """
    return family(covariance_type).to_full(Sigma, K, d)


def _readonly(a):
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def log_joint_stack(pi, mu, L, X):
    r""":meth:`GMMParams.log_joint` for a stack of mixtures (posterior draws, say).

    .. math:: \log \pi_k + \log \mathcal{N}(x_n \mid \mu_k, L_k L_k^T)

    Parameters
    ----------
    pi : ndarray of shape (..., K)
    mu : ndarray of shape (..., K, d)
    L : ndarray of shape (..., K, d, d)
        Lower Cholesky factors of the covariances.
    X : ndarray of shape (N, d)
        Checked float64 data; NaN where a value is missing (each row then on its observed
        features: :func:`models.missing.log_gauss_observed`).

    Returns
    -------
    ndarray of shape (..., N, K)
    """
    d = X.shape[1]
    if np.isnan(X).any():
        with np.errstate(divide="ignore"):
            log_pi = np.log(pi)
        Sigma = L @ np.swapaxes(L, -1, -2)
        return log_pi[..., None, :] + log_gauss_observed(mu, Sigma, X)
    # Mahalanobis terms through triangular solves with L_k (no explicit inverse).
    diff = X[..., None, :, :] - mu[..., :, None, :]                     # (..., K, N, d)
    y = np.linalg.solve(L, np.swapaxes(diff, -1, -2))   # (..., K, d, N); batched in C
    maha = np.einsum("...kdn,...kdn->...nk", y, y)
    log_det = 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(axis=-1)
    with np.errstate(divide="ignore"):
        log_pi = np.log(pi)
    return log_pi[..., None, :] - 0.5 * (d * np.log(2 * np.pi) + log_det[..., None, :] + maha)


@dataclass(frozen=True, eq=False)
class GMMParams:
    r"""Parameters of a Gaussian mixture, validated once at construction.

    .. math:: p(x) = \sum_k \pi_k \mathcal{N}(x \mid \mu_k, \Sigma_k)

    Parameters
    ----------
    pi : array-like of shape (K,)
        Mixture weights, on the simplex (non-negative, summing to one within 1e-8).
    mu : array-like of shape (K, d)
        Component means.
    Sigma : array-like
        Component covariances, with scikit-learn's shape for the covariance type:
        ``(K, d, d)`` for full, ``(d, d)`` for tied, ``(K, d)`` (variances) for diag and ``(K,)``
        (one variance per component) for spherical.
    covariance_type : str, default "full"
        One of :data:`COVARIANCE_TYPES`: mclust's 14 models (``"EII"`` ... ``"VVV"``) or
        scikit-learn's ``"spherical"``, ``"diag"``, ``"tied"``, ``"full"`` (VII, VVI, EEE, VVV).
        ``Sigma`` is stored in the family's layout (:attr:`Family.storage`) and must obey its
        constraints. The name is kept as given; :attr:`family` is the model it names.

    Attributes
    ----------
    family : Family
        The covariance model :attr:`covariance_type` names, resolved once.
    K, d : int
        Number of components and features.
    n_parameters : int
        Free parameters, as used by BIC: ``K - 1`` weights, ``K d`` means and the covariances.

    Examples
    --------
    >>> import numpy as np
    >>> from models import GMMParams
    >>> p = GMMParams(pi=[0.3, 0.7], mu=[[0.0], [3.0]], Sigma=[[[1.0]], [[0.5]]])
    >>> p.log_pdf(np.array([[0.0], [3.0]])).shape
    (2,)
    """

    pi: np.ndarray
    mu: np.ndarray
    Sigma: np.ndarray
    covariance_type: str = "full"
    family: Family = field(init=False, repr=False)
    _chol: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        fam = family(self.covariance_type)
        if isinstance(self.covariance_type, Family):
            object.__setattr__(self, "covariance_type", self.covariance_type.name)
        pi, mu, Sigma = (self._as_float(v, name) for v, name in
                         ((self.pi, "pi"), (self.mu, "mu"), (self.Sigma, "Sigma")))
        if pi.ndim != 1 or pi.size < 1:
            raise ValueError(f"pi must be a 1-D array of K >= 1 weights, got shape {pi.shape}.")
        K = pi.shape[0]
        if mu.ndim != 2 or mu.shape[0] != K:
            raise ValueError(
                f"mu must have shape (K, d) = ({K}, d) to match pi, got shape {mu.shape}."
            )
        d = mu.shape[1]
        if d < 1:
            raise ValueError("mu must have at least one feature column (d >= 1).")
        expected = fam.sigma_shape(K, d)
        if Sigma.shape != expected:
            raise ValueError(
                f"Sigma for covariance_type={self.covariance_type!r} must have shape {expected}, "
                f"got {Sigma.shape}."
            )
        if np.any(pi < 0) or abs(pi.sum() - 1.0) > 1e-8:
            raise ValueError(
                f"pi must lie on the simplex (pi_k >= 0, sum 1 within 1e-8), got pi={pi} "
                f"with sum {pi.sum()!r}; normalise it with pi / pi.sum()."
            )
        fam.storage.check(Sigma, self.covariance_type)
        chol, bad = cholesky_factors(fam.to_full(Sigma, K, d))
        if bad.size:
            raise ValueError(
                f"Sigma of component {bad[0]} is not positive-definite; every covariance must be "
                "symmetric positive-definite (add a ridge, e.g. Sigma + 1e-6 * I)."
            )
        fam.check(Sigma, K, d)
        object.__setattr__(self, "family", fam)
        object.__setattr__(self, "pi", _readonly(pi))
        object.__setattr__(self, "mu", _readonly(mu))
        object.__setattr__(self, "Sigma", _readonly(Sigma))
        object.__setattr__(self, "_chol", _readonly(chol))

    @classmethod
    def unchecked(cls, pi, mu, Sigma, fam, cholesky, covariance_type=None):
        """Build from arrays that are valid by construction, without validating them again.

        For an algorithm's inner loop (EM's M-step), whose steps already guarantee what the
        constructor checks: it costs more than a small data set's whole E-step. The arrays are
        made read-only, not copied. User input goes through the constructor; EM passes its
        final estimate through it.

        Parameters
        ----------
        pi : ndarray of shape (K,)
            Finite, on the simplex.
        mu : ndarray of shape (K, d)
            Finite.
        Sigma : ndarray of shape :func:`sigma_shape` ``(covariance_type, K, d)``
            Symmetric positive-definite, within the family's constraints.
        fam : Family
            The covariance model.
        cholesky : ndarray of shape (K, d, d)
            Lower Cholesky factors of the covariances.
        covariance_type : str or None
            The name the result carries (default ``fam.name``).

        Returns
        -------
        GMMParams
        """
        self = object.__new__(cls)
        for name, a in (("pi", pi), ("mu", mu), ("Sigma", Sigma), ("_chol", cholesky)):
            a = a.view()               # read-only without touching the caller's own flags
            a.setflags(write=False)
            object.__setattr__(self, name, a)
        object.__setattr__(self, "family", fam)
        object.__setattr__(self, "covariance_type", fam.name if covariance_type is None
                           else covariance_type)
        return self

    def validated(self):
        """Return a copy built by the constructor, which checks every invariant.

        Returns
        -------
        GMMParams

        Raises
        ------
        ValueError
            An invariant does not hold (see the constructor).
        """
        return GMMParams(self.pi, self.mu, self.Sigma, self.covariance_type)

    @staticmethod
    def _as_float(value, name):
        try:
            a = np.asarray(value)
        except Exception as exc:  # ragged nested lists
            raise TypeError(f"{name} must be a numeric array, got {value!r}.") from exc
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}.")
        a = a.astype(np.result_type(a.dtype, np.float32) if a.dtype.kind == "f" else np.float64)
        if not np.all(np.isfinite(a)):
            bad = ~np.isfinite(a)
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{name} must be finite, but {int(bad.sum())} of its {a.size} entries "
                             f"are NaN or infinite ({name}{list(where)} = {a[where]}).")
        return a

    # -- shapes ---------------------------------------------------------------------------
    @property
    def K(self):
        """Number of components."""
        return self.pi.shape[0]

    @property
    def d(self):
        """Number of features."""
        return self.mu.shape[1]

    @property
    def n_parameters(self):
        """Free parameters used by BIC.

        ``K - 1`` weights, ``K d`` means and mclust's ``nVarParams`` covariance parameters
        (scikit-learn's ``_n_parameters`` for its four).
        """
        K, d = self.K, self.d
        return (K - 1) + K * d + self.family.n_cov_parameters(K, d)

    def decomposition(self):
        """Mclust's ``Sigma_k = lambda_k D_k A_k D_k^T`` (:meth:`Family.decompose`).

        Returns
        -------
        scale : ndarray of shape (K,)
        shape : ndarray of shape (K, d)
        orientation : ndarray of shape (K, d, d)
        """
        return self.family.decompose(self.Sigma, self.K, self.d)

    @property
    def cholesky(self):
        """Lower Cholesky factors ``L_k`` with ``Sigma_k = L_k L_k^T``, shape (K, d, d)."""
        return self._chol

    def to_full(self):
        """Return the same mixture with ``covariance_type="full"``.

        Returns
        -------
        GMMParams
            ``Sigma`` of shape (K, d, d).
        """
        return GMMParams(self.pi, self.mu, self.family.to_full(self.Sigma, self.K, self.d), "full")

    # -- densities ------------------------------------------------------------------------
    def _check_X(self, X):
        X = check_X(X, d=self.d, finite=False).astype(np.float64, copy=False)
        scan(X, require_columns=False)     # inf and empty rows refused; NaN is missing
        return X

    def log_joint(self, X):
        r"""Log joint density of each point and each component.

        .. math:: \log p(x_n, z_{nk} = 1) = \log \pi_k + \log \mathcal{N}(x_n \mid \mu_k,
            \Sigma_k)

        Parameters
        ----------
        X : array-like of shape (N, d)
            NaN where a value is missing: a row then takes the density of its observed features,
            ``N(x_o | mu_{k,o}, Sigma_{k,oo})``.

        Returns
        -------
        ndarray of shape (N, K)
        """
        return log_joint_stack(self.pi, self.mu, self._chol, self._check_X(X))

    def log_pdf(self, X):
        r"""Log mixture density of each point, by logsumexp over components.

        .. math:: \log p(x_n) = \log \sum_k \pi_k \mathcal{N}(x_n \mid \mu_k, \Sigma_k)

        Parameters
        ----------
        X : array-like of shape (N, d)
            NaN where a value is missing (the density of the observed features).

        Returns
        -------
        ndarray of shape (N,)
        """
        return logsumexp(self.log_joint(X), axis=1)

    def responsibilities(self, X):
        r"""Responsibilities by Bayes' rule (lecture section 2.1).

        .. math:: \gamma(z_{nk}) = \frac{\pi_k \mathcal{N}(x_n \mid \mu_k, \Sigma_k)}
            {\sum_j \pi_j \mathcal{N}(x_n \mid \mu_j, \Sigma_j)}

        Parameters
        ----------
        X : array-like of shape (N, d)
            NaN where a value is missing (responsibilities from the observed features).

        Returns
        -------
        gamma : ndarray of shape (N, K)
        """
        lj = self.log_joint(X)
        return np.exp(lj - logsumexp(lj, axis=1, keepdims=True))

    def condition(self, x, observed):
        r"""The mixture of the missing features given one row's observed ones (GMM regression).

        .. math:: p(x_m \mid x_o) = \sum_k \gamma_k(x_o)\, \mathcal N\bigl(x_m \mid
            \mu_{k,m} + \Sigma_{k,mo}\Sigma_{k,oo}^{-1}(x_o - \mu_{k,o}),\;
            \Sigma_{k,mm} - \Sigma_{k,mo}\Sigma_{k,oo}^{-1}\Sigma_{k,om}\bigr)

        with ``gamma_k(x_o)`` the responsibilities of the observed features.

        Parameters
        ----------
        x : array-like of shape (d,)
            One row; its unobserved entries are ignored (NaN, say).
        observed : array-like of bool, shape (d,)
            True for the features to condition on: at least one, and not all.

        Returns
        -------
        GMMParams
            Full covariance, over the ``m`` unobserved features in their order: ``pi`` the
            responsibilities, ``mu`` (K, m) the conditional means, ``Sigma`` (K, m, m) the
            conditional covariances.
        """
        x = np.asarray(x, dtype=np.float64)
        observed = np.asarray(observed)
        if x.shape != (self.d,) or observed.shape != (self.d,):
            raise ValueError(f"x and observed must have shape (d,) = ({self.d},), got {x.shape} "
                             f"and {observed.shape}; condition takes one row.")
        if observed.dtype != bool:
            raise TypeError(f"observed must be a boolean mask of shape ({self.d},), got dtype "
                            f"{observed.dtype}.")
        if observed.all() or not observed.any():
            raise ValueError(f"observed has {int(observed.sum())} of {self.d} features; condition "
                             "on at least one and leave at least one out (the marginal of all "
                             "is the mixture itself).")
        if not np.all(np.isfinite(x[observed])):
            j = int(np.flatnonzero(~np.isfinite(x) & observed)[0])
            raise ValueError(f"x[{j}] = {float(x[j])} is marked observed; mark it False in observed.")
        full = self.family.to_full(self.Sigma, self.K, self.d)
        log_dens, mean, cov = conditional(self.mu, full, x[observed][None], observed)
        with np.errstate(divide="ignore"):
            lj = np.log(self.pi) + log_dens[0]
        gamma = np.exp(lj - logsumexp(lj))
        return GMMParams(gamma / gamma.sum(), mean[0], 0.5 * (cov + np.swapaxes(cov, 1, 2)),
                         "full")

    def marginal(self, features, names=None):
        """The mixture of some features, the others integrated out.

        The marginal of a Gaussian is its sub-vector's Gaussian, so each component keeps its
        weight and takes its means and covariances on ``features``. The result keeps
        :attr:`covariance_type` where the family is closed under marginalising (EII, VII, EEI,
        VEI, VVI, EEE, VEE, VVV, and every family for one component), and is full-covariance
        otherwise.

        Parameters
        ----------
        features : sequence of int or str
            The features to keep, in the order given: positions (0-based), or names with
            ``names``.
        names : sequence of str or None
            The ``d`` feature names, when ``features`` holds names.

        Returns
        -------
        GMMParams
        """
        index = self._feature_index(features, names)
        fam = self.family
        mu = self.mu[:, index]
        try:
            return GMMParams(self.pi, mu, fam.storage.select_features(self.Sigma, index),
                             self.covariance_type)
        except ValueError:                 # the family's constraints do not survive
            full = fam.to_full(self.Sigma, self.K, self.d)
            return GMMParams(self.pi, mu, full[:, index[:, None], index[None, :]], "full")

    def _feature_index(self, features, names):
        if isinstance(features, str | int | np.integer):
            features = [features]
        features = list(features)
        if not features:
            raise ValueError("features is empty; name at least one feature to keep.")
        if names is not None:
            names = [str(n) for n in names]
            if len(names) != self.d:
                raise ValueError(f"names has {len(names)} entries for d = {self.d} features.")
        index = []
        for f in features:
            if isinstance(f, str):
                if names is None or f not in names:
                    raise ValueError(
                        f"feature {f!r} is not " + ("among names " + str(names) if names else
                                                    "a position; pass names=[...] to select by "
                                                    "name"))
                index.append(names.index(f))
            elif isinstance(f, int | np.integer) and -self.d <= f < self.d:
                index.append(int(f) % self.d)
            else:
                raise ValueError(f"feature {f!r} is not a position 0..{self.d - 1} or a name.")
        if len(set(index)) != len(index):
            raise ValueError(f"features {features} name a feature twice.")
        return np.asarray(index)

    def permute(self, perm):
        """Return the mixture with components reordered as ``perm`` (new k = old ``perm[k]``).

        Parameters
        ----------
        perm : array-like of int, shape (K,)

        Returns
        -------
        GMMParams
        """
        perm = np.asarray(perm)
        if sorted(perm.tolist()) != list(range(self.K)):
            raise ValueError(f"perm must be a permutation of 0..{self.K - 1}, got {perm}.")
        return GMMParams(self.pi[perm], self.mu[perm], self.family.storage.take(self.Sigma, perm),
                         self.covariance_type)

    def __repr__(self):
        return (f"GMMParams(K={self.K}, d={self.d}, covariance_type={self.covariance_type!r}, "
                f"pi={np.array2string(self.pi, precision=4)})")

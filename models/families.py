r"""The 14 covariance families of mclust, one entry each.

Every family constrains the eigen-decomposition of the component covariances (Banfield & Raftery
1993; Celeux & Govaert 1995),

.. math:: \Sigma_k = \lambda_k D_k A_k D_k^T, \qquad |A_k| = 1,

with volume ``lambda_k``, shape ``A_k`` (diagonal) and orientation ``D_k`` (orthogonal) each
**E**\ qual across components, **V**\ arying, or the **I**\ dentity. The three letters of a name
say which (``VEI``: varying volume, equal shape, axis-aligned). ``spherical``, ``diag``, ``tied``
and ``full`` (scikit-learn's names) are aliases of ``VII``, ``VVI``, ``EEE`` and ``VVV``.

A :class:`Family` owns everything that differs between the models:

* how ``Sigma`` is stored (``storage``: one of scikit-learn's four shapes, which is also what
  the E-step computes with) and checked (:meth:`Family.check`);
* the number of free covariance parameters (mclust's ``nVarParams``);
* the M-step for ``Sigma`` from the scatter matrices ``W_k`` and counts ``n_k``, by maximum
  likelihood (:meth:`Family.m_step` without a prior) or as the mode of the complete-data posterior
  under mclust's conjugate prior (with one; the 10 models mclust has it for), which is the ML
  M-step on a posterior scatter and count (``prior_terms``, mclust's own).

The M-steps are those of Celeux & Govaert (1995), closed form where one exists. The iterative
ones (VEI, VEE, VEV, EVE, VVE) alternate closed-form updates of volume, shape and orientation,
each of which cannot lower the objective; the orientations of EVE and VVE use the two
majorisation-minimisation steps of Browne & McNicholas (2014). Adding a 15th family means adding
one entry to :data:`FAMILIES` and its tests, nothing else.

The objective of the covariance M-step, minimised, is

.. math:: \sum_k \left[ \tilde n_k \log|\Sigma_k| + \operatorname{tr}(\Sigma_k^{-1}
    \tilde W_k) \right] (+ \text{the prior's own terms})

with ``W~_k = W_k`` and ``n~_k = n_k`` for maximum likelihood.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from models.storage import DIAG, FULL, SPHERICAL, TIED, Storage

#: inner iterations of the iterative M-steps: relative change, and the caps from a cold start and
#: from the previous iteration's orientation (every MM step lowers the objective, so a capped
#: M-step from the previous parameters is a generalised EM step: the likelihood still rises)
INNER_TOL, INNER_MAX, INNER_WARM = 1e-12, 500, 5


@dataclass(frozen=True, eq=False)
class Family:
    """One covariance model.

    Attributes
    ----------
    name : str
        mclust's three letters (volume, shape, orientation), e.g. ``"VEV"``.
    alias : str or None
        scikit-learn's name of the same model, if it has one.
    storage : models.storage.Storage
        Layout of ``Sigma`` (:mod:`models.storage`): ``(K,)`` variances, ``(K, d)`` variances,
        one ``(d, d)`` matrix, or ``(K, d, d)``. The E-step and the sufficient statistics follow
        the layout.
    ml : callable
        ``ml(W, n_k, start=None) -> Sigma``: the maximum-likelihood update from scatter matrices
        ``W`` (the storage's statistics: ``(K, d)`` diagonals for spherical/diag, the pooled ``(d, d)`` for
        tied, ``(K, d, d)`` for full) and counts ``n_k`` of shape (K,).
    prior_terms : callable or None
        ``prior_terms(prior, K, d) -> (S, c)``: what mclust's conjugate prior adds to each
        component's scatter (``S``: shape (d,) for axis-aligned storages, (d, d) otherwise) and
        count (``c``: shape (K,)); the MAP M-step is ``ml`` on ``W_k + B_k + S`` and
        ``n_k + c_k``. None where mclust has no conjugate prior for the model.
    conjugate : bool
        Whether the prior is a proper conjugate distribution to draw from (EII, VII, EEI, VVI,
        EEE, VVV): :func:`models.sample_params` draws these.
    pymc : bool
        Whether :mod:`models.pymc` has the model: the conjugate ones.
    """

    name: str
    alias: str | None
    storage: Storage
    ml: Callable
    prior_terms: Callable | None = None
    conjugate: bool = False
    pymc: bool = False

    @property
    def volume(self):
        """``"E"`` or ``"V"``."""
        return self.name[0]

    @property
    def shape(self):
        """``"I"``, ``"E"`` or ``"V"``."""
        return self.name[1]

    @property
    def orientation(self):
        """``"I"``, ``"E"`` or ``"V"``."""
        return self.name[2]

    @property
    def has_map(self):
        """Whether MAP estimation exists for the family (the 10 models mclust has it for)."""
        return self.prior_terms is not None

    @property
    def shared_prior(self):
        """True when every component has the same covariance (EII, EEI, EEE): it gets one prior."""
        return "V" not in self.name

    def __repr__(self):
        return f"Family({self.name!r})"

    # -- shapes and counts ---------------------------------------------------------------
    def sigma_shape(self, K, d):
        """Shape of ``Sigma``: ``(K,)``, ``(K, d)``, ``(d, d)`` or ``(K, d, d)``."""
        return self.storage.shape(K, d)

    def n_cov_parameters(self, K, d):
        """Free covariance parameters, mclust's ``nVarParams(name, d, K)``.

        Volume: 1 or K. Shape: 0, ``d - 1`` or ``K (d - 1)``. Orientation: 0, ``d (d - 1) / 2``
        or ``K d (d - 1) / 2``.
        """
        count = {"I": 0, "E": 1, "V": K}
        return (count[self.volume] + count[self.shape] * (d - 1)
                + count[self.orientation] * d * (d - 1) // 2)

    def to_full(self, Sigma, K, d):
        """``Sigma`` as a ``(K, d, d)`` stack of matrices.

        A stack of ``(..., *sigma_shape)`` (posterior draws, say) gives ``(..., K, d, d)``.
        """
        return self.storage.to_full(Sigma, K, d)

    def per_component(self, Sigma, K):
        """``Sigma`` with one entry per component along the first axis (tied repeated)."""
        return self.storage.per_component(Sigma, K)

    # -- the decomposition ---------------------------------------------------------------
    def decompose(self, Sigma, K, d):
        """Mclust's decomposition ``Sigma_k = lambda_k D_k A_k D_k^T``.

        Parameters
        ----------
        Sigma : ndarray of shape :meth:`sigma_shape`
        K, d : int

        Returns
        -------
        scale : ndarray of shape (K,)
            ``lambda_k = |Sigma_k|^(1/d)``.
        shape : ndarray of shape (K, d)
            Diagonal of ``A_k`` (product 1): in axis order for axis-aligned families, in
            decreasing order otherwise.
        orientation : ndarray of shape (K, d, d)
            ``D_k``: the identity for axis-aligned families, else eigenvectors as columns.
        """
        if not self.storage.matrix:
            var = self.storage.variances(Sigma, d)
            orient = np.broadcast_to(np.eye(d), (K, d, d))
        else:
            ev, vec = np.linalg.eigh(self.to_full(Sigma, K, d))
            var, orient = ev[:, ::-1], vec[:, :, ::-1]
        scale = np.exp(np.log(var).mean(axis=1))
        return scale, var / scale[:, None], orient

    def check(self, Sigma, K, d, rtol=1e-6):
        """Raise ``ValueError`` unless positive-definite ``Sigma`` obeys the family's constraints.

        Equal volumes and shapes are compared within ``rtol``; an equal orientation means the
        covariances commute (they share eigenvectors).
        """
        if K == 1 or self.storage.shared:
            return
        scale, shape, _ = self.decompose(Sigma, K, d)
        if self.volume == "E" and np.ptp(np.log(scale)) > rtol:
            raise ValueError(
                f"covariance_type={self.name!r} has one volume |Sigma_k|^(1/d) for every "
                f"component, but Sigma's are {np.round(scale, 6)}; use a 'V..' model or equal "
                "volumes.")
        if self.shape == "E" and np.ptp(np.log(shape), axis=0).max() > rtol:
            raise ValueError(
                f"covariance_type={self.name!r} has one shape (eigenvalues over the volume) for "
                f"every component, but Sigma's differ:\n{np.round(shape, 6)}; use a '.V.' model.")
        if self.orientation == "E":
            full = self.to_full(Sigma, K, d)
            lhs = np.einsum("aij,bjk->abik", full, full)
            gap = np.abs(lhs - np.swapaxes(lhs, 0, 1)).max()
            if gap > rtol * np.abs(full).max() ** 2:
                raise ValueError(
                    f"covariance_type={self.name!r} has one orientation for every component, but "
                    f"Sigma's covariances do not share eigenvectors (|S_i S_j - S_j S_i| up to "
                    f"{gap:.3g}); use a '..V' model.")

    # -- the M-step ----------------------------------------------------------------------
    def m_step(self, W, B, n_k, prior, start=None):
        """``Sigma`` from scatter matrices: maximum likelihood, or MAP under ``prior``.

        Parameters
        ----------
        W : ndarray
            Scatter matrices about the component means, in the storage's statistics shape.
        B : ndarray or None
            The prior's mean-shrinkage scatter ``kappa0 n_k / (n_k + kappa0) (xbar_k - m0)(...)^T``,
            (K, d) or (K, d, d); None for maximum likelihood.
        n_k : ndarray of shape (K,)
        prior : Prior or None
            A proper prior (centred like ``W``), or None.
        start : ndarray of shape (K, d, d) or None
            The previous covariances: where the iterative M-steps start.

        Returns
        -------
        ndarray of shape :meth:`sigma_shape`
        """
        if prior is None:
            return self.ml(W, n_k, start=start)
        self.require_map()
        K, d = n_k.shape[0], B.shape[1]
        S, c = self.prior_terms(prior, K, d)
        Wt = self.storage.with_prior_scatter(W, B, S, K)
        return self.ml(Wt, n_k + c, start=start)

    def require_map(self):
        """Raise ``ValueError`` unless the family has a MAP M-step."""
        if not self.has_map:
            raise ValueError(
                f"covariance_type={self.name!r} has no conjugate prior (as in mclust, MAP exists "
                f"for {', '.join(f.name for f in FAMILIES if f.has_map)}); fit it by "
                "maximum likelihood (prior=None).")

    def log_prior_sigma(self, Sigma, prior):
        r"""Log of the covariance factor of the prior density its MAP M-step maximises.

        ``sum_k -(c_k - 1) / 2 log|Sigma_k| - tr(S_k Sigma_k^-1) / 2`` (one term per component, the
        shares of a shared covariance adding up to its prior), up to a constant. With the mean
        prior's ``N(m0, Sigma_k / kappa0)`` this is the density the MAP M-step maximises; for the
        conjugate families it is their inverse-Wishart / inverse-gamma without the normalising
        constant.

        Parameters
        ----------
        Sigma : ndarray of shape (K, d, d)
            Covariances, full.
        prior : Prior
            A proper prior.

        Returns
        -------
        float
        """
        self.require_map()
        K, d = Sigma.shape[0], Sigma.shape[1]
        S, c = self.prior_terms(prior, K, d)
        S = np.diag(S) if S.ndim == 1 else S
        L = np.linalg.cholesky(Sigma)
        logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
        trace = np.einsum("kij,ji->k", np.linalg.inv(Sigma), S)
        return float(-0.5 * ((c - 1.0) * logdet + trace).sum())


# ----------------------------------------------------------------------------------------------
# helpers


def _geo(a):
    """Geometric mean along the last axis: ``|diag(a)|^(1/d)``."""
    return np.exp(np.log(a).mean(axis=-1))


def _diag_of(W):
    """Diagonals of ``(K, d, d)`` matrices, or the ``(K, d)`` input itself."""
    return np.diagonal(W, axis1=-2, axis2=-1) if W.ndim == 3 else W


def _converged(old, new):
    return abs(new - old) <= INNER_TOL * max(abs(new), 1.0)


# ----------------------------------------------------------------------------------------------
# maximum likelihood (Celeux & Govaert 1995, table 1 and section 3)


def _ml_EII(W, n_k, start=None):
    K, d = W.shape
    return np.full(K, W.sum() / (n_k.sum() * d))


def _ml_VII(W, n_k, start=None):
    return W.sum(axis=1) / (n_k * W.shape[1])


def _ml_EEI(W, n_k, start=None):
    return np.broadcast_to(W.sum(axis=0) / n_k.sum(), W.shape).copy()


def _vei(omega, n_k):
    """Volumes and a shared shape for eigenvalue (or diagonal) scatters ``omega`` (K, d).

    ``lambda_k = tr(Omega_k A^-1) / (d n_k)``, ``A = diag(sum_k Omega_k / lambda_k)`` normalised,
    alternated until the objective ``sum_k n_k d log lambda_k + tr(Omega_k A^-1) / lambda_k``
    stops falling (each half-step is its exact minimiser given the other).
    """
    K, d = omega.shape
    lam = omega.sum(axis=1) / (d * n_k)
    A = np.ones(d)
    if not np.all(lam > 0):                     # a collapsed component: EM reports it
        return lam, A
    old = np.inf
    for _ in range(INNER_MAX):
        A = omega.T @ (1.0 / lam)
        if not np.all(A > 0):                   # no spread along an axis: EM reports it
            break
        A = A / _geo(A)
        lam = (omega / A).sum(axis=1) / (d * n_k)
        obj = d * (n_k * np.log(lam)).sum() + d * n_k.sum()
        if _converged(old, obj):
            break
        old = obj
    return lam, A


def _ml_VEI(W, n_k, start=None):
    lam, A = _vei(W, n_k)
    return lam[:, None] * A


def _ml_EVI(W, n_k, start=None):
    if not np.all(W > 0):                       # a collapsed component: EM reports it
        return W / n_k[:, None]
    g = _geo(W)
    return (g.sum() / n_k.sum()) * W / g[:, None]


def _ml_VVI(W, n_k, start=None):
    return W / n_k[:, None]


def _ml_EEE(W, n_k, start=None):
    return W / n_k.sum()


def _ml_VEE(W, n_k, start=None):
    """VEE: ``Sigma_k = lambda_k C`` with ``|C| = 1``.

    ``C`` from ``sum_k W_k / lambda_k``, then ``lambda_k = tr(W_k C^-1) / (d n_k)``, alternated
    (Celeux & Govaert 1995, section 3.2).
    """
    K, d, _ = W.shape
    lam = np.trace(W, axis1=1, axis2=2) / (d * n_k)
    C = np.eye(d)
    if not np.all(lam > 0):                     # a collapsed component: EM reports it
        return lam[:, None, None] * C
    old = np.inf
    for _ in range(INNER_MAX):
        C = np.tensordot(1.0 / lam, W, axes=1)
        sign, logdet = np.linalg.slogdet(C)
        if sign <= 0:                           # singular pooled shape: EM reports it
            break
        C = C / np.exp(logdet / d)
        lam = np.einsum("kij,ji->k", W, np.linalg.inv(C)) / (d * n_k)
        obj = d * (n_k * np.log(lam)).sum()
        if _converged(old, obj):
            break
        old = obj
    return lam[:, None, None] * C


def _orientation_mm(W, WD, M, D, w):
    """One pair of MM steps (Browne & McNicholas 2014) on the orientation.

    They lower ``sum_k tr(W_k D M_k D^T)`` over orthogonal ``D``; ``M`` of shape (K, d) holds
    the diagonals of ``M_k``, ``WD`` the products ``W_k D`` and ``w`` the largest eigenvalue
    of each ``W_k``. The first step's matrix is ``sum_k (w_k I - W_k) D M_k``, the second's
    ``sum_k W_k D (m_k I - M_k)`` with ``m_k = max diag M_k``.
    """
    D = _polar(D * (w @ M) - np.einsum("kil,kl->il", WD, M))
    return _polar(np.einsum("kil,kl->il", W @ D, M.max(axis=1)[:, None] - M))


def _polar(G):
    """The orthogonal factor ``U V^T`` of ``G = U S V^T``: the orthogonal matrix nearest ``G``."""
    from scipy.linalg import lapack  # LAPACK's SVD without NumPy's wrapper: half the time here

    U, _, Vt, info = lapack.dgesdd(G)
    if info:
        U, _, Vt = np.linalg.svd(G)
    return U @ Vt


def _common_orientation(W, n_k, varying_volume, start=None):
    """EVE (``lambda D A_k D^T``) and VVE (``D diag(c_k) D^T``).

    Given ``D`` the eigenvalues are closed form from ``E_k = diag(D^T W_k D)``; ``D`` moves by
    MM steps; alternated.
    """
    K, d, _ = W.shape
    # warm start at the previous iteration's orientation (every start lowers the objective)
    D = np.linalg.eigh(np.tensordot(1.0 / n_k, W, axes=1) if start is None
                       else start.sum(axis=0))[1]
    w = np.linalg.eigvalsh(W)[:, -1]             # largest eigenvalues: fixed while D moves
    old = np.inf
    for _ in range(INNER_MAX if start is None else INNER_WARM):
        WD = W @ D
        E = np.einsum("kji,ji->ki", WD, D)          # diag(D^T W_k D)
        if not np.all(E > 0):                   # a collapsed component: EM reports it
            c = E / n_k[:, None]
            break
        if varying_volume:
            c = E / n_k[:, None]
        else:
            g = _geo(E)
            c = (g.sum() / n_k.sum()) * E / g[:, None]
        obj = (n_k * np.log(c).sum(axis=1)).sum() + (E / c).sum()
        if _converged(old, obj):
            break
        old = obj
        D = _orientation_mm(W, WD, 1.0 / c, D, w)
    return np.einsum("ij,kj,lj->kil", D, c, D)


def _ml_EVE(W, n_k, start=None):
    return _common_orientation(W, n_k, varying_volume=False, start=start)


def _ml_VVE(W, n_k, start=None):
    return _common_orientation(W, n_k, varying_volume=True, start=start)


def _eigen(W):
    """Eigenvalues (decreasing) and eigenvectors of each ``W_k``."""
    ev, vec = np.linalg.eigh(W)
    return np.maximum(ev[:, ::-1], 0.0), vec[:, :, ::-1]


def _ml_EEV(W, n_k, start=None):
    omega, L = _eigen(W)
    A = omega.sum(axis=0)
    lam_A = A / n_k.sum()
    return np.einsum("kij,j,klj->kil", L, lam_A, L)


def _ml_VEV(W, n_k, start=None):
    omega, L = _eigen(W)
    lam, A = _vei(omega, n_k)
    return np.einsum("kij,kj,klj->kil", L, lam[:, None] * A, L)


def _ml_EVV(W, n_k, start=None):
    d = W.shape[1]
    sign, logdet = np.linalg.slogdet(W)
    if not np.all(sign > 0):                    # a collapsed component: EM reports it
        return W / n_k[:, None, None]
    g = np.exp(logdet / d)
    return (g.sum() / n_k.sum()) * W / g[:, None, None]


def _ml_VVV(W, n_k, start=None):
    return W / n_k[:, None, None]


# ----------------------------------------------------------------------------------------------
# MAP under mclust's conjugate prior (Fraley & Raftery 2007): mu_k | Sigma_k ~ N(m0, Sigma_k /
# kappa0) and a prior on Sigma with scale Psi0 and nu0 degrees of freedom. Every MAP M-step is the
# family's ML M-step on a posterior scatter and count,
#
#     W~_k = W_k + B_k + S_k,    n~_k = n_k + c_k,
#
# (B_k the mean prior's shrinkage scatter), so it is the exact maximiser of the likelihood times
# the density prod_k N(mu_k | m0, Sigma_k / kappa0) |Sigma_k|^(-(c_k - 1) / 2)
# exp(-tr(S_k Sigma_k^-1) / 2). Each family's ``(S_k, c_k)`` below is mclust 6's EM (``me*``, what
# ``Mclust`` fits; one component is its ``mvn`` XII / XXI / XXX), checked against its first M-step
# to rounding for K = 1, 2, 3, 5 on three data sets (tests/data/mclust/make_mstep.R). For the six
# conjugate families the density is a proper inverse-Wishart (full, tied) or inverse-gamma (one
# per variance) prior, once for a shared covariance, unless ``Prior(mclust=True)`` asks for
# mclust's EII and EEI, which are not its mode; for VEI, EVI, EEV and VEV it is mclust's improper
# one. (mclust's ``mstep`` differs from its ``me`` for EEI, EVI and EEV: the fits follow ``me``.)


def _terms_EII(prior, K, d):
    s2 = np.trace(prior.Psi0) / d
    if prior.mclust and K > 1:  # mclust's meeiip leaves the scale out (its one-component XII not)
        s2 = 0.0
    return np.full(d, s2 / (d * K)), np.full(K, 1.0 + (prior.nu0 + 2) / (d * K))


def _terms_VII(prior, K, d):
    s2 = np.trace(prior.Psi0) / d
    return np.full(d, s2 / d), np.full(K, 1.0 + (prior.nu0 + 2) / d)


def _terms_EEI(prior, K, d):
    if prior.mclust and K > 1:  # mclust's meeeip leaves the mean prior's |Sigma|^(-K/2) out
        return np.diag(prior.Psi0) / K, np.full(K, (prior.nu0 + 2) / K)
    return np.diag(prior.Psi0) / K, np.full(K, 1.0 + (prior.nu0 + 2) / K)


def _terms_VVI(prior, K, d):
    return np.diag(prior.Psi0), np.full(K, prior.nu0 + 3.0)


def _terms_EEE(prior, K, d):
    return prior.Psi0 / K, np.full(K, 1.0 + (prior.nu0 + d + 1) / K)


def _terms_VVV(prior, K, d):
    return prior.Psi0, np.full(K, prior.nu0 + d + 2.0)


def _terms_VEI(prior, K, d):
    if K == 1:                  # one component: mclust fits XXI, i.e. VVI (so EVI, whose terms agree)
        return _terms_VVI(prior, K, d)
    return np.diag(prior.Psi0), np.full(K, (prior.nu0 + 3) / d)


def _terms_EVI(prior, K, d):
    if K == 1:
        return _terms_VVI(prior, K, d)
    return np.diag(prior.Psi0), np.full(K, (prior.nu0 + 2) / K)


def _terms_EEV(prior, K, d):
    if K == 1:                  # one component: mclust fits XXX, i.e. VVV
        return _terms_VVV(prior, K, d)
    return prior.Psi0, np.full(K, (prior.nu0 + d + 2) / K)


def _terms_VEV(prior, K, d):
    if K == 1:
        return _terms_VVV(prior, K, d)
    return prior.Psi0, np.zeros(K)


# ----------------------------------------------------------------------------------------------
# the registry

FAMILIES = (
    Family("EII", None, SPHERICAL, _ml_EII, _terms_EII, conjugate=True, pymc=True),
    Family("VII", "spherical", SPHERICAL, _ml_VII, _terms_VII, conjugate=True, pymc=True),
    Family("EEI", None, DIAG, _ml_EEI, _terms_EEI, conjugate=True, pymc=True),
    Family("VEI", None, DIAG, _ml_VEI, _terms_VEI),
    Family("EVI", None, DIAG, _ml_EVI, _terms_EVI),
    Family("VVI", "diag", DIAG, _ml_VVI, _terms_VVI, conjugate=True, pymc=True),
    Family("EEE", "tied", TIED, _ml_EEE, _terms_EEE, conjugate=True, pymc=True),
    Family("VEE", None, FULL, _ml_VEE),
    Family("EVE", None, FULL, _ml_EVE),
    Family("VVE", None, FULL, _ml_VVE),
    Family("EEV", None, FULL, _ml_EEV, _terms_EEV),
    Family("VEV", None, FULL, _ml_VEV, _terms_VEV),
    Family("EVV", None, FULL, _ml_EVV),
    Family("VVV", "full", FULL, _ml_VVV, _terms_VVV, conjugate=True, pymc=True),
)

#: every accepted name (mclust's and scikit-learn's) -> its family
BY_NAME = {f.name: f for f in FAMILIES} | {f.alias: f for f in FAMILIES if f.alias}

#: mclust's names, in mclust's order
MCLUST_NAMES = tuple(f.name for f in FAMILIES)

#: scikit-learn's names, aliases of VVV, EEE, VVI and VII
SKLEARN_TYPES = tuple(f.alias for f in FAMILIES[::-1] if f.alias)

#: every accepted covariance type: mclust's 14 models, then scikit-learn's names of four of them
COVARIANCE_TYPES = MCLUST_NAMES + SKLEARN_TYPES[::-1]


def family(covariance_type):
    """The :class:`Family` of a covariance type name (mclust's or scikit-learn's).

    Parameters
    ----------
    covariance_type : str or Family

    Returns
    -------
    Family
    """
    if isinstance(covariance_type, Family):
        return covariance_type
    try:
        return BY_NAME[covariance_type]
    except (KeyError, TypeError):
        raise ValueError(
            f"covariance_type={covariance_type!r} is not supported; use one of mclust's "
            f"{', '.join(MCLUST_NAMES)} or scikit-learn's spherical, diag, tied, full."
        ) from None

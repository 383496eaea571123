r"""The four layouts a covariance is stored in, one entry each.

Every covariance family (:mod:`models.families`) stores ``Sigma`` in one of scikit-learn's four
shapes. Everything that depends on the layout, and not on the family's constraints, lives here:

=========  =========  ===================================  ==========  =======================
layout     ``Sigma``  DataTree dims                        E-step      prior (:mod:`models.prior`)
=========  =========  ===================================  ==========  =======================
spherical  (K,)       (component,)                         SQUARES     inverse-gamma
diag       (K, d)     (component, feature)                 SQUARES     inverse-gamma per feature
tied       (d, d)     (feature, feature_bis)               LINEAR      inverse-Wishart
full       (K, d, d)  (component, feature, feature_bis)    PRODUCTS    inverse-Wishart
=========  =========  ===================================  ==========  =======================

The E-step column names the feature rows ``z(x)`` (:mod:`models.features`) in which the log joint
``log pi_k + log N(x | mu_k, Sigma_k)`` of the layout is linear: ``LINEAR`` is ``x``, ``SQUARES``
``(1, x, x_1^2, ..., x_d^2)`` and ``PRODUCTS`` ``(1, x, x_i x_j for i <= j)``. The sufficient
statistics of the M-step are the same features summed with the responsibilities.

Adding a layout means adding one entry to :data:`STORAGES`; nothing else in the suite branches on a
layout's name (``tests/test_layout.py`` counts such branches).
"""

from __future__ import annotations

import functools
import math

import numpy as np

LINEAR, SQUARES, PRODUCTS = 0, 1, 2

_LOG_2PI = np.log(2 * np.pi)

#: precise (factored) Mahalanobis terms for full covariance above this conditioning figure
#: ``max_k tr(Lambda_k) * max_k (|mu_k|^2 + tr Sigma_k)`` (centred coordinates): the expanded
#: form's absolute error is about ``eps`` times it.
PRECISE_ABOVE = 1e6


def vech_index(d):
    """Row and column of each product feature ``x_i x_j`` (``i <= j``), in the order written.

    Parameters
    ----------
    d : int

    Returns
    -------
    (ndarray, ndarray)
        ``i`` and ``j`` of shape (d(d+1)/2,).
    """
    return _vech_index(int(d))


@functools.lru_cache(maxsize=64)
def _vech_index(d):
    i, j = np.triu_indices(d)
    i.flags.writeable = j.flags.writeable = False
    return i, j


def _log_multigamma(a, d):
    """``log Gamma_d(a)``, the multivariate gamma function (``scipy.special.multigammaln``)."""
    return 0.25 * d * (d - 1) * np.log(np.pi) + sum(math.lgamma(a - 0.5 * j) for j in range(d))


def upper_precision_factors(L):
    """Upper-triangular ``U_k = L_k^{-T}``, so that ``Sigma_k^{-1} = U_k U_k^T``.

    LAPACK's triangular inverse (``trtri``) of each lower Cholesky factor ``L_k``.

    Parameters
    ----------
    L : ndarray of shape (m, d, d)

    Returns
    -------
    ndarray of shape (m, d, d)
    """
    from scipy.linalg import lapack  # SciPy only where a factor is inverted

    inv = [lapack.dtrtri(Lk, lower=1)[0] for Lk in L]
    return np.swapaxes(np.stack(inv), 1, 2)


def cholesky_factors(mats):
    """Lower Cholesky factors of a stack of matrices, and which ones are not positive-definite.

    Parameters
    ----------
    mats : ndarray of shape (m, d, d)

    Returns
    -------
    L : ndarray of shape (m, d, d)
        A zero factor where a matrix is not positive-definite.
    bad : ndarray of int
        Indices of the matrices that are not positive-definite.
    """
    try:                                   # one batched factorisation; per matrix on failure
        return np.linalg.cholesky(mats), np.zeros(0, dtype=int)
    except np.linalg.LinAlgError:
        L, bad = np.zeros_like(mats), []
        for k, S in enumerate(mats):
            try:
                L[k] = np.linalg.cholesky(S)
            except np.linalg.LinAlgError:
                bad.append(k)
        return L, np.asarray(bad, dtype=int)


class Storage:
    """One covariance layout: its shape and everything computed from ``Sigma`` in it.

    Attributes
    ----------
    name : str
        scikit-learn's name of the layout.
    dims : tuple of str
        Dimension names of ``Sigma`` in a DataTree (after ``chain`` and ``draw``).
    kind : int
        The feature rows of the E-step (``LINEAR``, ``SQUARES`` or ``PRODUCTS``).
    matrix : bool
        ``Sigma`` holds matrices (tied, full), not variances.
    shared : bool
        One ``Sigma`` for every component (tied).
    """

    name = ""
    dims = ()
    kind = PRODUCTS
    matrix = True
    shared = False

    def __repr__(self):
        return f"Storage({self.name!r})"

    # -- shapes ----------------------------------------------------------------------------
    def shape(self, K, d):
        """Shape of ``Sigma`` for K components in d dimensions."""
        raise NotImplementedError

    def to_full(self, Sigma, K, d):
        """``Sigma`` as ``(..., K, d, d)`` matrices; a stack ``(..., *shape)`` keeps its axes."""
        raise NotImplementedError

    def per_component(self, Sigma, K):
        """``Sigma`` with one entry per component along the first axis (tied repeated)."""
        return Sigma

    def from_full(self, full):
        """``Sigma`` in this layout from ``(K, d, d)`` matrices that obey it.

        The inverse of :meth:`to_full`: the matrices, the first one (tied), or their diagonals.
        """
        return np.asarray(full)

    def take(self, Sigma, index, axis=0):
        """Components reordered by ``index`` along ``axis`` (``np.take_along_axis``'s rules).

        ``index`` has the leading axes of ``Sigma`` up to ``axis`` and the new order along it; a
        1-D ``index`` reorders the components of one ``Sigma``. A tied ``Sigma`` is unchanged.
        """
        index = np.asarray(index)
        if index.ndim == 1:
            return np.asarray(Sigma)[index]
        index = index.reshape(index.shape + (1,) * (np.ndim(Sigma) - index.ndim))
        return np.take_along_axis(np.asarray(Sigma), index, axis=axis)

    def symmetrised(self, Sigma):
        """``(Sigma + Sigma^T) / 2`` for matrices; variances as they are."""
        return 0.5 * (Sigma + np.swapaxes(Sigma, -1, -2))

    # -- validity --------------------------------------------------------------------------
    def check(self, Sigma, covariance_type):
        """Raise ``ValueError`` unless ``Sigma`` is symmetric (matrices) or positive (variances)."""
        d = Sigma.shape[-1]
        mats = Sigma.reshape(-1, d, d)
        asym = np.abs(mats - np.swapaxes(mats, -1, -2)).max(initial=0.0)
        scale = np.abs(mats).max(initial=0.0)
        if asym > 1e-8 * max(scale, np.finfo(float).tiny):
            raise ValueError(
                f"Sigma must be symmetric; the largest |Sigma - Sigma^T| is {asym:.3g}. "
                "Symmetrise it with (S + S.T) / 2.")

    def factor(self, Sigma):
        """Lower Cholesky factors where ``Sigma`` holds matrices, and each one's conditional variances.

        Parameters
        ----------
        Sigma : ndarray of shape :meth:`shape`

        Returns
        -------
        L : ndarray of shape (m, d, d) or None
            One factor per stored matrix (m = K, or 1 for tied); None for variances. A matrix
            that is not positive-definite has a zero factor.
        cond : ndarray of shape (m, d)
            Conditional variances (squared factor diagonals), or the variances themselves.
        bad : ndarray of int
            Stored entries that are not positive-definite.
        """
        L, bad = cholesky_factors(Sigma.reshape(-1, Sigma.shape[-1], Sigma.shape[-1]))
        return L, np.diagonal(L, axis1=1, axis2=2) ** 2, bad

    # -- sufficient statistics (models.features) -------------------------------------------
    def moments(self, G, Z, w=None):
        """Raw moments of one block from its features: one product ``G @ Z.T``.

        Parameters
        ----------
        G : ndarray of shape (K, n)
            ``w_n gamma_nk``, components along the first axis.
        Z : ndarray of shape (p, n)
            The block's features (:func:`models.features.features` of :attr:`kind`).
        w : ndarray of shape (n,) or None or False
            The block's weights, for a second moment that does not depend on ``gamma`` (tied);
            False skips it.

        Returns
        -------
        GZ : ndarray of shape (K, p)
            ``sum_n g_nk z(x_n)`` (tied: of ``(1, x)``).
        XX : ndarray of shape (d, d) or None
            Tied only: ``sum_n w_n x_n x_n^T``.
        """
        return G @ Z.T, None

    def second_moments(self, rest, XX, K, d):
        """The M-step's second moments from the summed features past ``(1, x)``.

        Parameters
        ----------
        rest : ndarray of shape (K, p - 1 - d)
        XX : ndarray of shape (d, d) or None
            Tied only.
        K, d : int

        Returns
        -------
        ndarray
            (K, d, d) full, (d, d) tied, (K, d) diag and spherical, in float64.
        """
        i, j = vech_index(d)
        M = np.empty((K, d, d))
        M[:, i, j] = rest
        M[:, j, i] = rest
        return M

    def scatter(self, M, N_k, xbar):
        """Scatter about each component mean, ``S_k = M_k - N_k xbar_k xbar_k^T``, in this layout."""
        return M - N_k[:, None, None] * xbar[:, :, None] * xbar[:, None, :]

    def outer(self, c, dev):
        """``c_k dev_k dev_k^T`` (K, d, d), or its diagonal ``c_k dev_k^2`` (K, d) for variances."""
        return c[:, None, None] * dev[:, :, None] * dev[:, None, :]

    def quadratic(self, stats, m, Sigma):
        r"""``sum_nk g_nk (x_n - m_k)^T Sigma_k^{-1} (x_n - m_k)`` from the statistics of ``g``.

        .. math:: \sum_k \operatorname{tr}\bigl(\Sigma_k^{-1} (M_k - s_k m_k^T - m_k s_k^T
            + N_k m_k m_k^T)\bigr)

        Parameters
        ----------
        stats : models.features.SufficientStats
            ``N_k``, ``s`` and ``M`` of the weights ``g``, over the coordinates of ``m``.
        m : ndarray of shape (K, d)
        Sigma : ndarray of shape :meth:`shape`

        Returns
        -------
        float
        """
        ms = m[:, :, None] * stats.s[:, None, :]
        Q = (stats.M - ms - np.swapaxes(ms, 1, 2)
             + stats.N_k[:, None, None] * m[:, :, None] * m[:, None, :])
        return float(np.trace(np.linalg.solve(Sigma, Q), axis1=1, axis2=2).sum())

    def with_prior_scatter(self, W, B, S, K):
        """``W + B + S``: the MAP M-step's posterior scatter (tied: ``W + sum_k B_k + K S``)."""
        return W + B + S

    def ridge(self, S, reg, N_k, d):
        """``S_k + n_k reg I``: a ridge in the scatter, so every family keeps its constraints."""
        return S + reg * N_k[:, None, None] * np.eye(d)

    def plus(self, Sigma, reg, d):
        """``Sigma + reg I``."""
        return Sigma + reg * np.eye(d)

    def moments_from_full(self, M):
        """Second moments (K, d, d), e.g. missing cells' corrections, in this layout's statistics."""
        return M

    def select_features(self, Sigma, index):
        """``Sigma`` of the marginal on the features ``index`` (a sequence of int), same layout."""
        index = np.asarray(index)
        return np.asarray(Sigma)[..., index[:, None], index[None, :]]

    # -- the E-step kernel -----------------------------------------------------------------
    def kernel(self, params, shift):
        r"""Coefficients of the log joint in the features of data centred at ``shift``.

        .. math:: A_k = \bigl(\log \pi_k - \tfrac d2 \log 2\pi + \tfrac12 \log|\Lambda_k|
            - \tfrac12 \mu_k^T \Lambda_k \mu_k,\ \ \Lambda_k \mu_k,\ \ -\tfrac12 \Lambda_{k,ii},
            \ -\Lambda_{k,ij}\ (i < j)\bigr)

        Parameters
        ----------
        params : GMMParams
        shift : ndarray of shape (d,)

        Returns
        -------
        dict
            ``A`` (K, p) in float64, and where the layout needs them ``U`` (the precision factors
            a kernel multiplies rows by), ``b`` and ``Lam`` (see :class:`models.features.LogJoint`).
        """
        raise NotImplementedError

    def _matrix_terms(self, params, shift):
        mu = params.mu - shift
        with np.errstate(divide="ignore"):
            c = np.log(params.pi) - 0.5 * params.d * _LOG_2PI
        U = upper_precision_factors(np.asarray(params.cholesky[:1] if self.shared
                                               else params.cholesky))
        Lam = U @ np.swapaxes(U, 1, 2)
        c0 = c + np.log(np.diagonal(U, axis1=1, axis2=2)).sum(axis=1)
        lin = np.einsum("kij,kj->ki", np.broadcast_to(Lam, (params.K,) + Lam.shape[1:]), mu)
        return mu, U, Lam, c0, c0 - 0.5 * np.einsum("ki,ki->k", mu, lin), lin

    # -- scikit-learn's precision attributes -----------------------------------------------
    def precisions(self, Sigma):
        """``Sigma``'s inverse, in the same layout (scikit-learn's ``precisions_``)."""
        return np.linalg.inv(Sigma)

    def precision_cholesky(self, Sigma, cholesky):
        """scikit-learn's ``precisions_cholesky_``: ``P_k`` with ``Sigma_k^{-1} = P_k P_k^T``.

        Parameters
        ----------
        Sigma : ndarray of shape :meth:`shape`
        cholesky : ndarray of shape (K, d, d)
            Lower Cholesky factors of the covariances (``GMMParams.cholesky``).

        Returns
        -------
        ndarray
            ``L_k^{-T}``: (K, d, d) full, (d, d) tied; ``1 / sqrt(Sigma)`` (K, d) diag, (K,)
            spherical.
        """
        return upper_precision_factors(cholesky)

    def from_precisions(self, P):
        """Covariances from precisions in this layout."""
        return np.linalg.inv(np.asarray(P, dtype=np.float64))

    def check_precisions(self, P, label):
        """Raise ``ValueError`` unless the precisions are symmetric positive-definite (or positive)."""
        d = P.shape[-1]
        for k, Pk in enumerate(P.reshape(-1, d, d)):
            if not (np.allclose(Pk, Pk.T) and np.all(np.linalg.eigvalsh(Pk) > 0)):
                raise ValueError(f"'{label}' should be symmetric, positive-definite (matrix {k} "
                                 "is not).")

    # -- the conjugate prior ---------------------------------------------------------------
    def default_scale(self, cov, var, floor):
        """``Prior.default``'s scale before the ``K^(-2/d)`` factor.

        The sample covariance ``cov`` with the floored variances ``var`` on its diagonal (plus
        ``floor`` on the diagonal if that is still singular) for matrices; the mean variance times
        the identity for variances, as mclust does.
        """
        d = var.shape[0]
        Psi0 = cov + np.diag(var - np.diag(cov))
        if np.linalg.eigvalsh(Psi0)[0] <= 1e-12 * np.abs(Psi0).max():
            Psi0 = Psi0 + floor * np.eye(d)
        return Psi0

    def prior_scale(self, prior):
        """Parameters of the covariance prior: ``(nu0, Psi0)`` (inverse-Wishart) or ``(a, b)``.

        For variances, the inverse-gamma shape ``a = nu0 / 2`` and scale ``b``: ``diag(Psi0) / 2``
        (diag) or ``tr(Psi0) / (2 d)`` (spherical).
        """
        return prior.nu0, prior.Psi0

    def from_components(self, S, K):
        """``Sigma`` from one entry per component, or one shared entry, along the first axis."""
        return np.broadcast_to(S, (K,) + S.shape[1:]).copy()

    def draw_prior(self, prior, n, rng):
        """``n`` covariances from the prior, shape ``(n, *entry)``."""
        from scipy import stats

        nu, Psi = self.prior_scale(prior)
        d = Psi.shape[0]
        draws = stats.invwishart.rvs(df=nu, scale=Psi, size=n, random_state=rng)
        return np.asarray(draws, dtype=np.float64).reshape(n, d, d)

    def log_prior(self, Sigma, prior):
        r"""Sum of the prior's log densities of the covariances ``Sigma`` (m, *entry).

        The inverse-Wishart, with ``Sigma_k = L_k L_k^T`` and ``Psi = P P^T``:

        .. math:: \tfrac{\nu}{2} \log|\Psi| - \tfrac{\nu d}{2} \log 2 - \log\Gamma_d(\nu/2)
            - \tfrac{\nu + d + 1}{2} \log|\Sigma_k| - \tfrac12 |L_k^{-1} P|_F^2
        """
        nu, Psi = self.prior_scale(prior)
        d = Psi.shape[0]
        L = np.linalg.cholesky(Sigma)
        P, const = prior.constant("inverse-Wishart", lambda: self._wishart_terms(nu, Psi))
        logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
        trace = (np.linalg.solve(L, np.broadcast_to(P, L.shape)) ** 2).sum(axis=(1, 2))
        return float((const - 0.5 * (nu + d + 1) * logdet - 0.5 * trace).sum())

    @staticmethod
    def _wishart_terms(nu, Psi):
        """``Psi``'s lower Cholesky factor ``P`` and the density's normalising constant."""
        d = Psi.shape[0]
        P = np.linalg.cholesky(Psi)
        return P, (nu * np.log(np.diagonal(P)).sum() - 0.5 * nu * d * np.log(2.0)
                   - _log_multigamma(0.5 * nu, d))

    # -- the conjugate posterior (variational Bayes, em.variational) -------------------------
    # q(Sigma) has the prior's form: one factor per distinct covariance (m = K, or 1 when the
    # family shares it), with parameters (shape (m,), scale (m, *entry)): an inverse-Wishart's
    # (nu, Psi) here, an inverse-gamma's (a, b) for variances.

    def posterior_scatter(self, S, B, shared):
        """The data's part of each factor's scale: ``S_k + B_k``, summed over k if ``shared``.

        Parameters
        ----------
        S : ndarray
            Scatter about the component means (:meth:`scatter`).
        B : ndarray
            The mean prior's ``kappa0 N_k / (kappa0 + N_k) (xbar_k - m0)(xbar_k - m0)^T``
            (:meth:`outer`).
        shared : bool
            One covariance for every component (the family's ``shared_prior``).

        Returns
        -------
        ndarray of shape (m, *entry)
        """
        T = S + B
        return T.sum(axis=0, keepdims=True) if shared else T

    def posterior_scale(self, prior, T, n):
        r"""``q(Sigma)``'s parameters from the scatter ``T`` of ``n`` weighted rows per factor.

        .. math:: \nu = \nu_0 + n, \qquad \Psi = \Psi_0 + T

        Parameters
        ----------
        prior : Prior
            A proper prior.
        T : ndarray of shape (m, *entry)
            :meth:`posterior_scatter`.
        n : ndarray of shape (m,)
            Rows (sums of responsibilities) per factor.

        Returns
        -------
        shape : ndarray of shape (m,)
        scale : ndarray of shape (m, *entry)
        """
        nu0, Psi0 = self.prior_scale(prior)
        return nu0 + n, Psi0 + T

    def expected_precision(self, shape, scale, d):
        r"""``E[Lambda]^{-1}`` of each factor, and ``E[log|Lambda|] - log|E[Lambda]|``.

        .. math:: E[\Lambda] = \nu \Psi^{-1}, \qquad
            E[\log|\Lambda|] - \log|E[\Lambda]| = \sum_{i=1}^d
            \psi\bigl(\tfrac{\nu + 1 - i}2\bigr) + d \log 2 - d \log \nu

        (Bishop 2006, 10.65 and B.81.)

        Returns
        -------
        Sigma : ndarray of shape (m, *entry)
        gap : ndarray of shape (m,)
        """
        from scipy.special import digamma

        nu = np.asarray(shape, np.float64)
        gap = (digamma(0.5 * (nu[:, None] - np.arange(d))).sum(axis=1) + d * np.log(2.0)
               - d * np.log(nu))
        return scale / nu[:, None, None], gap

    def log_norm(self, shape, scale):
        r"""Log normalising constant of each factor's density (the inverse-Wishart's).

        .. math:: \log c(\nu, \Psi) = \tfrac\nu2 \log|\Psi| - \tfrac{\nu d}2 \log 2
            - \log\Gamma_d\bigl(\tfrac\nu2\bigr)

        Returns
        -------
        ndarray of shape (m,)
        """
        from scipy.special import multigammaln

        nu = np.asarray(shape, np.float64)
        d = scale.shape[-1]
        logdet = np.linalg.slogdet(scale)[1]
        return (0.5 * nu * logdet - 0.5 * nu * d * np.log(2.0)
                - np.array([multigammaln(0.5 * v, d) for v in nu]))

    def kl(self, shape, scale, prior):
        r"""``KL(q(Sigma) || p(Sigma))`` of each factor, exactly.

        .. math:: \log c - \log c_0 - \tfrac{\nu - \nu_0}2 E[\log|\Sigma|]
            - \tfrac{\nu d}2 + \tfrac\nu2 \operatorname{tr}(\Psi_0 \Psi^{-1})

        with ``E[log|Sigma|] = log|Psi| - sum_i psi((nu + 1 - i)/2) - d log 2``.

        Returns
        -------
        ndarray of shape (m,)
        """
        from scipy.special import digamma

        nu0, Psi0 = self.prior_scale(prior)
        nu = np.asarray(shape, np.float64)
        d = scale.shape[-1]
        e_logdet = (np.linalg.slogdet(scale)[1]
                    - digamma(0.5 * (nu[:, None] - np.arange(d))).sum(axis=1) - d * np.log(2.0))
        trace = np.trace(np.linalg.solve(scale, np.broadcast_to(Psi0, scale.shape)),
                         axis1=1, axis2=2)
        log_c0 = self.log_norm(np.atleast_1d(nu0), np.asarray(Psi0)[None])
        return (self.log_norm(nu, scale) - log_c0 - 0.5 * (nu - nu0) * e_logdet
                - 0.5 * nu * d + 0.5 * nu * trace)

    def posterior_mean(self, shape, scale, d):
        """``E[Sigma]`` of each factor, ``Psi / (nu - d - 1)`` (NaN where ``nu <= d + 1``)."""
        nu = np.asarray(shape, np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where((nu > d + 1)[:, None, None], scale / (nu - d - 1)[:, None, None],
                            np.nan)

    def draw(self, shape, scale, n, rng):
        """``n`` draws of every factor, shape ``(n, m, *entry)``."""
        from scipy import stats

        return np.stack([np.asarray(stats.invwishart.rvs(df=v, scale=P, size=n, random_state=rng),
                                    np.float64).reshape(n, *P.shape)
                         for v, P in zip(shape, scale)], axis=1)

    def log_density(self, Sigma, shape, scale):
        """Log density of each factor's ``Sigma`` (m, *entry) under ``q``, shape (m,)."""
        from scipy import stats

        return np.array([stats.invwishart.logpdf(S, df=v, scale=P)
                         for S, v, P in zip(Sigma, shape, scale)])


class _Variances(Storage):
    """Axis-aligned layouts: variances, not matrices."""

    matrix = False
    kind = SQUARES

    def check(self, Sigma, covariance_type):
        if np.any(Sigma <= 0):
            bad = np.argwhere(Sigma <= 0)[0]
            raise ValueError(
                f"Sigma for covariance_type={covariance_type!r} holds variances, which must be "
                f"positive; Sigma{list(bad)} = {Sigma[tuple(bad)]!r}.")

    def symmetrised(self, Sigma):
        return Sigma

    def variances(self, Sigma, d):
        """The (K, d) variances of each component."""
        raise NotImplementedError

    def from_full(self, full):
        return self.from_variances(np.diagonal(np.asarray(full), axis1=-2, axis2=-1))

    def from_variances(self, var):
        """``Sigma`` in the layout from (K, d) variances that obey it."""
        raise NotImplementedError

    def factor(self, Sigma):
        var = self.variances(Sigma, None)
        return None, var, np.flatnonzero(~(np.min(var, axis=1) > 0))

    def second_moments(self, rest, XX, K, d):
        return np.array(rest, dtype=np.float64)

    def scatter(self, M, N_k, xbar):
        return M - N_k[:, None] * xbar**2

    def outer(self, c, dev):
        return c[:, None] * dev**2

    def quadratic(self, stats, m, Sigma):
        Q = stats.M - 2 * stats.s * m + stats.N_k[:, None] * m**2
        return float(np.sum(Q / self.variances(Sigma, None)))

    def ridge(self, S, reg, N_k, d):
        return S + reg * N_k[:, None]

    def plus(self, Sigma, reg, d):
        return Sigma + reg

    def moments_from_full(self, M):
        return np.diagonal(M, axis1=1, axis2=2)

    def kernel(self, params, shift):
        d = params.d
        mu = params.mu - shift
        with np.errstate(divide="ignore"):
            c = np.log(params.pi) - 0.5 * d * _LOG_2PI
        prec = 1.0 / self.variances(params.Sigma, d)
        lin = mu * prec
        c = c + 0.5 * np.log(prec).sum(axis=1) - 0.5 * (mu * lin).sum(axis=1)
        return {"A": np.column_stack([c, lin, -0.5 * prec])}

    def precisions(self, Sigma):
        return 1.0 / Sigma

    def precision_cholesky(self, Sigma, cholesky):
        return 1.0 / np.sqrt(Sigma)

    def from_precisions(self, P):
        return 1.0 / np.asarray(P, dtype=np.float64)

    def check_precisions(self, P, label):
        if np.any(P <= 0):
            raise ValueError(f"'{label}' should be positive; the smallest entry is {P.min():.5g}.")

    def default_scale(self, cov, var, floor):
        return var.mean() * np.eye(var.shape[0])

    def draw_prior(self, prior, n, rng):
        a, b = self.prior_scale(prior)
        return b / rng.gamma(a, 1.0, size=(n,) + np.shape(b))

    def log_prior(self, Sigma, prior):
        # the inverse-gamma: a log b - log Gamma(a) - (a + 1) log x - b / x
        a, b = self.prior_scale(prior)
        Sigma = np.asarray(Sigma, dtype=np.float64)
        b = np.broadcast_to(b, Sigma.shape)
        return float((a * np.log(b) - math.lgamma(a) - (a + 1.0) * np.log(Sigma) - b / Sigma).sum())

    # an inverse-gamma (a, b) per variance; a is shared by a factor's variances
    @staticmethod
    def _per_variance(shape, scale):
        shape = np.asarray(shape, np.float64)
        return shape.reshape(shape.shape + (1,) * (np.ndim(scale) - 1))

    def expected_precision(self, shape, scale, d):
        # E[1/sigma2] = a / b, E[log 1/sigma2] = psi(a) - log b: d variances (or one, d times)
        from scipy.special import digamma

        shape = np.asarray(shape, np.float64)
        return scale / self._per_variance(shape, scale), d * (digamma(shape) - np.log(shape))

    def log_norm(self, shape, scale):
        from scipy.special import gammaln

        a = self._per_variance(shape, scale)
        terms = a * np.log(scale) - gammaln(a)
        return np.broadcast_to(terms, np.shape(scale)).reshape(len(scale), -1).sum(axis=1)

    def kl(self, shape, scale, prior):
        from scipy.special import digamma, gammaln

        a0, b0 = self.prior_scale(prior)
        a, b = self._per_variance(shape, scale), scale
        terms = (a * np.log(b) - gammaln(a) - a0 * np.log(b0) + gammaln(a0)
                 - (a - a0) * (np.log(b) - digamma(a)) - a + b0 * a / b)
        return np.broadcast_to(terms, np.shape(b)).reshape(len(b), -1).sum(axis=1)

    def posterior_mean(self, shape, scale, d):
        a = self._per_variance(shape, scale)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 1, scale / (a - 1), np.nan)

    def draw(self, shape, scale, n, rng):
        a = self._per_variance(shape, scale)
        return scale / rng.gamma(np.broadcast_to(a, np.shape(scale)), 1.0,
                                 size=(n,) + np.shape(scale))

    def log_density(self, Sigma, shape, scale):
        from scipy import stats

        a = self._per_variance(shape, scale)
        dens = stats.invgamma.logpdf(Sigma, a, scale=scale)
        return np.asarray(dens).reshape(len(scale), -1).sum(axis=1)


class _Spherical(_Variances):
    name = "spherical"
    dims = ("component",)

    def shape(self, K, d):
        return (K,)

    def to_full(self, Sigma, K, d):
        return np.asarray(Sigma)[..., None, None] * np.eye(d)

    def variances(self, Sigma, d):
        var = Sigma[:, None]
        return var if d is None else np.repeat(var, d, axis=1)

    def select_features(self, Sigma, index):
        return np.array(Sigma)

    def prior_scale(self, prior):
        return prior.nu0 / 2.0, np.trace(prior.Psi0) / (2.0 * prior.d)

    def from_variances(self, var):
        return var[..., 0]

    def posterior_scale(self, prior, T, n):
        # one variance for the d coordinates: n d scalar rows, the scatter's trace
        a0, b0 = self.prior_scale(prior)
        return a0 + 0.5 * n * T.shape[-1], b0 + 0.5 * T.sum(axis=-1)


class _Diag(_Variances):
    name = "diag"
    dims = ("component", "feature")

    def shape(self, K, d):
        return (K, d)

    def to_full(self, Sigma, K, d):
        return np.asarray(Sigma)[..., :, None] * np.eye(d)

    def variances(self, Sigma, d):
        return Sigma

    def select_features(self, Sigma, index):
        return np.asarray(Sigma)[:, np.asarray(index)]

    def prior_scale(self, prior):
        return prior.nu0 / 2.0, np.diag(prior.Psi0) / 2.0

    def from_variances(self, var):
        return var

    def posterior_scale(self, prior, T, n):
        a0, b0 = self.prior_scale(prior)
        return a0 + 0.5 * n, b0 + 0.5 * T


class _Tied(Storage):
    name = "tied"
    dims = ("feature", "feature_bis")
    kind = LINEAR
    shared = True

    def shape(self, K, d):
        return (d, d)

    def to_full(self, Sigma, K, d):
        Sigma = np.asarray(Sigma)
        return np.broadcast_to(Sigma[..., None, :, :], Sigma.shape[:-2] + (K, d, d)).copy()

    def per_component(self, Sigma, K):
        return np.broadcast_to(Sigma, (K,) + Sigma.shape)

    def from_full(self, full):
        return np.asarray(full)[..., 0, :, :]

    def take(self, Sigma, index, axis=0):
        return Sigma

    def from_components(self, S, K):
        return np.array(S[0])

    def moments(self, G, Z, w=None):
        GZ = np.column_stack([G.sum(axis=1), G @ Z.T])   # the implicit 1, then x
        if w is False:
            return GZ, None
        return GZ, (Z if w is None else Z * w) @ Z.T

    def second_moments(self, rest, XX, K, d):
        return np.array(XX, dtype=np.float64)

    def moments_from_full(self, M):
        return M.sum(axis=0)

    def scatter(self, M, N_k, xbar):
        return M - (N_k[:, None] * xbar).T @ xbar

    def with_prior_scatter(self, W, B, S, K):
        return W + B.sum(axis=0) + K * S

    def posterior_scatter(self, S, B, shared):
        return (S + B.sum(axis=0))[None]      # the scatter S is pooled already

    def quadratic(self, stats, m, Sigma):
        sm = stats.s.T @ m          # M is sum_n g_n x_n x_n^T over every row: sum_k g_nk = g_n
        Q = stats.M - sm - sm.T + (stats.N_k * m.T) @ m
        return float(np.trace(np.linalg.solve(Sigma, Q)))

    def ridge(self, S, reg, N_k, d):
        return S + reg * N_k.sum() * np.eye(d)

    def kernel(self, params, shift):
        _, U, Lam, _, c, lin = self._matrix_terms(params, shift)
        return {"A": np.column_stack([c, lin]), "U": U[0].T, "Lam": Lam[0]}

    def precision_cholesky(self, Sigma, cholesky):
        return upper_precision_factors(cholesky[:1])[0]


class _Full(Storage):
    name = "full"
    dims = ("component", "feature", "feature_bis")

    def shape(self, K, d):
        return (K, d, d)

    def to_full(self, Sigma, K, d):
        return np.asarray(Sigma)

    def kernel(self, params, shift):
        K, d = params.K, params.d
        mu, U, Lam, c0, c, lin = self._matrix_terms(params, shift)
        spread = np.max((mu**2).sum(axis=1) + np.trace(params.Sigma, axis1=1, axis2=2))
        if np.max(np.trace(Lam, axis1=1, axis2=2)) * spread > PRECISE_ABOVE:
            # the factored form |U_k^T x - U_k^T mu_k|^2 (see models.features.LogJoint)
            b = np.einsum("kij,ki->kj", U, mu).reshape(K * d, 1)
            return {"A": c0[:, None], "U": np.swapaxes(U, 1, 2).reshape(K * d, d), "b": b}
        i, j = vech_index(d)
        quad = -Lam[:, i, j] * np.where(i == j, 0.5, 1.0)
        return {"A": np.column_stack([c, lin, quad])}


SPHERICAL, DIAG, TIED, FULL = _Spherical(), _Diag(), _Tied(), _Full()

#: the layouts, in the order of their Sigma ranks
STORAGES = (SPHERICAL, DIAG, TIED, FULL)

#: layout name -> layout
BY_NAME = {s.name: s for s in STORAGES}


def storage_of_dims(dims):
    """The layout whose ``Sigma`` has these dimension names (a DataTree's ``Sigma.dims``).

    Parameters
    ----------
    dims : sequence of str
        ``Sigma``'s dims, with or without ``chain`` and ``draw``.

    Returns
    -------
    Storage
    """
    core = tuple(d for d in dims if d not in ("chain", "draw"))
    for s in STORAGES:
        if s.dims == core:
            return s
    raise ValueError(f"Sigma with dims {tuple(dims)} matches no covariance layout; expected one of "
                     f"{[s.dims for s in STORAGES]}.")

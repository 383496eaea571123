r"""The Gibbs route: the explicit-z model's full conditionals, every chain in one NumPy program.

The model is :func:`models.pymc.build_model`'s with ``latent="explicit"``, under the same
:class:`models.Prior` (:mod:`models.prior`): ``pi ~ Dirichlet(alpha)``, ``mu_k | Sigma_k ~
N(m0, Sigma_k / kappa0)``, the covariance's inverse-Wishart or inverse-gamma prior (once when it
is shared), ``z_n ~ Categorical(pi)``, ``x_n | z_n = k ~ N(mu_k, Sigma_k)``. A sweep draws two
blocks, each exactly from its full conditional: the allocations given the parameters, then the
parameters given the allocations (the weights, and the means with the covariances, are
independent given ``z``).

**Allocations.** Independently for each observation,

.. math:: z_n \mid \pi, \mu, \Sigma, x \sim \mathrm{Categorical}(\gamma_n), \quad
    \gamma_{nk} = \frac{\pi_k \mathcal N(x_n \mid \mu_k, \Sigma_k)}
    {\sum_j \pi_j \mathcal N(x_n \mid \mu_j, \Sigma_j)}

computed as EM's E-step is: the log joints of every chain's components are one product of a
coefficient matrix with the data's feature rows (:mod:`models.features`; the features are built
once, since the data do not change), and ``sum_n log sum_k`` of the same numbers is each
draw's log-likelihood, for the convergence checks.

**Weights.** With ``N_k = #{n : z_n = k}``,

.. math:: \pi \mid z \sim \mathrm{Dirichlet}(\alpha + N)

**Means and covariances.** With ``xbar_k`` the mean and ``S_k`` the scatter about it of the
observations allocated to k (the sufficient statistics of EM's M-step, from the same feature
rows: :func:`models.features.design_moments`, :func:`models.features.stats_from_moments`),

.. math:: \kappa_k = \kappa_0 + N_k, \quad m_k = \frac{N_k \bar x_k + \kappa_0 m_0}{\kappa_k},
    \quad W_k = S_k + \frac{\kappa_0 N_k}{\kappa_k} (\bar x_k - m_0)(\bar x_k - m_0)^T
    = \sum_{z_n = k} x_n x_n^T + \kappa_0 m_0 m_0^T - \kappa_k m_k m_k^T

(the last form is the one computed: it needs no ``xbar_k`` of an empty component). Then, per
family (``a_0, b_0`` the inverse-gamma's shape and scale, :meth:`models.storage.Storage.prior_scale`:
``a_0 = nu0 / 2``, ``b_0 = diag(Psi0) / 2`` per feature or ``tr(Psi0) / (2 d)`` for one variance):

=====  ================================================================================
VVV    :math:`\Sigma_k \mid z \sim \mathcal W^{-1}(\nu_0 + N_k, \Psi_0 + W_k)`
EEE    :math:`\Sigma \mid z \sim \mathcal W^{-1}(\nu_0 + N, \Psi_0 + \sum_k W_k)`
VVI    :math:`\sigma^2_{kj} \mid z \sim \mathrm{IG}(a_0 + N_k / 2,\ b_{0j} + W_{k,jj} / 2)`
EEI    :math:`\sigma^2_j \mid z \sim \mathrm{IG}(a_0 + N / 2,\ b_{0j} + \sum_k W_{k,jj} / 2)`
VII    :math:`\sigma^2_k \mid z \sim \mathrm{IG}(a_0 + N_k d / 2,\ b_0 + \operatorname{tr} W_k / 2)`
EII    :math:`\sigma^2 \mid z \sim \mathrm{IG}(a_0 + N d / 2,\ b_0 + \sum_k \operatorname{tr} W_k / 2)`
=====  ================================================================================

and, for every family, ``mu_k | Sigma_k, z ~ N(m_k, Sigma_k / kappa_k)``. The covariance is
drawn with the means integrated out, then the means given it: one exact draw of the block
(covariances, means). The shapes count the means' priors exactly: each ``mu_k``'s prior brings
``|Sigma_k|^{-1/2}`` (``(sigma^2)^{-d/2}`` or ``sigma_j^{-1}``) and its integral
``|Sigma_k / kappa_k|^{1/2}``, which cancel. So the K mean priors leave the shapes
``nu0 + N`` and ``a0 + N d / 2``; drawn given the means instead, the shared variance of EII would
have the shape ``a0 + (N + K) d / 2`` (and the scale would hold the means' squared deviations).
An empty component (``N_k = 0``: ``W_k = 0``, ``m_k = m0``, ``kappa_k = kappa0``) is thereby
drawn from the prior, as bayesm's ``rnmixGibbs`` does. The inverse-Wishart draws use Bartlett's
decomposition, which gives the precision (for the next allocations) and a square root of the
covariance (for the means) without inverting a covariance.

**Run length.** By default (``draws=None``) convergence decides it: the chains run in stages of
fixed sweep counts, each as long as every sweep before it (500, 500, 1000, 2000, ...), so each
stage is the second half of the run so far; a stage's draws are thinned to at most
:data:`KEEP` per chain. After each stage the label-invariant quantities of its draws
(:func:`models.results.label_invariant`: log-likelihood, log posterior, sorted weights) are
checked; the run stops when every one has r_hat <= 1.01 and bulk ESS >= 400, once at least
:func:`least_sweeps` sweeps are done (a small problem runs long, so that rarely visited states of
a multimodal posterior are visited: :data:`MIN_WORK`), or when ``max_seconds`` have passed.
Stage lengths depend on nothing measured, so the same seed gives
bit-identical draws whenever the run converges before the time budget. ``draws=`` fixes the
count instead: ``tune`` sweeps, then ``draws`` sweeps, every one kept.

Everything here is NumPy and numba: with complete, small data (:data:`COMPILED_MAX_WORK`) the
sweeps between two kept draws are one compiled call (:func:`_wishart_sweeps`,
:func:`_gamma_sweeps`), drawing from the same stream in the same order as the NumPy sweep
(:meth:`Chains.sweep`), whose allocations it draws; :mod:`models.pymc.routes` runs it
without PyMC.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass

import numpy as np
import xarray as xr

from models.features import (
    LINEAR,
    SQUARES,
    default_chunk,
    design_moments,
    features,
    jit,
    log_joint_stacked,
    shift_by_max,
    stacked_coefficients,
    vech_index,
)
from models.missing import draw_missing, fill_conditional, groups, observed_moments
from models.results import (
    coclustering_group,
    invariant_diagnostics,
    invariant_group,
    log_prior_density,
    one_blas_thread,
    stack_precisions,
)

#: draws kept per chain in a run whose length convergence decides (a stage is thinned to it)
KEEP = 1000
#: sweeps of the first stage (burn-in), and of the second (the first draws checked)
FIRST = 500
#: what converged means: every label-invariant quantity's r_hat and bulk ESS
MAX_R_HAT, MIN_ESS = 1.01, 400
#: the least work, in sweeps x N x K, before a run may count as converged: a cheap problem runs
#: long. A multimodal posterior can hold mass in states the chains visit rarely (iris K = 3 under
#: Prior.default: about 5 % in low-likelihood states entered once per 10,000 sweeps), which no
#: diagnostic of the draws sees until a chain has been there. On iris the stopping rule alone
#: passed after 4,000-8,000 sweeps with the log-likelihood 3-4.4 Monte Carlo SE above bayesm's
#: long run; from 64,000 sweeps (this work) every seed agreed within 1.4 (5 seeds each).
MIN_WORK = 3e7

#: the most sweeps one compiled call runs (Chains.advance): milliseconds on a small problem
CALL_SWEEPS = 256
#: the compiled sweeps' limit, in N K (p + 4) (the products' p features and about four more
#: operations per row and component): above it the NumPy sweep's BLAS products and vectorised
#: exp are faster (measured: full d = 2 at N = 1,000, K = 2, 1.1x faster; N = 3,000, 0.8x)
COMPILED_MAX_WORK = 24_000
#: the largest N for which the ``coclustering`` group (N x N) is made
COCLUSTER_MAX_N = 2000

_TINY = np.finfo(float).tiny


@dataclass(frozen=True, eq=False)
class Conjugate:
    """What a run fixes: the data's feature rows and the prior, in the sampler's terms.

    The data are centred at ``shift`` (their column means) before the features are built; the
    means (``m0``, ``mu``) are kept in the same centred coordinates while sampling. Every chain
    samples the same data, or (:func:`sample_batch`) each chain its own data set of one shape:
    then the arrays below have a leading chain axis of length C where they have 1.

    Attributes
    ----------
    fam : Family
    K, N, d : int
    Z : list of ndarray of shape (p, n) or (C, p, n)
        The feature rows of the centred data (:func:`models.features.features`), by blocks of
        ``n`` rows sized as EM's (:func:`models.features.default_chunk` for every chain's
        components), so that a block's features and log joints stay in cache between the
        two products that read them.
    starts : list of int
        The first row of each block.
    XX : ndarray of shape (1, 1, d, d) or (C, 1, d, d), or None
        ``sum_n x_n x_n^T`` of the centred data, for a covariance every component shares (EEE):
        its statistics pool the second moments.
    shift : ndarray of shape (1, 1, d) or (C, 1, d)
    alpha : ndarray of shape (K,)
    m0 : ndarray of shape (1, 1, d) or (C, 1, d)
        Centred.
    kappa0 : float
    shape0, scale0 : float and ndarray
        The covariance prior: ``(nu0, Psi0)`` (inverse-Wishart) or ``(a0, b0)``
        (inverse-gamma, ``b0`` of shape (d,) per feature or () for one variance).
    observed : ndarray of shape (C N, d) or None
        The data with NaN where a cell is missing, once per chain (stacked); None for complete
        data. Each chain then completes the data its own way (a data set per chain, starting
        from ``filled``) and draws the missing cells as latent values every sweep.
    filled : ndarray of shape (N, d) or None
        The data with each missing cell at its conditional mean under the observed cells'
        normal moments: the chains' first completion.
    patterns : list or None
        :func:`models.missing.groups` of ``observed``: rows by pattern of missingness.
    incomplete : ndarray of bool or None
        Per block: whether it holds a row with a missing cell (its features change per sweep).
    """

    fam: object
    K: int
    N: int
    d: int
    Z: list
    starts: list
    XX: np.ndarray | None
    shift: np.ndarray
    alpha: np.ndarray
    m0: np.ndarray
    kappa0: float
    shape0: float
    scale0: np.ndarray
    observed: np.ndarray | None = None
    filled: np.ndarray | None = None
    patterns: list | None = None
    incomplete: np.ndarray | None = None

    @property
    def storage(self):
        """The covariance layout."""
        return self.fam.storage


def conjugate(inputs, chains=4):
    """The run's fixed parts from checked inputs.

    Parameters
    ----------
    inputs : models.pymc.inputs.ModelInputs
        A proper prior.
    chains : int
        The chains that will run (they set the blocks' rows).

    Returns
    -------
    Conjugate
    """
    if not inputs.missing:
        return _conjugate(inputs.X[None], inputs.K, inputs.family, inputs.prior, chains)
    # missing cells are latent: a completed data set per chain, drawn anew every sweep
    X = inputs.X
    filled = fill_conditional(X, *observed_moments(X))
    cj = _conjugate(np.repeat(filled[None], chains, axis=0), inputs.K, inputs.family,
                    inputs.prior, chains)
    holes = np.isnan(X).any(axis=1)
    incomplete = np.array([holes[r:r + Zb.shape[-1]].any() for r, Zb in zip(cj.starts, cj.Z)])
    # every chain's rows stacked (chain c's row n at c N + n): one draw of the missing cells
    # for all chains at once, its components offset by c K
    tiled = np.tile(X, (chains, 1))
    return dataclasses.replace(cj, observed=tiled, filled=filled, patterns=groups(tiled),
                               incomplete=incomplete)


def _conjugate(Xs, K, fam, prior, chains):
    """:func:`conjugate` of R data sets (R, N, d): one for every chain, or R = 1 for all."""
    storage = fam.storage
    R, N, d = Xs.shape
    shift = Xs.mean(axis=1)                                          # (R, d)
    rows = default_chunk(chains * K, d, storage)
    starts = list(range(0, N, rows))
    Z = [np.stack([features(X[r:r + rows], c, storage.kind, np.float64) for X, c in zip(Xs, shift)])
         for r in starts]
    # tied: the features are the centred rows, whose second moment the statistics pool
    XX = sum(Zb @ np.swapaxes(Zb, -1, -2) for Zb in Z)[:, None] if storage.shared else None
    if R == 1:
        Z = [Zb[0] for Zb in Z]
    shape0, scale0 = storage.prior_scale(prior)
    return Conjugate(fam=fam, K=K, N=N, d=d, Z=Z, starts=starts, XX=XX, shift=shift[:, None],
                     alpha=prior.alpha_for(K), m0=(prior.m0 - shift)[:, None],
                     kappa0=float(prior.kappa0), shape0=float(shape0),
                     scale0=np.asarray(scale0, dtype=np.float64))


@dataclass
class Conditionals:
    """The full conditionals of the weights, means and covariances given the allocations.

    One chain per row of the leading axis; E, the covariance entries, is K where each component
    has its own covariance and 1 where it is shared.

    Attributes
    ----------
    counts : ndarray of shape (C, K)
        ``N_k``.
    alpha : ndarray of shape (C, K)
        ``alpha + N_k``: ``pi | z ~ Dirichlet(alpha)``.
    kappa : ndarray of shape (C, K)
    m : ndarray of shape (C, K, d)
        ``mu_k | Sigma_k, z ~ N(m_k, Sigma_k / kappa_k)`` (centred coordinates).
    shape : ndarray of shape (C, E)
        ``nu`` (inverse-Wishart) or ``a`` (inverse-gamma).
    scale : ndarray of shape (C, E, d, d), (C, E, d) or (C, E)
        ``Psi`` (inverse-Wishart), or ``b`` per feature or per entry.
    """

    counts: np.ndarray
    alpha: np.ndarray
    kappa: np.ndarray
    m: np.ndarray
    shape: np.ndarray
    scale: np.ndarray


def conditionals(cj, GZ):
    r"""The conditionals' parameters from the allocations' summed feature rows.

    .. math:: \kappa_k = \kappa_0 + N_k, \quad m_k = (s_k + \kappa_0 m_0) / \kappa_k, \quad
        W_k = M_k + \kappa_0 m_0 m_0^T - \kappa_k m_k m_k^T, \quad
        \Psi_k = \Psi_0 + W_k, \ \nu_k = \nu_0 + N_k

    with ``s_k``, ``M_k`` the summed rows and second moments of the observations allocated to k
    (pooled over components for a shared covariance; the diagonal, and for one variance its
    trace, for variances: ``a = a0 + n / 2``, ``b = b0 + W / 2``, n counting every feature a
    variance covers). The module docstring derives them.

    Parameters
    ----------
    cj : Conjugate
    GZ : ndarray of shape (C K, p)
        ``sum_{n: z_n = k} z(x_n)`` of each chain's components (:func:`models.features.design_moments`
        of the one-hot allocations).

    Returns
    -------
    Conditionals
    """
    K, d, storage = cj.K, cj.d, cj.storage
    C = GZ.shape[0] // K
    pool = storage.shared or cj.fam.shared_prior
    E = 1 if pool else K
    GZ = np.asarray(GZ, np.float64)
    counts, alpha, kappa = np.empty((3, C, K))
    m, shape = np.empty((C, K, d)), np.empty((C, E))
    jit(_means)(GZ, cj.m0, cj.kappa0, cj.alpha, counts, alpha, kappa, m)
    if storage.matrix:                            # inverse-Wishart
        scale = np.empty((C, E, d, d))
        XX = cj.XX if pool else np.zeros((1, 1, d, d))
        jit(_wishart_scales)(GZ, XX, cj.m0, cj.kappa0, cj.shape0, cj.scale0, pool,
                             _vech_position(d), counts, kappa, m, shape, scale)
    else:                                         # inverse-gamma, per feature or one variance
        per_feature = cj.scale0.ndim == 1
        scale = np.empty((C, E, d) if per_feature else (C, E))
        jit(_gamma_scales)(GZ, cj.m0, cj.kappa0, cj.shape0, np.broadcast_to(cj.scale0, (d,)),
                           pool, per_feature, counts, kappa, m, shape, scale.reshape(C, E, -1))
    return Conditionals(counts=counts, alpha=alpha, kappa=kappa, m=m, shape=shape, scale=scale)


@functools.lru_cache(maxsize=64)
def _vech_position(d):
    """The column of ``x_i x_j`` among the product features, for every (i, j) (d, d), read-only."""
    pos = np.empty((d, d), dtype=np.int64)
    i, j = vech_index(d)
    pos[i, j] = pos[j, i] = np.arange(i.size)
    pos.flags.writeable = False
    return pos


# conditionals() entry by entry, in the order of operations of its NumPy form (a chain's data
# set: row r of m0 and XX when there is one per chain), in three small kernels: the counts and
# means, then the covariance prior's shape and scale (the one a family needs is compiled)


def _means(GZ, m0, kappa0, alpha0, counts, alpha, kappa, m):  # pragma: no cover - compiled
    C, K, d = m.shape
    for c in range(C):
        r = c if m0.shape[0] > 1 else 0
        for k in range(K):
            n_k = GZ[c * K + k, 0]
            counts[c, k] = n_k
            alpha[c, k] = alpha0[k] + n_k
            kappa[c, k] = kappa0 + n_k
            for i in range(d):
                m[c, k, i] = (GZ[c * K + k, 1 + i] + kappa0 * m0[r, 0, i]) / kappa[c, k]


def _wishart_scales(GZ, XX, m0, kappa0, shape0, scale0, pool, pos,
                    counts, kappa, m, shape, scale):  # pragma: no cover - compiled
    # nu0 + N_k, Psi0 + M_k + T_k; pooled (EEE): nu0 + N, Psi0 + XX + sum_k T_k
    C, K, d = m.shape
    for c in range(C):
        r = c if m0.shape[0] > 1 else 0
        if pool:
            n = counts[c, 0]
            for k in range(1, K):
                n += counts[c, k]
            shape[c, 0] = shape0 + n
        else:
            for k in range(K):
                shape[c, k] = shape0 + counts[c, k]
        for i in range(d):
            for j in range(d):
                t0 = kappa0 * m0[r, 0, i] * m0[r, 0, j]
                if pool:
                    T = t0 - kappa[c, 0] * m[c, 0, i] * m[c, 0, j]
                    for k in range(1, K):
                        T += t0 - kappa[c, k] * m[c, k, i] * m[c, k, j]
                    scale[c, 0, i, j] = scale0[i, j] + (XX[r, 0, i, j] + T)
                else:
                    for k in range(K):
                        T = t0 - kappa[c, k] * m[c, k, i] * m[c, k, j]
                        scale[c, k, i, j] = scale0[i, j] + (GZ[c * K + k, d + 1 + pos[i, j]] + T)


def _gamma_scales(GZ, m0, kappa0, shape0, scale0, pool, per_feature,
                  counts, kappa, m, shape, scale):  # pragma: no cover - compiled
    # W_kj = M_kj + kappa0 m0_j^2 - kappa_k m_kj^2, summed over k when pooled (EEI, EII) and
    # over j for one variance (VII, EII); a0 + n / 2, b0 + W / 2 (n N_k, times d for one variance)
    C, K, d = m.shape
    for c in range(C):
        r = c if m0.shape[0] > 1 else 0
        for e in range(shape.shape[1]):
            n = counts[c, e]
            if pool:
                for k in range(1, K):
                    n += counts[c, k]
            first, last = (0, K) if pool else (e, e + 1)
            total = 0.0
            for j in range(d):
                W = 0.0
                for k in range(first, last):
                    w = (GZ[c * K + k, d + 1 + j] + kappa0 * (m0[r, 0, j] * m0[r, 0, j])
                         - kappa[c, k] * (m[c, k, j] * m[c, k, j]))
                    W = w if k == first else W + w
                if per_feature:
                    scale[c, e, j] = scale0[j] + 0.5 * W
                else:
                    total = W if j == 0 else total + W
            if per_feature:
                shape[c, e] = shape0 + 0.5 * n
            else:
                shape[c, e] = shape0 + 0.5 * (n * d)
                scale[c, e, 0] = scale0[0] + 0.5 * total


def draw_weights(alpha, rng):
    r"""``pi ~ Dirichlet(alpha)`` per chain, as normalised gamma draws.

    .. math:: \pi_k = g_k / \textstyle\sum_j g_j, \quad g_k \sim \mathrm{Gamma}(\alpha_k, 1)

    A weight whose gamma draw underflows to zero is kept at the smallest normal number, so its
    log stays finite.

    Parameters
    ----------
    alpha : ndarray of shape (C, K)
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (C, K)
    """
    g = rng.standard_gamma(alpha)
    jit(_normalised)(g, _TINY)
    return g


def _normalised(g, tiny):  # pragma: no cover - compiled
    # each row floored at tiny, then divided by its sum (summed in order)
    for c in range(g.shape[0]):
        total = 0.0
        for k in range(g.shape[1]):
            g[c, k] = max(g[c, k], tiny)
            total = g[c, k] if k == 0 else total + g[c, k]
        for k in range(g.shape[1]):
            g[c, k] /= total


def draw_inverse_wishart(nu, Psi, rng):
    r"""``Sigma ~ W^{-1}(nu, Psi)`` by Bartlett's decomposition, with its precision and a square root.

    With ``Psi = L L^T`` and ``A`` lower-triangular, ``A_ii^2 ~ chi^2(nu - i)`` (i = 0 .. d-1),
    ``A_ij ~ N(0, 1)`` below the diagonal, ``Lambda = (L^{-T} A)(L^{-T} A)^T ~ W(nu, Psi^{-1})``,
    so

    .. math:: \Sigma = \Lambda^{-1} = R R^T, \quad R = L A^{-T}, \quad
        \log|\Lambda| = \sum_i \log A_{ii}^2 - 2 \sum_i \log L_{ii}

    The chi-square and normal variates come from ``rng`` (two calls); the small-matrix algebra
    is one compiled loop over the matrices.

    Parameters
    ----------
    nu : ndarray of shape (...)
    Psi : ndarray of shape (..., d, d)
    rng : numpy.random.Generator

    Returns
    -------
    Sigma, Lambda, R : ndarray of shape (..., d, d)
    log_det_Lambda : ndarray of shape (...)
    """
    d = Psi.shape[-1]
    lead, M = nu.shape, nu.size
    half_chi2 = rng.standard_gamma(0.5 * (nu.reshape(M, 1) - _row_numbers(d)))
    off = rng.standard_normal((M, d * (d - 1) // 2))
    out = np.empty((3, M, d, d))
    log_det = np.empty(M)
    jit(_bartlett)(np.ascontiguousarray(Psi).reshape(M, d, d), half_chi2, off, out, log_det)
    return (*(a.reshape(lead + (d, d)) for a in out), log_det.reshape(lead))


@functools.lru_cache(maxsize=64)
def _row_numbers(d):
    """``0, 1, ..., d - 1`` as floats (read-only): the Bartlett factor's chi-square offsets."""
    i = np.arange(d, dtype=np.float64)
    i.flags.writeable = False
    return i


def _bartlett(Psi, half_chi2, off, out, log_det):  # pragma: no cover - compiled
    # per matrix: L = chol(Psi); A (Bartlett, A_ii^2 = 2 half_chi2_i); Q = L^{-T} A;
    # Lambda = Q Q^T; R = L A^{-T}; Sigma = R R^T (out[0], out[1], out[2] = Sigma, Lambda, R)
    M, d, _ = Psi.shape
    L = np.zeros((d, d))
    Li = np.zeros((d, d))
    A = np.zeros((d, d))
    Ai = np.zeros((d, d))
    Q = np.zeros((d, d))
    for r in range(M):
        # Cholesky of Psi
        for j in range(d):
            s = Psi[r, j, j]
            for k in range(j):
                s -= L[j, k] * L[j, k]
            L[j, j] = np.sqrt(s)
            for i in range(j + 1, d):
                s = Psi[r, i, j]
                for k in range(j):
                    s -= L[i, k] * L[j, k]
                L[i, j] = s / L[j, j]
        # Bartlett's factor, row by row below the diagonal (the order of np.tril_indices)
        t = 0
        ld = 0.0
        for i in range(d):
            chi2 = 2.0 * half_chi2[r, i]
            A[i, i] = np.sqrt(chi2)
            ld += np.log(chi2) - 2.0 * np.log(L[i, i])
            for j in range(i):
                A[i, j] = off[r, t]
                t += 1
        log_det[r] = ld
        # inverses of the two lower-triangular factors, by forward substitution
        for T, Ti in ((L, Li), (A, Ai)):
            for j in range(d):
                Ti[j, j] = 1.0 / T[j, j]
                for i in range(j + 1, d):
                    s = 0.0
                    for k in range(j, i):
                        s -= T[i, k] * Ti[k, j]
                    Ti[i, j] = s / T[i, i]
        # Q = Li^T A (upper times lower), R = L Ai^T (lower times upper)
        for i in range(d):
            for j in range(d):
                q = 0.0
                for k in range(max(i, j), d):
                    q += Li[k, i] * A[k, j]
                Q[i, j] = q
                rr = 0.0
                for k in range(min(i, j) + 1):
                    rr += L[i, k] * Ai[j, k]
                out[2, r, i, j] = rr
        for i in range(d):
            for j in range(i + 1):
                lam = 0.0
                sig = 0.0
                for k in range(d):
                    lam += Q[i, k] * Q[j, k]
                    sig += out[2, r, i, k] * out[2, r, j, k]
                out[1, r, i, j] = lam
                out[1, r, j, i] = lam
                out[0, r, i, j] = sig
                out[0, r, j, i] = sig


def draw_components(cj, cond, rng):
    """Covariances, then means given them, from their conditionals (every chain at once).

    Parameters
    ----------
    cj : Conjugate
    cond : Conditionals
    rng : numpy.random.Generator

    Returns
    -------
    Sigma : ndarray of shape (C, *storage shape)
        The layout's ``Sigma`` of each chain.
    prec : ndarray of shape (C, K, d, d) or (C, K, d)
        Precision matrices, or each feature's precision (variance layouts).
    log_det : ndarray of shape (C, K)
        ``log|Sigma_k^{-1}|``.
    mu : ndarray of shape (C, K, d)
        Centred.
    """
    C, K, d = cond.m.shape
    eps = rng.standard_normal((C, K, d))
    eps /= np.sqrt(cond.kappa)[..., None]
    if cj.storage.matrix:
        Sigma, prec, R, log_det = draw_inverse_wishart(cond.shape, cond.scale, rng)
        if cj.storage.shared:                       # one covariance per chain, for every component
            mu = cond.m + eps @ np.swapaxes(R[:, 0], -1, -2)
            return Sigma[:, 0], np.repeat(prec, K, axis=1), np.repeat(log_det, K, axis=1), mu
        mu = cond.m + (R @ eps[..., None])[..., 0]
        return Sigma, prec, log_det, mu
    scale = cond.scale
    shape = cond.shape if scale.ndim == 2 else cond.shape[..., None]
    gam = rng.standard_gamma(np.broadcast_to(shape, scale.shape))
    # one variance (per feature) for every component: the same entry for each k
    var = np.empty((C, K) + scale.shape[2:])
    mu, prec = np.empty((2, C, K, d))
    jit(_variance_draws)(scale.reshape(C, -1, var[0, 0].size), gam.reshape(C, -1, var[0, 0].size),
                         eps, cond.m, var.reshape(C, K, -1), prec, mu)
    return var, prec, np.log(prec).sum(-1), mu


def _variance_draws(scale, gam, eps, m, var, prec, mu):  # pragma: no cover - compiled
    # var = scale / gam (entry e of component k: e = k, or 0 when shared); per feature
    # sigma^2_kj (one variance: the same for every j); mu = m + sigma eps; prec = 1 / sigma^2
    C, K, d = m.shape
    for c in range(C):
        for k in range(K):
            e = k if scale.shape[1] == K else 0
            for j in range(var.shape[2]):
                var[c, k, j] = scale[c, e, j] / gam[c, e, j]
            for j in range(d):
                v = var[c, k, j if var.shape[2] == d else 0]
                mu[c, k, j] = m[c, k, j] + np.sqrt(v) * eps[c, k, j]
                prec[c, k, j] = 1.0 / v


# ----------------------------------------------------------------------------------------------
# the allocations: two compiled passes around NumPy's vectorised exp


def _allocate(E, m, u, z, G, counts):  # pragma: no cover - compiled
    # E = exp(log joint - max): draw z by the inverse CDF, write the one-hot G (unless None:
    # the compiled sweeps sum the rows by z), add the counts, and return sum_n (m_n + log sum_k
    # E_kn) per chain (the log of a product of t_n in [1, K] taken every so often: one log per
    # many observations)
    C, K, n = E.shape
    out = np.zeros(C)
    for c in range(C):
        prod, acc = 1.0, 0.0
        for i in range(n):
            t = 0.0
            for k in range(K):
                t += E[c, k, i]
            target = u[c, i] * t
            s, choice = 0.0, K - 1
            for k in range(K):
                s += E[c, k, i]
                if s > target:
                    choice = k
                    break
            z[c, i] = choice
            counts[c, choice] += 1.0
            if G is not None:
                for k in range(K):
                    G[c * K + k, i] = 1.0 if k == choice else 0.0
            acc += m[c, i]
            prod *= t
            if prod > 1e200:
                acc += np.log(prod)
                prod = 1.0
        out[c] = acc + np.log(prod)
    return out


def _log_sum(E, m):  # pragma: no cover - compiled
    C, K, n = E.shape
    out = np.zeros(C)
    for c in range(C):
        prod, acc = 1.0, 0.0
        for i in range(n):
            t = 0.0
            for k in range(K):
                t += E[c, k, i]
            acc += m[c, i]
            prod *= t
            if prod > 1e200:
                acc += np.log(prod)
                prod = 1.0
        out[c] = acc + np.log(prod)
    return out


def _moments(G, Zb, storage, C):
    """:func:`models.features.design_moments` of a block; with a data set per chain, per chain."""
    if Zb.ndim == 2:
        return design_moments(G, Zb, storage, w=False)[0]
    G3 = G.reshape(C, -1, G.shape[-1])
    GZ = G3 @ np.swapaxes(Zb, -1, -2)
    if storage.kind == LINEAR:                       # the implicit 1, then x
        GZ = np.concatenate([G3.sum(axis=-1, keepdims=True), GZ], axis=-1)
    return GZ.reshape(G.shape[0], -1)


# ----------------------------------------------------------------------------------------------
# many sweeps in one compiled call: complete data in one block, where a sweep's few dozen NumPy
# calls, not its arithmetic, were its cost. The same draws from the same stream, in the same
# order and by the same algorithms (numba's Generator methods are NumPy's); the sums are taken
# in order, where BLAS and NumPy's vectorised exp and log take theirs, so values agree with the
# NumPy sweep's to the last few bits (the allocations compare a uniform with sums of the same
# numbers, so they agree unless the uniform falls within those bits of a boundary)


def _e_step(rng, Z, Zt, kind, XX, pi, mu, prec, log_det, u, log_pi, A, L, m, z, counts, GZ,
            log_lik):  # pragma: no cover - compiled
    # Chains.sweep's allocations with its kernels: uniforms, every chain's log joints
    # (stacked_coefficients' A times the features, Z (p, N)), shift_by_max, their exp, _allocate's
    # inverse-CDF draw of z, the log-likelihood of the parameters swept from (with tied's shared
    # row term), and each component's summed feature rows (design_moments, from Zt (N, p))
    C, K, d = mu.shape
    p, N = Z.shape
    for c in range(C):
        for n in range(N):
            u[c, n] = rng.random()
    for c in range(C):
        for k in range(K):
            log_pi[c, k] = np.log(pi[c, k])
            if kind != SQUARES:                # Lambda mu, which stacked_coefficients reads
                for i in range(d):
                    s = 0.0
                    for j in range(d):
                        s += prec[c, k, i, j] * mu[c, k, j]
                    A[c, k, 1 + i] = s
    _stacked_coefficients_c(log_pi, mu, prec, log_det, kind, A)
    lin0 = 1 if kind == LINEAR else 0          # the column of A that multiplies Z's row 0
    for c in range(C):
        for k in range(K):
            # L_kn = sum_q A_q Z_qn, q in order; every n at once (the loop over n vectorises)
            for n in range(N):
                L[c, k, n] = 0.0
            for q in range(p):
                a = A[c, k, lin0 + q]
                for n in range(N):
                    L[c, k, n] += a * Z[q, n]
            if kind == LINEAR:
                for n in range(N):
                    L[c, k, n] += A[c, k, 0]
    _shift_by_max_c(L, m)
    for c in range(C):
        for k in range(K):
            for n in range(N):
                x = L[c, k, n]
                L[c, k, n] = 1.0 if x == 0.0 else np.exp(x)     # the largest: exp(0) = 1
    counts[:] = 0.0
    sums = _allocate_c(L, m, u, z, None, counts)
    GZ[:] = 0.0
    for c in range(C):
        row = 0.0
        if kind == LINEAR:                     # -<Lambda, sum_n x_n x_n^T> / 2
            for i in range(d):
                for j in range(d):
                    row += prec[c, 0, i, j] * XX[0, 0, i, j]
            row = -0.5 * row
        log_lik[c] = row + sums[c]
        first = 0
        if kind == LINEAR:                     # the implicit 1, then x
            first = 1
            for k in range(K):
                GZ[c * K + k, 0] = counts[c, k]
        for n in range(N):
            g = c * K + z[c, n]
            for q in range(p):
                GZ[g, first + q] += Zt[n, q]


def _variates(rng, alpha, kappa, pi, eps, tiny, shape, half_chi2, off, gam):  # pragma: no cover
    # every random variate of a sweep's parameters, in the NumPy sweep's order: draw_weights,
    # draw_components' standard normals (over sqrt(kappa)), then the inverse-Wishart's Bartlett
    # variates (half_chi2 and off, when they have rows) or the inverse-gamma's gamma draws
    C, K, d = eps.shape
    for c in range(C):
        for k in range(K):
            pi[c, k] = rng.standard_gamma(alpha[c, k])
    _normalised_c(pi, tiny)
    for c in range(C):
        for k in range(K):
            root = np.sqrt(kappa[c, k])
            for j in range(d):
                eps[c, k, j] = rng.standard_normal() / root
    nu = shape.reshape(shape.size)
    for r in range(half_chi2.shape[0]):
        for i in range(d):
            half_chi2[r, i] = rng.standard_gamma(0.5 * (nu[r] - i))
    for r in range(off.shape[0]):
        for t in range(off.shape[1]):
            off[r, t] = rng.standard_normal()
    for c in range(gam.shape[0]):
        for e in range(gam.shape[1]):
            for j in range(gam.shape[2]):
                gam[c, e, j] = rng.standard_gamma(shape[c, e])


def _wishart_sweeps(sweeps, rng, Z, Zt, kind, XX, m0, kappa0, alpha0, shape0, scale0, pos,
                    shared, tiny, pi, mu, Sigma, prec, log_det, counts, z, u, log_pi, A, L, mx,
                    GZ, alpha, kappa, m, shape, scale, eps, half_chi2, off, gam, out, ld,
                    log_liks):  # pragma: no cover - compiled
    # Chains.sweep ``sweeps`` times for VVV and EEE (inverse-Wishart conditionals)
    C, K, d = mu.shape
    M = shape.size
    for s in range(sweeps):
        _e_step_c(rng, Z, Zt, kind, XX, pi, mu, prec, log_det, u, log_pi, A, L, mx, z, counts,
                  GZ, log_liks[s])
        _means_c(GZ, m0, kappa0, alpha0, counts, alpha, kappa, m)
        _wishart_scales_c(GZ, XX, m0, kappa0, shape0, scale0, shared, pos, counts, kappa, m,
                          shape, scale)
        _variates_c(rng, alpha, kappa, pi, eps, tiny, shape, half_chi2, off, gam)
        _bartlett_c(scale.reshape(M, d, d), half_chi2, off, out, ld)
        for c in range(C):
            for k in range(K):
                e = c if shared else c * K + k        # the matrix drawn for component k
                for i in range(d):
                    v = 0.0
                    for j in range(d):
                        v += out[2, e, i, j] * eps[c, k, j]
                        prec[c, k, i, j] = out[1, e, i, j]
                        if shared:
                            Sigma[c, 0, i, j] = out[0, e, i, j]
                        else:
                            Sigma[c, k, i, j] = out[0, e, i, j]
                    mu[c, k, i] = m[c, k, i] + v
                log_det[c, k] = ld[e]


def _gamma_sweeps(sweeps, rng, Z, Zt, kind, XX, m0, kappa0, alpha0, shape0, scale0, pool,
                  per_feature, tiny, pi, mu, Sigma, prec, log_det, counts, z, u, log_pi, A, L, mx,
                  GZ, alpha, kappa, m, shape, scale, eps, half_chi2, off, gam,
                  log_liks):  # pragma: no cover - compiled
    # Chains.sweep ``sweeps`` times for VVI, EEI, VII and EII (inverse-gamma conditionals);
    # prec (C, K, d, 1): each feature's precision
    C, K, d = mu.shape
    for s in range(sweeps):
        _e_step_c(rng, Z, Zt, kind, XX, pi, mu, prec, log_det, u, log_pi, A, L, mx, z, counts,
                  GZ, log_liks[s])
        _means_c(GZ, m0, kappa0, alpha0, counts, alpha, kappa, m)
        _gamma_scales_c(GZ, m0, kappa0, shape0, scale0, pool, per_feature, counts, kappa, m,
                        shape, scale)
        _variates_c(rng, alpha, kappa, pi, eps, tiny, shape, half_chi2, off, gam)
        _variance_draws_c(scale, gam, eps, m, Sigma, prec.reshape(C, K, d), mu)
        for c in range(C):
            for k in range(K):
                total = 0.0
                for j in range(d):
                    total += np.log(prec[c, k, j, 0])
                log_det[c, k] = total


# the compiled callees, bound by _fused() to numba dispatchers before a kernel that calls them
# compiles (numba reads module globals when it compiles)
_e_step_c = _means_c = _wishart_scales_c = _gamma_scales_c = _normalised_c = None
_bartlett_c = _variance_draws_c = _variates_c = None
_stacked_coefficients_c = _shift_by_max_c = _allocate_c = None


def _fused(matrix):
    """The many-sweep kernel of an inverse-Wishart (``matrix``) or inverse-gamma family."""
    g = globals()
    if g["_e_step_c"] is None:
        for name in ("_e_step", "_means", "_wishart_scales", "_gamma_scales", "_normalised",
                     "_bartlett", "_variance_draws", "_variates", "_allocate"):
            g[name + "_c"] = jit(g[name])
        g["_stacked_coefficients_c"] = jit(stacked_coefficients)
        g["_shift_by_max_c"] = jit(shift_by_max)
    return jit(_wishart_sweeps if matrix else _gamma_sweeps)


class Chains:
    """C chains of the sampler, advanced together: every chain's sweep at once.

    Parameters
    ----------
    cj : Conjugate
    starts : sequence of GMMParams
        One per chain.
    rng : numpy.random.Generator
        The one stream of every chain's draws (so the draws depend on the number of chains).
    """

    def __init__(self, cj, starts, rng):
        self.cj, self.rng = cj, rng
        C, K, d, N = len(starts), cj.K, cj.d, cj.N
        self.C = C
        self.pi = np.stack([np.asarray(p.pi, dtype=np.float64) for p in starts])
        self.mu = np.stack([np.asarray(p.mu, dtype=np.float64) for p in starts]) - cj.shift
        self.Sigma = np.stack([np.asarray(p.Sigma, dtype=np.float64) for p in starts])
        full = cj.fam.to_full(self.Sigma, K, d)
        prec, self.log_det = stack_precisions(full, cj.storage.matrix)
        self.prec = prec
        # the allocations that gave the current parameters: none yet for the start
        self.counts = N * self.pi
        self.z = np.zeros((C, N), dtype=np.int8 if K < 128 else np.int64)
        rows = cj.Z[0].shape[-1]
        self.G = np.empty((C * K, rows))
        self.E = np.empty(C * K * rows)
        self.m = np.empty((C, rows))
        self.pending = None                    # where the current parameters' log-lik goes
        # missing cells: each chain's completed data (the features of its incomplete blocks
        # follow them)
        self.Xc = None if cj.observed is None else np.repeat(cj.filled[None], C, axis=0)
        # complete data in one block, one data set, small: the sweeps run compiled (_sweeps)
        pool = cj.storage.shared or cj.fam.shared_prior
        self.compiled = (cj.observed is None and len(cj.Z) == 1 and cj.Z[0].ndim == 2
                         and (not cj.storage.matrix or pool == cj.storage.shared)
                         and N * K * (cj.Z[0].shape[0] + 4) <= COMPILED_MAX_WORK)
        self._work = None

    def _kernel(self):
        # every weight is positive (draw_weights floors them; starts are jittered away from 0)
        return log_joint_stacked(np.log(self.pi), self.mu, self.prec, self.log_det,
                                 self.cj.storage.kind, compiled=True)

    def _blocks(self, kernel):
        """Each block's ``exp(log joint - max)`` (C, K, n), its max (C, n) and first row."""
        C, K = self.C, self.cj.K
        for r, Zb in zip(self.cj.starts, self.cj.Z):
            n = Zb.shape[-1]
            if Zb.ndim == 2:
                E = kernel(Zb, out=self.E, shared=False)[0].reshape(C, K, n)
            else:                                     # a data set per chain
                A = kernel.A.reshape(C, K, -1)
                E = self.E[:C * K * n].reshape(C, K, n)
                if kernel.kind == LINEAR:
                    np.matmul(A[..., 1:], Zb, out=E)
                    E += A[..., :1]
                else:
                    np.matmul(A, Zb, out=E)
            m = self.m[:, :n]
            jit(shift_by_max)(E, m)
            np.exp(E, out=E)
            yield r, Zb, E, m

    def _row_term(self):
        """EEE's term every component shares, ``-<Lambda, sum_n x_n x_n^T> / 2``, per chain."""
        if self.cj.storage.kind != LINEAR:
            return 0.0
        return -0.5 * (self.prec[:, 0] * self.cj.XX[:, 0]).sum(axis=(-1, -2))

    def log_likelihood(self):
        """``sum_n log p(x_n | theta)`` of each chain's current parameters.

        Returns
        -------
        ndarray of shape (C,)
        """
        return sum(jit(_log_sum)(E, m) for _, _, E, m in self._blocks(self._kernel())) \
            + self._row_term()

    def sweep(self):
        """One sweep: z, then pi, then the covariances and means.

        Returns
        -------
        ndarray of shape (C,)
            The log-likelihood of the parameters the sweep started from.
        """
        cj, rng = self.cj, self.rng
        u = rng.random((self.C, cj.N))
        counts = np.zeros((self.C, cj.K))
        log_lik = self._row_term()
        GZ = 0.0
        for r, Zb, E, m in self._blocks(self._kernel()):
            n = Zb.shape[-1]
            G = self.G[:, :n]
            log_lik = log_lik + jit(_allocate)(E, m, u[:, r:r + n], self.z[:, r:r + n], G, counts)
            GZ = GZ + _moments(G, Zb, cj.storage, self.C)
        cond = conditionals(cj, GZ)
        self.pi = draw_weights(cond.alpha, rng)
        self.Sigma, self.prec, self.log_det, self.mu = draw_components(cj, cond, rng)
        self.counts = counts
        if self.Xc is not None:
            self._complete()
        return log_lik

    def _buffers(self):
        """The compiled sweeps' arrays: the state (from the current one) and their workspace."""
        cj, C = self.cj, self.C
        K, d, N, storage = cj.K, cj.d, cj.N, cj.storage
        matrix = storage.matrix
        pool = storage.shared or cj.fam.shared_prior
        E = 1 if pool else K
        per_feature = cj.scale0.ndim == 1
        V = d if per_feature else 1
        Z = np.ascontiguousarray(cj.Z[0], dtype=np.float64)
        w = {
            "Z": Z, "Zt": np.ascontiguousarray(Z.T), "kind": storage.kind,
            "XX": cj.XX if cj.XX is not None else np.zeros((1, 1, d, d)),
            "m0": cj.m0, "kappa0": cj.kappa0, "alpha0": cj.alpha, "shape0": cj.shape0,
            "pi": np.array(self.pi, dtype=np.float64), "mu": np.array(self.mu, dtype=np.float64),
            "log_det": np.array(self.log_det, dtype=np.float64), "counts": np.zeros((C, K)),
            "z": self.z, "u": np.empty((C, N)), "log_pi": np.empty((C, K)),
            "A": np.empty((C, K, Z.shape[0] + (storage.kind == LINEAR))),
            "L": np.empty((C, K, N)), "mx": np.empty((C, N)),
            "GZ": np.empty((C * K, Z.shape[0] + (storage.kind == LINEAR))),
            "alpha": np.empty((C, K)), "kappa": np.empty((C, K)), "m": np.empty((C, K, d)),
            "shape": np.empty((C, E)), "eps": np.empty((C, K, d)), "tiny": _TINY,
        }
        if matrix:
            M = C * E
            w.update(scale0=cj.scale0, pos=_vech_position(d), shared=bool(storage.shared),
                     prec=np.array(self.prec, dtype=np.float64),
                     Sigma=np.empty((C, E, d, d)), scale=np.empty((C, E, d, d)),
                     half_chi2=np.empty((M, d)), off=np.empty((M, d * (d - 1) // 2)),
                     gam=np.empty((0, 0, 0)), out=np.empty((3, M, d, d)), ld=np.empty(M))
            view = w["Sigma"][:, 0] if storage.shared else w["Sigma"]
        else:
            prec = np.array(self.prec, dtype=np.float64)                 # (C, K, d)
            w.update(scale0=np.ascontiguousarray(np.broadcast_to(cj.scale0, (d,))), pool=pool,
                     per_feature=per_feature, prec=prec[..., None], prec3=prec,
                     Sigma=np.empty((C, K, V)), scale=np.empty((C, E, V)),
                     half_chi2=np.empty((0, d)), off=np.empty((0, 0)), gam=np.empty((C, E, V)))
            view = w["Sigma"].reshape((C, K, d) if per_feature else (C, K))
        w["view"] = view
        # the kernel's arguments between the sweep count and the log-likelihoods, in its order
        family = ("pos", "shared") if matrix else ("pool", "per_feature")
        draws = ("half_chi2", "off", "gam") + (("out", "ld") if matrix else ())
        w["args"] = tuple(w[name] for name in (
            "Z", "Zt", "kind", "XX", "m0", "kappa0", "alpha0", "shape0", "scale0", *family,
            "tiny", "pi", "mu", "Sigma", "prec", "log_det", "counts", "z", "u", "log_pi", "A",
            "L", "mx", "GZ", "alpha", "kappa", "m", "shape", "scale", "eps", *draws))
        return w

    def _sweeps(self, n):
        """``n`` sweeps in one compiled call (:func:`_wishart_sweeps`, :func:`_gamma_sweeps`).

        The same draws as ``n`` calls of :meth:`sweep`, their values to the last few bits.

        Returns
        -------
        ndarray of shape (n, C)
            Each sweep's log-likelihood of the parameters it started from.
        """
        if self._work is None:
            self._work = self._buffers()
        w = self._work
        log_liks = np.empty((n, self.C))
        matrix = self.cj.storage.matrix
        _fused(matrix)(n, self.rng, *w["args"], log_liks)
        self.prec = w["prec"] if matrix else w["prec3"]
        self.pi, self.mu, self.Sigma = w["pi"], w["mu"], w["view"]
        self.log_det, self.counts = w["log_det"], w["counts"]
        return log_liks

    def _complete(self):
        r"""Draw every chain's missing cells from ``p(x_m | x_o, z, theta)``; refresh their features.

        The data-augmentation block of the sweep (:func:`models.missing.draw_missing`), given the
        allocations and parameters just drawn.
        """
        cj = self.cj
        C, K, d = self.C, cj.K, cj.d
        full = cj.fam.to_full(self.Sigma, K, d)                            # (C, K, d, d)
        # every chain in one draw: chain c's rows and its components k as component c K + k
        z = (self.z.astype(np.int64) + K * np.arange(C)[:, None]).ravel()
        draw_missing(cj.observed, z, (self.mu + cj.shift).reshape(C * K, d),
                     full.reshape(C * K, d, d), self.rng, cj.patterns,
                     out=self.Xc.reshape(C * cj.N, d))
        for r, Zb, stale in zip(cj.starts, cj.Z, cj.incomplete):
            if stale:
                n = Zb.shape[-1]
                for c in range(self.C):
                    Zb[c] = features(self.Xc[c, r:r + n], cj.shift[c, 0], cj.storage.kind,
                                     np.float64)
        if cj.XX is not None:       # a shared covariance pools the completed rows' moments
            cj.XX[:] = sum(Zb @ np.swapaxes(Zb, -1, -2) for Zb in cj.Z)[:, None]

    def advance(self, sweeps, record, thin, deadline=None):
        """Run up to ``sweeps`` sweeps, keeping every ``thin``-th state in ``record``.

        Parameters
        ----------
        sweeps, thin : int
        record : Record
        deadline : float or None
            ``time.perf_counter()`` after which to stop (checked once a draw is kept).

        Returns
        -------
        int
            Sweeps done.
        """
        done = 0
        while done < sweeps:
            # up to the next kept state (at most CALL_SWEEPS, a few milliseconds, so that Ctrl-C
            # and the deadline are seen): one compiled call, or one sweep at a time
            n = min(thin - done % thin, sweeps - done, CALL_SWEEPS) if self.compiled else 1
            log_lik = self._sweeps(n)[0] if self.compiled else self.sweep()
            done += n
            if self.pending is not None:
                self.pending[0].log_lik[:, self.pending[1]] = log_lik
                self.pending = None
            if done % thin == 0:
                self.pending = (record, record.add(self))
                if deadline is not None and time.perf_counter() > deadline:
                    return done
        return sweeps

    def settle(self):
        """Fill in the log-likelihood of the last kept state (it is known one sweep later)."""
        if self.pending is not None:
            self.pending[0].log_lik[:, self.pending[1]] = self.log_likelihood()
            self.pending = None


class Record:
    """The kept states of a stage, by chain and draw (``mu`` back in the data's coordinates).

    Parameters
    ----------
    chains : Chains
    draws : int
        Room for this many states per chain.
    keep_z : bool
        Also keep the allocations (int8 where K < 128).
    """

    def __init__(self, chains, draws, keep_z):
        cj, C = chains.cj, chains.C
        self.n, self.cj = 0, cj
        self.pi = np.empty((C, draws, cj.K))
        self.mu = np.empty((C, draws, cj.K, cj.d))
        self.Sigma = np.empty((C, draws) + chains.Sigma.shape[1:])
        self.occupied = np.empty((C, draws, cj.K), dtype=bool)
        self.log_lik = np.full((C, draws), np.nan)
        self.z = np.empty((C, draws, cj.N), dtype=chains.z.dtype) if keep_z else None

    def add(self, chains):
        """Keep the chains' current state; return its draw index."""
        t = self.n
        self.pi[:, t], self.mu[:, t], self.Sigma[:, t] = chains.pi, chains.mu + self.cj.shift, \
            chains.Sigma
        self.occupied[:, t] = chains.counts >= 1
        if self.z is not None:
            self.z[:, t] = chains.z
        self.n += 1
        return t

    def trimmed(self):
        """The record with only its filled draws."""
        n = self.n
        for name in ("pi", "mu", "Sigma", "occupied", "log_lik"):
            setattr(self, name, getattr(self, name)[:, :n])
        if self.z is not None:
            self.z = self.z[:, :n]
        return self

    def invariants(self, prior):
        """The ``label_invariant`` group of the kept draws (their log-likelihoods as swept).

        Parameters
        ----------
        prior : Prior

        Returns
        -------
        xarray.Dataset
        """
        log_prior = log_prior_density(self.pi, self.mu, self.Sigma, prior, self.cj.fam)
        return invariant_group(self.pi, self.log_lik, log_prior)


def _worst(diag):
    """The quantity furthest from converged, as a few words: "log_likelihood r_hat 1.04"."""
    r_hat = diag["r_hat"]
    if r_hat.notna().any() and (r_hat.fillna(np.inf) > MAX_R_HAT).any():
        name = r_hat.fillna(np.inf).idxmax()
        value = diag.loc[name, "r_hat"]
        return f"{name} r_hat {value:.3f}" if np.isfinite(value) else f"{name} r_hat undefined"
    name = diag["ess_bulk"].idxmin()
    return f"{name} bulk ESS {diag.loc[name, 'ess_bulk']:.0f}"


def summary_of(diag):
    """"label-invariant r_hat <= 1.004, bulk ESS >= 1869" (one chain: its ESS only)."""
    ess = f"bulk ESS >= {diag['ess_bulk'].min():.0f}"
    if diag["r_hat"].isna().all():
        return f"label-invariant {ess} (one chain: no r_hat)"
    return f"label-invariant r_hat <= {diag['r_hat'].max():.3f}, {ess}"


def converged(diag):
    """Whether every label-invariant quantity has r_hat <= 1.01 and bulk ESS >= 400.

    One chain has no r_hat (NaN): its ESS alone decides.

    Parameters
    ----------
    diag : pandas.DataFrame
        :func:`models.results.invariant_diagnostics`.

    Returns
    -------
    bool
    """
    r_hat = diag["r_hat"]
    return bool((r_hat.isna().all() or (r_hat <= MAX_R_HAT).all())
                and (diag["ess_bulk"] >= MIN_ESS).all())


def _until_converged(chains, prior, settings, keep_z):
    """Stages of doubling length until converged or out of time: (record, what happened)."""
    t0 = time.perf_counter()
    deadline = t0 + settings.max_seconds
    done, stage, previous = 0, FIRST, None
    cj = chains.cj
    least = least_sweeps(cj.N, cj.K, cj.d, 0 if cj.observed is None else
                         int(np.isnan(cj.observed[:cj.N]).any(axis=1).sum()))
    while True:
        thin = max(1, stage // KEEP)
        record = Record(chains, stage // thin, keep_z)
        ran = chains.advance(stage, record, thin, deadline)
        chains.settle()
        done += ran
        record.trimmed()
        if ran < stage:                      # out of time: the record of more sweeps
            if previous is not None and previous[1] > ran:
                record, ran, thin = previous
            diag = invariant_diagnostics(record.invariants(prior))
            return record, {
                "convergence": f"not converged in {settings.max_seconds:g} s ({_worst(diag)}); "
                               "run longer with --max-seconds (max_seconds= in the API)",
                "converged": False, "sweeps": done, "thin": thin, "burn_in": done - ran,
                "diagnostics": diag}
        if done > FIRST and done >= least:   # the first stage is burn-in only
            diag = invariant_diagnostics(record.invariants(prior))
            if converged(diag):
                seconds = time.perf_counter() - t0
                return record, {
                    "convergence": f"converged after {chains.C} x {done:,} sweeps in "
                                   f"{seconds:.0f} s (kept {record.n:,} draws per chain: "
                                   f"{_every(thin)} of the last {stage:,})",
                    "converged": True, "sweeps": done, "thin": thin, "burn_in": done - stage,
                    "diagnostics": diag}
        previous = (record, ran, thin)
        stage = done


def least_sweeps(N, K, d=1, incomplete=0):
    """The sweeps per chain a run does before it may count as converged.

    :data:`MIN_WORK` over a sweep's work, ``K (N + 10 d n)``: a row with missing cells costs about
    ten times ``d`` complete rows (its cells' conditional draw, measured on Old Faithful).

    Parameters
    ----------
    N, K, d : int
    incomplete : int
        Rows with a missing cell.

    Returns
    -------
    int
    """
    return int(np.ceil(MIN_WORK / (K * (N + 10 * d * incomplete))))


def _every(thin):
    """"every sweep", "every 2nd sweep", "every 16th sweep"."""
    if thin == 1:
        return "every sweep"
    suffix = "th" if thin % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(thin % 10, "th")
    return f"every {thin}{suffix} sweep"


def _fixed(chains, prior, settings, keep_z):
    """``tune`` sweeps, then ``draws`` kept sweeps: (record, what happened)."""
    t0 = time.perf_counter()
    if settings.tune:
        chains.advance(settings.tune, Record(chains, 0, False), settings.tune + 1)
    record = Record(chains, settings.draws, keep_z)
    chains.advance(settings.draws * settings.thin, record, settings.thin)
    chains.settle()
    seconds = time.perf_counter() - t0
    diag = invariant_diagnostics(record.invariants(prior))
    ok = converged(diag)
    line = (f"{chains.C} x {settings.draws:,} draws after {settings.tune:,} burn-in sweeps in "
            f"{seconds:.1f} s: {summary_of(diag)}")
    if not ok:
        line += f"; not converged ({_worst(diag)}): run longer, or leave draws to convergence"
    return record, {"convergence": line, "converged": ok,
                    "sweeps": settings.tune + settings.draws * settings.thin,
                    "thin": settings.thin, "burn_in": settings.tune, "diagnostics": diag}


def run(inputs, starts, settings):
    """The Gibbs route's run: every chain from its start, as long as the settings say.

    Parameters
    ----------
    inputs : models.pymc.inputs.ModelInputs
    starts : sequence of GMMParams
        One per chain.
    settings : models.pymc.routes.Settings
        ``draws=None``: until converged or ``max_seconds``; else ``tune`` then ``draws``
        sweeps. ``keep_z`` keeps every kept draw's allocations.

    Returns
    -------
    xarray.DataTree
        ``posterior`` (``pi``, ``mu``, ``Sigma``; ``z`` with ``keep_z``) on the sampler's labels,
        ``sample_stats`` (``occupied``: at least one observation allocated; ``diverging``,
        always False), ``coclustering`` (``p_same``) for N <= 2000; attrs ``convergence`` (one
        line), ``converged``, ``sweeps``, ``thin``, ``burn_in``.
    """
    cj = conjugate(inputs, len(starts))
    chains = Chains(cj, starts, np.random.default_rng(settings.seed))
    keep_z = settings.keep_z or cj.N <= COCLUSTER_MAX_N
    how = _fixed if settings.draws is not None else _until_converged
    with one_blas_thread():
        record, info = how(chains, inputs.prior, settings, keep_z)
    C, D = record.pi.shape[:2]
    K, d = cj.K, cj.d
    coords = {"chain": np.arange(C), "draw": np.arange(D), "component": np.arange(K),
              "feature": np.arange(d), "feature_bis": np.arange(d)}
    post = xr.Dataset({
        "pi": (("chain", "draw", "component"), record.pi),
        "mu": (("chain", "draw", "component", "feature"), record.mu),
        "Sigma": (("chain", "draw", *cj.storage.dims), record.Sigma),
    }, coords={k: v for k, v in coords.items() if k != "feature_bis" or cj.storage.matrix})
    if settings.keep_z and record.z is not None:
        post["z"] = (("chain", "draw", "obs_id"), record.z)
    stats = xr.Dataset({"occupied": (("chain", "draw", "component"), record.occupied),
                        "diverging": (("chain", "draw"), np.zeros((C, D), dtype=bool))},
                       coords={k: coords[k] for k in ("chain", "draw", "component")})
    groups = {"posterior": post, "sample_stats": stats}
    if cj.N <= COCLUSTER_MAX_N:
        groups["coclustering"] = coclustering_group(record.z.reshape(C * D, cj.N), K)
    dt = xr.DataTree.from_dict(groups)
    dt.attrs.update({k: info[k] for k in ("convergence", "sweeps", "thin", "burn_in")})
    dt.attrs.update({"converged": int(info["converged"]), "inference_library": "gmm-suite gibbs",
                     "kept_draws": D})
    return dt


def sample_batch(Xs, n_components, covariance_type, prior, starts, draws=200, tune=200, thin=1,
                 random_seed=0):
    """Sample the posteriors of many data sets of one shape, one chain each, in one program.

    Each data set's chain is one of the sampler's vectorised chains (its own features,
    statistics and conditionals); for simulation-based calibration. The draws are not
    relabelled.

    Parameters
    ----------
    Xs : array-like of shape (R, N, d)
    n_components : int
    covariance_type : str
        A family the PyMC model has (see :func:`models.pymc.sample`).
    prior : Prior
        Proper; the same for every data set.
    starts : sequence of GMMParams, length R
    draws, tune, thin : int
        ``tune`` sweeps, then ``draws`` kept states, every ``thin``-th sweep.
    random_seed : int or numpy.random.SeedSequence

    Returns
    -------
    xarray.Dataset
        ``pi``, ``mu`` and ``Sigma`` with dimensions (replicate, draw, ...) and ``occupied``
        (replicate, draw, component).
    """
    from models.pymc.inputs import check_count, check_inputs
    from models.seeds import seed_sequence

    checked = [check_inputs(X, n_components, covariance_type, prior, allow_flat=False)
               for X in np.asarray(Xs, dtype=np.float64)]
    first = checked[0]
    if len(starts) != len(checked):
        raise ValueError(f"starts has {len(starts)} starting points for {len(checked)} data sets; "
                         "give one GMMParams per data set.")
    draws, thin = check_count(draws, "draws"), check_count(thin, "thin")
    tune = check_count(tune, "tune", 0)
    cj = _conjugate(np.stack([c.X for c in checked]), first.K, first.family, first.prior,
                    len(checked))
    chains = Chains(cj, starts, np.random.default_rng(seed_sequence(random_seed)))
    with one_blas_thread():
        if tune:
            chains.advance(tune, Record(chains, 0, False), tune + 1)
        record = Record(chains, draws, False)
        chains.advance(draws * thin, record, thin)
    dims = {"pi": ("component",), "mu": ("component", "feature"),
            "Sigma": first.family.storage.dims, "occupied": ("component",)}
    return xr.Dataset({v: (("replicate", "draw") + dims[v], getattr(record, v)) for v in dims})

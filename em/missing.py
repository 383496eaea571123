r"""EM with values missing at random: the E-step on each row's observed cells, the M-step unchanged.

A missing cell is one more latent quantity beside ``z`` (Ghahramani & Jordan 1994). The E-step
needs, for each row and component, the marginal density of the observed cells and the
conditional mean and covariance of the missing ones; the M-step then takes the expected
sufficient statistics, the conditional means filling the first moments and the conditional
covariances added to the second,

.. math:: \mathbb E[x_n \mid x_{n,o}, z_n = k] = \hat x_{nk}, \qquad
    \mathbb E[x_n x_n^T \mid x_{n,o}, z_n = k] = \hat x_{nk} \hat x_{nk}^T + C_{nk}

(``C_nk`` the conditional covariance, zero outside the missing block), so every family's own
M-step applies as it is, and each iteration raises the observed-data log-likelihood (or log
posterior), which is EM's objective here.

How it is computed. Each block is first *filled*: a missing cell takes the column mean, the
``shift`` every block is centred at, so its centred value is 0. The complete-data kernels of
:mod:`models.features` run on the filled block unchanged (the same features, the same two BLAS
products), giving ``log pi_k + log N(x_f | mu_k, Sigma_k)`` at the filled row ``x_f``. With the
precision ``Lambda_k = Sigma_k^{-1}``, the residual ``r = [Lambda_k (x_f - mu_k)]_m`` on the
missing coordinates and ``C = (Lambda_{k,mm})^{-1}``, the conditional covariance,

.. math:: \log \mathcal N(x_o \mid \mu_{k,o}, \Sigma_{k,oo}) = \log \mathcal N(x_f \mid \mu_k,
    \Sigma_k) + \tfrac12 r^T C r + \tfrac12 \log|C| + \tfrac m2 \log 2\pi, \qquad
    \hat x_{nk,m} = x_{f,m} - C r

(the Schur complement: the joint density at ``x_f`` is the marginal of ``x_o`` times the
conditional of ``x_m`` at ``x_{f,m}``). So each row costs its ``m`` rows of ``Lambda_k`` and an
``m x m`` product per component, and the per-pattern work, ``Lambda_{k,mm}``'s Cholesky factor and
inverse, is done once per pass for every pattern (Delalleau, Courville & Bengio 2012 group rows
by pattern for the same reason). The corrections of the log joints and of the statistics are
two compiled loops over the incomplete rows (:class:`Fix`); complete rows take no extra work,
and data without a NaN take the complete-data pass untouched.
"""

from __future__ import annotations

import numpy as np

from models.features import default_chunk, features, jit, log_joint_of
from models.missing import fill_conditional, observed_moments, scan
from models.missing import impute as missing_impute
from models.params import GMMParams
from models.seeds import seed_sequence
from models.storage import upper_precision_factors
from models.validation import check_positive, check_X, iter_blocks

_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)
#: the loops whose sums numba may reorder and fuse (as the dense kernels' BLAS does)
_FAST = {"fastmath": {"reassoc", "contract"}}


# ----------------------------------------------------------------------------------------------
# compiled loops


def _pattern_factors(Lam, index, n_missing, C, cterm):  # pragma: no cover - compiled
    # per pattern p and component k: Lambda_k's missing block A = R R^T (Cholesky), C = A^-1,
    # cterm = log|C| / 2 + m log(2 pi) / 2; returns the first (p, k) whose block is not
    # positive-definite, or -1
    P, M = index.shape
    K = Lam.shape[0]
    R = np.empty((M, M))
    Ri = np.empty((M, M))
    for p in range(P):
        m = n_missing[p]
        for k in range(K):
            half_log_det = 0.0
            for j in range(m):
                s = Lam[k, index[p, j], index[p, j]]
                for q in range(j):
                    s -= R[j, q] * R[j, q]
                if not s > 0.0:
                    return p * K + k
                R[j, j] = np.sqrt(s)
                half_log_det += np.log(R[j, j])
                for i in range(j + 1, m):
                    t = Lam[k, index[p, i], index[p, j]]
                    for q in range(j):
                        t -= R[i, q] * R[j, q]
                    R[i, j] = t / R[j, j]
            for j in range(m):                       # Ri = R^-1, lower-triangular
                Ri[j, j] = 1.0 / R[j, j]
                for i in range(j + 1, m):
                    t = 0.0
                    for q in range(j, i):
                        t -= R[i, q] * Ri[q, j]
                    Ri[i, j] = t / R[i, i]
            for i in range(m):                       # C = Ri^T Ri
                for j in range(i, m):
                    t = 0.0
                    for q in range(j, m):
                        t += Ri[q, i] * Ri[q, j]
                    C[p, k, i, j] = t
                    C[p, k, j, i] = t
            cterm[p, k] = m * 0.9189385332046727 - half_log_det
    return -1


def _fill(Xb, rows, shift, out, Xc):  # pragma: no cover - compiled
    # out: the block with its missing cells at the shift; Xc: its incomplete rows, centred
    n, d = Xb.shape
    for r in range(n):
        for i in range(d):
            out[r, i] = Xb[r, i]
    for t in range(rows.shape[0]):
        r = rows[t]
        for i in range(d):
            v = Xb[r, i]
            if np.isnan(v):
                out[r, i] = shift[i]
                Xc[t, i] = 0.0
            else:
                Xc[t, i] = np.float64(v) - shift[i]


def _correct(Xc, rows, pats, Lam, lin, index, n_missing, C, cterm, L, U):  # pragma: no cover
    # L[k, r] += res^T C res / 2 + cterm, with res = [Lambda_k (x_f - mu_k)]_m
    # = Lambda_k[m, :] x_f - [Lambda_k mu_k]_m (x_f centred, 0 where missing); U[t, k] = C res.
    # One missing cell, the commonest case, has its own loop (2.6x faster than the general one).
    K, d = lin.shape
    M = index.shape[1]
    res = np.empty(M)
    for t in range(rows.shape[0]):
        r = rows[t]
        p = pats[t]
        m = n_missing[p]
        if m == 1:
            a = index[p, 0]
            for k in range(K):
                s = -lin[k, a]
                for i in range(d):
                    s += Lam[k, a, i] * Xc[t, i]
                u = C[p, k, 0, 0] * s
                U[t, k, 0] = u
                L[k, r] += 0.5 * u * s + cterm[p, k]
            continue
        for k in range(K):
            for j in range(m):
                a = index[p, j]
                s = -lin[k, a]
                for i in range(d):
                    s += Lam[k, a, i] * Xc[t, i]
                res[j] = s
            q = 0.0
            for j in range(m):
                s = 0.0
                for i in range(m):
                    s += C[p, k, j, i] * res[i]
                U[t, k, j] = s
                q += s * res[j]
            L[k, r] += 0.5 * q + cterm[p, k]


def _accumulate(Xc, rows, pats, index, n_missing, G, U, ds, T, UU, Gp, cross):  # pragma: no cover
    # with E = (0 on x_o, C res on x_m): E[x] = x_f - E, E[x x^T] = x_f x_f^T - x_f E^T - E x_f^T
    # + E E^T + C; ds the first term's correction, T[k, a] = sum g E_a x_f (the cross terms), UU
    # the E E^T term, Gp the weight of each pattern's C
    K = G.shape[0]
    d = Xc.shape[1]
    for t in range(rows.shape[0]):
        r = rows[t]
        p = pats[t]
        m = n_missing[p]
        if m == 1:
            a = index[p, 0]
            for k in range(K):
                g = np.float64(G[k, r])
                Gp[p, k] += g
                u = U[t, k, 0]
                gu = g * u
                ds[k, a] += gu
                UU[k, a, a] += gu * u
                if cross:
                    for i in range(d):
                        T[k, a, i] += gu * Xc[t, i]
            continue
        for k in range(K):
            g = np.float64(G[k, r])
            Gp[p, k] += g
            for j in range(m):
                a = index[p, j]
                gu = g * U[t, k, j]
                ds[k, a] += gu
                if cross:
                    for i in range(d):
                        T[k, a, i] += gu * Xc[t, i]
                for q in range(m):
                    UU[k, a, index[p, q]] += gu * U[t, k, q]


def _add_covariances(dM, Gp, C, index, n_missing):  # pragma: no cover - compiled
    P, K = Gp.shape
    for p in range(P):
        m = n_missing[p]
        for k in range(K):
            g = Gp[p, k]
            if g == 0.0:
                continue
            for i in range(m):
                for j in range(m):
                    dM[k, index[p, i], index[p, j]] += g * C[p, k, i, j]


# ----------------------------------------------------------------------------------------------
# one fit's missing cells, one pass's factors, one pass's corrections


class Missing:
    """The missing cells of one fit's data, as EM's pass uses them.

    Parameters
    ----------
    missingness : models.missing.Missingness
        The patterns (and, for arrays and memmaps, the incomplete rows).
    """

    def __init__(self, missingness):
        self.missingness = missingness
        self.index, self.n_missing = missingness.missing_index()
        self._plans = {}

    def block(self, start, Xb):
        """A block's incomplete rows and their patterns, the rows with fewer missing cells first.

        Rows with as many missing cells one after another repeat the compiled loops' trip counts,
        so their branches predict (in random order those loops cost 3x as much). Kept per block
        when the rows are known (arrays, memmaps), looked up for a Dask block.

        Parameters
        ----------
        start : int
        Xb : ndarray of shape (n, d)

        Returns
        -------
        rows, pattern : ndarray of int64
        """
        miss = self.missingness
        key = (start, Xb.shape[0])
        plan = self._plans.get(key)
        if plan is None:
            rows, pats = (miss.lookup(Xb) if miss.rows is None
                          else miss.in_block(start, Xb.shape[0]))
            order = np.argsort(self.n_missing[pats], kind="stable")
            plan = rows[order].astype(np.int64), pats[order].astype(np.int64)
            if miss.rows is not None:
                self._plans[key] = plan
        return plan

    def factors(self, params, shift):
        """Every pattern's factors at ``params``: computed once per pass.

        Parameters
        ----------
        params : GMMParams
        shift : ndarray of shape (d,)

        Returns
        -------
        Factors
        """
        U = upper_precision_factors(np.asarray(params.cholesky))
        Lam = np.ascontiguousarray(U @ np.swapaxes(U, 1, 2))
        P, M = self.index.shape
        C = np.zeros((P, params.K, M, M))
        cterm = np.empty((P, params.K))
        bad = jit(_pattern_factors)(Lam, self.index, self.n_missing, C, cterm)
        if bad >= 0:                       # a precision block that rounding made indefinite
            raise np.linalg.LinAlgError(f"pattern {bad // params.K}, component {bad % params.K}")
        return Factors(self, Lam, np.ascontiguousarray(params.mu - shift), C, cterm,
                       params.family.storage)

    def start(self, params, shift):
        """A pass's corrections (:class:`Fix`), with the factors at ``params``."""
        return Fix(self.factors(params, shift), shift)


class Factors:
    """One pass's per-pattern factors: what every block's corrections read (and a Dask task gets).

    Attributes
    ----------
    missing : Missing
    Lam : ndarray of shape (K, d, d)
        Precision matrices.
    mu_c : ndarray of shape (K, d)
        Means, centred at the pass's shift.
    C : ndarray of shape (P, K, M, M)
        Conditional covariances of each pattern's missing cells.
    cterm : ndarray of shape (P, K)
        ``log|C| / 2 + m log(2 pi) / 2``.
    storage : models.storage.Storage
    """

    def __init__(self, missing, Lam, mu_c, C, cterm, storage):
        self.missing, self.Lam, self.mu_c, self.C, self.cterm = missing, Lam, mu_c, C, cterm
        self.storage = storage

    def start(self, params, shift):
        """A pass's corrections with these factors (``params`` were used to make them)."""
        return Fix(self, shift)


class Fix:
    """One pass's corrections: fill each block, correct its log joints, then its statistics.

    :func:`em.fit.em_pass` calls :meth:`fill`, :meth:`correct` and :meth:`accumulate` per block,
    and :meth:`finish` on the summed statistics; the two corrections are compiled loops over the
    block's incomplete rows, which touch only their missing coordinates' rows of ``Lambda_k``.
    (Products over every coordinate, ``Lambda_k x_f`` for all ``k`` as one BLAS call, wrote and
    read back ten times the memory at d = 10 and cost more.)
    """

    def __init__(self, factors, shift):
        self.f = factors
        self.shift = np.asarray(shift, np.float64)
        K, d = factors.mu_c.shape
        P = factors.missing.index.shape[0]
        self.lin = np.einsum("kai,ki->ka", factors.Lam, factors.mu_c)
        self.ds = np.zeros((K, d))
        self.T = np.zeros((K, d, d))
        self.UU = np.zeros((K, d, d))
        self.Gp = np.zeros((P, K))
        self._buf = self._Xc = self._U = None
        self.rows = self.pats = None

    def fill(self, start, Xb):
        """The block with its missing cells at the shift (a copy, or ``Xb`` if it has none).

        Parameters
        ----------
        start : int
            The block's first row in the data the missingness was scanned on (0 for a block
            whose patterns are looked up).
        Xb : ndarray of shape (n, d)

        Returns
        -------
        ndarray of shape (n, d)
        """
        self.rows, self.pats = rows, _ = self.f.missing.block(start, Xb)
        if rows.size == 0:
            return Xb
        n, d = Xb.shape
        if self._buf is None or self._buf.shape[0] < n or self._buf.dtype != Xb.dtype:
            self._buf = np.empty((n, d), Xb.dtype)
        if self._Xc is None or self._Xc.shape[0] < rows.size:
            self._Xc = np.empty((max(rows.size, 64), d))
        out = self._buf[:n]
        jit(_fill)(Xb, self.rows, self.shift, out, self._Xc)
        return out

    def correct(self, L):
        """Turn the filled rows' log joints (K, n) into their observed cells' (in place)."""
        n_inc = self.rows.size
        if n_inc == 0:
            return
        f = self.f
        K, d = f.mu_c.shape
        if self._U is None or self._U.shape[0] < n_inc:
            self._U = np.empty((max(n_inc, 64), K, f.missing.index.shape[1]))
        jit(_correct, **_FAST)(self._Xc, self.rows, self.pats, f.Lam, self.lin,
                               f.missing.index, f.missing.n_missing, f.C, f.cterm, L, self._U)

    def accumulate(self, G):
        """Add the block's corrections of the statistics, from ``G`` (K, n): ``w_n gamma_nk``."""
        n_inc = self.rows.size
        if n_inc == 0:
            return
        f = self.f
        # variances need the diagonal only, where x_f E^T is 0: no cross terms
        jit(_accumulate, **_FAST)(self._Xc, self.rows, self.pats, f.missing.index,
                                  f.missing.n_missing, G, self._U, self.ds, self.T, self.UU,
                                  self.Gp, f.storage.matrix)

    def finish(self, stats):
        """The pass's statistics with the corrections added (expected sufficient statistics).

        Parameters
        ----------
        stats : models.features.SufficientStats
            The filled blocks' statistics.

        Returns
        -------
        models.features.SufficientStats
        """
        f = self.f
        dM = self.UU - self.T - np.swapaxes(self.T, 1, 2)
        jit(_add_covariances)(dM, self.Gp, f.C, f.missing.index, f.missing.n_missing)
        stats.s -= self.ds
        stats.M += f.storage.moments_from_full(dM)
        return stats


# ----------------------------------------------------------------------------------------------
# what em.fit and em.e_step call


def column_moments(X, w, chunk):
    """Weighted column means and variances of the observed cells, streamed over row blocks.

    Parameters
    ----------
    X : array-like of shape (N, d)
    w : ndarray of shape (N,) or None
    chunk : int

    Returns
    -------
    mean, var : ndarray of shape (d,)
    wsum : float
        The rows' total weight.
    """
    d = X.shape[1]
    s, n, wsum = np.zeros(d), np.zeros(d), 0.0
    for start, Xb in iter_blocks(X, chunk):
        Xb = Xb.astype(np.float64, copy=False)
        seen = ~np.isnan(Xb)
        wb = np.ones(Xb.shape[0]) if w is None else w[start:start + chunk]
        s += wb @ np.where(seen, Xb, 0.0)
        n += wb @ seen
        wsum += wb.sum()
    mean = s / n
    v = np.zeros(d)
    for start, Xb in iter_blocks(X, chunk):
        D = np.nan_to_num(Xb.astype(np.float64, copy=False) - mean)
        wb = np.ones(Xb.shape[0]) if w is None else w[start:start + chunk]
        v += wb @ D**2
    return mean, v / n, wsum


def observed_log_joint(X, params, missing, shift):
    """``log pi_k + log N(x_{n,o} | mu_{k,o}, Sigma_{k,oo})`` of every row, in blocks.

    Parameters
    ----------
    X : ndarray of shape (N, d)
        NaN where missing.
    params : GMMParams
    missing : Missing
        ``X``'s missing cells, rows kept.
    shift : ndarray of shape (d,)
        The centre of the features.

    Returns
    -------
    ndarray of shape (N, K)
    """
    kernel = log_joint_of(params, shift, np.float64)
    fix = missing.start(params, shift)
    out = np.empty((X.shape[0], params.K))
    rows = default_chunk(params.K, params.d, params.family.storage)
    for start, Xb in iter_blocks(X, rows):
        Xf = fix.fill(start, Xb.astype(np.float64, copy=False))
        L, row = kernel(features(Xf, shift, kernel.kind, np.float64))
        if row is not None:
            L += row
        fix.correct(L)
        out[start:start + Xb.shape[0]] = L.T
    return out


class Filled:
    """Row-indexable ``X - shift`` whose missing cells take their conditional means.

    The starts of EM (:mod:`em.init`) cluster complete rows; a missing cell there takes its
    conditional mean under one Gaussian with the observed cells' means and pairwise covariances
    (:func:`models.missing.observed_moments`), computed from at most ``rows`` random rows.

    Parameters
    ----------
    X : array-like of shape (N, d)
    shift : ndarray of shape (d,)
    rng : numpy.random.Generator
        Chooses the rows the moments come from, when N is larger than ``rows``.
    rows : int
    """

    def __init__(self, X, shift, rng, rows=20_000):
        self.X, self.shift = X, shift
        self.shape = X.shape
        take = (slice(None) if X.shape[0] <= rows
                else np.sort(rng.choice(X.shape[0], rows, replace=False)))
        self.mean, self.cov = observed_moments(np.asarray(X[take], np.float64) - shift)
        self._all = None

    def __getitem__(self, idx):
        return fill_conditional(np.asarray(self.X[idx], np.float64) - self.shift, self.mean,
                                self.cov)

    def all(self):
        """Every row, filled (computed once)."""
        if self._all is None:
            self._all = self[:]
        return self._all


def impute(X, params, n_imputations=None, random_state=None):
    r"""Fill the missing cells (NaN) of ``X`` from the mixture's conditional ``p(x_m | x_o)``.

    .. math:: \hat x_{n,m} = \sum_k \gamma_k(x_{n,o})\, \bigl(\mu_{k,m} + \Sigma_{k,mo}
        \Sigma_{k,oo}^{-1}(x_{n,o} - \mu_{k,o})\bigr)

    Without ``n_imputations``: each missing cell's conditional mean, the components' conditional
    means averaged by the responsibilities of the row's observed cells. With it: that many draws
    of the missing cells from the conditional mixture (a component from the responsibilities,
    then its Gaussian conditional), for multiple imputation.

    Parameters
    ----------
    X : array-like of shape (N, d)
        NaN where a value is missing; every row needs an observed value.
    params : GMMParams
    n_imputations : int or None
        None: the conditional mean. An integer m >= 1: m completed data sets.
    random_state : int, numpy.random.SeedSequence, Generator or None
        Seeds the draws.

    Returns
    -------
    ndarray of shape (N, d), or (m, N, d) with ``n_imputations``
        ``X`` completed; its observed cells unchanged.
    """
    if not isinstance(params, GMMParams):
        raise TypeError(f"params must be a models.GMMParams, got {type(params).__name__}.")
    X = check_X(X, d=params.d, finite=False).astype(np.float64, copy=False)
    scan(X, require_columns=False)
    full = params.family.to_full(params.Sigma, params.K, params.d)
    if n_imputations is None:
        return missing_impute(X, params.pi, params.mu, full)
    m = check_positive(n_imputations, "n_imputations", integer=True)
    rng = np.random.default_rng(seed_sequence(random_state, "random_state"))
    return missing_impute(X, params.pi, params.mu, full, m, rng)

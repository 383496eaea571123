r"""Values missing at random: patterns of missingness, and the Gaussian's marginals and conditionals.

A missing coordinate is one more latent quantity beside ``z`` (Ghahramani & Jordan 1994). For a
row split into its observed and missing features, ``x = (x_o, x_m)``, and a component
``N(mu, Sigma)``,

.. math::
    p(x_o) = \mathcal{N}(x_o \mid \mu_o, \Sigma_{oo}), \qquad
    x_m \mid x_o \sim \mathcal{N}\bigl(\mu_m + \Sigma_{mo}\Sigma_{oo}^{-1}(x_o - \mu_o),\;
    \Sigma_{mm} - \Sigma_{mo}\Sigma_{oo}^{-1}\Sigma_{om}\bigr),

so a mixture's observed-data density is the mixture of the marginals, and ``x_m`` given ``x_o``
is a mixture of the conditionals, weighted by the responsibilities ``gamma(z_nk)`` computed from
``x_o`` alone. Rows that share a pattern of missingness share ``Sigma_oo``'s Cholesky factor, so
everything here is computed pattern by pattern (Delalleau, Courville & Bengio 2012).

This module is the specification's (NumPy and SciPy only): the patterns (:class:`Missingness`,
:func:`scan`), the textbook per-pattern formulas above (:func:`log_gauss_observed`,
:func:`conditional`), imputation (:func:`impute`) and the draw of the missing cells given the
labels, for a Gibbs sampler (:func:`draw_missing`). EM's fast pass (:mod:`em.missing`) computes
the same quantities from the precision matrices instead, with one compiled loop over the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from models.validation import BLOCK_ELEMENTS, iter_blocks

__all__ = ["Missingness", "conditional", "draw_missing", "fill_conditional", "groups",
           "has_missing", "impute", "impute_draws", "log_gauss_observed", "observed_moments",
           "pattern_keys", "scan"]

_LOG_2PI = np.log(2 * np.pi)


def pattern_keys(absent):
    """One hashable, sortable key per row: its mask of missing features, packed into bytes.

    Parameters
    ----------
    absent : ndarray of bool, shape (n, d)
        True where a cell is missing.

    Returns
    -------
    ndarray of shape (n,), a NumPy void dtype of ``ceil(d / 8)`` bytes
    """
    packed = np.packbits(absent, axis=1, bitorder="little")
    return np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()


def _unpack(keys, d):
    """Missing masks (P, d) from pattern keys (:func:`pattern_keys`)."""
    raw = np.frombuffer(keys.tobytes(), np.uint8).reshape(len(keys), -1)
    return np.unpackbits(raw, axis=1, bitorder="little", count=d).astype(bool)


@dataclass(frozen=True, eq=False)
class Missingness:
    """Where a data matrix has holes: its patterns of missingness and the rows that have one.

    Attributes
    ----------
    observed : ndarray of bool, shape (P, d)
        Each incomplete pattern's observed features (at least one per pattern, and at least one
        missing), the patterns in the order of their keys.
    keys : ndarray of shape (P,)
        The patterns' keys (:func:`pattern_keys`), sorted: a block's rows find their pattern
        by ``searchsorted``.
    counts : ndarray of int, shape (P,)
        Rows per pattern.
    rows : ndarray of int, shape (n_incomplete,) or None
        The incomplete rows, ascending (None when not kept: a Dask array's blocks look their
        patterns up as they run).
    row_pattern : ndarray of int32, shape (n_incomplete,) or None
        The pattern of each of ``rows``.
    n_rows : int
        N, complete rows included.
    n_cells : int
        Missing cells.
    column_observed : ndarray of int, shape (d,)
        Observed cells per column.
    """

    observed: np.ndarray
    keys: np.ndarray
    counts: np.ndarray
    rows: np.ndarray | None
    row_pattern: np.ndarray | None
    n_rows: int
    n_cells: int
    column_observed: np.ndarray

    @property
    def d(self):
        """Number of features."""
        return self.observed.shape[1]

    @property
    def n_patterns(self):
        """Number of incomplete patterns."""
        return self.observed.shape[0]

    @property
    def n_incomplete(self):
        """Rows with at least one missing cell."""
        return int(self.counts.sum())

    def missing_index(self):
        """Each pattern's missing features, padded: ``(index (P, M), n_missing (P,))``.

        Returns
        -------
        index : ndarray of int64, shape (P, M)
            ``index[p, :n_missing[p]]`` are pattern p's missing features in increasing order
            (M is the largest number missing in a pattern); the rest is 0.
        n_missing : ndarray of int64, shape (P,)
        """
        absent = ~self.observed
        n_missing = absent.sum(axis=1).astype(np.int64)
        M = int(n_missing.max(initial=1))
        index = np.zeros((self.n_patterns, M), np.int64)
        for p in range(self.n_patterns):
            index[p, :n_missing[p]] = np.flatnonzero(absent[p])
        return index, n_missing

    def lookup(self, Xb):
        """The incomplete rows of a block and their patterns' indices.

        Parameters
        ----------
        Xb : ndarray of shape (n, d)

        Returns
        -------
        rows : ndarray of int64, shape (n_incomplete,)
            Positions in the block.
        pattern : ndarray of int64, shape (n_incomplete,)
        """
        absent = np.isnan(Xb)
        rows = np.flatnonzero(absent.any(axis=1))
        return rows, np.searchsorted(self.keys, pattern_keys(absent[rows]))

    def in_block(self, start, n):
        """``(rows, pattern)`` of the kept incomplete rows in ``[start, start + n)``.

        Parameters
        ----------
        start, n : int

        Returns
        -------
        rows : ndarray of int64
            Positions in the block.
        pattern : ndarray of int32
        """
        lo, hi = np.searchsorted(self.rows, [start, start + n])
        return self.rows[lo:hi] - start, self.row_pattern[lo:hi]

    def summary(self):
        """One line: ``"12 cells missing in 10 of 272 rows (4 patterns)"``."""
        cells = "1 cell" if self.n_cells == 1 else f"{self.n_cells} cells"
        pats = "1 pattern" if self.n_patterns == 1 else f"{self.n_patterns} patterns"
        return f"{cells} missing in {self.n_incomplete} of {self.n_rows} rows ({pats})"


def has_missing(X):
    """Whether ``X`` has a NaN cell (cheap for complete data: one pass, no copies kept).

    Parameters
    ----------
    X : ndarray of shape (N, d)

    Returns
    -------
    bool
    """
    return any(np.isnan(b).any() for _, b in iter_blocks(X, max(1, BLOCK_ELEMENTS // X.shape[1])))


def scan(X, name="X", keep_rows=True, require_columns=True):
    """Check ``X``'s cells and find its patterns of missingness, in one pass over row blocks.

    NaN is a missing cell. Infinite values, a row with nothing observed and a column with nothing
    observed are refused, each with one line that names it.

    Parameters
    ----------
    X : ndarray of shape (N, d)
        An array or a memmap (read block by block).
    name : str
        The name the messages use.
    keep_rows : bool
        Keep the incomplete rows and their patterns (:attr:`Missingness.rows`).
    require_columns : bool
        Refuse a column with nothing observed (to fit; new data may leave a feature out).

    Returns
    -------
    Missingness or None
        None when every cell is observed.

    Raises
    ------
    ValueError
        Infinite cells, or an empty row or column.
    """
    N, d = X.shape
    step = max(1, BLOCK_ELEMENTS // d)
    rows, keys, inf_rows, empty_rows = [], [], [], []
    column_observed = np.zeros(d, np.int64)
    n_cells = 0
    for start, b in iter_blocks(X, step):
        finite = np.isfinite(b)
        if finite.all():
            column_observed += b.shape[0]
            continue
        absent = np.isnan(b)
        bad = ~finite & ~absent
        if bad.any():
            inf_rows.append(start + np.flatnonzero(bad.any(axis=1)))
            continue
        column_observed += b.shape[0] - absent.sum(axis=0)
        n_cells += int(absent.sum())
        incomplete = np.flatnonzero(absent.any(axis=1))
        empty = absent[incomplete].all(axis=1)
        if empty.any():
            empty_rows.append(start + incomplete[empty])
        rows.append(start + incomplete)
        keys.append(pattern_keys(absent[incomplete]))
    if inf_rows:
        bad = np.concatenate(inf_rows)
        more = f" (and {bad.size - 1} more rows)" if bad.size > 1 else ""
        raise ValueError(f"{name} contains inf at row {bad[0]}{more}; drop or fix those rows "
                         "(NaN marks a missing value).")
    if empty_rows:
        bad = np.concatenate(empty_rows)
        more = f" (and {bad.size - 1} more rows)" if bad.size > 1 else ""
        raise ValueError(f"{name} has no observed value in row {bad[0]}{more}; drop those rows.")
    if not rows:
        return None
    if require_columns and (column_observed == 0).any():
        j = int(np.flatnonzero(column_observed == 0)[0])
        raise ValueError(f"{name} has no observed value in column {j}; drop that column.")
    rows, keys = np.concatenate(rows), np.concatenate(keys)
    unique, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return Missingness(observed=~_unpack(unique, d), keys=unique, counts=counts,
                       rows=rows if keep_rows else None,
                       row_pattern=inverse.astype(np.int32) if keep_rows else None,
                       n_rows=N, n_cells=n_cells, column_observed=column_observed)


def merge(parts, n_rows):
    """One :class:`Missingness` from the patterns of blocks (a Dask array's), rows not kept.

    Parameters
    ----------
    parts : list of (keys, counts, column_observed, n_cells)
        Each block's unique pattern keys and their counts, its observed cells per column and its
        missing cells.
    n_rows : int

    Returns
    -------
    Missingness or None
    """
    keys = [k for k, *_ in parts if len(k)]
    column_observed = sum(c for _, _, c, _ in parts)
    n_cells = int(sum(n for *_, n in parts))
    if not keys:
        return None
    all_keys = np.concatenate(keys)
    all_counts = np.concatenate([c for k, c, *_ in parts if len(k)])
    unique, inverse = np.unique(all_keys, return_inverse=True)
    counts = np.bincount(inverse, weights=all_counts, minlength=len(unique)).astype(np.int64)
    d = len(column_observed)
    return Missingness(observed=~_unpack(unique, d), keys=unique, counts=counts, rows=None,
                       row_pattern=None, n_rows=n_rows, n_cells=n_cells,
                       column_observed=np.asarray(column_observed, np.int64))


def block_patterns(b):
    """A block's part of :func:`merge`: its unique pattern keys and counts, cells observed, missing.

    Parameters
    ----------
    b : ndarray of shape (n, d)

    Returns
    -------
    tuple
    """
    absent = np.isnan(b)
    incomplete = absent.any(axis=1)
    keys, counts = np.unique(pattern_keys(absent[incomplete]), return_counts=True)
    return keys, counts, b.shape[0] - absent.sum(axis=0), int(absent.sum())


# ----------------------------------------------------------------------------------------------
# moments from the observed cells


def observed_moments(X, w=None):
    """Column means and covariances from the observed cells (pairwise-complete).

    Each mean is over its column's observed cells; each covariance over the rows where both
    columns are observed, about those means, with ``n - 1`` in the denominator (``np.cov``'s, which
    it equals on complete data). A pairwise matrix need not be positive semi-definite: its
    negative eigenvalues are raised to zero.

    Parameters
    ----------
    X : ndarray of shape (N, d)
        NaN where a cell is missing.
    w : ndarray of shape (N,) or None
        Observation weights (frequency weights: ``n`` is the weight sum).

    Returns
    -------
    mean : ndarray of shape (d,)
    cov : ndarray of shape (d, d)
    """
    X = np.asarray(X, dtype=np.float64)
    seen = ~np.isnan(X)
    w = np.ones(X.shape[0]) if w is None else np.asarray(w, np.float64)
    W = seen * w[:, None]
    mean = (np.where(seen, X, 0.0) * W).sum(axis=0) / W.sum(axis=0)
    D = np.where(seen, X - mean, 0.0)
    n = W.T @ seen                                      # sum_n w_n over rows with both seen
    cov = (D * w[:, None]).T @ D / np.maximum(n - 1.0, 1.0)
    cov = 0.5 * (cov + cov.T)
    if seen.all():
        return mean, cov
    ev, vec = np.linalg.eigh(cov)
    if ev[0] < 0:
        cov = (vec * np.maximum(ev, 0.0)) @ vec.T
    return mean, cov


# ----------------------------------------------------------------------------------------------
# the Gaussian's marginals and conditionals, pattern by pattern


def groups(X):
    """Rows grouped by pattern of missingness, complete rows included.

    Parameters
    ----------
    X : ndarray of shape (N, d)

    Returns
    -------
    list of (observed, rows)
        ``observed`` (d,) bool, each pattern's observed features; ``rows`` the rows with it.
    """
    absent = np.isnan(X)
    keys = pattern_keys(absent)
    unique, inverse = np.unique(keys, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=len(unique)))])
    masks = ~_unpack(unique, X.shape[1])
    return [(masks[p], order[bounds[p]:bounds[p + 1]]) for p in range(len(unique))]


def conditional(mu, Sigma, X_o, observed):
    r"""A Gaussian's marginal density of ``x_o`` and its conditional of ``x_m``, for one pattern.

    .. math:: \mathbb E[x_m \mid x_o] = \mu_m + (x_o - \mu_o)\Sigma_{oo}^{-1}\Sigma_{om},
        \quad \operatorname{Cov}[x_m \mid x_o] = \Sigma_{mm} - \Sigma_{mo}\Sigma_{oo}^{-1}
        \Sigma_{om}

    Parameters
    ----------
    mu : ndarray of shape (..., K, d)
    Sigma : ndarray of shape (..., K, d, d)
        Full covariances (a stack of draws, say, on the leading axes).
    X_o : ndarray of shape (n, o)
        The rows' observed cells.
    observed : ndarray of bool, shape (d,)
        The pattern: at least one feature observed.

    Returns
    -------
    log_dens : ndarray of shape (..., n, K)
        ``log N(x_o | mu_ko, Sigma_koo)``.
    mean : ndarray of shape (..., n, K, m)
        ``E[x_m | x_o, z = k]``.
    cov : ndarray of shape (..., K, m, m)
        ``Cov[x_m | x_o, z = k]``.
    """
    o, m = np.flatnonzero(observed), np.flatnonzero(~observed)
    S_oo = Sigma[..., o[:, None], o[None, :]]
    S_om = Sigma[..., o[:, None], m[None, :]]
    L = np.linalg.cholesky(S_oo)                                           # (..., K, o, o)
    diff = X_o[..., None, :, :] - mu[..., :, None, o]                      # (..., K, n, o)
    # NumPy's batched solve (LAPACK in one C loop); SciPy's solve_triangular loops over the
    # batch in Python, which cost a Gibbs sweep on data with holes 100 times its own time
    y = np.linalg.solve(L, np.swapaxes(diff, -1, -2))                     # (..., K, o, n)
    log_det = 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(axis=-1)
    maha = np.einsum("...kon,...kon->...nk", y, y)
    log_dens = -0.5 * (o.size * _LOG_2PI + log_det[..., None, :] + maha)
    B = np.linalg.solve(L, S_om)                                           # L^-1 S_om (..., K, o, m)
    mean = mu[..., :, None, m] + np.einsum("...kon,...kom->...knm", y, B)   # (..., K, n, m)
    cov = Sigma[..., m[:, None], m[None, :]] - np.swapaxes(B, -1, -2) @ B
    return log_dens, np.swapaxes(mean, -3, -2), cov


def log_gauss_observed(mu, Sigma, X):
    r"""``log N(x_{n,o} | mu_{k,o}, Sigma_{k,oo})`` of every row on its observed features.

    Parameters
    ----------
    mu : ndarray of shape (..., K, d)
    Sigma : ndarray of shape (..., K, d, d)
        Full covariances.
    X : ndarray of shape (N, d)
        NaN where missing; every row has an observed cell.

    Returns
    -------
    ndarray of shape (..., N, K)
    """
    out = np.empty(mu.shape[:-2] + (X.shape[0], mu.shape[-2]))
    for observed, rows in groups(X):
        out[..., rows, :] = conditional(mu, Sigma, X[np.ix_(rows, observed)], observed)[0]
    return out


def fill_conditional(X, mean, cov):
    """``X`` with each missing cell replaced by its conditional mean under one Gaussian.

    Parameters
    ----------
    X : ndarray of shape (N, d)
    mean : ndarray of shape (d,)
    cov : ndarray of shape (d, d)
        Positive semi-definite; a small ridge keeps it invertible.

    Returns
    -------
    ndarray of shape (N, d)
    """
    X = np.array(X, dtype=np.float64)
    d = X.shape[1]
    cov = cov + 1e-9 * max(np.trace(cov) / d, np.finfo(float).tiny) * np.eye(d)
    for observed, rows in groups(X):
        if observed.all():
            continue
        _, cm, _ = conditional(mean[None], cov[None], X[np.ix_(rows, observed)], observed)
        X[np.ix_(rows, ~observed)] = cm[:, 0]
    return X


def impute(X, pi, mu, Sigma, n_imputations=None, rng=None, with_variance=False):
    r"""Missing cells from a mixture's conditional ``p(x_m | x_o)``: its mean, or draws.

    .. math:: \mathbb E[x_m \mid x_o] = \sum_k \gamma_k(x_o)\, \mathbb E[x_m \mid x_o, z = k]

    Parameters
    ----------
    X : ndarray of shape (N, d)
        NaN where missing.
    pi : ndarray of shape (K,)
    mu : ndarray of shape (K, d)
    Sigma : ndarray of shape (K, d, d)
        Full covariances.
    n_imputations : int or None
        None: the conditional mean. An integer m: m draws of the missing cells
        (:func:`impute_draws` with the same parameters m times).
    rng : numpy.random.Generator or None
        For the draws.
    with_variance : bool
        Also return the conditional variance of each cell (0 where observed); the mean only.

    Returns
    -------
    ndarray of shape (N, d), or (m, N, d) with ``n_imputations``
        ``X`` completed; observed cells unchanged.
    variance : ndarray of shape (N, d)
        With ``with_variance`` only.
    """
    X = np.asarray(X, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_pi = np.log(pi)
    out = np.array(X) if n_imputations is None else np.repeat(X[None], n_imputations, axis=0)
    var = np.zeros_like(X) if with_variance else None
    for observed, rows in groups(X):
        if observed.all():
            continue
        log_dens, cm, cc = conditional(mu, Sigma, X[np.ix_(rows, observed)], observed)
        lj = log_pi + log_dens
        gamma = np.exp(lj - logsumexp(lj, axis=1, keepdims=True))           # (n, K)
        cols = np.flatnonzero(~observed)
        if n_imputations is not None:      # one factorisation, every imputation's draws
            out[:, rows[:, None], cols[None, :]] = _draw(gamma[None], cm[None],
                                                         _cholesky_psd(cc)[None], rng,
                                                         n_imputations)
            continue
        mean = np.einsum("nk,nkm->nm", gamma, cm)
        out[np.ix_(rows, cols)] = mean
        if with_variance:
            second = np.einsum("nk,nkm->nm", gamma,
                               cm**2 + np.diagonal(cc, axis1=1, axis2=2)[None])
            var[np.ix_(rows, cols)] = np.maximum(second - mean**2, 0.0)
    return (out, var) if with_variance else out


def impute_draws(X, pi, mu, Sigma, rng):
    """One draw of the missing cells from ``p(x_m | x_o, theta_s)`` for each of S mixtures.

    For posterior draws ``theta_s`` this is multiple imputation whose spread carries the
    parameters' uncertainty: each row's component is drawn from its responsibilities under
    ``theta_s``, then its missing cells from that component's conditional.

    Parameters
    ----------
    X : ndarray of shape (N, d)
        NaN where missing.
    pi : ndarray of shape (S, K)
    mu : ndarray of shape (S, K, d)
    Sigma : ndarray of shape (S, K, d, d)
        Full covariances.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (S, N, d)
        ``X`` completed S times.
    """
    X = np.asarray(X, dtype=np.float64)
    S = pi.shape[0]
    with np.errstate(divide="ignore"):
        log_pi = np.log(pi)
    out = np.repeat(X[None], S, axis=0)
    for observed, rows in groups(X):
        if observed.all():
            continue
        log_dens, cm, cc = conditional(mu, Sigma, X[np.ix_(rows, observed)], observed)
        lj = log_pi[:, None, :] + log_dens                                  # (S, n, K)
        gamma = np.exp(lj - logsumexp(lj, axis=-1, keepdims=True))
        cols = np.flatnonzero(~observed)
        out[:, rows[:, None], cols[None, :]] = _draw(gamma, cm, _cholesky_psd(cc), rng, S)
    return out


def _draw(gamma, cm, Lc, rng, S):
    """S draws per row: a component from ``gamma``, then its conditional Gaussian.

    ``gamma`` (s, n, K), ``cm`` (s, n, K, m) and ``Lc`` (s, K, m, m), with s = S (a draw's own
    parameters) or s = 1 (shared by every draw). Returns (S, n, m).
    """
    n, K = gamma.shape[1:]
    u = rng.uniform(size=(S, n, 1))
    z = np.minimum((np.cumsum(gamma, axis=-1) < u).sum(axis=-1), K - 1)   # (S, n)
    eps = rng.standard_normal((S, n, cm.shape[-1]))
    own = np.arange(S)[:, None] if gamma.shape[0] == S else np.zeros((S, 1), int)
    rows = np.arange(n)[None, :]
    return cm[own, rows, z] + np.einsum("snij,snj->sni", Lc[own, z], eps)


def _cholesky_psd(C):
    """Cholesky factors of covariances that are positive semi-definite up to rounding."""
    m = C.shape[-1]
    scale = np.maximum(np.trace(C, axis1=-2, axis2=-1) / m, np.finfo(float).tiny)
    return np.linalg.cholesky(C + 1e-12 * scale[..., None, None] * np.eye(m))


def draw_missing(X, z, mu, Sigma, rng, pattern_groups=None, out=None):
    r"""Draw every missing cell from its component's conditional: ``x_m ~ p(x_m | x_o, z, theta)``.

    The data-augmentation step of a Gibbs sampler that treats the missing cells as latent
    values: given the labels ``z`` and the parameters, each row's missing cells are drawn from

    .. math:: x_{n,m} \mid x_{n,o}, z_n = k \sim \mathcal{N}\bigl(\mu_{k,m} + \Sigma_{k,mo}
        \Sigma_{k,oo}^{-1}(x_{n,o} - \mu_{k,o}),\; \Sigma_{k,mm} - \Sigma_{k,mo}
        \Sigma_{k,oo}^{-1}\Sigma_{k,om}\bigr),

    one Cholesky factor per pattern and component.

    Parameters
    ----------
    X : ndarray of shape (N, d)
        The data, NaN where missing (only the observed cells are read).
    z : ndarray of int, shape (N,)
        Each row's component.
    mu : ndarray of shape (K, d)
    Sigma : ndarray of shape (K, d, d)
        Full covariances (``Family.to_full`` of any layout).
    rng : numpy.random.Generator
    pattern_groups : list or None
        :func:`groups` of ``X``, computed once by the caller (it does not change between sweeps).
    out : ndarray of shape (N, d) or None
        Written in place (the observed cells are copied from ``X``); default a new array.

    Returns
    -------
    ndarray of shape (N, d)
        ``X`` with its missing cells drawn.
    """
    z = np.asarray(z)
    out = np.array(X, dtype=np.float64) if out is None else out
    for observed, rows in (groups(X) if pattern_groups is None else pattern_groups):
        if observed.all():
            continue
        o, m = np.flatnonzero(observed), np.flatnonzero(~observed)
        _, cm, cc = conditional(mu, Sigma, X[np.ix_(rows, o)], observed)
        Lc = _cholesky_psd(cc)
        zr = z[rows]
        eps = rng.standard_normal((rows.size, m.size))
        out[np.ix_(rows, m)] = cm[np.arange(rows.size), zr] + np.einsum("nij,nj->ni", Lc[zr], eps)
    return out

"""Feature rows ``z(x)`` of centred data: what makes both EM steps a matrix product.

For each covariance type the log joint ``log pi_k + log N(x | mu_k, Sigma_k)`` is linear in a
short feature vector of ``x`` (centred at ``shift``), and the sufficient statistics of the
M-step are the sums ``sum_n g_nk z(x_n)``:

=========  ===========================  ==================  ==============================
kind       z(x)                         length p            used by
=========  ===========================  ==================  ==============================
LINEAR     x (the 1 is implicit)        d                   tied (its x^T Lambda x is
                                                            shared by every component)
SQUARES    (1, x, x_1^2, ..., x_d^2)    1 + 2 d             diag, spherical
PRODUCTS   (1, x, x_i x_j for i <= j)   1 + d + d(d+1)/2    full
=========  ===========================  ==================  ==============================

The features are stored transposed, one row per feature and one column per observation, so the
E-step is ``A @ Z`` (``A`` of shape (K, p)) and the M-step is ``G @ Z.T``: two BLAS products per
block, with the per-observation work of the normalisation running along contiguous rows. The
loop that fills ``Z`` is compiled with numba: building it from NumPy slices cost 2.6x more
(``benchmarks/em_vs_sklearn.py`` profile, d = 10). LINEAR features are the centred rows
themselves, seen transposed (BLAS reads the transpose in place), so tied covariance skips the
transposition that costs the other kinds about 12 ms per million rows at d = 10.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

LINEAR, SQUARES, PRODUCTS = 0, 1, 2

#: storage layout (:attr:`models.families.Family.storage`) -> feature kind
KIND = {"full": PRODUCTS, "tied": LINEAR, "diag": SQUARES, "spherical": SQUARES}


def n_features(d, kind):
    """Length p of ``z(x)`` for ``d`` dimensions.

    Parameters
    ----------
    d : int
    kind : {LINEAR, SQUARES, PRODUCTS}

    Returns
    -------
    int
    """
    if kind == LINEAR:
        return d
    return 1 + d + (d if kind == SQUARES else d * (d + 1) // 2)


def default_chunk(K, d, storage, dtype=np.float64):
    """Default rows per block: a block's features and log joints take about 512 KiB.

    That keeps them in a core's L2 cache between the two products that read them; float32
    blocks hold twice the rows, which also halves the per-block overhead (both measured best
    at d = 10 on these machines).

    Parameters
    ----------
    K, d : int
    storage : {"spherical", "diag", "tied", "full"}
        The family's layout.
    dtype : numpy dtype, default float64

    Returns
    -------
    int
    """
    p = n_features(d, KIND[storage])
    return int(np.clip((1 << 19) // ((p + K) * np.dtype(dtype).itemsize), 256, 32768))


def n_dims(p, kind):
    """Dimension d of data whose features have length ``p`` (inverse of :func:`n_features`).

    Parameters
    ----------
    p : int
    kind : {LINEAR, SQUARES, PRODUCTS}

    Returns
    -------
    int
    """
    if kind == LINEAR:
        return p
    if kind == SQUARES:
        return (p - 1) // 2
    return int(round((np.sqrt(9 + 8 * (p - 1)) - 3) / 2))


def vech_index(d):
    """Row and column of each product feature, in the order :func:`features` writes them.

    Parameters
    ----------
    d : int

    Returns
    -------
    (ndarray, ndarray)
        ``i`` and ``j`` of shape (d(d+1)/2,), ``i <= j``.
    """
    return _vech_index(int(d))


@functools.lru_cache(maxsize=64)
def _vech_index(d):
    i, j = np.triu_indices(d)
    i.flags.writeable = j.flags.writeable = False
    return i, j


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _fill(Xb, shift, Z, kind):  # pragma: no cover - compiled
    # every loop runs along a row of Z (contiguous writes, vectorised); this order took 0.3-0.7x
    # the time of filling one observation's column at a time, for d = 2 to 50
    n, d = Xb.shape
    for r in range(n):
        Z[0, r] = 1.0
    for j in range(d):
        s = shift[j]
        for r in range(n):
            Z[1 + j, r] = Xb[r, j] - s
    if kind == 1:
        for j in range(d):
            for r in range(n):
                Z[1 + d + j, r] = Z[1 + j, r] * Z[1 + j, r]
    elif kind == 2:
        off = 1 + d
        for i in range(d):
            for j in range(i, d):
                for r in range(n):
                    Z[off, r] = Z[1 + i, r] * Z[1 + j, r]
                off += 1


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _centre(Xb, shift, out):  # pragma: no cover - compiled
    # NumPy's broadcast subtract runs its inner loop once per row: about 1.9x as long at d = 10
    # (benchmarks/em_pass_profile.py --type tied --d 10 --K 8)
    n, d = Xb.shape
    for r in range(n):
        for j in range(d):
            out[r, j] = Xb[r, j] - shift[j]


def features(Xb, shift, kind, dtype, out=None):
    """Features of a block of rows, centred at ``shift``, transposed.

    Parameters
    ----------
    Xb : ndarray of shape (n, d)
        float32 or float64 rows. Centring rounds once to ``dtype``: in ``dtype`` when the rows
        and ``shift`` are exact in it (for float32 this equals centring in float64 and casting,
        since the float64 difference of two float32 values is exact unless their scales differ
        by more than 2^29), else in float64.
    shift : ndarray of shape (d,)
    kind : {LINEAR, SQUARES, PRODUCTS}
    dtype : numpy dtype
        float32 or float64.
    out : ndarray or None
        A flat buffer of at least ``p * n`` elements of ``dtype`` to reuse.

    Returns
    -------
    ndarray of shape (p, n)
        C-contiguous, except LINEAR: the transpose of the C-contiguous centred rows (a view of
        ``out`` when given).
    """
    n, d = Xb.shape
    p = n_features(d, kind)
    buf = np.empty(p * n, dtype) if out is None else out[:p * n]
    shift = np.asarray(shift, np.float64)
    shift_t = shift.astype(dtype)
    if Xb.dtype == dtype and np.array_equal(shift_t, shift):
        shift = shift_t  # exact in dtype: one rounding, as in float64 then a cast
    if kind == LINEAR:
        Xc = buf.reshape(n, d)
        _centre(Xb, shift, Xc)
        return Xc.T
    Z = buf.reshape(p, n)
    _fill(Xb, shift, Z, kind)
    return Z

r"""Feature rows ``z(x)`` of centred data: what makes the E-step and the statistics matrix products.

For each covariance layout (:mod:`models.storage`) the log joint
``log pi_k + log N(x | mu_k, Sigma_k)`` is linear in a short feature vector of ``x`` (centred at
``shift``), and the sufficient statistics of the M-step are the sums ``sum_n g_nk z(x_n)``:

=========  ===========================  ==================  ==============================
kind       z(x)                         length p            used by
=========  ===========================  ==================  ==============================
LINEAR     x (the 1 is implicit)        d                   tied (its x^T Lambda x is
                                                            shared by every component)
SQUARES    (1, x, x_1^2, ..., x_d^2)    1 + 2 d             diag, spherical
PRODUCTS   (1, x, x_i x_j for i <= j)   1 + d + d(d+1)/2    full
=========  ===========================  ==================  ==============================

The features are stored transposed, one row per feature and one column per observation, so the
log joints of a block are ``A @ Z`` (``A`` of shape (K, p), :class:`LogJoint`) and its statistics
``G @ Z.T`` (:func:`design_moments`): two BLAS products per block, with the per-observation work
of the normalisation running along contiguous rows. Every estimator of the suite that needs
responsibilities or conditional draws of ``z`` reads these kernels: EM's E-step and M-step
(:mod:`em`) and the Gibbs sampler (:mod:`models.pymc.gibbs`). On large data the loop that fills
``Z`` is compiled with numba: building it from NumPy slices cost 2.6x more
(``benchmarks/em_vs_sklearn.py`` profile, d = 10). Small data (:data:`COMPILED_ABOVE`) take the
NumPy calls, the same arithmetic, and never load numba's runtime. LINEAR features are the
centred rows themselves, seen transposed (BLAS reads the transpose in place), so tied
covariance skips the transposition that costs the other kinds about 12 ms per million rows at
d = 10.

The expanded quadratic form loses ``eps * lambda_max(Lambda) * |x|^2`` to cancellation. For full
covariance, when that could exceed about 1e-10 (a very tight component far from the data's
centre), the kernel switches to the factored form ``|U_k^T x - U_k^T mu_k|^2`` with the precision
Cholesky factor ``U_k`` (``Lambda_k = U_k U_k^T``), as scikit-learn computes it: its error is
``eps * |U_k^T x|`` instead of ``eps * |U_k^T x|^2``, for one (K d, d) product and ``3 K d``
operations per row more (:meth:`models.storage.Storage.kernel`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from models.storage import LINEAR, PRODUCTS, SQUARES, vech_index

_LOG_2PI = np.log(2 * np.pi)

__all__ = ["COMPILED_ABOVE", "LINEAR", "PRODUCTS", "SQUARES", "LogJoint", "SufficientStats",
           "block_stats", "compiled_for", "default_chunk", "design_moments", "features",
           "float64_sums", "jit", "log_joint_of", "log_joint_stacked", "n_dims", "n_features",
           "normalise", "normalise_stacked", "stats_from_moments", "vech_index"]

#: Passes over fewer feature values than this (rows times p) run the kernels as NumPy calls.
#: numba's runtime takes about a second to load in a fresh process (its import, then the first
#: call of a cached kernel), more than such small passes gain from it in a whole model grid; a
#: NumPy call costs a few microseconds more per block.
COMPILED_ABOVE = 1 << 17
_COMPILED: dict = {}


def compiled_for(rows, p):
    """Whether a pass over ``rows`` rows of ``p`` features runs numba's kernels.

    Parameters
    ----------
    rows, p : int

    Returns
    -------
    bool
    """
    return rows * p >= COMPILED_ABOVE


def jit(fn, **options):
    """``fn`` compiled by numba (cached on disk, once per process); numba loads on the first call.

    Parameters
    ----------
    fn : function
        A function numba compiles in nopython mode.
    **options
        More of ``numba.njit``'s options (``fastmath``).

    Returns
    -------
    numba dispatcher
    """
    compiled = _COMPILED.get(fn)
    if compiled is None:
        import numba

        compiled = _COMPILED[fn] = numba.njit(cache=True, nogil=True, boundscheck=False,
                                              **options)(fn)
    return compiled


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
    storage : models.storage.Storage
        The family's layout.
    dtype : numpy dtype, default float64

    Returns
    -------
    int
    """
    p = n_features(d, storage.kind)
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


def _centre(Xb, shift, out):  # pragma: no cover - compiled
    # NumPy's broadcast subtract runs its inner loop once per row: about 1.9x as long at d = 10
    # (benchmarks/em_pass_profile.py --type tied --d 10 --K 8)
    n, d = Xb.shape
    for r in range(n):
        for j in range(d):
            out[r, j] = Xb[r, j] - shift[j]


def _fill_numpy(Xb, shift, Z, kind):
    """:func:`_fill` as NumPy calls: the same operations in the same dtype, so the same values."""
    d = Xb.shape[1]
    Z[0] = 1.0
    X = Z[1:d + 1]
    np.subtract(Xb.T, shift[:, None], out=X)
    if kind == SQUARES:
        np.multiply(X, X, out=Z[1 + d:])
    elif kind == PRODUCTS:
        i, j = vech_index(d)
        np.multiply(X[i], X[j], out=Z[1 + d:])


def features(Xb, shift, kind, dtype, out=None, compiled=None):
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
    compiled : bool or None
        Fill with numba's kernel (True) or NumPy calls (False; the same values); None decides
        by the block's size (:func:`compiled_for`).

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
    compiled = compiled_for(n, p) if compiled is None else compiled
    if kind == LINEAR:
        Xc = buf.reshape(n, d)
        if compiled:
            jit(_centre)(Xb, shift, Xc)
        else:
            np.subtract(Xb, shift, out=Xc)
        return Xc.T
    Z = buf.reshape(p, n)
    if compiled:
        jit(_fill)(Xb, shift, Z, kind)
    else:
        _fill_numpy(Xb, shift, Z, kind)
    return Z


# ----------------------------------------------------------------------------------------------
# the E-step kernel: log joints of a feature block


@dataclass(frozen=True)
class LogJoint:
    """``log pi_k + log N(x | mu_k, Sigma_k)`` of feature blocks, for one set of parameters.

    Attributes
    ----------
    kind : int
        Feature kind (``LINEAR``, ``SQUARES``, ``PRODUCTS``) the kernel reads.
    A : ndarray of shape (K, p)
        Coefficients of the features, in the working dtype.
    U : ndarray or None
        Precision Cholesky factors: (d, d) for tied (the shared row term), (K d, d) stacked
        ``U_k^T`` for full in precise mode, else None.
    b : ndarray or None
        Stacked ``U_k^T mu_k``, shape (K d, 1), in precise mode.
    Lam : ndarray or None
        Tied: the shared precision ``Lambda`` (d, d) in float64, so a pass can add
        ``-<Lambda, sum_n w_n x_n x_n^T> / 2`` to the log-likelihood instead of the row terms.
    """

    kind: int
    A: np.ndarray
    U: np.ndarray | None = None
    b: np.ndarray | None = None
    Lam: np.ndarray | None = None

    @cached_property
    def A_lin(self):
        """Tied: the coefficients of ``x``, contiguous (the constant is ``A[:, 0]``)."""
        return np.ascontiguousarray(self.A[:, 1:])

    @property
    def precise(self):
        """True when the full-covariance Mahalanobis terms use the factored form."""
        return self.b is not None

    def __call__(self, Z, out=None, shared=True):
        """Log joint of a feature block.

        Parameters
        ----------
        Z : ndarray of shape (p, n)
            Features from :func:`features`.
        out : ndarray or None
            Flat buffer of at least ``K * n`` elements to hold the result.
        shared : bool
            Compute the tied row term (False: the caller accounts for it through ``Lam``).

        Returns
        -------
        L : ndarray of shape (K, n)
            The log joint, less the shared row term.
        row : ndarray of shape (n,) or None
            The term every component shares (tied), to add to ``log p(x_n)``.
        """
        K, n = self.A.shape[0], Z.shape[1]
        L = None if out is None else out[:K * n].reshape(K, n)
        if self.precise:
            d = self.U.shape[1]
            Y = self.U @ Z[1:d + 1]
            Y -= self.b
            Y *= Y
            L = np.sum(Y.reshape(K, d, n), axis=1, out=L)
            L *= -0.5
            L += self.A[:, :1]
            return L, None
        if self.kind != LINEAR:
            return np.matmul(self.A, Z, out=L), None
        L = np.matmul(self.A_lin, Z, out=L)       # BLAS needs contiguous operands
        L += self.A[:, :1]
        if not shared:
            return L, None
        Y = self.U @ Z
        Y *= Y
        return L, -0.5 * Y.sum(axis=0, dtype=np.float64)


def log_joint_of(params, shift, dtype):
    """The log joint's kernel for ``params``, for data centred at ``shift``.

    Parameters
    ----------
    params : GMMParams
    shift : ndarray of shape (d,)
        The offset subtracted from every row before the features are built.
    dtype : numpy dtype
        float32 or float64: the dtype of the large matrix products.

    Returns
    -------
    LogJoint
    """
    storage = params.family.storage
    terms = storage.kernel(params, shift)
    return LogJoint(storage.kind, terms["A"].astype(dtype),
                    *(None if terms.get(k) is None else terms[k].astype(dtype) for k in ("U", "b")),
                    Lam=terms.get("Lam"))


def _subtract_max(L, m):  # pragma: no cover - compiled
    K, n = L.shape
    for r in range(n):
        m[r] = L[0, r]
    for k in range(1, K):
        for r in range(n):
            m[r] = max(m[r], L[k, r])
    for k in range(K):
        for r in range(n):
            L[k, r] -= m[r]


def _divide_by_sum(L, inv_t):  # pragma: no cover - compiled
    K, n = L.shape
    for r in range(n):
        inv_t[r] = L[0, r]
    for k in range(1, K):
        for r in range(n):
            inv_t[r] += L[k, r]
    for r in range(n):
        inv_t[r] = 1.0 / inv_t[r]
    for k in range(K):
        for r in range(n):
            L[k, r] *= inv_t[r]


def _sums(a, b):  # pragma: no cover - compiled
    s, t = 0.0, 0.0
    for r in range(a.shape[0]):
        s += np.float64(a[r])
        t += np.float64(b[r])
    return s, t


def float64_sums(a, b, compiled=None):
    """``(sum(a), sum(b))`` accumulated in float64, for two vectors of one length.

    One compiled pass: NumPy's ``sum(dtype=float64)`` of float32 takes about 6x as long (it casts
    through a buffer), 0.12 of the 0.82 ms of a float32 EM pass at d = 2
    (``benchmarks/em_pass_profile.py``).

    Parameters
    ----------
    a, b : ndarray of shape (n,)
    compiled : bool or None
        numba's loop (True) or NumPy's pairwise sums (False); None decides by the length.

    Returns
    -------
    (float, float)
    """
    if compiled if compiled is not None else compiled_for(a.shape[0], 1):
        return jit(_sums, fastmath={"reassoc"})(a, b)
    return float(a.sum(dtype=np.float64)), float(b.sum(dtype=np.float64))


def normalise(L, compiled=None):
    r"""Turn a (K, n) block of log joints into responsibilities, in place.

    .. math:: \log p(x_n) = m_n + \log t_n, \quad
        \gamma_{kn} = e^{\ell_{kn} - m_n} / t_n, \quad m_n = \max_k \ell_{kn}, \quad
        t_n = \sum_k e^{\ell_{kn} - m_n}

    This is logsumexp fused with the softmax it normalises: the hot loop needs both, and
    ``scipy.special.logsumexp`` followed by ``exp`` takes the exponentials twice. Components run
    along the first axis, so every step is a vectorised pass over contiguous rows of length n:
    two compiled loops (max and shift; sum and scale) around NumPy's SIMD ``exp`` (7-10 % faster
    than the same steps as NumPy calls, measured at N = 1e6, d = 10, K = 8).

    Parameters
    ----------
    L : ndarray of shape (K, n)
        Overwritten with ``gamma``.
    compiled : bool or None
        numba's loops (True) or NumPy calls in the same order (False: the same values); None
        decides by the block's size.

    Returns
    -------
    m : ndarray of shape (n,)
        ``max_k log p(x_n, z_n = k)``.
    log_t : ndarray of shape (n,)
        ``log t_n``: ``log p(x_n) = m + log_t``, and ``max_k log gamma_kn = -log_t`` (for ICL).
    """
    K, n = L.shape
    m, log_t = np.empty(n, L.dtype), np.empty(n, L.dtype)
    if compiled if compiled is not None else compiled_for(n, K):
        jit(_subtract_max)(L, m)
        np.exp(L, out=L)
        jit(_divide_by_sum)(L, log_t)
    else:
        np.max(L, axis=0, out=m)
        L -= m
        np.exp(L, out=L)
        np.sum(L, axis=0, out=log_t)
        np.divide(1.0, log_t, out=log_t)
        L *= log_t
    np.log(log_t, out=log_t)
    return m, np.negative(log_t, out=log_t)


# ----------------------------------------------------------------------------------------------
# sufficient statistics: the features summed with the responsibilities


@dataclass
class SufficientStats:
    """Weighted sufficient statistics of one pass (or one block) over centred data.

    Attributes
    ----------
    N_k : ndarray of shape (K,)
    s : ndarray of shape (K, d)
        ``sum_n w_n gamma_nk x_n``.
    M : ndarray
        Second moments: (K, d, d) full, (d, d) tied, (K, d) diag and spherical.
    """

    N_k: np.ndarray
    s: np.ndarray
    M: np.ndarray

    def __iadd__(self, other):
        self.N_k += other.N_k
        self.s += other.s
        self.M += other.M
        return self

    def __add__(self, other):
        return SufficientStats(self.N_k + other.N_k, self.s + other.s, self.M + other.M)


def design_moments(G, Z, storage, w=None):
    """Raw moments of one block from its features: one product ``G @ Z.T``.

    Parameters
    ----------
    G : ndarray of shape (K, n)
        ``w_n gamma_nk``, components along the first axis.
    Z : ndarray of shape (p, n)
        Features of the centred block (:func:`features` of the layout's kind).
    storage : models.storage.Storage
    w : ndarray of shape (n,) or None or False
        The block's weights (tied only: its second moment ``sum_n w_n x_n x_n^T`` does not
        depend on ``gamma``); False skips that moment.

    Returns
    -------
    GZ : ndarray of shape (K, p)
        ``sum_n g_nk z(x_n)``, in the dtype of ``G`` and ``Z`` (tied: ``(1, x)``, p = 1 + d).
    XX : ndarray of shape (d, d) or None
        Tied only.
    """
    return storage.moments(G, Z, w)


def stats_from_moments(GZ, XX, storage):
    """Sufficient statistics from the summed raw moments of :func:`design_moments`.

    Parameters
    ----------
    GZ : ndarray of shape (K, p)
    XX : ndarray of shape (d, d) or None
    storage : models.storage.Storage

    Returns
    -------
    SufficientStats
        In float64.
    """
    K, p = GZ.shape
    d = n_dims(p - (storage.kind == LINEAR), storage.kind)   # tied's moments carry the 1
    GZ = np.asarray(GZ, np.float64)
    M = storage.second_moments(GZ[:, d + 1:], XX, K, d)
    return SufficientStats(N_k=GZ[:, 0].copy(), s=GZ[:, 1:d + 1].copy(), M=M)


def block_stats(Xb, g, storage):
    """Sufficient statistics of centred rows, in float64.

    Parameters
    ----------
    Xb : ndarray of shape (n, d)
    g : ndarray of shape (n, K)
        ``w_n gamma_nk``.
    storage : models.storage.Storage

    Returns
    -------
    SufficientStats
    """
    n, d = Xb.shape
    zero = np.zeros(d)
    rows = default_chunk(g.shape[1], d, storage)
    GZ = XX = 0.0
    for start in range(0, n, rows):
        Z = features(Xb[start:start + rows], zero, storage.kind, np.float64)
        gb = np.asarray(g[start:start + rows], np.float64)
        GZ_b, XX_b = design_moments(gb.T, Z, storage, gb.sum(axis=1))
        GZ, XX = GZ + GZ_b, (None if XX_b is None else XX + XX_b)
    return stats_from_moments(GZ, XX, storage)


# ----------------------------------------------------------------------------------------------
# the kernel for a stack of mixtures (posterior draws, chains of a sampler)


def log_joint_stacked(log_pi, mu, prec, log_det_prec, kind, compiled=False):
    r"""The log joint's kernel for many mixtures at once: one row of coefficients per component.

    :meth:`models.storage.Storage.kernel`'s coefficients (in the non-factored form), for a stack
    of ``S`` mixtures of ``K`` components given by their precisions, in the features of data
    centred where the means are (pass means already minus the shift):

    .. math:: A_k = \bigl(\log \pi_k - \tfrac d2 \log 2\pi + \tfrac12 \log|\Lambda_k|
        - \tfrac12 \mu_k^T \Lambda_k \mu_k,\ \ \Lambda_k \mu_k,\ \ -\tfrac12 \Lambda_{k,ii},
        \ -\Lambda_{k,ij}\ (i < j)\bigr)

    LINEAR leaves out the row term ``-x^T Lambda x / 2`` (every component of one mixture shares
    it: it cancels in the responsibilities, and its sum over a block is
    ``-<Lambda, sum_n x_n x_n^T> / 2``); SQUARES takes the diagonal precisions.

    Parameters
    ----------
    log_pi : ndarray of shape (S, K)
    mu : ndarray of shape (S, K, d)
        Means, centred as the features are.
    prec : ndarray of shape (S, K, d, d) or (S, K, d)
        Precision matrices (LINEAR, PRODUCTS), or the precisions of each feature (SQUARES).
    log_det_prec : ndarray of shape (S, K)
        ``log|Lambda_k|``.
    kind : {LINEAR, SQUARES, PRODUCTS}
    compiled : bool, default False
        One numba call (:func:`stacked_coefficients`, the same formulas entry by entry)
        instead of the NumPy calls: for a few mixtures at a time, as the Gibbs route's sweeps
        take it, where the calls' overhead is the cost.

    Returns
    -------
    LogJoint
        ``A`` of shape (S K, p): row ``s K + k`` is component k of mixture s.
    """
    S, K, d = mu.shape
    A = np.empty((S, K, n_features(d, kind) + (kind == LINEAR)))
    if compiled:
        if kind == SQUARES:
            P = prec[..., None]                                 # (S, K, d, 1)
        else:                                                   # Lambda mu, as below
            P = prec
            np.matmul(prec, mu[..., None], out=A[..., 1:d + 1, None])
        jit(stacked_coefficients)(log_pi, mu, P, log_det_prec, kind, A)
        return LogJoint(kind, A.reshape(S * K, -1))
    lin = A[..., 1:d + 1]
    if kind == SQUARES:
        np.multiply(prec, mu, out=lin)
        np.multiply(prec, -0.5, out=A[..., d + 1:])
    else:
        np.matmul(prec, mu[..., None], out=lin[..., None])
        if kind == PRODUCTS:
            i, j = vech_index(d)
            np.multiply(prec[..., i, j], _quad_weights(d), out=A[..., d + 1:])
    c = A[..., 0]
    c[...] = log_pi + 0.5 * log_det_prec - 0.5 * (mu * lin).sum(-1) - 0.5 * d * _LOG_2PI
    return LogJoint(kind, A.reshape(S * K, -1))


def stacked_coefficients(log_pi, mu, prec, log_det_prec, kind, A):  # pragma: no cover - compiled
    """:func:`log_joint_stacked`'s ``A`` (S, K, p) entry by entry, in its order of operations.

    ``Lambda mu`` is given in ``A[..., 1:d + 1]`` for matrices; ``prec`` is (S, K, d, d), or
    (S, K, d, 1) for SQUARES. Then the quadratic features' weights and the constant. Compile it
    with :func:`jit`; the Gibbs route's compiled sweeps take it too.
    """
    S, K, d = mu.shape
    half_log_2pi = 0.5 * d * np.log(2.0 * np.pi)
    for s in range(S):
        for k in range(K):
            quad = 0.0
            for i in range(d):
                if kind == SQUARES:                             # per-feature precisions
                    A[s, k, 1 + i] = prec[s, k, i, 0] * mu[s, k, i]
                    A[s, k, d + 1 + i] = prec[s, k, i, 0] * -0.5
                quad += mu[s, k, i] * A[s, k, 1 + i]
            if kind == PRODUCTS:                                # x_i x_j, i <= j
                q = d + 1
                for i in range(d):
                    for j in range(i, d):
                        A[s, k, q] = prec[s, k, i, j] * (-0.5 if i == j else -1.0)
                        q += 1
            A[s, k, 0] = log_pi[s, k] + 0.5 * log_det_prec[s, k] - 0.5 * quad - half_log_2pi


@functools.lru_cache(maxsize=64)
def _quad_weights(d):
    """``-1/2`` on the diagonal, ``-1`` off it, for the product features ``x_i x_j`` (i <= j)."""
    i, j = vech_index(d)
    w = np.where(i == j, -0.5, -1.0)
    w.flags.writeable = False
    return w


def shift_by_max(L, m):  # pragma: no cover - compiled
    """Stacked ``L`` (S, K, n) less its maximum over k, in place; the maxima go to ``m`` (S, n).

    Compile it with :func:`jit`; the E-step of stacked parameters and the Gibbs route's
    allocations both take it.
    """
    S, K, n = L.shape
    for s in range(S):
        for r in range(n):
            m[s, r] = L[s, 0, r]
        for k in range(1, K):
            for r in range(n):
                m[s, r] = max(m[s, r], L[s, k, r])
        for k in range(K):
            for r in range(n):
                L[s, k, r] -= m[s, r]


def _normalise_stacked(E, m, t, totals, lse, g_sum, pointwise):  # pragma: no cover - compiled
    # E = exp(L - max) (S, K, n) becomes gamma; totals[s] += sum_r (m + log t); lse[s] = m + log t
    # when pointwise; g_sum (K, n) += sum_s gamma. One log per observation only when pointwise:
    # otherwise the log of a product of t in [1, K], taken every so often.
    S, K, n = E.shape
    for s in range(S):
        for r in range(n):
            t[r] = E[s, 0, r]
        for k in range(1, K):
            for r in range(n):
                t[r] += E[s, k, r]
        acc = 0.0
        if pointwise:
            for r in range(n):
                lse[s, r] = m[s, r] + np.log(t[r])
                acc += lse[s, r]
        else:
            prod = 1.0
            for r in range(n):
                acc += m[s, r]
                prod *= t[r]
                if prod > 1e200:
                    acc += np.log(prod)
                    prod = 1.0
            acc += np.log(prod)
        totals[s] += acc
        for r in range(n):
            t[r] = 1.0 / t[r]
        for k in range(K):
            for r in range(n):
                E[s, k, r] *= t[r]
                g_sum[k, r] += E[s, k, r]


def normalise_stacked(L, totals, g_sum, pointwise=False):
    r"""Turn a block of many mixtures' log joints into responsibilities, in place.

    :func:`normalise` for a stack of mixtures: two compiled passes around NumPy's vectorised
    ``exp``, on a block small enough to stay in cache.

    .. math:: \log p(x_r \mid \theta_s) = m_{sr} + \log \sum_k e^{\ell_{skr} - m_{sr}}, \quad
        \gamma_{skr} = e^{\ell_{skr}} / p(x_r \mid \theta_s)

    Parameters
    ----------
    L : ndarray of shape (S, K, n)
        Log joints; overwritten with the responsibilities.
    totals : ndarray of shape (S,)
        Incremented by ``sum_r log p(x_r | theta_s)``.
    g_sum : ndarray of shape (K, n)
        Incremented by ``sum_s gamma_skr``.
    pointwise : bool
        Also return ``log p(x_r | theta_s)``.

    Returns
    -------
    ndarray of shape (S, n) or None
    """
    S, K, n = L.shape
    m = np.empty((S, n))
    jit(shift_by_max)(L, m)
    np.exp(L, out=L)
    lse = np.empty((S, n)) if pointwise else np.empty((1, 1))
    jit(_normalise_stacked)(L, m, np.empty(n), totals, lse, g_sum, pointwise)
    return lse if pointwise else None

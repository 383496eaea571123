"""Initial parameters for EM: hc, ward, k-means++, k-means, random responsibilities, or given.

``"hc"`` is mclust's default initialisation: model-based agglomerative clustering under the
unconstrained model (mclust's ``hcVVV``, Fraley 1998) of the data after mclust's
``hcUse = "SVD"`` transformation (standardised, rotated to the principal axes and scaled by the
inverse square roots of the singular values), cut at K clusters. Each merge joins the pair of
clusters whose merged term rises least, with mclust's regularised term for a cluster of ``l``
points, scatter ``W`` and ``T = tr W``::

    l log(beta (T + alpha) / l)                    l <= d
    l log(|W / l| + beta (T + alpha) / l)          l > d           (alpha = beta = 1)

``"ward"`` is Ward's criterion on the same transformed data (scipy.cluster.hierarchy; mclust's
``hcEII``). Both run on at most ``HC_MAX_ROWS`` rows, chosen at random when N is larger, as
mclust's ``initialization = list(subset = ...)`` does. ``"auto"`` (``em.fit``'s default) starts
once from ``"hc"``, once from ``"ward"`` and ``n_init`` times from k-means++, and keeps the best.
"""

from __future__ import annotations

import numpy as np

from em.mstep import params_from_stats
from models.features import block_stats
from models.params import GMMParams
from models.seeds import integer_seed

INIT_METHODS = ("auto", "hc", "ward", "k-means++", "kmeans", "random")

#: hierarchical agglomeration keeps an (n^2 / 2)-entry distance matrix: at most this many rows
HC_MAX_ROWS = 2000

# Hard assignments are blended with this much of a uniform assignment so that the first M-step
# sees every point in every component: no empty component and no singular first covariance.
_BLEND = 1e-3


def _labels_kmeanspp(Xc, K, w, seq):
    from sklearn.cluster import kmeans_plusplus  # scikit-learn only where it is used

    centers, _ = kmeans_plusplus(Xc, K, random_state=integer_seed(seq), sample_weight=w)
    return nearest(Xc, centers)


def nearest(X, centers):
    """Index of the nearest centre of each row (squared Euclidean distance).

    NumPy's products, as ``sklearn.metrics.pairwise_distances_argmin`` computes them; its
    threaded reduction cost 50 ms a call on a few dozen rows of a busy machine, most of a small
    fit's start.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    centers : ndarray of shape (K, d)

    Returns
    -------
    ndarray of shape (n,)
    """
    X = np.asarray(X, dtype=np.float64)
    return ((centers**2).sum(axis=1) - 2.0 * X @ centers.T).argmin(axis=1)


def _labels_kmeans(Xc, K, w, seq):
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=K, n_init=1, random_state=integer_seed(seq)).fit(
        Xc, sample_weight=w).labels_


def svd_scaled(X):
    """Mclust's ``hcUse = "SVD"``: standardise, rotate to the principal axes, divide by sqrt(s).

    Parameters
    ----------
    X : ndarray of shape (n, d)

    Returns
    -------
    ndarray of shape (n, r)
        ``r <= d``: directions with a zero singular value are dropped.
    """
    sd = X.std(axis=0, ddof=1)
    Z = (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    _, s, Vt = np.linalg.svd(Z, full_matrices=False)
    keep = s > s[0] * 1e-10
    return Z @ Vt[keep].T / np.sqrt(s[keep])


def _hc_term(n, W, T, d, alpha, beta):
    """Mclust's VVV agglomeration term.

    Of clusters of sizes ``n`` (m,), scatters ``W`` (m, d, d), or a callable giving the scatters
    of the clusters it is given by index, and traces ``T`` (m,). The determinant enters only
    for a cluster of more than ``d`` points, so only those scatters are formed and factored.
    """
    big = np.flatnonzero((n > d) & (T != 0))
    det = np.zeros(n.shape)
    if big.size:
        Wb = W(big) if callable(W) else W[big]
        det[big] = np.maximum(np.linalg.det(Wb / n[big, None, None]), 0.0)
    return n * np.log(det + beta * (T + alpha) / n)


def hc_merges(Z, alpha=1.0, beta=1.0):
    """The merge sequence of model-based agglomeration under VVV (mclust's ``hcVVV``).

    Parameters
    ----------
    Z : ndarray of shape (n, d)
        Transformed data (:func:`svd_scaled`).
    alpha, beta : float
        mclust's regularisation of the cluster term (its defaults, 1); alpha is multiplied by
        the data's mean variance, ``tr(W) / (n d)``, as mclust's ``hcVVV`` does.

    Returns
    -------
    list of (int, int)
        Merges in order; cluster ``j`` joins cluster ``i < j``, which keeps the index ``i``.
    """
    N, d = Z.shape
    n, m = np.ones(N), np.asarray(Z, np.float64).copy()
    # mclust scales alpha by the data's mean variance: tr(W) / (n d) of the whole sample
    alpha = max(alpha * ((m - m.mean(axis=0)) ** 2).sum() / (N * d), np.finfo(float).eps)
    W, T = np.zeros((N, d, d)), np.zeros(N)
    t = np.full(N, np.log(alpha * beta))
    active = np.ones(N, bool)

    def merged(i, ks):
        delta = m[ks] - m[i]
        c = n[i] * n[ks] / (n[i] + n[ks])
        Tij = T[ks] + T[i] + c * (delta**2).sum(axis=1)
        nij = n[ks] + n[i]

        def Wij(sel):          # the merged scatters, formed only where the term needs them
            return (W[ks[sel]] + W[i]
                    + c[sel, None, None] * delta[sel, :, None] * delta[sel, None, :])

        return _hc_term(nij, Wij, Tij, d, alpha, beta) - t[ks] - t[i], nij, Wij, Tij

    C = np.empty((N, N))
    for i in range(N):                     # every pair of singletons
        C[i] = merged(i, np.arange(N))[0]
    np.fill_diagonal(C, np.inf)
    best = C.argmin(axis=1)
    low = C[np.arange(N), best]
    merges = []
    for _ in range(N - 1):
        i = int(low.argmin())
        i, j = sorted((i, int(best[i])))
        merges.append((i, j))
        _, nij, Wij, Tij = merged(i, np.array([j]))
        m[i] = (n[i] * m[i] + n[j] * m[j]) / nij[0]
        n[i], W[i], T[i] = nij[0], Wij(np.array([0]))[0], Tij[0]
        t[i] = _hc_term(n[i:i + 1], W[i:i + 1], T[i:i + 1], d, alpha, beta)[0]
        active[j] = False
        C[j, :] = C[:, j] = np.inf
        low[j] = np.inf
        ks = np.flatnonzero(active)
        ks = ks[ks != i]
        if ks.size == 0:
            break
        cost = merged(i, ks)[0]
        C[i, ks] = C[ks, i] = cost
        best[i], low[i] = ks[cost.argmin()], cost.min()
        for k in ks[(best[ks] == i) | (best[ks] == j)]:    # their best partner changed
            best[k] = C[k].argmin()
            low[k] = C[k, best[k]]
        better = cost < low[ks]
        low[ks[better]], best[ks[better]] = cost[better], i
    return merges


def _cut(merges, N, K):
    """Cluster labels 0..K-1 after the first ``N - K`` merges."""
    label = np.arange(N)
    for i, j in merges[:N - K]:
        label[label == label[j]] = label[i]
    return np.unique(label, return_inverse=True)[1]


_HC_CACHE: dict = {}


def _labels_hc(Xc, K, w, seq):
    # one agglomeration serves every K (gmm select fits K = 1..9 on the same rows)
    key = (Xc.shape, hash(np.ascontiguousarray(Xc).tobytes()))
    if key not in _HC_CACHE:
        _HC_CACHE.clear()
        _HC_CACHE[key] = hc_merges(svd_scaled(Xc))
    return _cut(_HC_CACHE[key], Xc.shape[0], K)


def _labels_ward(Xc, K, w, seq):
    from scipy.cluster.hierarchy import fcluster, ward

    return fcluster(ward(svd_scaled(Xc)), t=K, criterion="maxclust") - 1


def _resp_random(Xc, K, seq):
    resp = np.random.default_rng(seq).uniform(size=(Xc.shape[0], K))
    return resp / resp.sum(axis=1, keepdims=True)


def initial_params(Xc, K, fam, init, w, seq, prior_c, shift, subsample=None, reg_covar=0.0,
                   covariance_type=None):
    """Initial :class:`GMMParams` for one EM restart.

    Parameters
    ----------
    Xc : ndarray of shape (N, d)
        Data centred at ``shift``.
    K : int
    fam : Family
    init : {"hc", "ward", "k-means++", "kmeans", "random"}
    w : ndarray of shape (N,) or None
    seq : numpy.random.SeedSequence
        This restart's own stream.
    prior_c : Prior or None
        Prior in centred coordinates (used by the first M-step).
    shift : ndarray of shape (d,)
    subsample : int or None
        Run the clustering on at most this many randomly chosen rows.
    reg_covar : float
        Ridge added to the initial covariances.
    covariance_type : str or None
        The name the result carries (default ``fam.name``).

    Returns
    -------
    GMMParams
    """
    if init in ("hc", "ward"):
        subsample = HC_MAX_ROWS if subsample is None else min(subsample, HC_MAX_ROWS)
    if subsample is not None and Xc.shape[0] > subsample:
        idx = np.sort(np.random.default_rng(seq).choice(Xc.shape[0], subsample, replace=False))
        Xc = np.asarray(Xc[idx], dtype=np.float64)
        w = None if w is None else w[idx]
    if init == "random":
        resp = _resp_random(Xc, K, seq)
    else:
        labels = {"hc": _labels_hc, "ward": _labels_ward, "k-means++": _labels_kmeanspp,
                  "kmeans": _labels_kmeans}[init](Xc, K, w, seq)
        if init in ("hc", "ward") and reg_covar == 0 and (prior_c is None or prior_c.is_flat):
            _check_clusters(Xc, labels, K, fam, w)
        resp = np.full((Xc.shape[0], K), _BLEND / K)
        resp[np.arange(Xc.shape[0]), labels] += 1.0 - _BLEND
    g = resp if w is None else resp * w[:, None]
    stats = block_stats(np.asarray(Xc, dtype=np.float64), g, fam.storage)
    return params_from_stats(stats, fam, prior_c, reg_covar, shift, None,
                             covariance_type=covariance_type)


def _check_clusters(Xc, labels, K, fam, w):
    """Raise DegenerateComponentError when a cluster is too small for the family's covariance.

    mclust starts EM from the clusters of its agglomeration themselves; a cluster whose
    covariance is singular (a single point, or fewer points than its covariance has directions)
    ends that fit there, and so it does here, though the start EM runs from blends the clusters
    (:data:`_BLEND`).
    """
    Xc = np.asarray(Xc, dtype=np.float64)
    hard = np.zeros((Xc.shape[0], K))
    hard[np.arange(Xc.shape[0]), labels] = 1.0
    g = hard if w is None else hard * w[:, None]
    scale = Xc.var(axis=0) if w is None else w @ (Xc - w @ Xc / w.sum()) ** 2 / w.sum()
    params_from_stats(block_stats(Xc, g, fam.storage), fam, None, 0.0, None,
                      scale if np.all(scale > 0) else None)


def check_init_params(init, K, d, fam):
    """Validate a user-given initial :class:`GMMParams` against the model's shape.

    Parameters
    ----------
    init : GMMParams
    K, d : int
    fam : Family

    Returns
    -------
    GMMParams
    """
    if init.K != K or init.d != d or init.family is not fam:
        raise ValueError(
            f"init has K={init.K}, d={init.d}, covariance_type={init.covariance_type!r} but the "
            f"fit asks for K={K}, d={d}, covariance_type={fam.name!r}; build init with "
            "matching shapes (GMMParams.to_full() converts to full)."
        )
    return init


def check_init(init):
    """Validate the ``init`` argument.

    Parameters
    ----------
    init : str, GMMParams or sequence of GMMParams

    Returns
    -------
    str, GMMParams or list of GMMParams
    """
    if isinstance(init, GMMParams):
        return init
    if isinstance(init, list | tuple) and init and all(isinstance(p, GMMParams) for p in init):
        return list(init)
    if isinstance(init, str) and init in INIT_METHODS:
        return init
    raise ValueError(
        f"init={init!r} is not supported; use one of {', '.join(map(repr, INIT_METHODS))} "
        "a models.GMMParams, or a non-empty list of them."
    )

"""Initial parameters for EM: hc, k-means++, k-means, random responsibilities, or given.

``"hc"`` follows mclust's default initialisation: agglomerative clustering of the data after
mclust's ``hcUse = "SVD"`` transformation (centred, rotated to the principal axes and scaled by the
square roots of the singular values), cut at K clusters. The agglomeration is Ward's criterion
(scipy.cluster.hierarchy), which is mclust's ``hcEII``; it runs on at most ``HC_MAX_ROWS`` rows,
chosen at random when N is larger, as mclust's ``initialization = list(subset = ...)`` does.
``"auto"`` (``em.fit``'s default) starts once from ``"hc"`` and ``n_init`` times from k-means++,
and keeps the best.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, ward
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.metrics import pairwise_distances_argmin

from em.mstep import block_stats, params_from_stats
from models import GMMParams
from models.families import family

INIT_METHODS = ("auto", "hc", "k-means++", "kmeans", "random")

#: hierarchical agglomeration keeps an (n^2 / 2)-entry distance matrix: at most this many rows
HC_MAX_ROWS = 2000

# Hard assignments are blended with this much of a uniform assignment so that the first M-step
# sees every point in every component: no empty component and no singular first covariance.
_BLEND = 1e-3


def _labels_kmeanspp(Xc, K, w, seed):
    centers, _ = kmeans_plusplus(Xc, K, random_state=seed, sample_weight=w)
    return pairwise_distances_argmin(Xc, centers)


def _labels_kmeans(Xc, K, w, seed):
    return KMeans(n_clusters=K, n_init=1, random_state=seed).fit(Xc, sample_weight=w).labels_


def _labels_hc(Xc, K, w, seed):
    Xc = Xc - (Xc.mean(axis=0) if w is None else w @ Xc / w.sum())
    _, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    keep = s > s[0] * 1e-10                                   # drop null directions
    Z = Xc @ Vt[keep].T / np.sqrt(s[keep])
    return fcluster(ward(Z), t=K, criterion="maxclust") - 1


def _resp_random(Xc, K, seed):
    resp = np.random.default_rng(seed).uniform(size=(Xc.shape[0], K))
    return resp / resp.sum(axis=1, keepdims=True)


def initial_params(Xc, K, covariance_type, init, w, seed, prior_c, shift, subsample=None,
                   reg_covar=0.0):
    """Initial :class:`GMMParams` for one EM restart.

    Parameters
    ----------
    Xc : ndarray of shape (N, d)
        Data centred at ``shift``.
    K : int
    covariance_type : str
    init : {"hc", "k-means++", "kmeans", "random"}
    w : ndarray of shape (N,) or None
    seed : int
    prior_c : Prior or None
        Prior in centred coordinates (used by the first M-step).
    shift : ndarray of shape (d,)
    subsample : int or None
        Run the clustering on at most this many randomly chosen rows.
    reg_covar : float
        Ridge added to the initial covariances.

    Returns
    -------
    GMMParams
    """
    if init == "hc":
        subsample = HC_MAX_ROWS if subsample is None else min(subsample, HC_MAX_ROWS)
    if subsample is not None and Xc.shape[0] > subsample:
        idx = np.sort(np.random.default_rng(seed).choice(Xc.shape[0], subsample, replace=False))
        Xc = np.asarray(Xc[idx], dtype=np.float64)
        w = None if w is None else w[idx]
    if init == "random":
        resp = _resp_random(Xc, K, seed)
    else:
        labels = {"hc": _labels_hc, "k-means++": _labels_kmeanspp,
                  "kmeans": _labels_kmeans}[init](Xc, K, w, seed)
        resp = np.full((Xc.shape[0], K), _BLEND / K)
        resp[np.arange(Xc.shape[0]), labels] += 1.0 - _BLEND
    g = resp if w is None else resp * w[:, None]
    stats = block_stats(np.asarray(Xc, dtype=np.float64), g, family(covariance_type).storage)
    return params_from_stats(stats, covariance_type, prior_c, reg_covar, shift, None)


def check_init_params(init, K, d, covariance_type):
    """Validate a user-given initial :class:`GMMParams` against the model's shape.

    Parameters
    ----------
    init : GMMParams
    K, d : int
    covariance_type : str

    Returns
    -------
    GMMParams
    """
    if init.K != K or init.d != d or init.family is not family(covariance_type):
        raise ValueError(
            f"init has K={init.K}, d={init.d}, covariance_type={init.covariance_type!r} but the "
            f"fit asks for K={K}, d={d}, covariance_type={covariance_type!r}; build init with "
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

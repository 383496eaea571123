r"""Results of every estimator in one schema: an ArviZ DataTree, and the conversions to and from it.

EM's point estimates, the posterior draws of every sampler route and the true mixture of a
simulation all become the same tree, so that every table and figure can put them side by side:

==================  ===============================================================================
group               variables
==================  ===============================================================================
posterior           ``pi`` (chain, draw, component), ``mu`` (chain, draw, component, feature),
                    ``Sigma`` (chain, draw, *the layout's dims*: :attr:`models.storage.Storage.dims`)
responsibilities    ``gamma`` (obs_id, component): ``p(z_n = k | x_n)``, at the point or averaged
                    over the draws
log_likelihood      ``x`` (chain, draw, obs_id): ``log p(x_n | theta)``
observed_data       ``x`` (obs_id, feature)
sample_stats        the sampler's statistics, and ``label_permutation`` after relabelling
==================  ===============================================================================

A point estimate has one chain of one draw. The tree's attributes hold ``covariance_type``,
``n_components``, ``method`` and ``versions``.

Label switching: a mixture's likelihood is the same under every permutation of its components,
so posterior draws are put on one reference's labels (:func:`relabel`) before anything is
summarised per component.

This module is part of the specification: it imports neither PyMC nor JAX, so EM-only work never
loads them.
"""

from __future__ import annotations

import importlib.metadata

import numpy as np
import xarray as xr
from scipy.special import gammaln, logsumexp, multigammaln, xlogy

from models.families import family
from models.features import PRODUCTS, SQUARES, features, log_joint_stacked, normalise_stacked
from models.missing import impute_draws
from models.params import GMMParams, log_joint_stack
from models.simulation import simulate
from models.storage import PRECISE_ABOVE, storage_of_dims

#: the posterior's parameter variables
PARAMETERS = ("pi", "mu", "Sigma")


def versions():
    """The versions of the suite and the libraries results depend on, as one line.

    Returns
    -------
    str
        ``"gmm-suite=..., pymc=..., ..."`` (read from the installed packages' metadata, without
        importing them).
    """
    out = {}
    for pkg in ("gmm-suite", "pymc", "pytensor", "arviz", "numpy", "scipy", "scikit-learn"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover
            out[pkg] = "unknown"
    return ", ".join(f"{k}={v}" for k, v in out.items())


def point_to_params(point, covariance_type):
    """A point (constrained values ``pi``, ``mu``, ``Sigma``) as GMMParams.

    ``pi`` is renormalised and matrices are symmetrised, so that a draw stored in float32 or
    summed over draws passes the constructor's checks.

    Parameters
    ----------
    point : mapping with "pi", "mu" and "Sigma"
    covariance_type : str

    Returns
    -------
    GMMParams
    """
    fam = family(covariance_type)
    pi = np.asarray(point["pi"], dtype=np.float64)
    Sigma = fam.storage.symmetrised(np.asarray(point["Sigma"], dtype=np.float64))
    return GMMParams(pi / pi.sum(), np.asarray(point["mu"], dtype=np.float64), Sigma,
                     covariance_type)


def is_point_estimate(tree):
    """Whether a tree holds a point estimate (EM's fit, the truth), not draws of a posterior.

    Parameters
    ----------
    tree : xarray.DataTree

    Returns
    -------
    bool
    """
    post = tree["posterior"]
    return str(tree.attrs.get("method", "")).startswith("em") or (
        post.sizes["chain"] * post.sizes["draw"] == 1)


def covariance_type_of(tree):
    """The covariance type a tree's results were computed under.

    Its ``covariance_type`` attribute, else the layout's name from ``Sigma``'s dimensions.

    Parameters
    ----------
    tree : xarray.DataTree

    Returns
    -------
    str
    """
    given = tree.attrs.get("covariance_type")
    return given or storage_of_dims(tree["posterior"]["Sigma"].dims).name


def point_of(tree):
    """The mixture a tree stands for: its point estimate, or its posterior mean.

    Parameters
    ----------
    tree : xarray.DataTree
        With a ``posterior`` group (one draw for a point estimate).

    Returns
    -------
    GMMParams
    """
    post = tree["posterior"]
    return point_to_params({v: post[v].values.mean(axis=(0, 1)) for v in PARAMETERS},
                           covariance_type_of(tree))


def draws_of(tree):
    """Every draw of a tree's posterior as GMMParams, chain by chain.

    Parameters
    ----------
    tree : xarray.DataTree

    Yields
    ------
    chain, draw : int
    params : GMMParams
    """
    post = tree["posterior"]
    ct = covariance_type_of(tree)
    pi, mu, Sigma = (post[v].values for v in PARAMETERS)
    C, D = pi.shape[:2]
    for c in range(C):
        for t in range(D):
            yield c, t, point_to_params({"pi": pi[c, t], "mu": mu[c, t], "Sigma": Sigma[c, t]}, ct)


def with_groups(dt, **groups):
    """A new tree: ``dt``'s groups with ``groups`` added or replacing theirs, and ``dt``'s attrs.

    Parameters
    ----------
    dt : xarray.DataTree
    **groups : xarray.Dataset

    Returns
    -------
    xarray.DataTree
    """
    out = xr.DataTree.from_dict({**{name: dt[name].to_dataset() for name in dt.children},
                                 **groups})
    out.attrs.update(dt.attrs)
    return out


def name_features(dt, names):
    """Label the ``feature`` (and ``feature_bis``) coordinates of every group with ``names``.

    So ``az.summary(dt, coords={"feature": ["petal length (cm)"]})`` selects by column name.

    Parameters
    ----------
    dt : xarray.DataTree
    names : sequence of str or None
        One per feature; None leaves the tree as it is.

    Returns
    -------
    xarray.DataTree
    """
    if names is None:
        return dt
    names = [str(n) for n in names]
    groups = {}
    for name in dt.children:
        ds = dt[name].to_dataset()
        for dim in ("feature", "feature_bis"):
            if dim in ds.dims:
                if ds.sizes[dim] != len(names):
                    raise ValueError(f"{len(names)} feature names for {ds.sizes[dim]} features.")
                ds = ds.assign_coords({dim: names})
        groups[name] = ds
    return with_groups(dt, **groups)


def loo_pit_view(dt):
    """The tree with ``log_likelihood.x`` repeated over ``feature``, for ArviZ's LOO-PIT.

    ``log_likelihood.x`` holds one value per observation (a row of ``d`` features), which is
    what ``az.loo`` needs. ArviZ's ``loo_pit`` pairs each observed scalar with a log-likelihood
    of the same shape. Leaving out observation ``n`` leaves out its whole row, so each feature
    of row ``n`` takes the row's PSIS weights. That is exactly the log-likelihood repeated over
    ``feature``. Use the view for ``az.loo_pit`` / ``az.plot_loo_pit`` only: ``az.loo`` on it
    would count every observation ``d`` times.

    Parameters
    ----------
    dt : xarray.DataTree
        With ``log_likelihood``, ``observed_data`` and ``posterior_predictive``.

    Returns
    -------
    xarray.DataTree
    """
    features = dt["observed_data"]["feature"].values
    log_lik = dt["log_likelihood"]["x"].expand_dims(feature=features, axis=-1)
    return with_groups(dt, log_likelihood=xr.Dataset({"x": log_lik}))


def gamma_group(gamma):
    """The ``responsibilities`` group: ``gamma`` (obs_id, component).

    It is kept out of ``posterior`` because it has no (chain, draw) dimensions, and ArviZ's
    ``summary`` and ``loo`` reduce every posterior variable over those.

    Parameters
    ----------
    gamma : ndarray of shape (N, K)

    Returns
    -------
    xarray.Dataset
    """
    N, K = gamma.shape
    return xr.Dataset({"gamma": (("obs_id", "component"), gamma)},
                      coords={"obs_id": np.arange(N), "component": np.arange(K)})


def add_posterior_predictive(dt, random_seed=0):
    """Add a ``posterior_predictive`` group: one simulated data set per posterior draw.

    The group has the posterior's chains and draws, so ArviZ's LOO-PIT (``plot_loo_pit``) pairs
    it with ``log_likelihood``.

    Parameters
    ----------
    dt : xarray.DataTree
        With ``posterior`` and ``observed_data``.
    random_seed : int or numpy.random.SeedSequence

    Returns
    -------
    xarray.DataTree
    """
    rng = np.random.default_rng(random_seed)
    post = dt["posterior"]
    X = dt["observed_data"]["x"].values
    C, D = post["pi"].shape[:2]
    xs = np.empty((C, D, *X.shape))
    for c, t, p in draws_of(dt):
        xs[c, t] = simulate(p, X.shape[0], rng)[0]
    coords = {"chain": post["chain"].values, "draw": post["draw"].values,
              "obs_id": np.arange(X.shape[0])}
    if "feature" in dt["observed_data"].coords:
        coords["feature"] = dt["observed_data"]["feature"].values
    return with_groups(dt, posterior_predictive=xr.Dataset(
        {"x": (("chain", "draw", "obs_id", "feature"), xs)}, coords=coords))


def point_to_datatree(p, X, feature_names=None, gamma=None):
    """One parameter point and data in the results schema (chain = draw = 1).

    Parameters
    ----------
    p : GMMParams
    X : ndarray of shape (N, d)
        Checked float64 data.
    feature_names : sequence of str or None
    gamma : ndarray of shape (N, K) or None
        Responsibilities to store (default: those at ``p``), e.g. averaged over a posterior.

    Returns
    -------
    xarray.DataTree
        ``posterior`` (``pi``, ``mu``, ``Sigma``), ``responsibilities`` (``gamma`` at ``p``),
        ``log_likelihood`` and ``observed_data``; attrs ``covariance_type``, ``n_components``
        and ``versions``.
    """
    N = X.shape[0]
    coords = {"chain": [0], "draw": [0], "component": np.arange(p.K), "feature": np.arange(p.d),
              "feature_bis": np.arange(p.d), "obs_id": np.arange(N)}
    log_joint = p.log_joint(X)
    log_lik = logsumexp(log_joint, axis=1)
    post = xr.Dataset({
        "pi": (("chain", "draw", "component"), p.pi[None, None]),
        "mu": (("chain", "draw", "component", "feature"), p.mu[None, None]),
        "Sigma": (("chain", "draw", *p.family.storage.dims), np.asarray(p.Sigma)[None, None]),
    }, coords={k: coords[k] for k in ("chain", "draw", "component", "feature", "feature_bis")})
    dt = xr.DataTree.from_dict({
        "posterior": post,
        "responsibilities": gamma_group(np.exp(log_joint - log_lik[:, None]) if gamma is None
                                        else np.asarray(gamma, dtype=np.float64)),
        "log_likelihood": xr.Dataset({"x": (("chain", "draw", "obs_id"), log_lik[None, None])},
                                     coords={k: coords[k] for k in ("chain", "draw", "obs_id")}),
        "observed_data": xr.Dataset({"x": (("obs_id", "feature"), X)},
                                    coords={k: coords[k] for k in ("obs_id", "feature")}),
    })
    dt.attrs.update({"covariance_type": p.covariance_type, "n_components": p.K,
                     "versions": versions()})
    return name_features(dt, feature_names)


#: per-observation values (``log_likelihood.x``, ``posterior.z``: chains x draws x N) kept without
#: being asked for; above it they are left out and the tree's ``left_out`` attribute says so
#: (25 million float64 values are 200 MB; 4 x 1000 draws of N = 100,000 would be 3.2 GB)
MAX_POINTWISE = 25_000_000

#: values of one block of log joints (draws x components x rows) in a pass over the draws: 2 MB,
#: so that the block stays in cache between the product that makes it and the passes that
#: normalise it (2^22 values, 32 MB, took 2.5x as long at N = 100,000)
_BLOCK = 2**18

#: rows of data per block of features in a pass over the draws
_ROWS = 2**13


def one_blas_thread():
    """A context in which BLAS runs on one thread.

    The passes over draws and the Gibbs sampler multiply blocks sized for one core's cache;
    OpenBLAS's second thread only spins against the first there, and on a busy machine made
    such a product ten times slower (1.4 ms on one thread, 13 ms on two, for a (32, 21) by
    (21, 8192) product).

    Returns
    -------
    threadpoolctl.threadpool_limits
    """
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency, loaded when used

    return threadpool_limits(limits=1, user_api="blas")


def _stacked(pi, mu, Sigma, fam):
    """Draws ``(..., K)``, ``(..., K, d)``, layout-shaped: flattened, pi normalised, full factors."""
    K, d = mu.shape[-2:]
    S = int(np.prod(pi.shape[:-1]))
    full = fam.to_full(Sigma, K, d).reshape(S, K, d, d)
    full = 0.5 * (full + np.swapaxes(full, -1, -2))
    return (pi / pi.sum(-1, keepdims=True)).reshape(S, K), mu.reshape(S, K, d), full


def stack_precisions(full, matrix):
    """Precisions of a stack of covariances, and their log-determinants.

    Parameters
    ----------
    full : ndarray of shape (S, K, d, d)
        Covariance matrices (:meth:`models.families.Family.to_full`).
    matrix : bool
        Whole precision matrices ``Lambda = L^{-T} L^{-1}`` from the lower Cholesky factors;
        else each feature's precision, the reciprocal diagonal.

    Returns
    -------
    prec : ndarray of shape (S, K, d, d) or (S, K, d)
    log_det : ndarray of shape (S, K)
        ``log|Lambda_k|``.
    """
    if not matrix:
        var = np.diagonal(full, axis1=-2, axis2=-1)
        return 1.0 / var, -np.log(var).sum(-1)
    L = np.linalg.cholesky(full)
    L_inv = np.linalg.inv(L)
    prec = np.swapaxes(L_inv, -1, -2) @ L_inv
    return prec, -2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)


def draw_pass(pi, mu, Sigma, fam, X, gamma=True, pointwise=False, z_rng=None):
    r"""Every draw's log joint, in blocks of draws and rows: totals, responsibilities, pointwise.

    One pass of the feature kernel (:func:`models.features.log_joint_stacked`: a block's log joints
    are one product ``A @ Z`` for all its draws and components) over the data, for a stack of
    ``S`` mixtures. Memory is bounded by the blocks (about 2^22 values each), not by ``S N``.
    A full-covariance draw whose expanded quadratic form could lose more than about 1e-10
    (:data:`models.storage.PRECISE_ABOVE`) is computed by triangular solves instead
    (:func:`models.params.log_joint_stack`).

    .. math:: \log p(x_n \mid \theta_s) = \log \sum_k \pi_{sk} \mathcal N(x_n \mid \mu_{sk},
        \Sigma_{sk}), \quad \bar\gamma_{nk} = \frac1S \sum_s p(z_n = k \mid x_n, \theta_s)

    Parameters
    ----------
    pi : ndarray of shape (..., K)
    mu : ndarray of shape (..., K, d)
    Sigma : ndarray of shape (..., *storage shape)
    fam : Family
    X : ndarray of shape (N, d)
    gamma : bool
        Accumulate the mean responsibilities.
    pointwise : bool
        Keep ``log p(x_n | theta_s)`` for every draw and observation.
    z_rng : numpy.random.Generator or None
        Draw ``z_n ~ p(z_n | x_n, theta_s)`` for every draw and observation.

    Returns
    -------
    dict
        ``log_likelihood`` (S,): the sum over observations; ``gamma`` (N, K) or None;
        ``pointwise`` (S, N) or None; ``z`` (S, N) (int8 when K < 128) or None.
    """
    pi_s, mu_s, full = _stacked(pi, mu, Sigma, fam)
    S, K, d = mu_s.shape
    N = X.shape[0]
    matrix = fam.storage.matrix
    kind = PRODUCTS if matrix else SQUARES
    absent = np.isnan(X)
    holes = absent.any(axis=1)
    # rows with missing cells: the kernel reads them filled (with the observed means), then
    # their log joints are replaced by the observed cells' densities (log_joint_stack)
    shift = np.nanmean(X, axis=0) if holes.any() else X.mean(axis=0)
    Xf = np.where(absent, shift, X) if holes.any() else X
    prec, log_det = stack_precisions(full, matrix)
    mu_c = mu_s - shift
    with np.errstate(divide="ignore"):
        log_pi = np.log(pi_s)
    precise = np.zeros(S, dtype=bool)
    if matrix:
        spread = ((mu_c**2).sum(-1) + np.trace(full, axis1=-2, axis2=-1)).max(-1)
        precise = np.trace(prec, axis1=-2, axis2=-1).max(-1) * spread > PRECISE_ABOVE
    chol = np.linalg.cholesky(full[precise]) if precise.any() else None
    # the observed-cell path takes every draw's factors
    chol_all = np.linalg.cholesky(full) if holes.any() else None
    totals = np.zeros(S)
    g_sum = np.zeros((N, K))
    ll = np.empty((S, N)) if pointwise else None
    z = np.empty((S, N), dtype=np.int8 if K < 128 else np.int64) if z_rng is not None else None
    with one_blas_thread():
        _pass(Xf, shift, kind, K, log_pi, mu_c, prec, log_det, precise, pi_s, mu_s, chol, totals,
              g_sum, ll, z, z_rng, X if holes.any() else None, holes, chol_all)
    return {"log_likelihood": totals, "gamma": g_sum / S if gamma else None,
            "pointwise": ll, "z": z}


def _pass(X, shift, kind, K, log_pi, mu_c, prec, log_det, precise, pi_s, mu_s, chol, totals,
          g_sum, ll, z, z_rng, observed=None, holes=None, chol_all=None):
    """:func:`draw_pass`'s loop over blocks of rows and of draws.

    ``observed`` (N, d) with NaN: the rows ``holes`` get their observed cells' log joints.
    """
    N, S, pointwise = X.shape[0], len(log_pi), ll is not None
    for r0 in range(0, N, _ROWS):
        Xb = X[r0:r0 + _ROWS]
        n = Xb.shape[0]
        Z = features(Xb, shift, kind, np.float64)
        g_block = np.zeros((K, n))
        block = max(1, _BLOCK // (K * n))
        for s0 in range(0, S, block):
            b = slice(s0, min(S, s0 + block))
            L = log_joint_stacked(log_pi[b], mu_c[b], prec[b], log_det[b], kind)(Z)[0]
            L = L.reshape(-1, K, n)
            exact = np.flatnonzero(precise[b])
            if exact.size:
                rows = np.searchsorted(np.flatnonzero(precise), exact + s0)
                L[exact] = np.swapaxes(log_joint_stack(pi_s[b][exact], mu_s[b][exact],
                                                       chol[rows], Xb), -1, -2)
            if observed is not None:
                hole = np.flatnonzero(holes[r0:r0 + n])
                if hole.size:
                    L[:, :, hole] = np.swapaxes(log_joint_stack(
                        pi_s[b], mu_s[b], chol_all[b], observed[r0 + hole]), -1, -2)
            lse = normalise_stacked(L, totals[b], g_block, pointwise)           # L: gamma
            if pointwise:
                ll[b, r0:r0 + n] = lse
            if z is not None:
                u = z_rng.uniform(size=(L.shape[0], 1, n))
                z[b, r0:r0 + n] = np.minimum((np.cumsum(L, axis=1) < u).sum(1), K - 1)
        g_sum[r0:r0 + n] = g_block.T


def posterior_gamma(tree, X):
    """Responsibilities of data under a tree's mixture, averaged over its draws.

    For a point estimate these are its own responsibilities; for a posterior, the posterior
    probability ``p(z_n = k | x_n, data)`` (each draw's responsibilities, averaged).

    Parameters
    ----------
    tree : xarray.DataTree
        ``em.nc`` or ``posterior.nc`` as gmm writes them.
    X : ndarray of shape (N, d)
        Checked float64 data.

    Returns
    -------
    gamma : ndarray of shape (N, K)
    mean : GMMParams
        The parameters a figure shows: the point estimate, or the posterior mean.
    """
    post = tree["posterior"]
    fam = family(covariance_type_of(tree))
    pi, mu, Sigma = (post[v].values for v in PARAMETERS)
    return draw_pass(pi, mu, Sigma, fam, X)["gamma"], point_of(tree)


def _label_costs(pi, mu, reference, ref_L):
    r"""Matching costs of draws' components (rows) against the reference's (columns).

    ``pi`` (..., K) and ``mu`` (..., K, d) give costs (..., K, K): the squared Mahalanobis
    distance between the means under the reference covariance, weighted by the draw
    component's weight, plus the squared difference of the log weights,

    .. math:: c_{kj} = \pi_k (\mu_k - \mu^{\mathrm{ref}}_j)^T (\Sigma^{\mathrm{ref}}_j)^{-1}
        (\mu_k - \mu^{\mathrm{ref}}_j) + (\log \pi_k - \log \pi^{\mathrm{ref}}_j)^2

    The weight makes a component count as much as the data it holds: a nearly empty one (a
    few observations, its covariance near the prior's) sitting near a tight reference cluster
    cannot outbid the cluster that holds that cluster's data.
    """
    L_inv = np.linalg.inv(ref_L)                                                 # (k, d, d)
    diff = np.asarray(mu)[..., :, None, :] - reference.mu                        # (..., j, k, d)
    y = np.einsum("kab,...jkb->...jka", L_inv, diff)
    with np.errstate(divide="ignore"):
        return (np.asarray(pi)[..., :, None] * (y**2).sum(-1)
                + (np.log(pi)[..., :, None] - np.log(reference.pi)) ** 2)


def _assignment(cost, occupied=None):
    """Hungarian matching of a (K, K) cost: new component k is old component ``perm[k]``.

    With ``occupied`` (K,) given, the occupied components are matched first, among themselves:
    each takes the reference label that suits the occupied ones best, whatever the empty ones
    would have liked; the empty components then share the labels left.
    """
    from scipy.optimize import linear_sum_assignment  # SciPy's optimiser, only when matching

    if occupied is None or occupied.all() or not occupied.any():
        rows, cols = linear_sum_assignment(cost)
        return rows[np.argsort(cols)]
    K = cost.shape[0]
    occ, empty = np.flatnonzero(occupied), np.flatnonzero(~occupied)
    perm = np.empty(K, dtype=np.int64)
    rows, cols = linear_sum_assignment(cost[occ])
    perm[cols] = occ[rows]
    free = np.setdiff1d(np.arange(K), cols)
    rows, cols = linear_sum_assignment(cost[np.ix_(empty, free)])
    perm[free[cols]] = empty[rows]
    return perm


def match_labels(pi, mu, reference, ref_L=None, occupied=None):
    """The permutation that puts components ``(pi, mu)`` on the reference's labels.

    Hungarian matching (``scipy.optimize.linear_sum_assignment``) on a label-invariant cost:
    the squared Mahalanobis distance between the means under the reference covariance, weighted
    by the component's weight, plus the squared difference of the log weights.

    Parameters
    ----------
    pi : ndarray of shape (K,)
    mu : ndarray of shape (K, d)
    reference : GMMParams
    ref_L : ndarray of shape (K, d, d) or None
        ``reference.cholesky``, when the caller has it at hand.
    occupied : ndarray of bool, shape (K,), or None
        Components with at least one observation: matched first (see :func:`relabel`).

    Returns
    -------
    ndarray of int, shape (K,)
        New component k is old component ``perm[k]``.
    """
    ref_L = reference.cholesky if ref_L is None else ref_L
    return _assignment(_label_costs(pi, mu, reference, ref_L), occupied)


def expected_occupied(pi, N):
    """Occupied components of draws without allocations: an expected count ``N pi_k >= 1``.

    Parameters
    ----------
    pi : ndarray of shape (..., K)
    N : int

    Returns
    -------
    ndarray of bool, shape (..., K)
    """
    return N * np.asarray(pi) >= 1.0


def relabel(dt, reference, rng=None, sample_z=False, pointwise=None):
    """Align the component labels of every posterior draw to a reference.

    For each draw, components are matched to the reference with the Hungarian algorithm
    (``scipy.optimize.linear_sum_assignment``) on a label-invariant cost: the squared
    Mahalanobis distance between the draw's and the reference's means under the reference
    covariance, weighted by the draw component's weight, plus the squared difference of the log
    weights (:func:`match_labels`). Occupied components are matched first:
    an empty one (its mean and covariance drawn from the prior, so anywhere) cannot take the
    label of a cluster the data hold. Occupancy is ``sample_stats.occupied`` (chain, draw,
    component) where the sampler recorded it (the Gibbs route: at least one allocated
    observation), else the expected count ``N pi_k >= 1`` (:func:`expected_occupied`), stored.
    ``pi``, ``mu``, ``Sigma``, ``occupied`` (and a sampler's ``z``) are permuted; the permutation
    is stored as ``sample_stats.label_permutation`` (chain, draw, component): new component k
    holds old component ``label_permutation[k]``. One pass over the relabelled draws then gives
    ``gamma``, each draw's total ``sample_stats.log_likelihood`` and, within
    :data:`MAX_POINTWISE` values or when asked, the per-observation ``log_likelihood`` group
    and ``z``.

    Parameters
    ----------
    dt : xarray.DataTree
        With a ``posterior`` group holding ``pi``, ``mu`` and ``Sigma``, and ``observed_data``.
    reference : GMMParams
    rng : numpy.random.Generator, SeedSequence, int or None
        For ``sample_z``.
    sample_z : bool
        Draw ``z`` per draw and observation (a sampler's own ``z`` in the posterior is kept
        instead), whatever its size.
    pointwise : bool or None
        Keep the ``log_likelihood`` group (chain, draw, obs_id); None: when it holds at most
        :data:`MAX_POINTWISE` values. What is left out is listed in ``attrs["left_out"]``.

    Returns
    -------
    xarray.DataTree
        A new tree; the input is not modified.
    """
    if not isinstance(reference, GMMParams):
        raise TypeError(f"reference must be a models.GMMParams, got {type(reference).__name__}.")
    rng = np.random.default_rng(rng)
    post = dt["posterior"].to_dataset()
    fam, K = reference.family, reference.K
    if post["pi"].shape[-1] != K:
        raise ValueError(f"reference has K={K} but the posterior has {post['pi'].shape[-1]} "
                         "components.")
    X = dt["observed_data"]["x"].values
    N = X.shape[0]
    pi, mu, Sigma = (post[v].values.copy() for v in PARAMETERS)
    C, D = pi.shape[:2]
    stats_ds = dt["sample_stats"].to_dataset().copy() if "sample_stats" in dt.children else \
        xr.Dataset(coords={"chain": post.chain, "draw": post.draw})
    sampled = "occupied" in stats_ds
    occupied = stats_ds["occupied"].values if sampled else expected_occupied(pi, N)
    costs = _label_costs(pi, mu, reference, reference.cholesky)                  # (C, D, K, K)
    perms = np.empty((C, D, K), dtype=np.int64)
    for c in range(C):
        for t in range(D):
            perms[c, t] = _assignment(costs[c, t], occupied[c, t])
    pi, mu, occupied = (np.take_along_axis(a, perms.reshape(C, D, K, *[1] * (a.ndim - 3)), axis=2)
                        for a in (pi, mu, occupied))
    Sigma = fam.storage.take(Sigma, perms, axis=2)
    new_post = post.copy()
    for name, value in (("pi", pi), ("mu", mu), ("Sigma", Sigma)):
        new_post[name] = (post[name].dims, value)
    size = C * D * N
    keep_pointwise = size <= MAX_POINTWISE if pointwise is None else bool(pointwise)
    own_z = "z" in post
    passed = draw_pass(pi, mu, Sigma, fam, X, pointwise=keep_pointwise,
                       z_rng=rng if sample_z and not own_z else None)
    left_out = [] if keep_pointwise else [
        f"log_likelihood ({C} x {D} x {N} = {size:.3g} values, over the limit of "
        f"{MAX_POINTWISE:.3g}; pointwise=True keeps it)"]
    if own_z:
        inverse = np.argsort(perms, axis=-1)                   # old label -> new label
        z = post["z"].values
        new_post["z"] = (("chain", "draw", "obs_id"),
                         np.take_along_axis(inverse, z.astype(np.int64), axis=-1).astype(z.dtype))
    elif sample_z:
        new_post["z"] = (("chain", "draw", "obs_id"), passed["z"].reshape(C, D, N))
    new_post = new_post.assign_coords(obs_id=np.arange(N))
    stats_ds["label_permutation"] = (("chain", "draw", "component"), perms)
    stats_ds["occupied"] = (("chain", "draw", "component"), occupied)
    stats_ds["log_likelihood"] = (("chain", "draw"), passed["log_likelihood"].reshape(C, D))
    groups = {"posterior": new_post, "responsibilities": gamma_group(passed["gamma"]),
              "sample_stats": stats_ds}
    children = {name: dt[name].to_dataset() for name in dt.children if name != "log_likelihood"}
    if keep_pointwise:
        groups["log_likelihood"] = xr.Dataset(
            {"x": (("chain", "draw", "obs_id"), passed["pointwise"].reshape(C, D, N))},
            coords={"chain": post.chain, "draw": post.draw, "obs_id": np.arange(N)})
    out = xr.DataTree.from_dict({**children, **groups})
    out.attrs.update(dt.attrs)
    out.attrs["relabel_reference_mu"] = reference.mu.tolist()
    out.attrs["relabel_draws_permuted"] = int((perms != np.arange(K)).any(-1).sum())
    out.attrs["relabel_occupied"] = ("at least one allocated observation (sampled z)" if sampled
                                     else "expected count N pi_k >= 1")
    if left_out:
        out.attrs["left_out"] = "; ".join(left_out)
    return out


def draws_to_datatree(pi, mu, Sigma, X, covariance_type, feature_names=None, gamma=None):
    """Independent draws of the parameters (one chain) and data in the results schema.

    For a distribution that is not a sampler's, such as a variational posterior: its draws are
    ``posterior`` (chain = 1), and every table and figure that reads a posterior reads them.

    Parameters
    ----------
    pi : ndarray of shape (S, K)
    mu : ndarray of shape (S, K, d)
    Sigma : ndarray of shape (S, *the storage's shape)
    X : ndarray of shape (N, d)
        Checked float64 data.
    covariance_type : str
    feature_names : sequence of str or None
    gamma : ndarray of shape (N, K) or None
        The responsibilities to store (default: averaged over the draws).

    Returns
    -------
    xarray.DataTree
        ``posterior``, ``responsibilities``, ``observed_data``, and ``log_likelihood`` (each
        draw's ``log p(x_n | theta)``) when it holds at most
        ``MAX_POINTWISE`` values; attrs ``covariance_type``, ``n_components``
        and ``versions``.
    """
    fam = family(covariance_type)
    S, K, d = mu.shape
    N = X.shape[0]
    coords = {"chain": [0], "draw": np.arange(S), "component": np.arange(K),
              "feature": np.arange(d), "feature_bis": np.arange(d), "obs_id": np.arange(N)}
    post = xr.Dataset({
        "pi": (("chain", "draw", "component"), pi[None]),
        "mu": (("chain", "draw", "component", "feature"), mu[None]),
        "Sigma": (("chain", "draw", *fam.storage.dims), np.asarray(Sigma)[None]),
    }, coords={k: coords[k] for k in ("chain", "draw", "component", "feature", "feature_bis")})
    groups = {"posterior": post,
              "observed_data": xr.Dataset({"x": (("obs_id", "feature"), X)},
                                          coords={k: coords[k] for k in ("obs_id", "feature")})}
    pi_s, mu_s, full = _stacked(pi, mu, Sigma, fam)
    keep_log_lik = S * N <= MAX_POINTWISE
    log_lik = np.empty((S, N)) if keep_log_lik else None
    mean_gamma = np.zeros((N, K))
    block = max(1, _BLOCK // (K * N * d))
    for s in range(0, S if keep_log_lik or gamma is None else 0, block):
        b = slice(s, s + block)
        log_joint = log_joint_stack(pi_s[b], mu_s[b], np.linalg.cholesky(full[b]), X)
        lse = logsumexp(log_joint, axis=-1)
        if keep_log_lik:
            log_lik[b] = lse
        if gamma is None:
            mean_gamma += np.exp(log_joint - lse[..., None]).sum(0)
    groups["responsibilities"] = gamma_group(mean_gamma / S if gamma is None
                                             else np.asarray(gamma, np.float64))
    if keep_log_lik:
        groups["log_likelihood"] = xr.Dataset(
            {"x": (("chain", "draw", "obs_id"), log_lik[None])},
            coords={k: coords[k] for k in ("chain", "draw", "obs_id")})
    dt = xr.DataTree.from_dict(groups)
    dt.attrs.update({"covariance_type": covariance_type, "n_components": K,
                     "versions": versions()})
    return name_features(dt, feature_names)


def occupied_posterior(tree):
    """The posterior with each draw's empty components left out (NaN): for per-component summaries.

    A component with no observation in a draw was drawn from the prior; its mean and
    covariance say nothing about the cluster whose label it took. ``pi``, ``mu`` and a
    per-component ``Sigma`` (VII, VVI, VVV; a shared covariance is kept) are NaN where
    ``sample_stats.occupied`` is False; summarise them with NaN-aware statistics.

    Parameters
    ----------
    tree : xarray.DataTree
        A relabelled posterior (:func:`relabel`), with ``sample_stats.occupied``.

    Returns
    -------
    xarray.Dataset
    """
    post = tree["posterior"].to_dataset()
    occupied = tree["sample_stats"]["occupied"]
    fam = family(covariance_type_of(tree))
    out = post.copy()
    for name in ("pi", "mu", "Sigma"):
        if name == "Sigma" and (fam.shared_prior or "component" not in post[name].dims):
            continue
        out[name] = post[name].where(occupied)
    return out


# ---------------------------------------------------------------------------------------------
# label-invariant quantities: what a mixture's posterior says whatever its labels


def log_prior_density(pi, mu, Sigma, prior, fam):
    r""":meth:`models.Prior.log_density` for a stack of draws, every constant included.

    .. math:: \log \mathrm{Dir}(\pi \mid \alpha) + \sum_k \log \mathcal N(\mu_k \mid m_0,
        \Sigma_k / \kappa_0) + \log p(\Sigma)

    with the covariance prior once per distinct covariance: inverse-Wishart
    :math:`\mathcal W^{-1}(\nu_0, \Psi_0)` for matrices, inverse-gamma for variances
    (:meth:`models.storage.Storage.prior_scale`: ``tr(Psi0) / (2 d)`` for one variance per
    component, ``diag(Psi0) / 2`` per feature).

    Parameters
    ----------
    pi : ndarray of shape (..., K)
    mu : ndarray of shape (..., K, d)
    Sigma : ndarray of shape (..., *storage shape)
    prior : Prior
        Proper.
    fam : Family
        A family with a conjugate prior (EII, VII, EEI, VVI, EEE, VVV).

    Returns
    -------
    ndarray of shape (...)
    """
    lead = np.shape(pi)[:-1]
    pi_s, mu_s, full = _stacked(np.asarray(pi, np.float64), np.asarray(mu, np.float64),
                                np.asarray(Sigma, np.float64), fam)
    S, K, d = mu_s.shape
    alpha = prior.alpha_for(K)
    lp = gammaln(alpha.sum()) - gammaln(alpha).sum() + xlogy(alpha - 1.0, pi_s).sum(-1)
    L = np.linalg.cholesky(full)                                           # (S, K, d, d)
    log_det = 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)     # (S, K)
    y = np.linalg.solve(L, (mu_s - prior.m0)[..., None])[..., 0]
    lp += (-0.5 * d * np.log(2 * np.pi / prior.kappa0) - 0.5 * log_det
           - 0.5 * prior.kappa0 * (y**2).sum(-1)).sum(-1)
    m = 1 if fam.shared_prior else K
    if fam.storage.matrix:
        nu, Psi = fam.storage.prior_scale(prior)
        W = np.linalg.solve(L[:, :m], np.linalg.cholesky(Psi))
        lp += (0.5 * nu * np.linalg.slogdet(Psi)[1] - 0.5 * nu * d * np.log(2.0)
               - multigammaln(0.5 * nu, d) - 0.5 * (nu + d + 1) * log_det[:, :m]
               - 0.5 * (W**2).sum((-1, -2))).sum(-1)
    else:
        a, b = fam.storage.prior_scale(prior)
        var = np.diagonal(full[:, :m], axis1=-2, axis2=-1)                 # (S, m, d)
        var = var[..., :1] if np.ndim(b) == 0 else var
        lp += (a * np.log(b) - gammaln(a) - (a + 1.0) * np.log(var) - b / var).sum((-1, -2))
    return lp.reshape(lead)


def invariant_group(pi, log_likelihood, log_prior):
    """The ``label_invariant`` group from the draws' weights, log-likelihoods and log priors.

    Parameters
    ----------
    pi : ndarray of shape (C, D, K)
    log_likelihood, log_prior : ndarray of shape (C, D)

    Returns
    -------
    xarray.Dataset
        ``log_likelihood``, ``log_posterior`` (chain, draw) and ``pi_sorted`` (chain, draw, rank).
    """
    C, D, K = pi.shape
    return xr.Dataset({
        "log_likelihood": (("chain", "draw"), log_likelihood),
        "log_posterior": (("chain", "draw"), log_likelihood + log_prior),
        "pi_sorted": (("chain", "draw", "rank"), -np.sort(-pi, axis=-1)),
    }, coords={"chain": np.arange(C), "draw": np.arange(D), "rank": np.arange(K)})


def label_invariant(tree, prior):
    r"""The posterior's label-invariant quantities: log-likelihood, log posterior, sorted weights.

    .. math:: \ell(\theta) = \sum_n \log p(x_n \mid \theta), \quad
        \log p(\theta \mid x) + c = \ell(\theta) + \log p(\theta), \quad
        \pi_{(1)} \ge \dots \ge \pi_{(K)}

    None depends on the components' labels, so their r_hat and ESS say whether the chains
    agree even where the labels cannot be aligned (a multimodal posterior). The log prior is
    :meth:`models.Prior.log_density`'s, every constant included (:func:`log_prior_density`).
    The log-likelihood is ``sample_stats.log_likelihood`` where :func:`relabel` stored it, else
    the ``log_likelihood`` group summed over observations, else computed (:func:`draw_pass`).

    Parameters
    ----------
    tree : xarray.DataTree
        With ``posterior`` (``pi``, ``mu``, ``Sigma``) and ``observed_data``.
    prior : Prior
        The prior the posterior was sampled under.

    Returns
    -------
    xarray.Dataset
        ``log_likelihood``, ``log_posterior`` (chain, draw), ``pi_sorted`` (chain, draw, rank).
    """
    post = tree["posterior"]
    fam = family(covariance_type_of(tree))
    pi, mu, Sigma = (post[v].values for v in PARAMETERS)
    C, D = pi.shape[:2]
    stats = tree["sample_stats"] if "sample_stats" in tree.children else None
    # the totals a relabelling stored, else the pointwise group's sums, where they belong to
    # these draws (a tree rebuilt around new draws may keep an older group), else computed
    if stats is not None and "log_likelihood" in stats and stats["log_likelihood"].shape == (C, D):
        log_lik = stats["log_likelihood"].values
    elif "log_likelihood" in tree.children and tree["log_likelihood"]["x"].shape[:2] == (C, D):
        log_lik = tree["log_likelihood"]["x"].sum("obs_id").values
    else:
        log_lik = draw_pass(pi, mu, Sigma, fam, tree["observed_data"]["x"].values,
                            gamma=False)["log_likelihood"].reshape(C, D)
    return invariant_group(pi, log_lik, log_prior_density(pi, mu, Sigma, prior, fam))


def invariant_diagnostics(tree):
    """r_hat, bulk and tail ESS of every label-invariant scalar (ArviZ's rank-normalised split r_hat).

    ``arviz.rhat`` and ``arviz.ess`` (ArviZ 1.3 re-exports them from ``arviz_stats``, imported
    here without the plotting half of ArviZ, which loads matplotlib).

    Parameters
    ----------
    tree : xarray.DataTree or xarray.Dataset
        A tree with a ``label_invariant`` group (:func:`label_invariant`), or the group itself.

    Returns
    -------
    pandas.DataFrame
        Index ``log_likelihood``, ``log_posterior``, ``pi_sorted[0]`` ... ``pi_sorted[K-1]``;
        columns ``r_hat``, ``ess_bulk``, ``ess_tail`` (r_hat is NaN for one chain).
    """
    import pandas as pd
    from arviz_stats import ess, rhat  # only once there are draws to diagnose

    ds = tree["label_invariant"].to_dataset() if isinstance(tree, xr.DataTree) else tree
    ds = ds[["log_likelihood", "log_posterior", "pi_sorted"]]
    columns = {"r_hat": rhat(ds, sample_dims=["chain", "draw"]),
               "ess_bulk": ess(ds, sample_dims=["chain", "draw"], method="bulk"),
               "ess_tail": ess(ds, sample_dims=["chain", "draw"], method="tail")}
    rows = {}
    for col, res in columns.items():
        for name in ("log_likelihood", "log_posterior"):
            rows.setdefault(name, {})[col] = float(res[name])
        for k, v in enumerate(np.atleast_1d(res["pi_sorted"].values)):
            rows.setdefault(f"pi_sorted[{k}]", {})[col] = float(v)
    return pd.DataFrame.from_dict(rows, orient="index")[list(columns)]


def coclustering_group(z, K):
    r"""The ``coclustering`` group: ``p_same`` (obs_id, obs_id_bis) from draws of the allocations.

    .. math:: \hat p(z_n = z_m \mid x) = \frac1S \sum_s [z^{(s)}_n = z^{(s)}_m]

    Label-invariant: the same under any relabelling of any draw.

    Parameters
    ----------
    z : ndarray of int, shape (S, N)
        One allocation per draw (any labels).
    K : int

    Returns
    -------
    xarray.Dataset
    """
    S, N = z.shape
    p_same = np.zeros((N, N))
    block = max(1, _BLOCK // (K * N))
    for s0 in range(0, S, block):
        zb = z[s0:s0 + block]
        onehot = (zb[:, None, :] == np.arange(K)[None, :, None]).astype(np.float32)
        G = onehot.reshape(-1, N)
        p_same += (G.T @ G).astype(np.float64)
    return xr.Dataset({"p_same": (("obs_id", "obs_id_bis"), p_same / S)},
                      coords={"obs_id": np.arange(N), "obs_id_bis": np.arange(N)})


def posterior_imputations(tree, X, random_seed=0, max_draws=None):
    """The missing cells of ``X`` drawn once per posterior draw: ``x_m ~ p(x_m | x_o, theta)``.

    For each draw ``theta`` of the tree's posterior (a point estimate has one), each row's
    component is drawn from its responsibilities under ``theta`` and its missing cells from
    that component's Gaussian conditional (:func:`models.missing.impute_draws`), so the spread
    of the imputations carries the parameters' uncertainty as well as the cells' own.

    Parameters
    ----------
    tree : xarray.DataTree
        With a ``posterior`` group.
    X : ndarray of shape (N, d)
        NaN where missing.
    random_seed : int or numpy.random.SeedSequence
    max_draws : int or None
        Use at most this many draws, evenly spaced over the chains' draws.

    Returns
    -------
    ndarray of shape (S, N, d)
        One completed data set per draw used.
    """
    post = tree["posterior"]
    fam = family(covariance_type_of(tree))
    pi, mu, Sigma = (post[v].values for v in PARAMETERS)
    pi_s, mu_s, full = _stacked(pi, mu, Sigma, fam)
    if max_draws is not None and len(pi_s) > max_draws:
        keep = np.linspace(0, len(pi_s) - 1, max_draws).round().astype(int)
        pi_s, mu_s, full = pi_s[keep], mu_s[keep], full[keep]
    return impute_draws(np.asarray(X, np.float64), pi_s, mu_s, full,
                        np.random.default_rng(random_seed))

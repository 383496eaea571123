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
from scipy.special import logsumexp

from models.families import family
from models.params import GMMParams, log_joint_stack
from models.simulation import simulate
from models.storage import storage_of_dims

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


#: values per block of draws when every draw's log joint is computed at once (the (S, K, N, d)
#: differences)
_BLOCK = 2**22


def _stacked(pi, mu, Sigma, fam):
    """Draws ``(..., K)``, ``(..., K, d)``, layout-shaped: flattened, pi normalised, full factors."""
    K, d = mu.shape[-2:]
    S = int(np.prod(pi.shape[:-1]))
    full = fam.to_full(Sigma, K, d).reshape(S, K, d, d)
    full = 0.5 * (full + np.swapaxes(full, -1, -2))
    return (pi / pi.sum(-1, keepdims=True)).reshape(S, K), mu.reshape(S, K, d), full


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
    pi_s, mu_s, full = _stacked(pi, mu, Sigma, fam)
    S, K, d = mu_s.shape
    gamma = np.zeros((X.shape[0], K))
    block = max(1, _BLOCK // (K * X.shape[0] * d))
    for s in range(0, S, block):
        b = slice(s, s + block)
        log_joint = log_joint_stack(pi_s[b], mu_s[b], np.linalg.cholesky(full[b]), X)
        gamma += np.exp(log_joint - logsumexp(log_joint, axis=-1, keepdims=True)).sum(0)
    return gamma / S, point_of(tree)


def _label_costs(pi, mu, reference, ref_L):
    """Matching costs of draws' components (rows) against the reference's (columns).

    ``pi`` (..., K) and ``mu`` (..., K, d) give costs (..., K, K): the squared Mahalanobis
    distance between the means under the reference covariance, plus the squared difference of
    the log weights.
    """
    L_inv = np.linalg.inv(ref_L)                                                 # (k, d, d)
    diff = np.asarray(mu)[..., :, None, :] - reference.mu                        # (..., j, k, d)
    y = np.einsum("kab,...jkb->...jka", L_inv, diff)
    with np.errstate(divide="ignore"):
        return (y**2).sum(-1) + (np.log(pi)[..., :, None] - np.log(reference.pi)) ** 2


def _assignment(cost):
    """Hungarian matching of a (K, K) cost: new component k is old component ``perm[k]``."""
    from scipy.optimize import linear_sum_assignment  # SciPy's optimisers only to relabel

    rows, cols = linear_sum_assignment(cost)
    return rows[np.argsort(cols)]


def match_labels(pi, mu, reference, ref_L=None):
    """The permutation that puts components ``(pi, mu)`` on the reference's labels.

    Hungarian matching (``scipy.optimize.linear_sum_assignment``) on a label-invariant cost:
    the squared Mahalanobis distance between the means under the reference covariance, plus the
    squared difference of the log weights.

    Parameters
    ----------
    pi : ndarray of shape (K,)
    mu : ndarray of shape (K, d)
    reference : GMMParams
    ref_L : ndarray of shape (K, d, d) or None
        ``reference.cholesky``, when the caller has it at hand.

    Returns
    -------
    ndarray of int, shape (K,)
        New component k is old component ``perm[k]``.
    """
    ref_L = reference.cholesky if ref_L is None else ref_L
    return _assignment(_label_costs(pi, mu, reference, ref_L))


def relabel(dt, reference, rng=None, sample_z=False):
    """Align the component labels of every posterior draw to a reference.

    For each draw, components are matched to the reference with the Hungarian algorithm
    (``scipy.optimize.linear_sum_assignment``) on a label-invariant cost: the squared
    Mahalanobis distance between the draw's and the reference's means under the reference
    covariance, plus the same for the log weights. ``pi``, ``mu`` and ``Sigma`` are permuted;
    the permutation is stored as ``sample_stats.label_permutation`` (chain, draw, component):
    new component k holds old component ``label_permutation[k]``. ``gamma``, ``log_likelihood``
    and (if asked) ``z`` are then recomputed from the relabelled draws and ``observed_data``.

    Parameters
    ----------
    dt : xarray.DataTree
        With a ``posterior`` group holding ``pi``, ``mu`` and ``Sigma``, and ``observed_data``.
    reference : GMMParams
    rng : numpy.random.Generator, SeedSequence, int or None
        For ``sample_z``.
    sample_z : bool
        Draw ``z`` per draw and observation.

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
    pi, mu, Sigma = (post[v].values.copy() for v in PARAMETERS)
    C, D = pi.shape[:2]
    costs = _label_costs(pi, mu, reference, reference.cholesky)                  # (C, D, K, K)
    perms = np.empty((C, D, K), dtype=np.int64)
    for c in range(C):
        for t in range(D):
            perms[c, t] = _assignment(costs[c, t])
    pi, mu = (np.take_along_axis(a, perms.reshape(C, D, K, *[1] * (a.ndim - 3)), axis=2)
              for a in (pi, mu))
    Sigma = fam.storage.take(Sigma, perms, axis=2)
    new_post = post.copy()
    for name, value in (("pi", pi), ("mu", mu), ("Sigma", Sigma)):
        new_post[name] = (post[name].dims, value)
    # every draw's log joint at once, in blocks of draws (as point_to_params: pi normalised,
    # Sigma symmetrised)
    X = dt["observed_data"]["x"].values
    N, d = X.shape
    pi_s, mu_s, full = _stacked(pi, mu, Sigma, fam)
    S = C * D
    u = rng.uniform(size=(S, N, 1)) if sample_z else None
    gamma = np.zeros((N, K))
    log_lik = np.empty((S, N))
    z = np.empty((S, N), dtype=np.int64) if sample_z else None
    block = max(1, _BLOCK // (K * N * d))
    for s in range(0, S, block):
        b = slice(s, s + block)
        log_joint = log_joint_stack(pi_s[b], mu_s[b], np.linalg.cholesky(full[b]), X)  # (s, N, K)
        log_lik[b] = logsumexp(log_joint, axis=-1)
        g = np.exp(log_joint - log_lik[b][..., None])
        gamma += g.sum(0)
        if sample_z:
            z[b] = np.minimum((np.cumsum(g, axis=-1) < u[b]).sum(-1), K - 1)
    if sample_z:
        new_post["z"] = (("chain", "draw", "obs_id"), z.reshape(C, D, N))
    new_post = new_post.assign_coords(obs_id=np.arange(N))
    stats_ds = dt["sample_stats"].to_dataset().copy() if "sample_stats" in dt.children else \
        xr.Dataset(coords={"chain": post.chain, "draw": post.draw})
    stats_ds["label_permutation"] = (("chain", "draw", "component"), perms)
    out = with_groups(
        dt, posterior=new_post, responsibilities=gamma_group(gamma / S), sample_stats=stats_ds,
        log_likelihood=xr.Dataset({"x": (("chain", "draw", "obs_id"), log_lik.reshape(C, D, N))},
                                  coords={"chain": post.chain, "draw": post.draw,
                                          "obs_id": np.arange(N)}))
    out.attrs["relabel_reference_mu"] = reference.mu.tolist()
    out.attrs["relabel_draws_permuted"] = int((perms != np.arange(K)).any(-1).sum())
    return out

"""The DataTree schema shared by EM and MCMC results: groups, feature names, predictive draws."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pymc as pm
import xarray as xr
from scipy.special import logsumexp

from models.pymc.distributions import _sigma_dims
from models.pymc.model import build_model, point_to_params


def _versions():
    out = {}
    for pkg in ("gmm-suite", "pymc", "pytensor", "arviz", "numpy", "scipy", "scikit-learn"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover
            out[pkg] = "unknown"
    return ", ".join(f"{k}={v}" for k, v in out.items())


def _draw_params(post, covariance_type):
    """Iterate over (chain, draw) as GMMParams."""
    pi, mu, Sigma = (post[v].values for v in ("pi", "mu", "Sigma"))
    C, D = pi.shape[:2]
    for c in range(C):
        for t in range(D):
            yield c, t, point_to_params({"pi": pi[c, t], "mu": mu[c, t], "Sigma": Sigma[c, t]},
                                        covariance_type)


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


def _gamma_group(gamma):
    """The ``responsibilities`` group: ``gamma`` (obs_id, component).

    It is kept out of ``posterior`` because it has no (chain, draw) dimensions, and ArviZ's
    ``summary`` and ``loo`` reduce every posterior variable over those.
    """
    N, K = gamma.shape
    return xr.Dataset({"gamma": (("obs_id", "component"), gamma)},
                      coords={"obs_id": np.arange(N), "component": np.arange(K)})


def add_prior_predictive(dt, X, n_components, covariance_type, prior, draws=500, random_seed=0):
    """Add ``prior`` and ``prior_predictive`` groups from the explicit-z model.

    Parameters
    ----------
    dt : xarray.DataTree
    X : ndarray of shape (N, d)
        Fixes N and d of the simulated data sets.
    n_components : int
    covariance_type : str
    prior : Prior
    draws : int
    random_seed : int

    Returns
    -------
    xarray.DataTree
    """
    model = build_model(X, n_components, covariance_type, prior, latent="explicit")
    pp = pm.sample_prior_predictive(draws=draws, model=model, random_seed=random_seed)
    return with_groups(dt, prior=pp["prior"].to_dataset(),
                       prior_predictive=pp["prior_predictive"].to_dataset())


def add_posterior_predictive(dt, random_seed=0):
    """Add a ``posterior_predictive`` group: one simulated data set per posterior draw.

    The group has the posterior's chains and draws, so ArviZ's LOO-PIT (``plot_loo_pit``) pairs
    it with ``log_likelihood``.

    Parameters
    ----------
    dt : xarray.DataTree
        With ``posterior`` and ``observed_data``.
    random_seed : int

    Returns
    -------
    xarray.DataTree
    """
    from models.simulate import simulate

    rng = np.random.default_rng(random_seed)
    post = dt["posterior"].to_dataset()
    covariance_type = dt.attrs.get("covariance_type") or _infer_type(post)
    X = dt["observed_data"]["x"].values
    C, D = post["pi"].shape[:2]
    xs = np.empty((C, D, *X.shape))
    for c, t, p in _draw_params(post, covariance_type):
        xs[c, t] = simulate(p, X.shape[0], rng)[0]
    coords = {"chain": post.chain.values, "draw": post.draw.values,
              "obs_id": np.arange(X.shape[0])}
    if "feature" in dt["observed_data"].coords:
        coords["feature"] = dt["observed_data"]["feature"].values
    return with_groups(dt, posterior_predictive=xr.Dataset(
        {"x": (("chain", "draw", "obs_id", "feature"), xs)}, coords=coords))


def _infer_type(post):
    return {("component", "feature", "feature_bis"): "full", ("feature", "feature_bis"): "tied",
            ("component", "feature"): "diag", ("component",): "spherical"}[
        tuple(d for d in post["Sigma"].dims if d not in ("chain", "draw"))]


def point_to_datatree(p, X, feature_names=None, gamma=None):
    """One parameter point and data in the MCMC DataTree's schema (chain = draw = 1).

    Parameters
    ----------
    p : GMMParams
    X : ndarray of shape (N, d)
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
    ct = p.covariance_type
    N = X.shape[0]
    coords = {"chain": [0], "draw": [0], "component": np.arange(p.K), "feature": np.arange(p.d),
              "feature_bis": np.arange(p.d), "obs_id": np.arange(N)}
    log_joint = p.log_joint(X)
    log_lik = logsumexp(log_joint, axis=1)
    post = xr.Dataset({
        "pi": (("chain", "draw", "component"), p.pi[None, None]),
        "mu": (("chain", "draw", "component", "feature"), p.mu[None, None]),
        "Sigma": (("chain", "draw", *_sigma_dims(ct)), np.asarray(p.Sigma)[None, None]),
    }, coords={k: coords[k] for k in ("chain", "draw", "component", "feature", "feature_bis")})
    dt = xr.DataTree.from_dict({
        "posterior": post,
        "responsibilities": _gamma_group(np.exp(log_joint - log_lik[:, None]) if gamma is None
                                         else np.asarray(gamma, dtype=np.float64)),
        "log_likelihood": xr.Dataset({"x": (("chain", "draw", "obs_id"), log_lik[None, None])},
                                     coords={k: coords[k] for k in ("chain", "draw", "obs_id")}),
        "observed_data": xr.Dataset({"x": (("obs_id", "feature"), X)},
                                    coords={k: coords[k] for k in ("obs_id", "feature")}),
    })
    dt.attrs.update({"covariance_type": ct, "n_components": p.K, "versions": _versions()})
    return name_features(dt, feature_names)

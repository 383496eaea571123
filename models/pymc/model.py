"""The PyMC model of the mixture (:func:`build_model`), and conversions to and from PyMC points."""

from __future__ import annotations

import dataclasses

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from models.pymc.distributions import (
    LOG_GAUSS,
    LOG_GAUSS_OBSERVED,
    InverseWishart,
    core,
    data_values,
    mixture_random,
)
from models.pymc.inputs import check_inputs
from models.results import with_groups
from models.seeds import integer_seed, seed_sequence

LATENT = ("marginal", "explicit")

#: the free variable of EII / EEI (their Sigma is its broadcast over components)
SHARED = "Sigma_shared"


def build_model(X, n_components=2, covariance_type="full", prior=None, latent="marginal"):
    """The PyMC model of the mixture, with the same names as the lecture and :mod:`em`.

    Variables: ``pi`` (component), ``mu`` (component, feature), ``Sigma`` (type-shaped, see
    :func:`models.sigma_shape`), ``z`` (obs_id; explicit only) and the observed ``x``
    (obs_id, feature). The data sit in ``pm.Data("X_data")`` (missing cells as +inf,
    :func:`models.pymc.distributions.data_values`) so new data of the same shape can be
    swapped in with ``pm.set_data``.

    With missing values (NaN in ``X``), the marginal model's likelihood of a row is the density
    of its observed cells, ``sum_k pi_k N(x_o | mu_{k,o}, Sigma_{k,oo})``, which is exact for a
    Gaussian: the missing cells are integrated out, not sampled.

    Parameters
    ----------
    X : array-like of shape (N, d)
        NaN where a value is missing (the marginal model only).
    n_components : int, default 2
    covariance_type : str
        A family the PyMC model has: EII, VII, EEI, VVI, EEE, VVV (VII, VVI, EEE, VVV also as
        spherical, diag, tied, full).
    prior : Prior or None
        None or ``Prior.flat()``: the flat prior on ``mu`` and ``Sigma`` (its mode is the MLE;
        do not sample it). Otherwise the conjugate prior of :mod:`models.prior`, exactly.
    latent : {"marginal", "explicit"}
        Sum ``z`` out (for NUTS) or keep ``z ~ Categorical(pi)`` per observation.

    Returns
    -------
    pymc.Model
    """
    if latent not in LATENT:
        raise ValueError(f"latent={latent!r} is not supported; use 'marginal' or 'explicit'.")
    return build_from_inputs(check_inputs(X, n_components, covariance_type, prior), latent)


def build_from_inputs(inputs, latent="marginal"):
    """:func:`build_model` on checked inputs (:func:`models.pymc.inputs.check_inputs`).

    Parameters
    ----------
    inputs : ModelInputs
    latent : {"marginal", "explicit"}

    Returns
    -------
    pymc.Model
    """
    X, K, fam, prior = inputs.X, inputs.K, inputs.family, inputs.prior
    covariance_type = inputs.covariance_type
    if inputs.missing and latent != "marginal":
        raise ValueError("latent='explicit' takes complete data; the marginal model takes NaN "
                         "cells (their density is the observed cells'), or drop the incomplete "
                         "rows.")
    N, d = X.shape
    coords = {"component": np.arange(K), "feature": np.arange(d), "feature_bis": np.arange(d),
              "obs_id": np.arange(N)}
    with pm.Model(coords=coords) as model:
        X_data = pm.Data("X_data", data_values(X), dims=("obs_id", "feature"))
        pi = pm.Dirichlet("pi", a=prior.alpha_for(K), dims="component")
        mu, Sigma = _mu_sigma(prior, fam, K, d)
        log_gauss, signature = (LOG_GAUSS_OBSERVED if inputs.missing else LOG_GAUSS)[fam.storage]
        if latent == "marginal":
            sigma_core = len(fam.storage.dims)

            def logp(value, pi, mu, Sigma):
                # PyMC hands the (shared) parameters over with length-1 batch dimensions
                pi, mu, Sigma = core(pi, 1), core(mu, 2), core(Sigma, sigma_core)
                return pt.logsumexp(pt.log(pi)[None, :] + log_gauss(value, mu, Sigma), axis=-1)

            pm.CustomDist("x", pi, mu, Sigma, logp=logp, random=mixture_random(fam),
                          signature=signature, observed=X_data, dims=("obs_id", "feature"))
        else:
            z = pm.Categorical("z", p=pi, dims="obs_id")
            _explicit_likelihood(fam.storage, mu, Sigma, z, X_data)
    model.gmm_spec = {"K": K, "d": d, "covariance_type": covariance_type, "prior": prior,
                      "latent": latent, "missing": inputs.missing}
    return model


def structure_digest(model):
    """A digest of what compiling ``model`` depends on, made once per model.

    The log density's PyTensor graph (its operations, input types and constants, so the prior's
    numbers, K, d and the family), PyMC's, PyTensor's and NumPy's versions; not the data, which
    are ``pm.Data``. Keys the JAX routes' compiled programs and the "first time for this shape"
    notice.

    Parameters
    ----------
    model : pymc.Model
        Built by :func:`build_model`.

    Returns
    -------
    str
        40 hexadecimal digits.
    """
    import hashlib

    import pytensor
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import graph_inputs, io_toposort

    digest = model.gmm_spec.get("digest")
    if digest is None:
        graph = model.logp()
        h = hashlib.sha1()
        for lib in (pm, pytensor, np):
            h.update(f"{lib.__name__}={lib.__version__};".encode())
        # every input and constant is some node's input: the nodes in order cover them all
        for node in io_toposort(list(graph_inputs([graph])), [graph]):
            h.update(f"{node.op};{[str(i.type) for i in node.inputs]};".encode())
            for i in node.inputs:
                if isinstance(i, Constant):
                    h.update(np.ascontiguousarray(i.data).tobytes())
        digest = model.gmm_spec["digest"] = h.hexdigest()
    return digest


def _f64(value):
    """A float64 array: PyTensor would turn a Python float such as 4.0 into a float32 constant."""
    return np.asarray(value, dtype=np.float64)


def _mu_sigma(prior, fam, K, d):
    flat = prior.is_flat
    storage = fam.storage
    dims = storage.dims
    if storage.matrix:
        nu = d + 1.0 if flat else prior.nu0
        Psi = np.eye(d) if flat else prior.Psi0
        mode = Psi / (nu + d + 1)
        init = storage.from_components(mode[None], K)
        Sigma = InverseWishart("Sigma", nu, Psi, flat=flat, dims=dims, initval=init)
        if flat:
            return pm.Flat("mu", dims=("component", "feature")), Sigma
        # mu | Sigma ~ N(m0, Sigma / kappa0) given by its Cholesky factor, which PyTensor reduces
        # to the transform's own factor of Sigma (CholeskyLogDiag): no factorisation at all
        chol = pt.linalg.cholesky(Sigma, lower=True) / _f64(np.sqrt(prior.kappa0))
        return pm.MvNormal("mu", mu=_f64(prior.m0), chol=chol,
                           dims=("component", "feature")), Sigma
    shape = storage.shape(K, d)[1:]          # one variance, or one per feature
    if fam.shared_prior:
        # EII / EEI: one variance (per feature) shared by every component, broadcast to Sigma
        if flat:
            shared = pm.HalfFlat(SHARED, shape=shape)
        else:
            a, b = (_f64(v) for v in storage.prior_scale(prior))
            shared = pm.InverseGamma(SHARED, alpha=a, beta=b, shape=shape)
        Sigma = pm.Deterministic("Sigma", pt.broadcast_to(shared, (K,) + shape), dims=dims)
    elif flat:
        Sigma = pm.HalfFlat("Sigma", dims=dims)
    else:
        a, b = (_f64(v) for v in storage.prior_scale(prior))
        Sigma = pm.InverseGamma("Sigma", alpha=a, beta=b, dims=dims)
    if flat:
        return pm.Flat("mu", dims=("component", "feature")), Sigma
    mu = pm.Normal("mu", mu=_f64(prior.m0), sigma=pt.sqrt(_per_feature(Sigma) / _f64(prior.kappa0)),
                   dims=("component", "feature"))
    return mu, Sigma


def _per_feature(var):
    """Variances (K,) or (K, d) as (K, 1) or (K, d): one per component and feature."""
    return var if var.ndim == 2 else var[:, None]


def _explicit_likelihood(storage, mu, Sigma, z, X_data):
    dims = ("obs_id", "feature")
    if storage.matrix:
        return pm.MvNormal("x", mu=mu[z], cov=Sigma if storage.shared else Sigma[z],
                           observed=X_data, dims=dims)
    return pm.Normal("x", mu=mu[z], sigma=pt.sqrt(_per_feature(Sigma[z])), observed=X_data,
                     dims=dims)


def params_to_point(params):
    """A GMMParams as a PyMC point of the free variables' constrained values.

    ``{"pi", "mu", "Sigma"}``; EII and EEI, whose ``Sigma`` is a deterministic broadcast of
    one shared variance (per feature), give ``"Sigma_shared"`` instead of ``"Sigma"``.

    Parameters
    ----------
    params : GMMParams

    Returns
    -------
    dict of str to ndarray
    """
    point = {"pi": np.asarray(params.pi), "mu": np.asarray(params.mu)}
    if params.family.shared_prior and not params.family.storage.matrix:
        point[SHARED] = np.asarray(params.Sigma[0])
    else:
        point["Sigma"] = np.asarray(params.Sigma)
    return point


def value_point_function(model):
    """A compiled map from constrained parameters to the model's value variables.

    Lets a caller evaluate ``model.compile_logp()`` at given ``GMMParams`` (and ``z`` for the
    explicit model) without knowing the transforms.

    Parameters
    ----------
    model : pymc.Model
        A model from :func:`build_model`.

    Returns
    -------
    callable
        ``f(params, z=None) -> dict`` of value-variable names to arrays.
    """
    import pytensor

    names = tuple(rv.name for rv in model.free_RVs if rv.name != "z")
    inputs = {n: model[n].type() for n in names}
    outputs, out_names = [], []
    for rv in model.free_RVs:
        if rv.name not in names:
            continue
        transform = model.rvs_to_transforms.get(rv)
        x = inputs[rv.name]
        outputs.append(x if transform is None else transform.forward(x, *rv.owner.inputs))
        out_names.append(model.rvs_to_values[rv].name)
    fn = pytensor.function([inputs[n] for n in names], outputs, on_unused_input="ignore",
                           mode="FAST_COMPILE")

    def to_values(params, z=None):
        point = params_to_point(params)
        out = dict(zip(out_names, fn(*(np.asarray(point[n], dtype=model[n].dtype) for n in names))))
        if z is not None:
            out["z"] = np.asarray(z, dtype=np.int64)
        return out

    return to_values


#: how the prior predictive's draw function is compiled: PyTensor's Python linker. It runs once per
#: draw, a few thousand times at most, and compiles in under a second, where numba takes 6-20 s
#: from an empty cache (4,000 draws of the full model at d = 2: 3.3 s in all, against 19.8 s)
PRIOR_PREDICTIVE_COMPILE = {"mode": "FAST_COMPILE"}


def add_prior_predictive(dt, inputs, draws=500, random_seed=0):
    """Add ``prior`` and ``prior_predictive`` groups from the explicit-z model.

    Parameters
    ----------
    dt : xarray.DataTree
    inputs : ModelInputs
        Fix N and d of the simulated data sets, K, the family and the prior.
    draws : int
    random_seed : int or numpy.random.SeedSequence

    Returns
    -------
    xarray.DataTree
    """
    # the prior predictive does not read the data's values: complete rows of the same shape
    inputs = dataclasses.replace(inputs, X=np.zeros_like(inputs.X), missing=False)
    model = build_from_inputs(inputs, latent="explicit")
    pp = pm.sample_prior_predictive(draws=draws, model=model, compile_kwargs=PRIOR_PREDICTIVE_COMPILE,
                                    random_seed=integer_seed(seed_sequence(random_seed)))
    return with_groups(dt, prior=pp["prior"].to_dataset(),
                       prior_predictive=pp["prior_predictive"].to_dataset())

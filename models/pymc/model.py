"""The PyMC model of the mixture (:func:`build_model`).

Also its input checks, and the conversions between :class:`models.GMMParams` and PyMC points.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from models._validation import check_n_components, check_X
from models.families import family
from models.params import GMMParams, check_covariance_type
from models.prior import Prior
from models.pymc.distributions import _LOG_GAUSS, InverseWishart, _core, _mixture_random_for, _sigma_dims

LATENT = ("marginal", "explicit")

#: the free variable of EII / EEI (their Sigma is its broadcast over components)
SHARED = "Sigma_shared"


def _check_data(X):
    return check_X(X).astype(np.float64, copy=False)


def _check_prior(prior, K, d, covariance_type, allow_flat):
    if prior is None:
        if not allow_flat:
            raise ValueError(
                "prior=None means the improper flat prior, whose posterior is improper for a "
                "mixture; sampling needs a proper prior, e.g. prior=Prior.default(X, K, "
                f"{covariance_type!r})."
            )
        return Prior.flat()
    if not isinstance(prior, Prior):
        raise TypeError(f"prior must be a models.Prior or None, got {type(prior).__name__}.")
    prior.check_compatible(K, d)
    if prior.mclust:
        raise ValueError("Prior(mclust=True) reproduces mclust's EM updates, which are not the "
                         "mode of a prior the model can state; use Prior.default(X, K, "
                         f"{covariance_type!r}) (mclust=False).")
    if prior.is_flat and not allow_flat:
        raise ValueError("Prior.flat() is improper; sample() needs a proper prior such as "
                         "Prior.default(X, K, covariance_type).")
    return prior


def pymc_covariance_type(covariance_type):
    """The name the PyMC model uses for a family it has, else a ``ValueError`` naming them.

    The PyMC program covers the families with a natural conjugate prior (:mod:`models.prior`):
    EII, VII, EEI, VVI, EEE and VVV.

    Parameters
    ----------
    covariance_type : str

    Returns
    -------
    str
        scikit-learn's name where the family has one (``"full"``, ``"tied"``, ``"diag"``,
        ``"spherical"``), else mclust's (``"EII"``, ``"EEI"``).
    """
    fam = family(check_covariance_type(covariance_type))
    if not fam.pymc:
        raise ValueError(
            f"covariance_type={covariance_type!r} is not in the PyMC model, which has the families "
            "with a natural conjugate prior: EII, VII, EEI, VVI, EEE, VVV (VII, VVI, EEE, VVV also "
            "as spherical, diag, tied, full); fit it with em.fit (maximum likelihood, or MAP where "
            "it has a prior).")
    return fam.alias or fam.name


def _names(X, feature_names):
    """Feature names given, else a DataFrame's columns, else None (0..d-1)."""
    if feature_names is None and hasattr(X, "columns"):
        return [str(c) for c in X.columns]
    return feature_names


def check_start(init, K, d):
    """The starting point of :func:`find_map` and :func:`sample`: a GMMParams of K and d.

    Parameters
    ----------
    init : GMMParams
    K, d : int

    Returns
    -------
    GMMParams
    """
    if not isinstance(init, GMMParams):
        raise TypeError(
            f"init must be a models.GMMParams (the starting point and label reference), got "
            f"{type(init).__name__}; reports.joint.sample and reports.joint.find_map start from "
            "EM.")
    if init.K != K or init.d != d:
        raise ValueError(f"init has K={init.K}, d={init.d} but the model has K={K}, d={d}.")
    return init


def check_inputs(X, n_components, covariance_type, prior, allow_flat=True):
    """The four inputs every entry point takes, checked.

    Parameters
    ----------
    X : array-like of shape (N, d)
    n_components : int
    covariance_type : str
    prior : Prior or None
    allow_flat : bool
        Accept the improper flat prior (``None`` or ``Prior.flat()``).

    Returns
    -------
    X : ndarray of shape (N, d)
    K : int
    covariance_type : str
        The model's name for the family (:func:`pymc_covariance_type`).
    prior : Prior
    """
    covariance_type = pymc_covariance_type(covariance_type)
    X = _check_data(X)
    K = _check_K(n_components, X.shape[0])
    return X, K, covariance_type, _check_prior(prior, K, X.shape[1], covariance_type, allow_flat)


def _check_K(n_components, N):
    return check_n_components(n_components, N)


def build_model(X, n_components=2, covariance_type="full", prior=None, latent="marginal"):
    """The PyMC model of the mixture, with the same names as the lecture and :mod:`em`.

    Variables: ``pi`` (component), ``mu`` (component, feature), ``Sigma`` (type-shaped, see
    :func:`models.sigma_shape`), ``z`` (obs_id; explicit only) and the observed ``x``
    (obs_id, feature). The data sit in ``pm.Data("X_data")`` so new data of the same shape can be
    swapped in with ``pm.set_data``.

    Parameters
    ----------
    X : array-like of shape (N, d)
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
    X, K, covariance_type, prior = check_inputs(X, n_components, covariance_type, prior)
    N, d = X.shape
    coords = {"component": np.arange(K), "feature": np.arange(d), "feature_bis": np.arange(d),
              "obs_id": np.arange(N)}
    with pm.Model(coords=coords) as model:
        X_data = pm.Data("X_data", X, dims=("obs_id", "feature"))
        pi = pm.Dirichlet("pi", a=prior.alpha_for(K), dims="component")
        mu, Sigma = _mu_sigma(prior, covariance_type, K, d)
        log_gauss, signature = _LOG_GAUSS[family(covariance_type).storage]
        if latent == "marginal":
            sigma_core = len(_sigma_dims(covariance_type))

            def logp(value, pi, mu, Sigma):
                # PyMC hands the (shared) parameters over with length-1 batch dimensions
                pi, mu, Sigma = _core(pi, 1), _core(mu, 2), _core(Sigma, sigma_core)
                return pt.logsumexp(pt.log(pi)[None, :] + log_gauss(value, mu, Sigma), axis=-1)

            pm.CustomDist("x", pi, mu, Sigma, logp=logp,
                          random=_mixture_random_for(covariance_type), signature=signature,
                          observed=X_data, dims=("obs_id", "feature"))
        else:
            z = pm.Categorical("z", p=pi, dims="obs_id")
            _explicit_likelihood(covariance_type, mu, Sigma, z, X_data)
    model.gmm_spec = {"K": K, "d": d, "covariance_type": covariance_type, "prior": prior,
                      "latent": latent}
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


def _mu_sigma(prior, covariance_type, K, d):
    flat = prior.is_flat
    dims = _sigma_dims(covariance_type)
    fam = family(covariance_type)
    storage = fam.storage
    if storage in ("full", "tied"):
        nu = d + 1.0 if flat else prior.nu0
        Psi = np.eye(d) if flat else prior.Psi0
        mode = Psi / (nu + d + 1)
        init = mode if storage == "tied" else np.broadcast_to(mode, (K, d, d)).copy()
        Sigma = InverseWishart("Sigma", nu, Psi, flat=flat, dims=dims, initval=init)
        if flat:
            return pm.Flat("mu", dims=("component", "feature")), Sigma
        return pm.MvNormal("mu", mu=_f64(prior.m0), cov=Sigma / _f64(prior.kappa0),
                           dims=("component", "feature")), Sigma
    if fam.shared_prior:
        # EII / EEI: one variance (per feature) shared by every component, broadcast to Sigma
        shape = () if storage == "spherical" else (d,)
        if flat:
            shared = pm.HalfFlat(SHARED, shape=shape)
        else:
            a, b = (_f64(v) for v in prior.inverse_gamma(storage))
            shared = pm.InverseGamma(SHARED, alpha=a, beta=b, shape=shape)
        Sigma = pm.Deterministic("Sigma", pt.broadcast_to(shared, (K,) + shape), dims=dims)
    elif flat:
        Sigma = pm.HalfFlat("Sigma", dims=dims)
    else:
        a, b = (_f64(v) for v in prior.inverse_gamma(storage))
        Sigma = pm.InverseGamma("Sigma", alpha=a, beta=b, dims=dims)
    if flat:
        return pm.Flat("mu", dims=("component", "feature")), Sigma
    var = Sigma if storage == "diag" else Sigma[:, None]
    mu = pm.Normal("mu", mu=_f64(prior.m0), sigma=pt.sqrt(var / _f64(prior.kappa0)),
                   dims=("component", "feature"))
    return mu, Sigma


def _explicit_likelihood(covariance_type, mu, Sigma, z, X_data):
    dims = ("obs_id", "feature")
    storage = family(covariance_type).storage
    if storage == "full":
        return pm.MvNormal("x", mu=mu[z], cov=Sigma[z], observed=X_data, dims=dims)
    if storage == "tied":
        return pm.MvNormal("x", mu=mu[z], cov=Sigma, observed=X_data, dims=dims)
    var = Sigma[z] if storage == "diag" else Sigma[z][:, None]
    return pm.Normal("x", mu=mu[z], sigma=pt.sqrt(var), observed=X_data, dims=dims)


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
    if params.family.shared_prior and params.family.storage in ("spherical", "diag"):
        point[SHARED] = np.asarray(params.Sigma[0])
    else:
        point["Sigma"] = np.asarray(params.Sigma)
    return point


def point_to_params(point, covariance_type):
    """A PyMC point (constrained values) as GMMParams.

    Parameters
    ----------
    point : mapping with "pi", "mu" and "Sigma"
    covariance_type : str

    Returns
    -------
    GMMParams
    """
    pi = np.asarray(point["pi"], dtype=np.float64)
    Sigma = np.asarray(point["Sigma"], dtype=np.float64)
    if family(covariance_type).storage in ("full", "tied"):
        Sigma = 0.5 * (Sigma + np.swapaxes(Sigma, -1, -2))
    return GMMParams(pi / pi.sum(), np.asarray(point["mu"], dtype=np.float64), Sigma,
                     covariance_type)


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

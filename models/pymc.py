r"""The Gaussian mixture as a PyMC program, with the priors of :class:`models.Prior`.

The generative story, as in the lecture notes and :func:`models.simulate`:

.. math::
    \pi \sim \mathrm{Dirichlet}(\alpha), \quad
    (\mu_k, \Sigma_k) \sim p(\mu, \Sigma) \text{ (see models.prior)}, \quad
    z_n \sim \mathrm{Categorical}(\pi), \quad
    x_n \mid z_n = k \sim \mathcal{N}(\mu_k, \Sigma_k).

``latent="explicit"`` writes it literally; ``latent="marginal"`` sums ``z`` out,
``log p(x_n) = logsumexp_k [log pi_k + log N(x_n | mu_k, Sigma_k)]``, computed for all components at
once from batched Cholesky factors, for NUTS.

The covariance itself is the value variable (an inverse-Wishart written here, since PyMC has none,
or PyMC's inverse-gamma), with a transform to unconstrained space. So NUTS samples the exact prior
and :func:`find_map` (which maximises without the Jacobian) returns the mode in ``Sigma``-space,
the quantity :mod:`em`'s MAP M-step computes.

This module imports the specification (:mod:`models`) and :mod:`em` (for initialisation).
"""

from __future__ import annotations

import importlib.metadata
import time
import warnings

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pymc.logprob.transforms import Transform
from scipy import stats
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp, multigammaln

import em
from models.families import family
from models.params import GMMParams, check_covariance_type, to_full_covariance
from models.prior import Prior

LATENT = ("marginal", "explicit")
SAMPLERS = ("numba", "c", "nutpie")
DEFAULT_SAMPLER = "numba"  # the fastest that installs from pip alone: see benchmarks/
_LOG_2PI = float(np.log(2 * np.pi))


# --------------------------------------------------------------------------------------------
# The inverse-Wishart distribution and its Cholesky transform
# --------------------------------------------------------------------------------------------
class CholeskyLogDiag(Transform):
    """``Sigma = L L^T`` with ``L`` lower-triangular and ``log diag(L)`` free.

    The unconstrained value packs the lower triangle of ``L`` (row-major), with the diagonal
    replaced by its logarithm: ``d (d + 1) / 2`` numbers per matrix. The log-Jacobian of
    ``Sigma(u)`` is ``d log 2 + sum_i (d - i + 2) log L_ii`` (``i = 1..d``).

    Parameters
    ----------
    d : int
        Matrix dimension.
    """

    name = "cholesky_log_diag"
    ndim_supp = 2

    def __init__(self, d):
        self.d = d
        self.rows, self.cols = np.tril_indices(d)
        self.diag_pos = np.flatnonzero(self.rows == self.cols)
        self.power = np.asarray(self.d - np.arange(1, d + 1) + 2, dtype="float64")

    def forward(self, value, *inputs):
        """Sigma (..., d, d) -> packed (..., d(d+1)/2)."""
        L = pt.linalg.cholesky(value, lower=True)
        packed = L[..., self.rows, self.cols]
        return pt.set_subtensor(packed[..., self.diag_pos], pt.log(packed[..., self.diag_pos]))

    def _L(self, value):
        u = pt.as_tensor_variable(value)
        vals = pt.set_subtensor(u[..., self.diag_pos], pt.exp(u[..., self.diag_pos]))
        L = pt.zeros((*tuple(u.shape)[:-1], self.d, self.d), dtype=u.dtype)
        return pt.set_subtensor(L[..., self.rows, self.cols], vals)

    def backward(self, value, *inputs):
        """Packed (..., d(d+1)/2) -> Sigma (..., d, d)."""
        L = self._L(value)
        return L @ pt.swapaxes(L, -1, -2)

    def log_jac_det(self, value, *inputs):
        """Log-Jacobian of :meth:`backward`, shape (...)."""
        log_diag = pt.as_tensor_variable(value)[..., self.diag_pos]
        return self.d * np.log(2.0) + (log_diag * self.power).sum(axis=-1)


def _invwishart_logp_for(nu, Psi):
    """Log InvWishart(value | nu, Psi) for value (..., d, d), with nu and Psi fixed numbers."""
    d = Psi.shape[-1]
    C = np.linalg.cholesky(Psi)
    const = (0.5 * nu * 2.0 * np.log(np.diag(C)).sum() - 0.5 * nu * d * np.log(2.0)
             - multigammaln(0.5 * nu, d))

    def logp(value, *_):
        L = pt.linalg.cholesky(value, lower=True)
        LinvC = pt.linalg.solve_triangular(L, pt.broadcast_to(C, value.shape), lower=True)
        tr = pt.sqr(LinvC).sum(axis=(-2, -1))
        log_det = 2.0 * pt.log(pt.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
        return const - 0.5 * (nu + d + 1) * log_det - 0.5 * tr

    return logp


def _invwishart_random(nu, Psi, rng=None, size=None):
    nu, Psi = np.asarray(nu, dtype=np.float64), np.asarray(Psi, dtype=np.float64)
    d = Psi.shape[-1]
    batch = tuple(size) if size is not None else np.broadcast_shapes(nu.shape, Psi.shape[:-2])
    nu_b = np.broadcast_to(nu, batch).reshape(-1)
    Psi_b = np.broadcast_to(Psi, (*batch, d, d)).reshape(-1, d, d)
    draws = [stats.invwishart(df=n, scale=P).rvs(random_state=rng) for n, P in zip(nu_b, Psi_b)]
    return np.asarray(draws, dtype=np.float64).reshape(*batch, d, d)


def _flat_matrix_logp(value, nu, Psi):
    return pt.zeros(value.shape[:-2])


def InverseWishart(name, nu, Psi, flat=False, **kwargs):
    r"""Inverse-Wishart random variable on a covariance matrix (``CustomDist``).

    .. math:: \log p(\Sigma) = \tfrac{\nu}{2}\log|\Psi| - \tfrac{\nu d}{2}\log 2
        - \log\Gamma_d(\tfrac{\nu}{2}) - \tfrac{\nu + d + 1}{2}\log|\Sigma|
        - \tfrac12 \operatorname{tr}(\Psi\Sigma^{-1})

    Parameters
    ----------
    name : str
    nu : float
        Degrees of freedom, ``nu > d - 1``.
    Psi : array-like of shape (d, d)
        Scale matrix.
    flat : bool
        Use the improper flat density on positive-definite matrices instead (for the MLE).
    **kwargs
        Passed to ``pm.CustomDist`` (``dims``, ``shape``, ``initval``...).

    Returns
    -------
    TensorVariable
        A value of shape (..., d, d), sampled through :class:`CholeskyLogDiag`.
    """
    Psi = np.asarray(Psi, dtype="float64")
    return pm.CustomDist(
        name, np.asarray(nu, dtype=np.float64), Psi,
        logp=_flat_matrix_logp if flat else _invwishart_logp_for(float(nu), Psi),
        random=_invwishart_random,
        signature="(),(n,n)->(n,n)",
        transform=CholeskyLogDiag(Psi.shape[0]),
        **kwargs,
    )


# --------------------------------------------------------------------------------------------
# The mixture likelihood
# --------------------------------------------------------------------------------------------
def _log_gauss_full(x, mu, Sigma):
    """Compute log N(x_n | mu_k, Sigma_k) for x (N, d), mu (K, d), Sigma (K, d, d) -> (N, K)."""
    d = x.shape[-1]
    L = pt.linalg.cholesky(Sigma, lower=True)                          # (K, d, d)
    # L^-1 from d x d triangular solves, then one batched product with the data: a triangular
    # solve against all N columns is far slower here (31 ms against 0.1 ms per gradient, N=1500)
    L_inv = pt.linalg.solve_triangular(L, pt.eye(d), lower=True)       # (K, d, d)
    y = L_inv @ pt.swapaxes(x[None, :, :] - mu[:, None, :], 1, 2)      # (K, d, N)
    maha = pt.sqr(y).sum(axis=1).T                                     # (N, K)
    log_det = 2.0 * pt.log(pt.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
    return -0.5 * (d * _LOG_2PI + log_det + maha)


def _log_gauss_tied(x, mu, Sigma):
    d = x.shape[-1]
    L = pt.linalg.cholesky(Sigma, lower=True)
    L_inv = pt.linalg.solve_triangular(L, pt.eye(d), lower=True)
    y = (x[:, None, :] - mu[None]) @ L_inv.T                           # (N, K, d)
    maha = pt.sqr(y).sum(axis=-1)
    log_det = 2.0 * pt.log(pt.diagonal(L)).sum()
    return -0.5 * (d * _LOG_2PI + log_det + maha)


def _log_gauss_diag(x, mu, Sigma):
    z2 = pt.sqr(x[:, None, :] - mu[None]) / Sigma[None]
    return -0.5 * (_LOG_2PI + pt.log(Sigma)[None] + z2).sum(axis=-1)


def _log_gauss_spherical(x, mu, Sigma):
    d = x.shape[-1]
    r2 = pt.sqr(x[:, None, :] - mu[None]).sum(axis=-1) / Sigma[None]
    return -0.5 * (d * _LOG_2PI + d * pt.log(Sigma)[None] + r2)


#: covariance type -> (log N(x_n | mu_k, Sigma_k) as an (N, K) graph, x's gufunc signature)
_LOG_GAUSS = {
    "full": (_log_gauss_full, "(k),(k,d),(k,d,d)->(d)"),
    "tied": (_log_gauss_tied, "(k),(k,d),(d,d)->(d)"),
    "diag": (_log_gauss_diag, "(k),(k,d),(k,d)->(d)"),
    "spherical": (_log_gauss_spherical, "(k),(k,d),(k)->(d)"),
}


def _core(param, ndim):
    """Drop leading length-1 batch dimensions down to ``ndim``."""
    while param.ndim > ndim:
        param = param[0]
    return param


def _mixture_random_for(covariance_type):
    def random(pi, mu, Sigma, rng=None, size=None):
        K, d = np.shape(mu)[-2:]
        full = to_full_covariance(Sigma, covariance_type, K, d)
        n = int(np.prod(size)) if size is not None else 1
        z = rng.choice(K, size=n, p=np.asarray(pi) / np.sum(pi))
        L = np.linalg.cholesky(full)
        x = np.asarray(mu)[z] + np.einsum("nij,nj->ni", L[z], rng.standard_normal((n, d)))
        return x.reshape((tuple(size) if size is not None else ()) + (d,))

    return random


def _sigma_dims(covariance_type):
    """Dimension names of ``Sigma`` in the family's storage layout."""
    return {
        "full": ("component", "feature", "feature_bis"),
        "tied": ("feature", "feature_bis"),
        "diag": ("component", "feature"),
        "spherical": ("component",),
    }[family(covariance_type).storage]


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------
def _check_data(X):
    from em._validation import check_X

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
    if prior.is_flat and not allow_flat:
        raise ValueError("Prior.flat() is improper; sample() needs a proper prior such as "
                         "Prior.default(X, K, covariance_type).")
    return prior


def pymc_covariance_type(covariance_type):
    """scikit-learn's name of a family this PyMC model has, else a ``ValueError`` naming them.

    The PyMC program covers VVV, EEE, VVI and VII (full, tied, diag, spherical), whose priors are
    the natural conjugate ones of :mod:`models.prior`.

    Parameters
    ----------
    covariance_type : str

    Returns
    -------
    str
        ``"full"``, ``"tied"``, ``"diag"`` or ``"spherical"``.
    """
    fam = family(check_covariance_type(covariance_type))
    if not fam.pymc:
        raise ValueError(
            f"covariance_type={covariance_type!r} is not in the PyMC model, which has VVV, EEE, "
            "VVI and VII (full, tied, diag, spherical); fit it with em.fit (maximum likelihood, "
            "or MAP where it has a prior).")
    return fam.alias


def _names(X, feature_names):
    """Feature names given, else a DataFrame's columns, else None (0..d-1)."""
    if feature_names is None and hasattr(X, "columns"):
        return [str(c) for c in X.columns]
    return feature_names


def _check_K(n_components, N):
    from em._validation import check_n_components

    return check_n_components(n_components, N)


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------
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
    covariance_type : {"full", "tied", "diag", "spherical"}
    prior : Prior or None
        None or ``Prior.flat()``: the flat prior on ``mu`` and ``Sigma`` (its mode is the MLE;
        do not sample it). Otherwise the conjugate prior of :mod:`models.prior`, exactly.
    latent : {"marginal", "explicit"}
        Sum ``z`` out (for NUTS) or keep ``z ~ Categorical(pi)`` per observation.

    Returns
    -------
    pymc.Model
    """
    covariance_type = pymc_covariance_type(covariance_type)
    if latent not in LATENT:
        raise ValueError(f"latent={latent!r} is not supported; use 'marginal' or 'explicit'.")
    X = _check_data(X)
    N, d = X.shape
    K = _check_K(n_components, N)
    prior = _check_prior(prior, K, d, covariance_type, allow_flat=True)
    coords = {"component": np.arange(K), "feature": np.arange(d), "feature_bis": np.arange(d),
              "obs_id": np.arange(N)}
    with pm.Model(coords=coords) as model:
        X_data = pm.Data("X_data", X, dims=("obs_id", "feature"))
        pi = pm.Dirichlet("pi", a=prior.alpha_for(K), dims="component")
        mu, Sigma = _mu_sigma(prior, covariance_type, K, d)
        log_gauss, signature = _LOG_GAUSS[covariance_type]
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


def _f64(value):
    """A float64 array: PyTensor would turn a Python float such as 4.0 into a float32 constant."""
    return np.asarray(value, dtype=np.float64)


def _mu_sigma(prior, covariance_type, K, d):
    flat = prior.is_flat
    dims = _sigma_dims(covariance_type)
    if covariance_type in ("full", "tied"):
        nu = d + 1.0 if flat else prior.nu0
        Psi = np.eye(d) if flat else prior.Psi0
        mode = Psi / (nu + d + 1)
        init = mode if covariance_type == "tied" else np.broadcast_to(mode, (K, d, d)).copy()
        Sigma = InverseWishart("Sigma", nu, Psi, flat=flat, dims=dims, initval=init)
        if flat:
            return pm.Flat("mu", dims=("component", "feature")), Sigma
        return pm.MvNormal("mu", mu=_f64(prior.m0), cov=Sigma / _f64(prior.kappa0),
                           dims=("component", "feature")), Sigma
    if flat:
        Sigma = pm.HalfFlat("Sigma", dims=dims)
        return pm.Flat("mu", dims=("component", "feature")), Sigma
    a, b = (_f64(v) for v in prior.inverse_gamma(covariance_type))
    Sigma = pm.InverseGamma("Sigma", alpha=a, beta=b, dims=dims)
    var = Sigma if covariance_type == "diag" else Sigma[:, None]
    mu = pm.Normal("mu", mu=_f64(prior.m0), sigma=pt.sqrt(var / _f64(prior.kappa0)),
                   dims=("component", "feature"))
    return mu, Sigma


def _explicit_likelihood(covariance_type, mu, Sigma, z, X_data):
    dims = ("obs_id", "feature")
    if covariance_type == "full":
        return pm.MvNormal("x", mu=mu[z], cov=Sigma[z], observed=X_data, dims=dims)
    if covariance_type == "tied":
        return pm.MvNormal("x", mu=mu[z], cov=Sigma, observed=X_data, dims=dims)
    var = Sigma[z] if covariance_type == "diag" else Sigma[z][:, None]
    return pm.Normal("x", mu=mu[z], sigma=pt.sqrt(var), observed=X_data, dims=dims)


# --------------------------------------------------------------------------------------------
# Conversions between GMMParams and PyMC points
# --------------------------------------------------------------------------------------------
def params_to_point(params):
    """A GMMParams as a PyMC point of constrained values ``{"pi", "mu", "Sigma"}``.

    Parameters
    ----------
    params : GMMParams

    Returns
    -------
    dict of str to ndarray
    """
    return {"pi": np.asarray(params.pi), "mu": np.asarray(params.mu),
            "Sigma": np.asarray(params.Sigma)}


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

    names = ("pi", "mu", "Sigma")
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


def _em_reference(X, K, covariance_type, prior, random_state):
    """EM estimate used as start and label reference; it need only be near the mode."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return em.fit(X, K, covariance_type, prior=None if prior.is_flat else prior,
                      random_state=random_state, max_iter=5000)


# --------------------------------------------------------------------------------------------
# MAP / MLE by PyMC's optimiser
# --------------------------------------------------------------------------------------------
def find_map(X, n_components=2, covariance_type="full", prior=None, init="em", random_state=0,
             tol=1e-13, maxiter=20000):
    """Posterior mode of the PyMC model (``model.logp(jacobian=False)``), in ``Sigma``-space.

    With ``prior=None`` or ``Prior.flat()`` this is the maximum-likelihood estimate; with a
    proper prior it is the MAP estimate that :func:`em.fit` computes in closed form.

    Parameters
    ----------
    X : array-like of shape (N, d)
    n_components : int, default 2
    covariance_type : {"full", "tied", "diag", "spherical"}
    prior : Prior or None
    init : "em" or GMMParams
        Starting point: the EM estimate, or given parameters.
    random_state : int
        Seed of the EM start.
    tol : float
        Optimiser tolerance (``ftol`` and ``gtol`` of L-BFGS-B).
    maxiter : int

    Returns
    -------
    GMMParams
    """
    X = _check_data(X)
    K = _check_K(n_components, X.shape[0])
    covariance_type = pymc_covariance_type(covariance_type)
    prior = _check_prior(prior, K, X.shape[1], covariance_type, allow_flat=True)
    if isinstance(init, GMMParams):
        start = init
    elif init == "em":
        start = _em_reference(X, K, covariance_type, prior, random_state).params
    else:
        raise ValueError(f"init={init!r} is not supported; use 'em' or a models.GMMParams.")
    model = build_model(X, K, covariance_type, prior, latent="marginal")
    with warnings.catch_warnings():
        # The C backend is used for its on-disk cache; the model's cost is in the graph, not BLAS.
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS",
                                category=UserWarning)
        # At ftol = gtol = 1e-13 L-BFGS-B can end its line search "ABNORMAL"ly once it sits on
        # the optimum to float precision; the result is still the mode (tests check it to 1e-5).
        warnings.filterwarnings("ignore", message="The optimizer did not converge: ABNORMAL",
                                category=UserWarning)
        fit = pm.find_MAP(initvals=params_to_point(start), jitter=False, return_inferencedata=True,
                          compile_kwargs={"mode": "CVM"},
                          progressbar=False, model=model, method="L-BFGS-B",
                          options={"ftol": tol, "gtol": tol, "maxiter": maxiter, "maxcor": 50})
    post = fit["posterior"].to_dataset()
    point = {v: post[v].values[0, 0] for v in ("pi", "mu", "Sigma")}
    return point_to_params(point, covariance_type)


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------
def _jittered_starts(params, chains, rng, scale=0.01):
    """Start points near ``params``: small perturbations of pi and mu (relative to each sd)."""
    full = params.to_full()
    sd = np.sqrt(np.diagonal(full.Sigma, axis1=1, axis2=2))
    starts = []
    for _ in range(chains):
        pi = params.pi * np.exp(scale * rng.standard_normal(params.K))
        pi = np.clip(pi, 1e-6, None)
        mu = params.mu + scale * sd * rng.standard_normal(params.mu.shape)
        starts.append({"pi": pi / pi.sum(), "mu": mu, "Sigma": np.asarray(params.Sigma)})
    return starts


def _nuts(model, draws, tune, chains, seed, sampler, starts, progressbar, target_accept):
    kwargs = dict(draws=draws, tune=tune, chains=chains, random_seed=seed, progressbar=progressbar,
                  model=model, target_accept=target_accept, compute_convergence_checks=False)
    if sampler == "nutpie":
        try:
            import nutpie  # noqa: F401
        except ImportError:
            raise ValueError("sampler='nutpie' needs the nutpie package: "
                             "pip install 'gmm-suite[nutpie]'.") from None
        return pm.sample(nuts_sampler="nutpie", initvals=starts[0], **kwargs)
    # The NUTS step holds the compiled logp and gradient; it is kept on the (cached) model, so a
    # second call on new data of the same shape recompiles nothing. PyMC resets its tuning.
    steps = model.gmm_spec.setdefault("steps", {})
    key = (sampler, target_accept)
    if key not in steps:
        steps[key] = pm.NUTS(model=model, target_accept=target_accept,
                             compile_kwargs={"mode": {"numba": "NUMBA", "c": "CVM"}[sampler]})
    del kwargs["target_accept"]
    return pm.sample(nuts_sampler="pymc", initvals=starts, step=steps[key], cores=1, **kwargs)


def sample(X, n_components=2, covariance_type="full", prior=None, init="em", draws=1000,
           tune=1000, chains=4, random_seed=0, sampler=DEFAULT_SAMPLER, sample_z=False,
           prior_predictive=False, posterior_predictive=False, progressbar=False,
           target_accept=0.9, feature_names=None):
    """Sample the posterior with NUTS, started from EM, and return an ArviZ DataTree.

    Parameters
    ----------
    X : array-like of shape (N, d)
    n_components : int, default 2
    covariance_type : {"full", "tied", "diag", "spherical"}
    prior : Prior
        A proper prior (``None`` is refused: the flat-prior posterior is improper).
    init : "em" or GMMParams
        Every chain starts at the EM MAP estimate (or the given parameters) with a small jitter;
        draws are relabelled against that reference.
    draws, tune, chains : int
    random_seed : int
    sampler : {"numba", "c", "nutpie"}
        PyMC's NUTS on PyTensor's numba backend (the default, fastest here), on the C backend, or
        nutpie (optional extra ``gmm-suite[nutpie]``).
    sample_z : bool
        Also draw ``z_n ~ p(z_n | x_n, theta)`` for every posterior draw (posterior variable ``z``).
    prior_predictive, posterior_predictive : bool
        Add the ``prior``/``prior_predictive`` or ``posterior_predictive`` groups.
    progressbar : bool
    target_accept : float
    feature_names : sequence of str or None
        Labels of the ``feature`` coordinate; default: a DataFrame's column names, else 0..d-1.

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` (chain, draw) of the relabelled draws (``pi``, ``mu``, ``Sigma``;
        ``z`` with ``sample_z``),
        ``responsibilities`` (``gamma`` (obs_id, component): p(z_n = k | x_n, theta) averaged
        over the relabelled draws, Rao-Blackwellised), ``sample_stats`` (with the
        ``label_permutation`` applied to each draw), ``observed_data``, ``log_likelihood``,
        and the predictive groups asked for.
    """
    feature_names = _names(X, feature_names)
    X = _check_data(X)
    N, d = X.shape
    K = _check_K(n_components, N)
    covariance_type = pymc_covariance_type(covariance_type)
    prior = _check_prior(prior, K, d, covariance_type, allow_flat=False)
    for name, value in (("draws", draws), ("tune", tune), ("chains", chains)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < (
                0 if name == "tune" else 1):
            raise ValueError(f"{name} must be an integer >= {0 if name == 'tune' else 1}, "
                             f"got {value!r}.")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r} is not supported; use one of {SAMPLERS}.")
    rng = np.random.default_rng(random_seed)
    t0 = time.perf_counter()
    if isinstance(init, GMMParams):
        reference = init
    elif init == "em":
        reference = _em_reference(X, K, covariance_type, prior, random_seed).params
    else:
        raise ValueError(f"init={init!r} is not supported; use 'em' or a models.GMMParams.")
    t_em = time.perf_counter() - t0
    model = _cached_model(X, K, covariance_type, prior)
    starts = _jittered_starts(reference, chains, rng)
    t1 = time.perf_counter()
    idata = _nuts(model, draws, tune, chains, int(rng.integers(2**31 - 1)), sampler, starts,
                  progressbar, target_accept)
    t_sample = time.perf_counter() - t1
    dt = _assemble(idata, X, reference, covariance_type, rng, sample_z)
    if prior_predictive:
        dt = add_prior_predictive(dt, X, K, covariance_type, prior, draws=min(draws, 500),
                                  random_seed=int(rng.integers(2**31 - 1)))
    if posterior_predictive:
        dt = add_posterior_predictive(dt, random_seed=int(rng.integers(2**31 - 1)))
    dt.attrs.update({
        "method": "nuts",
        "sampler": sampler,
        "random_seed": int(random_seed),
        "covariance_type": covariance_type,
        "n_components": K,
        "draws": draws, "tune": tune, "chains": chains,
        "em_reference_pi": reference.pi.tolist(),
        "em_reference_mu": reference.mu.tolist(),
        "time_em_s": t_em,
        "time_sampling_s": t_sample,
        "versions": _versions(),
    })
    return name_features(dt, feature_names)


_MODEL_CACHE: dict = {}


def _cached_model(X, K, covariance_type, prior):
    """Reuse the model (and so PyMC's compiled functions) for new data of the same shape."""
    key = (X.shape, K, covariance_type, id(prior))
    model = _MODEL_CACHE.get(key)
    if model is None or model.gmm_spec["prior"] is not prior:
        _MODEL_CACHE.clear()
        model = build_model(X, K, covariance_type, prior, latent="marginal")
        _MODEL_CACHE[key] = model
    else:
        with model:
            pm.set_data({"X_data": X})
    return model


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


def _assemble(idata, X, reference, covariance_type, rng, sample_z):
    """Relabel, then add gamma, log_likelihood and observed_data to PyMC's DataTree."""
    post = idata["posterior"].to_dataset()[["pi", "mu", "Sigma"]]
    dt = xr.DataTree.from_dict({
        "posterior": post,
        "sample_stats": idata["sample_stats"].to_dataset(),
        "observed_data": xr.Dataset({"x": (("obs_id", "feature"), X)},
                                    coords={"obs_id": np.arange(X.shape[0]),
                                            "feature": np.arange(X.shape[1])}),
    })
    dt.attrs.update(idata.attrs)
    return relabel(dt, reference, rng=rng, sample_z=sample_z)


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
    diff = np.asarray(mu)[:, None, :] - reference.mu[None]                          # (j, k, d)
    y = np.linalg.solve(ref_L[None], diff[..., None])[..., 0]
    cost = (y**2).sum(-1) + (np.log(pi)[:, None] - np.log(reference.pi)[None]) ** 2
    rows, cols = linear_sum_assignment(cost)
    return rows[np.argsort(cols)]


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
    rng : Generator or int or None
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
    covariance_type = reference.covariance_type
    K = reference.K
    if post["pi"].shape[-1] != K:
        raise ValueError(f"reference has K={K} but the posterior has {post['pi'].shape[-1]} "
                         "components.")
    pi, mu, Sigma = (post[v].values.copy() for v in ("pi", "mu", "Sigma"))
    C, D = pi.shape[:2]
    ref_L = reference.cholesky
    perms = np.empty((C, D, K), dtype=np.int64)
    for c in range(C):
        for t in range(D):
            perm = match_labels(pi[c, t], mu[c, t], reference, ref_L)
            perms[c, t] = perm
            pi[c, t], mu[c, t] = pi[c, t][perm], mu[c, t][perm]
            if family(covariance_type).storage != "tied":
                Sigma[c, t] = Sigma[c, t][perm]
    new_post = post.copy()
    new_post["pi"] = (post["pi"].dims, pi)
    new_post["mu"] = (post["mu"].dims, mu)
    new_post["Sigma"] = (post["Sigma"].dims, Sigma)
    X = dt["observed_data"]["x"].values
    gamma = np.zeros((X.shape[0], K))
    log_lik = np.empty((C, D, X.shape[0]))
    z = np.empty((C, D, X.shape[0]), dtype=np.int64) if sample_z else None
    for c, t, p in _draw_params(new_post, covariance_type):
        log_joint = p.log_joint(X)
        log_lik[c, t] = logsumexp(log_joint, axis=1)
        g = np.exp(log_joint - log_lik[c, t][:, None])
        gamma += g
        if sample_z:
            u = rng.uniform(size=(X.shape[0], 1))
            z[c, t] = np.minimum((np.cumsum(g, axis=1) < u).sum(axis=1), K - 1)
    if sample_z:
        new_post["z"] = (("chain", "draw", "obs_id"), z)
    new_post = new_post.assign_coords(obs_id=np.arange(X.shape[0]))
    stats_ds = dt["sample_stats"].to_dataset().copy() if "sample_stats" in dt.children else \
        xr.Dataset(coords={"chain": post.chain, "draw": post.draw})
    stats_ds["label_permutation"] = (("chain", "draw", "component"), perms)
    out = with_groups(
        dt, posterior=new_post, responsibilities=_gamma_group(gamma / (C * D)),
        sample_stats=stats_ds,
        log_likelihood=xr.Dataset({"x": (("chain", "draw", "obs_id"), log_lik)},
                                  coords={"chain": post.chain, "draw": post.draw,
                                          "obs_id": np.arange(X.shape[0])}))
    out.attrs["relabel_reference_mu"] = reference.mu.tolist()
    out.attrs["relabel_draws_permuted"] = int((perms != np.arange(K)).any(-1).sum())
    return out


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


def em_to_datatree(em_result, X, feature_names=None):
    """EM results in the MCMC DataTree's schema (a point estimate: chain = draw = 1).

    Parameters
    ----------
    em_result : em.EMResult
    X : array-like of shape (N, d)
        The data the result was fitted on.
    feature_names : sequence of str or None
        Labels of the ``feature`` coordinate; default: a DataFrame's column names, else 0..d-1.

    Returns
    -------
    xarray.DataTree
        ``posterior`` (``pi``, ``mu``, ``Sigma``), ``responsibilities`` (``gamma``),
        ``log_likelihood``,
        ``observed_data``; attrs with the log-likelihood, log posterior, BIC, AIC, ICL and
        convergence.
    """
    if not isinstance(em_result, em.EMResult):
        raise TypeError(f"em_result must be an em.EMResult, got {type(em_result).__name__}.")
    feature_names = _names(X, feature_names)
    X = _check_data(X)
    p = em_result.params
    if X.shape[1] != p.d:
        raise ValueError(f"X has {X.shape[1]} features but the result has d={p.d}.")
    dt = point_to_datatree(p, X, feature_names)
    dt.attrs.update({
        "method": "em-map" if em_result.prior is not None and not em_result.prior.is_flat
        else "em-mle",
        "log_likelihood": em_result.log_likelihood,
        "log_posterior": float("nan") if em_result.log_posterior is None
        else em_result.log_posterior,
        "bic": em_result.bic, "aic": em_result.aic, "icl": em_result.icl,
        "n_iter": em_result.n_iter, "converged": int(em_result.converged),
    })
    return dt


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

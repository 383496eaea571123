"""NUTS from a given start, and relabelling the draws onto a reference's labels."""

from __future__ import annotations

import importlib
import os
import sys
import time

import numpy as np
import pymc as pm
import xarray as xr
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp

from models.families import family
from models.params import GMMParams, log_joint_stack
from models.pymc.distributions import _sigma_dims
from models.pymc.model import (
    _names,
    build_model,
    check_inputs,
    check_start,
    params_to_point,
    structure_digest,
)
from models.pymc.schema import (
    _gamma_group,
    _versions,
    add_posterior_predictive,
    add_prior_predictive,
    name_features,
    with_groups,
)

#: NUTS routes: blackjax's and numpyro's NUTS on JAX with vectorised chains and the data an
#: argument of the compiled program (models.pymc.jax_routes), PyMC's own NUTS on PyTensor's numba
#: or C backend, and nutpie on its numba or its JAX backend (optional extra ``gmm-suite[nutpie]``)
SAMPLERS = ("blackjax", "numpyro", "numba", "c", "nutpie", "nutpie-jax")
JAX_SAMPLERS = ("blackjax", "numpyro")
_EXTRAS = {"nutpie": ("nutpie", "nutpie"), "nutpie-jax": ("nutpie", "nutpie")}
#: nutpie's compile options per route: the log density and its gradient on numba (PyTensor's
#: gradient) or both on JAX
_NUTPIE_BACKENDS = {"nutpie": {"backend": "numba"},
                    "nutpie-jax": {"backend": "jax", "gradient_backend": "jax"}}

#: the fastest to a first posterior, cold and warm, at equal ESS: benchmarks/pymc_sampling.py and
#: the README's table
DEFAULT_SAMPLER = "blackjax"


def _check_counts(draws, tune, chains):
    """Check the counts: draws and chains integers >= 1, tune >= 0; else a ValueError."""
    for name, value in (("draws", draws), ("tune", tune), ("chains", chains)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < (
                0 if name == "tune" else 1):
            raise ValueError(f"{name} must be an integer >= {0 if name == 'tune' else 1}, "
                             f"got {value!r}.")


def default_cores(chains):
    """Processes for the chains: every available core, at most one per chain."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(chains, available or 1))


def jax_cache_dir():
    """Where the JAX samplers keep compiled programs between processes.

    ``$JAX_COMPILATION_CACHE_DIR`` if set, else ``gmm-suite/jax`` under ``$XDG_CACHE_HOME`` (or
    ``~/.cache``): PyTensor's and numba's caches live in the user's home too.
    """
    given = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if given:
        return given
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gmm-suite", "jax")


def _use_jax_cache():
    """Turn on JAX's persistent compilation cache (every program, however quick to compile)."""
    import jax

    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", jax_cache_dir())
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _shape_marker(sampler, model, N, draws, tune, chains):
    """The file that records a compiled shape.

    Keyed on the model's structure (:func:`models.pymc.model.structure_digest`: K, d, family,
    the prior's numbers and the library versions), never on the data; the JAX routes' programs
    also depend on the chains and N (blackjax: N's bucket; numpyro: N, draws and tune).
    """
    spec = model.gmm_spec
    key = f"{sampler}-K{spec['K']}-d{spec['d']}-{spec['covariance_type']}"
    if sampler == "blackjax":
        from models.pymc.jax_routes import bucket

        key += f"-N{bucket(N)}-c{chains}"
    elif sampler == "numpyro":
        key += f"-N{N}-c{chains}-t{tune}-n{draws}"
    return os.path.join(os.path.dirname(jax_cache_dir()), "shapes",
                        f"{key}-{structure_digest(model)[:16]}")


def _compile_notice(marker, K, d, covariance_type):
    """Say that the model is being compiled, and whether its shape was compiled before."""
    seen = os.path.exists(marker)
    print(f"compiling the model for K = {K}, d = {d}, {covariance_type}; "
          + ("compiled before, loading it from the cache" if seen else
             "first time for this shape (later runs reuse the on-disk cache)"),
          file=sys.stderr, flush=True)


def _mark_compiled(marker):
    try:
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        open(marker, "a").close()
    except OSError:                    # a read-only home: only the message is affected
        pass


def _exact_numba():
    """Compile numba code without fast-math.

    With PyTensor's default ``numba__fastmath=True`` the code numba compiles afresh and the code
    it loads from its cache give different floating-point results, so the same seed gave
    different draws with an empty and a filled cache; without fast-math they are bit-identical.
    """
    import pytensor

    return pytensor.config.change_flags(numba__fastmath=False)


def _require(sampler):
    module, extra = _EXTRAS[sampler]
    try:
        importlib.import_module(module)
    except ImportError:
        raise ValueError(f"sampler={sampler!r} needs the {module} package: "
                         f"pip install 'gmm-suite[{extra}]'.") from None


def _jittered_starts(params, chains, rng, scale=0.01):
    """Start points near ``params``: small perturbations of pi and mu (relative to each sd)."""
    full = params.to_full()
    sd = np.sqrt(np.diagonal(full.Sigma, axis1=1, axis2=2))
    starts = []
    for _ in range(chains):
        pi = params.pi * np.exp(scale * rng.standard_normal(params.K))
        pi = np.clip(pi, 1e-6, None)
        mu = params.mu + scale * sd * rng.standard_normal(params.mu.shape)
        starts.append(params_to_point(params) | {"pi": pi / pi.sum(), "mu": mu})
    return starts


def _nuts(model, draws, tune, chains, seed, sampler, starts, progressbar, target_accept, cores):
    kwargs = dict(draws=draws, tune=tune, chains=chains, random_seed=seed, progressbar=progressbar,
                  model=model, target_accept=target_accept, compute_convergence_checks=False)
    if sampler in _EXTRAS:
        _require(sampler)
    if sampler in _NUTPIE_BACKENDS:
        if sampler == "nutpie-jax":
            _use_jax_cache()
        with _exact_numba():
            return pm.sample(nuts_sampler="nutpie", initvals=starts[0], cores=cores,
                             compile_kwargs=_NUTPIE_BACKENDS[sampler], **kwargs)
    if sampler in JAX_SAMPLERS:
        # all chains in one vectorised program (the JAX route's parallelism), the data an
        # argument of it: one compilation per structure, not per data set
        _use_jax_cache()
        from models.pymc import jax_routes

        X = model["X_data"].get_value()
        if sampler == "numpyro":
            post, stats = jax_routes.sample_numpyro(model, X, starts, draws, tune, seed,
                                                    target_accept, progressbar)
        else:
            post, stats = jax_routes.sample_blackjax(model, X, starts, draws, tune, seed,
                                                     target_accept, progressbar)
        return _as_datatree(model, post, stats, sampler)
    # The NUTS step holds the compiled logp and gradient; it is kept on the (cached) model, so a
    # second call on new data of the same shape recompiles nothing. Its adaptation state (step
    # size, mass matrix) goes back to the fresh one first: a reused step gives a fresh one's draws.
    steps = model.gmm_spec.setdefault("steps", {})
    key = (sampler, target_accept)
    if key not in steps:
        with _exact_numba():
            step = pm.NUTS(model=model, target_accept=target_accept,
                           compile_kwargs={"mode": {"numba": "NUMBA", "c": "CVM"}[sampler]})
        steps[key] = (step, step.sampling_state)
    step, fresh = steps[key]
    step.sampling_state = fresh
    del kwargs["target_accept"]
    # fork shares the compiled step with the chain processes (the model does not pickle); after
    # JAX has started its threads a fork can deadlock, so then the chains run one after another
    # (the draws are the same either way)
    if "jax" in sys.modules:
        cores = 1
    return pm.sample(nuts_sampler="pymc", initvals=starts, step=step, cores=cores,
                     mp_ctx="fork" if cores > 1 else None, **kwargs)


def sample(X, n_components=2, covariance_type="full", prior=None, init=None, draws=1000,
           tune=1000, chains=4, random_seed=0, sampler=DEFAULT_SAMPLER, sample_z=False,
           prior_predictive=False, posterior_predictive=False, progressbar=False,
           target_accept=0.9, feature_names=None, cores=None):
    """Sample the posterior with NUTS from a given start, and return an ArviZ DataTree.

    Parameters
    ----------
    X : array-like of shape (N, d)
    n_components : int, default 2
    covariance_type : str
        A family the PyMC model has: EII, VII, EEI, VVI, EEE, VVV (VII, VVI, EEE, VVV also as
        spherical, diag, tied, full).
    prior : Prior
        A proper prior (``None`` is refused: the flat-prior posterior is improper).
    init : GMMParams
        Every chain starts at these parameters with a small jitter, and draws are relabelled
        against them (:func:`reports.joint.sample` starts from the EM MAP estimate).
    draws, tune, chains : int
    random_seed : int
    sampler : {"blackjax", "numpyro", "numba", "c", "nutpie", "nutpie-jax"}
        blackjax's NUTS (the default) or numpyro's on JAX, all chains in one vectorised program
        that takes the data as an argument (:mod:`models.pymc.jax_routes`); PyMC's NUTS on
        PyTensor's numba or C backend; or nutpie with its numba or its JAX backend (optional
        extra ``gmm-suite[nutpie]``). Times
        and ESS per route: ``benchmarks/pymc_sampling.py``.
    sample_z : bool
        Also draw ``z_n ~ p(z_n | x_n, theta)`` for every posterior draw (posterior variable ``z``).
    prior_predictive, posterior_predictive : bool
        Add the ``prior``/``prior_predictive`` or ``posterior_predictive`` groups.
    progressbar : bool
    target_accept : float
    feature_names : sequence of str or None
        Labels of the ``feature`` coordinate; default: a DataFrame's column names, else 0..d-1.
    cores : int or None
        Processes the chains run in (PyMC's NUTS and nutpie); default every available core, at
        most one per chain. The JAX samplers vectorise the chains in one process instead, and
        once JAX is loaded PyMC's NUTS runs its chains in this process (a fork after JAX has
        started its threads can deadlock). The draws do not depend on it.

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
    X, K, covariance_type, prior = check_inputs(X, n_components, covariance_type, prior,
                                                allow_flat=False)
    N, d = X.shape
    _check_counts(draws, tune, chains)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r} is not supported; use one of {SAMPLERS}.")
    if cores is None:
        cores = default_cores(chains)
    elif isinstance(cores, bool) or not isinstance(cores, int | np.integer) or cores < 1:
        raise ValueError(f"cores must be an integer >= 1 (or None for every core), got {cores!r}.")
    cores = int(min(cores, chains))
    rng = np.random.default_rng(random_seed)
    t0 = time.perf_counter()
    reference = check_start(init, K, d)
    t_em = time.perf_counter() - t0
    model = _cached_model(X, K, covariance_type, prior)
    starts = _jittered_starts(reference, chains, rng)
    marker = _shape_marker(sampler, model, N, draws, tune, chains)
    if progressbar:
        _compile_notice(marker, K, d, covariance_type)
    t1 = time.perf_counter()
    idata = _nuts(model, draws, tune, chains, int(rng.integers(2**31 - 1)), sampler, starts,
                  progressbar, target_accept, cores)
    _mark_compiled(marker)
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
        "draws": draws, "tune": tune, "chains": chains, "cores": cores,
        "em_reference_pi": reference.pi.tolist(),
        "em_reference_mu": reference.mu.tolist(),
        "time_em_s": t_em,
        "time_sampling_s": t_sample,
        "versions": _versions(),
    })
    return name_features(dt, feature_names)


def sample_batch(Xs, n_components, covariance_type, prior, inits, draws=1000, tune=1000,
                 chains=1, random_seed=0, target_accept=0.9, progressbar=False):
    """Sample the posteriors of many data sets of one shape in one vectorised program.

    blackjax's NUTS (:mod:`models.pymc.jax_routes`) over data sets and chains at once: one
    compilation, every replicate's chains advanced together; for simulation-based calibration.
    Each data set has its own window adaptation and trajectories. The draws are not relabelled.

    Parameters
    ----------
    Xs : array-like of shape (R, N, d)
        R data sets of N observations.
    n_components : int
    covariance_type : str
        A family the PyMC model has (see :func:`sample`).
    prior : Prior
        Proper; the same for every data set.
    inits : sequence of GMMParams, length R
        Each data set's chains start near its own (see :func:`sample`).
    draws, tune, chains : int
    random_seed : int
    target_accept : float
    progressbar : bool

    Returns
    -------
    xarray.Dataset
        ``pi``, ``mu`` and ``Sigma`` with dimensions (replicate, chain, draw, ...), and the
        sampler statistics ``diverging`` and ``tree_depth`` (replicate, chain, draw).
    """
    if np.ndim(Xs) != 3:
        raise ValueError(f"Xs must have shape (R, N, d): R data sets of one shape, got shape "
                         f"{np.shape(Xs)}.")
    checked = [check_inputs(X, n_components, covariance_type, prior, allow_flat=False)
               for X in Xs]
    X0, K, covariance_type, prior = checked[0]
    if len(inits) != len(Xs):
        raise ValueError(f"inits has {len(inits)} starting points for {len(Xs)} data sets; "
                         "give one GMMParams per data set.")
    _check_counts(draws, tune, chains)
    rng = np.random.default_rng(random_seed)
    starts = [_jittered_starts(check_start(init, K, X0.shape[1]), chains, rng) for init in inits]
    model = _cached_model(X0, K, covariance_type, prior)
    _use_jax_cache()
    from models.pymc import jax_routes

    post, stats = jax_routes.sample_blackjax_batch(
        model, np.stack([c[0] for c in checked]), starts, draws, tune,
        int(rng.integers(2**31 - 1)), target_accept, progressbar)
    dims = {"pi": ("component",), "mu": ("component", "feature"),
            "Sigma": _sigma_dims(covariance_type)}
    lead = ("replicate", "chain", "draw")
    return xr.Dataset({**{v: (lead + dims[v], post[v]) for v in dims},
                       **{k: (lead, stats[k]) for k in ("diverging", "tree_depth")}})


def _as_datatree(model, post, stats, library):
    """A JAX route's draws as PyMC's DataTree: ``posterior`` and ``sample_stats`` (chain, draw)."""
    chains, draws = stats["diverging"].shape[:2]
    base = {"chain": np.arange(chains), "draw": np.arange(draws)}
    posterior = {}
    for name, value in post.items():
        dims = tuple(model.named_vars_to_dims.get(name, ()))
        if len(dims) != value.ndim - 2:
            dims = tuple(f"{name}_dim_{i}" for i in range(value.ndim - 2))
        coords = {**base, **{dim: np.asarray(model.coords[dim]) for dim in dims
                             if dim in model.coords}}
        posterior[name] = xr.DataArray(value, dims=("chain", "draw", *dims), coords=coords)
    sample_stats = xr.Dataset({k: (("chain", "draw"), v) for k, v in stats.items()}, coords=base)
    dt = xr.DataTree.from_dict({"posterior": xr.Dataset(posterior),
                                "sample_stats": sample_stats})
    dt.attrs["inference_library"] = library
    return dt


_MODEL_CACHE: dict = {}


def _cached_model(X, K, covariance_type, prior):
    """Reuse the model (and so its compiled functions) for new data of the same structure.

    The key is the structure (d, K, family, prior), not the data or N: the data sit in
    ``pm.Data`` (PyMC's NUTS) or are an argument of the compiled program (the JAX routes).
    """
    key = (X.shape[1], K, covariance_type, id(prior))
    model = _MODEL_CACHE.get(key)
    if model is None or model.gmm_spec["prior"] is not prior:
        _MODEL_CACHE.clear()
        model = build_model(X, K, covariance_type, prior, latent="marginal")
        _MODEL_CACHE[key] = model
    else:
        with model:
            pm.set_data({"X_data": X}, coords={"obs_id": np.arange(X.shape[0])})
    return model


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


def _label_costs(pi, mu, reference, ref_L):
    """Matching costs of draws' components (rows) against the reference's (columns).

    ``pi`` (..., K) and ``mu`` (..., K, d) give costs (..., K, K): the squared Mahalanobis
    distance between the means under the reference covariance, plus the squared difference of
    the log weights.
    """
    L_inv = np.linalg.inv(ref_L)                                                 # (k, d, d)
    diff = np.asarray(mu)[..., :, None, :] - reference.mu                        # (..., j, k, d)
    y = np.einsum("kab,...jkb->...jka", L_inv, diff)
    return (y**2).sum(-1) + (np.log(pi)[..., :, None] - np.log(reference.pi)) ** 2


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


def _assignment(cost):
    """Hungarian matching of a (K, K) cost: new component k is old component ``perm[k]``."""
    rows, cols = linear_sum_assignment(cost)
    return rows[np.argsort(cols)]


#: values per block of draws in :func:`relabel`'s log densities (the (S, K, N, d) differences)
_BLOCK = 2**22


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
    costs = _label_costs(pi, mu, reference, reference.cholesky)                  # (C, D, K, K)
    perms = np.empty((C, D, K), dtype=np.int64)
    for c in range(C):
        for t in range(D):
            perms[c, t] = _assignment(costs[c, t])
    pi, mu = (np.take_along_axis(a, perms.reshape(C, D, K, *[1] * (a.ndim - 3)), axis=2)
              for a in (pi, mu))
    fam = family(covariance_type)
    if fam.storage != "tied":
        Sigma = np.take_along_axis(Sigma, perms.reshape(C, D, K, *[1] * (Sigma.ndim - 3)), axis=2)
    new_post = post.copy()
    new_post["pi"] = (post["pi"].dims, pi)
    new_post["mu"] = (post["mu"].dims, mu)
    new_post["Sigma"] = (post["Sigma"].dims, Sigma)
    # every draw's log joint at once, in blocks of draws (as point_to_params: pi normalised,
    # Sigma symmetrised)
    X = dt["observed_data"]["x"].values
    N, d = X.shape
    S = C * D
    pi_s = (pi / pi.sum(-1, keepdims=True)).reshape(S, K)
    mu_s = mu.reshape(S, K, d)
    full = fam.to_full(Sigma, K, d).reshape(S, K, d, d)
    full = 0.5 * (full + np.swapaxes(full, -1, -2))
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
    log_lik = log_lik.reshape(C, D, N)
    z = z.reshape(C, D, N) if sample_z else None
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

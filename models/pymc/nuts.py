"""The NUTS routes' runs: PyMC's own NUTS, nutpie, and the JAX programs, on the PyMC model.

:mod:`models.pymc.routes` calls these with checked inputs; they build (or reuse) the model,
announce a compile, and return PyMC's DataTree of the draws on the sampler's own labels.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import pymc as pm
import xarray as xr

from models.pymc.distributions import data_values
from models.pymc.inputs import check_count, check_inputs, check_start, jittered_starts
from models.pymc.model import build_from_inputs, params_to_point, structure_digest
from models.seeds import integer_seed, seed_sequence


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


def use_jax_cache():
    """Turn on JAX's persistent compilation cache (every program, however quick to compile)."""
    import jax

    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", jax_cache_dir())
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def shape_marker(sampler, model, N, draws, tune, chains):
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


_MODEL_CACHE: dict = {}


def cached_model(inputs):
    """Reuse the model (and so its compiled functions) for new data of the same structure.

    The key is the structure (d, K, family, prior, whether the data have missing cells), not
    the data or N: the data sit in
    ``pm.Data`` (PyMC's NUTS) or are an argument of the compiled program (the JAX routes).

    Parameters
    ----------
    inputs : ModelInputs

    Returns
    -------
    pymc.Model
        The marginal model, holding ``inputs.X``.
    """
    key = (inputs.d, inputs.K, inputs.covariance_type, id(inputs.prior), inputs.missing)
    model = _MODEL_CACHE.get(key)
    if model is None or model.gmm_spec["prior"] is not inputs.prior:
        _MODEL_CACHE.clear()
        model = build_from_inputs(inputs, latent="marginal")
        _MODEL_CACHE[key] = model
    else:
        with model:
            pm.set_data({"X_data": data_values(inputs.X)}, coords={"obs_id": np.arange(inputs.N)})
    return model


def _prepared(sampler, inputs, settings):
    """The cached model, with the compile notice said (when a bar is shown) and its marker."""
    model = cached_model(inputs)
    marker = shape_marker(sampler, model, inputs.N, settings.draws, settings.tune,
                          settings.chains)
    if settings.progressbar:
        _compile_notice(marker, inputs.K, inputs.d, inputs.covariance_type)
    return model, marker


def _points(starts):
    return [params_to_point(p) for p in starts]


def run_jax(inputs, starts, settings, library):
    """Blackjax's or numpyro's NUTS: all chains in one vectorised program, the data an argument.

    One compilation per structure, not per data set (:mod:`models.pymc.jax_routes`).
    """
    model, marker = _prepared(library, inputs, settings)
    use_jax_cache()
    from models.pymc import jax_routes

    run = jax_routes.sample_numpyro if library == "numpyro" else jax_routes.sample_blackjax
    post, stats = run(model, inputs.X, _points(starts), settings.draws, settings.tune,
                      integer_seed(settings.seed), settings.target_accept, settings.progressbar)
    _mark_compiled(marker)
    return _as_datatree(model, post, stats, library)


def run_nutpie(inputs, starts, settings, backend):
    """Run nutpie on its numba or JAX backend (one ``initvals`` for every chain: its rule)."""
    model, marker = _prepared("nutpie-jax" if backend["backend"] == "jax" else "nutpie", inputs,
                              settings)
    if backend["backend"] == "jax":
        use_jax_cache()
    with _exact_numba():
        idata = pm.sample(nuts_sampler="nutpie", initvals=_points(starts)[0], cores=settings.cores,
                          compile_kwargs=backend, **_pm_kwargs(model, settings))
    _mark_compiled(marker)
    return idata


def _pm_kwargs(model, settings):
    return dict(draws=settings.draws, tune=settings.tune, chains=settings.chains,
                random_seed=integer_seed(settings.seed), progressbar=settings.progressbar,
                model=model, target_accept=settings.target_accept,
                compute_convergence_checks=False)


def run_pymc(inputs, starts, settings, mode):
    """PyMC's own NUTS on PyTensor's numba (``"NUMBA"``) or C (``"CVM"``) backend."""
    model, marker = _prepared("numba" if mode == "NUMBA" else "c", inputs, settings)
    # The NUTS step holds the compiled logp and gradient; it is kept on the (cached) model, so a
    # second call on new data of the same shape recompiles nothing. Its adaptation state (step
    # size, mass matrix) goes back to the fresh one first: a reused step gives a fresh one's draws.
    steps = model.gmm_spec.setdefault("steps", {})
    key = (mode, settings.target_accept)
    if key not in steps:
        with _exact_numba():
            step = pm.NUTS(model=model, target_accept=settings.target_accept,
                           compile_kwargs={"mode": mode})
        steps[key] = (step, step.sampling_state)
    step, fresh = steps[key]
    step.sampling_state = fresh
    kwargs = _pm_kwargs(model, settings)
    del kwargs["target_accept"]
    # fork shares the compiled step with the chain processes (the model does not pickle); after
    # JAX has started its threads a fork can deadlock, so then the chains run one after another
    # (the draws are the same either way)
    cores = 1 if "jax" in sys.modules else settings.cores
    idata = pm.sample(nuts_sampler="pymc", initvals=_points(starts), step=step, cores=cores,
                      mp_ctx="fork" if cores > 1 else None, **kwargs)
    _mark_compiled(marker)
    return idata


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
        A family the PyMC model has (see :func:`models.pymc.sample`).
    prior : Prior
        Proper; the same for every data set.
    inits : sequence of GMMParams, length R
        Each data set's chains start near its own (see :func:`models.pymc.sample`).
    draws, tune, chains : int
    random_seed : int or numpy.random.SeedSequence
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
    # one model serves every data set: the observed-cells density if any has missing cells
    first = dataclasses.replace(checked[0], missing=any(c.missing for c in checked))
    if len(inits) != len(Xs):
        raise ValueError(f"inits has {len(inits)} starting points for {len(Xs)} data sets; "
                         "give one GMMParams per data set.")
    draws, chains = check_count(draws, "draws"), check_count(chains, "chains")
    tune = check_count(tune, "tune", minimum=0)
    jitter, seq = seed_sequence(random_seed).spawn(2)
    rng = np.random.default_rng(jitter)
    starts = [_points(jittered_starts(check_start(init, first.K, first.d), chains, rng))
              for init in inits]
    model = cached_model(first)
    use_jax_cache()
    from models.pymc import jax_routes

    post, stats = jax_routes.sample_blackjax_batch(
        model, np.stack([c.X for c in checked]), starts, draws, tune, integer_seed(seq),
        target_accept, progressbar)
    dims = {"pi": ("component",), "mu": ("component", "feature"),
            "Sigma": first.family.storage.dims}
    lead = ("replicate", "chain", "draw")
    return xr.Dataset({**{v: (lead + dims[v], post[v]) for v in dims},
                       **{k: (lead, stats[k]) for k in ("diverging", "tree_depth")}})

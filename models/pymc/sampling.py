"""The posterior of the mixture, by any route, in the results schema.

:func:`sample` checks its inputs once, gives each consumer of randomness its own stream, starts
every chain near a given point, runs the chosen route (:mod:`models.pymc.routes`), puts the draws
on the start's labels (:func:`models.results.relabel`) and adds the groups every route's result
has. Nothing here imports PyMC: a route that needs it loads it.
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import xarray as xr

from models.pymc.gibbs import converged, summary_of
from models.pymc.inputs import check_count, check_inputs, check_start, jittered_starts
from models.pymc.routes import DEFAULT_SAMPLER, FIXED_DRAWS, Settings, route
from models.results import (
    add_posterior_predictive,
    invariant_diagnostics,
    label_invariant,
    name_features,
    relabel,
    versions,
    with_groups,
)
from models.seeds import describe, seed_sequence
from models.validation import feature_names_of

#: seconds a run whose length convergence decides may take, unless the call says otherwise
MAX_SECONDS = 60.0


def default_cores(chains):
    """Processes for the chains: every available core, at most one per chain."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(chains, available or 1))


def check_max_seconds(value):
    """A time budget in seconds: a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) \
            or not np.isfinite(value) or value <= 0:
        raise ValueError(f"max_seconds must be a number of seconds > 0, got {value!r}.")
    return float(value)


def settings_for(chosen, draws, tune, chains, cores, seed, target_accept=0.9, progressbar=False,
                 max_seconds=MAX_SECONDS, keep_z=False):
    """The checked :class:`~models.pymc.routes.Settings` of a call, for the route ``chosen``.

    ``draws=None`` leaves the run length to a route that decides it by convergence
    (:attr:`~models.pymc.routes.Route.adapts`), and gives the others
    :data:`~models.pymc.routes.FIXED_DRAWS`; ``tune=None`` is as many tuning steps as draws, or
    the route's :attr:`~models.pymc.routes.Route.burn_in` if fewer (Gibbs: 500 sweeps).

    Parameters
    ----------
    chosen : Route
    draws, tune : int or None
    chains : int
    cores : int or None
        None: every available core, at most one per chain.
    seed : numpy.random.SeedSequence
    target_accept : float
    progressbar : bool
    max_seconds : float
    keep_z : bool

    Returns
    -------
    Settings
    """
    chains = check_count(chains, "chains")
    if draws is not None:
        draws = check_count(draws, "draws")
    elif not chosen.adapts:
        draws = FIXED_DRAWS
    if tune is None:
        tune = draws or FIXED_DRAWS
        if chosen.burn_in is not None:
            tune = min(tune, chosen.burn_in)
    else:
        tune = check_count(tune, "tune", 0)
    return Settings(draws=draws, tune=tune, chains=chains,
                    cores=default_cores(chains) if cores is None else min(
                        check_count(cores, "cores"), chains),
                    seed=seed, target_accept=target_accept, progressbar=progressbar,
                    max_seconds=check_max_seconds(max_seconds), keep_z=bool(keep_z))


def sample(X, n_components=2, covariance_type="full", prior=None, init=None, draws=None,
           tune=None, chains=4, random_seed=0, sampler=DEFAULT_SAMPLER, sample_z=False,
           prior_predictive=False, posterior_predictive=False, progressbar=False,
           target_accept=0.9, feature_names=None, cores=None, max_seconds=MAX_SECONDS,
           pointwise=None):
    """Sample the posterior from a given start, and return an ArviZ DataTree.

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
    draws : int or None
        Draws kept per chain. None: the Gibbs route runs until every label-invariant quantity
        has r_hat <= 1.01 and bulk ESS >= 400, or ``max_seconds`` (:mod:`models.pymc.gibbs`);
        the NUTS routes take 1000.
    tune : int or None
        Tuning steps (NUTS) or burn-in sweeps (Gibbs with ``draws``) per chain; None: as many as
        draws (Gibbs: at most 500).
    chains : int
    random_seed : int or numpy.random.SeedSequence
        One seed for the call: the jitter, the route, ``z`` and the predictive draws each get a
        stream of their own from it (:mod:`models.seeds`).
    sampler : str
        A route of :data:`models.pymc.routes.ROUTES`: conjugate Gibbs in NumPy (the default,
        :mod:`models.pymc.gibbs`); blackjax's or numpyro's NUTS on JAX, all chains in one
        vectorised program that takes the data as an argument (:mod:`models.pymc.jax_routes`);
        PyMC's NUTS on PyTensor's numba or C backend; or nutpie with its numba or its JAX
        backend (optional extra ``gmm-suite[nutpie]``). Times and ESS per route:
        ``benchmarks/gibbs_speed.py``, ``benchmarks/pymc_sampling.py``.
    sample_z : bool
        Also keep ``z`` for every posterior draw (posterior variable ``z``): the Gibbs route's
        own allocations, else ``z_n ~ p(z_n | x_n, theta)``, whatever its size.
    prior_predictive, posterior_predictive : bool
        Add the ``prior``/``prior_predictive`` or ``posterior_predictive`` groups.
    progressbar : bool
    target_accept : float
    feature_names : sequence of str or None
        Labels of the ``feature`` coordinate; default: a DataFrame's column names, else 0..d-1.
    cores : int or None
        Processes the chains run in (PyMC's NUTS and nutpie); default every available core, at
        most one per chain. The JAX routes vectorise the chains in one process instead, and
        once JAX is loaded PyMC's NUTS runs its chains in this process (a fork after JAX has
        started its threads can deadlock). The draws do not depend on it.
    max_seconds : float
        The time budget of a run whose length convergence decides; the run stops there and its
        ``attrs["convergence"]`` says it did not converge.
    pointwise : bool or None
        Keep the ``log_likelihood`` group (chain, draw, obs_id); None: when it holds at most
        :data:`models.results.MAX_POINTWISE` values (``attrs["left_out"]`` says otherwise).

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` (chain, draw) of the relabelled draws (``pi``, ``mu``, ``Sigma``;
        ``z`` with ``sample_z``),
        ``responsibilities`` (``gamma`` (obs_id, component): p(z_n = k | x_n, theta) averaged
        over the relabelled draws, Rao-Blackwellised), ``sample_stats`` (with the
        ``label_permutation`` applied to each draw, ``occupied`` and each draw's
        ``log_likelihood``), ``label_invariant`` (:func:`models.results.label_invariant`),
        ``observed_data``, ``log_likelihood`` (within the limit), ``coclustering`` (the Gibbs
        route, N <= 2000), and the predictive groups asked for. ``attrs["convergence"]`` says
        in one line how the run ended.
    """
    feature_names = feature_names_of(X, feature_names)
    inputs = check_inputs(X, n_components, covariance_type, prior, allow_flat=False)
    chosen = route(sampler)
    settings = settings_for(chosen, draws, tune, chains, cores, seed_sequence(random_seed),
                            target_accept, progressbar, max_seconds, sample_z)
    chosen.require()
    reference = check_start(init, inputs.K, inputs.d)
    dt = run(inputs, reference, chosen, settings, sample_z=sample_z,
             prior_predictive=prior_predictive, posterior_predictive=posterior_predictive,
             pointwise=pointwise)
    return name_features(dt, feature_names)


def run(inputs, reference, chosen, settings, sample_z=False, prior_predictive=False,
        posterior_predictive=False, pointwise=None):
    """:func:`sample` on checked inputs: the route's draws, relabelled, in the results schema.

    Parameters
    ----------
    inputs : ModelInputs
    reference : GMMParams
        Start and label reference.
    chosen : Route
    settings : Settings
    sample_z, prior_predictive, posterior_predictive : bool
    pointwise : bool or None

    Returns
    -------
    xarray.DataTree
    """
    jitter, sampler_seq, z_seq, prior_seq, post_seq = settings.seed.spawn(5)
    starts = jittered_starts(reference, settings.chains, np.random.default_rng(jitter))
    t0 = time.perf_counter()
    idata = chosen.run(inputs, starts, dataclasses.replace(settings, seed=sampler_seq))
    t_sample = time.perf_counter() - t0
    dt = _assemble(idata, inputs.X, reference, z_seq, sample_z, pointwise)
    dt = with_groups(dt, label_invariant=label_invariant(dt, inputs.prior))
    C, D = dt["posterior"]["pi"].shape[:2]
    if "convergence" not in dt.attrs:
        dt.attrs["convergence"] = fixed_length_line(dt, C, D, settings.tune, t_sample)
    if prior_predictive:
        from models.pymc.model import add_prior_predictive

        dt = add_prior_predictive(dt, inputs, draws=min(settings.draws, 500), random_seed=prior_seq)
    if posterior_predictive:
        dt = add_posterior_predictive(dt, random_seed=post_seq)
    dt.attrs.update({
        "method": chosen.method,
        "sampler": chosen.name,
        "random_seed": describe(settings.seed),
        "covariance_type": inputs.covariance_type,
        "n_components": inputs.K,
        "draws": D, "tune": dt.attrs.get("burn_in", settings.tune), "chains": C,
        "cores": 1 if chosen.vectorises else settings.cores,
        "max_seconds": settings.max_seconds,
        "em_reference_pi": reference.pi.tolist(),
        "em_reference_mu": reference.mu.tolist(),
        "time_sampling_s": t_sample,
        "versions": versions(),
    })
    return dt


def fixed_length_line(dt, chains, draws, tune, seconds):
    """How a run of fixed length ended, in one line, from its label-invariant diagnostics.

    Parameters
    ----------
    dt : xarray.DataTree
        With a ``label_invariant`` group.
    chains, draws, tune : int
    seconds : float

    Returns
    -------
    str
    """
    diag = invariant_diagnostics(dt)
    line = f"{chains} x {draws:,} draws after {tune:,} tuning steps in {seconds:.1f} s: " + \
        summary_of(diag)
    if not converged(diag):
        line += " (not converged by r_hat <= 1.01 and bulk ESS >= 400: sample longer)"
    return line


def _assemble(idata, X, reference, seq, sample_z, pointwise):
    """Relabel, then add gamma, log_likelihood and observed_data to the route's DataTree."""
    source = idata["posterior"].to_dataset()
    post = source[[v for v in ("pi", "mu", "Sigma", "z") if v in source]]
    extra = {name: idata[name].to_dataset() for name in idata.children
             if name not in ("posterior", "sample_stats")}
    dt = xr.DataTree.from_dict({
        "posterior": post,
        "sample_stats": idata["sample_stats"].to_dataset(),
        "observed_data": xr.Dataset({"x": (("obs_id", "feature"), X)},
                                    coords={"obs_id": np.arange(X.shape[0]),
                                            "feature": np.arange(X.shape[1])}),
        **extra,
    })
    dt.attrs.update(idata.attrs)
    return relabel(dt, reference, rng=seq, sample_z=sample_z, pointwise=pointwise)

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

from models.pymc.inputs import check_count, check_inputs, check_start, jittered_starts
from models.pymc.routes import DEFAULT_SAMPLER, Settings, route
from models.results import add_posterior_predictive, name_features, relabel, versions
from models.seeds import describe, seed_sequence
from models.validation import feature_names_of


def default_cores(chains):
    """Processes for the chains: every available core, at most one per chain."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(chains, available or 1))


def sample(X, n_components=2, covariance_type="full", prior=None, init=None, draws=1000,
           tune=1000, chains=4, random_seed=0, sampler=DEFAULT_SAMPLER, sample_z=False,
           prior_predictive=False, posterior_predictive=False, progressbar=False,
           target_accept=0.9, feature_names=None, cores=None):
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
    draws, tune, chains : int
    random_seed : int or numpy.random.SeedSequence
        One seed for the call: the jitter, the route, ``z`` and the predictive draws each get a
        stream of their own from it (:mod:`models.seeds`).
    sampler : str
        A route of :data:`models.pymc.routes.ROUTES`: blackjax's NUTS (the default) or numpyro's on
        JAX, all chains in one vectorised program that takes the data as an argument
        (:mod:`models.pymc.jax_routes`); PyMC's NUTS on PyTensor's numba or C backend; or nutpie
        with its numba or its JAX backend (optional extra ``gmm-suite[nutpie]``). Times and ESS
        per route: ``benchmarks/pymc_sampling.py``.
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
        most one per chain. The JAX routes vectorise the chains in one process instead, and
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
    feature_names = feature_names_of(X, feature_names)
    inputs = check_inputs(X, n_components, covariance_type, prior, allow_flat=False)
    chains = check_count(chains, "chains")
    settings = Settings(draws=check_count(draws, "draws"), tune=check_count(tune, "tune", 0),
                        chains=chains,
                        cores=default_cores(chains) if cores is None else min(
                            check_count(cores, "cores"), chains),
                        seed=seed_sequence(random_seed), target_accept=target_accept,
                        progressbar=progressbar)
    chosen = route(sampler)
    chosen.require()
    reference = check_start(init, inputs.K, inputs.d)
    dt = run(inputs, reference, chosen, settings, sample_z=sample_z,
             prior_predictive=prior_predictive, posterior_predictive=posterior_predictive)
    return name_features(dt, feature_names)


def run(inputs, reference, chosen, settings, sample_z=False, prior_predictive=False,
        posterior_predictive=False):
    """:func:`sample` on checked inputs: the route's draws, relabelled, in the results schema.

    Parameters
    ----------
    inputs : ModelInputs
    reference : GMMParams
        Start and label reference.
    chosen : Route
    settings : Settings
    sample_z, prior_predictive, posterior_predictive : bool

    Returns
    -------
    xarray.DataTree
    """
    jitter, sampler_seq, z_seq, prior_seq, post_seq = settings.seed.spawn(5)
    starts = jittered_starts(reference, settings.chains, np.random.default_rng(jitter))
    t0 = time.perf_counter()
    idata = chosen.run(inputs, starts, dataclasses.replace(settings, seed=sampler_seq))
    t_sample = time.perf_counter() - t0
    dt = _assemble(idata, inputs.X, reference, z_seq, sample_z)
    if prior_predictive:
        from models.pymc.model import add_prior_predictive

        dt = add_prior_predictive(dt, inputs, draws=min(settings.draws, 500), random_seed=prior_seq)
    if posterior_predictive:
        dt = add_posterior_predictive(dt, random_seed=post_seq)
    dt.attrs.update({
        "method": "nuts",
        "sampler": chosen.name,
        "random_seed": describe(settings.seed),
        "covariance_type": inputs.covariance_type,
        "n_components": inputs.K,
        "draws": settings.draws, "tune": settings.tune, "chains": settings.chains,
        "cores": settings.cores,
        "em_reference_pi": reference.pi.tolist(),
        "em_reference_mu": reference.mu.tolist(),
        "time_sampling_s": t_sample,
        "versions": versions(),
    })
    return dt


def _assemble(idata, X, reference, seq, sample_z):
    """Relabel, then add gamma, log_likelihood and observed_data to the route's DataTree."""
    post = idata["posterior"].to_dataset()[["pi", "mu", "Sigma"]]
    dt = xr.DataTree.from_dict({
        "posterior": post,
        "sample_stats": idata["sample_stats"].to_dataset(),
        "observed_data": xr.Dataset({"x": (("obs_id", "feature"), X)},
                                    coords={"obs_id": np.arange(X.shape[0]),
                                            "feature": np.arange(X.shape[1])}),
    })
    dt.attrs.update(idata.attrs)
    return relabel(dt, reference, rng=seq, sample_z=sample_z)

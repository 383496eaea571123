"""Where EM and MCMC meet: the EM start of the PyMC model, and EM results as DataTrees.

:mod:`models.pymc` takes its starting point as parameters and never imports :mod:`em`;
:mod:`em` never imports PyMC. This module, above both, starts :func:`models.pymc.sample` and
:func:`models.pymc.find_map` from the EM estimate (the MAP under the same prior, or the MLE under
the flat one), which is also the reference the draws are relabelled to, and writes an
:class:`em.EMResult` in the MCMC DataTree's schema.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

import em
from models.params import GMMParams
from models.pymc.inputs import check_count, check_inputs, check_start
from models.pymc.routes import DEFAULT_SAMPLER, Settings, route
from models.pymc.sampling import default_cores, run
from models.results import match_labels, name_features, point_to_datatree
from models.seeds import describe, seed_sequence
from models.validation import check_X, feature_names_of


def em_start(X, n_components, covariance_type, prior, random_state=0, tol=1e-6):
    """The EM estimate used as start and label reference (it need only be near the mode).

    Parameters
    ----------
    X : array-like of shape (N, d)
    n_components : int
    covariance_type : str
    prior : Prior or None
        A proper prior gives the MAP, None or ``Prior.flat()`` the MLE.
    random_state : int or numpy.random.SeedSequence
    tol : float
        EM stops when the objective's relative change is at most ``tol``: 1e-6 puts the start well
        within the posterior's spread (:func:`em.fit`'s 1e-10 costs 2-3x the iterations on small
        data sets, which simulation-based calibration starts hundreds of).

    Returns
    -------
    GMMParams
    """
    return _em_start(check_inputs(X, n_components, covariance_type, prior),
                     seed_sequence(random_state, "random_state"), tol)


def _em_start(inputs, seq, tol=1e-6):
    """:func:`em_start` on checked inputs."""
    from sklearn.exceptions import ConvergenceWarning  # em.fit's warning class

    prior = inputs.prior
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return em.fit(inputs.X, inputs.K, inputs.covariance_type,
                      prior=None if prior.is_flat else prior, random_state=seq,
                      max_iter=5000, tol=tol).params


def _resolve(init, inputs, seq):
    if isinstance(init, GMMParams):
        return init
    if isinstance(init, str) and init == "em":
        return _em_start(inputs, seq)
    raise ValueError(f"init={init!r} is not supported; use 'em' or a models.GMMParams.")


def sample(X, n_components=2, covariance_type="full", prior=None, init="em", random_seed=0,
           draws=1000, tune=1000, chains=4, sampler=DEFAULT_SAMPLER, cores=None,
           feature_names=None, progressbar=False, target_accept=0.9, **groups):
    """:func:`models.pymc.sample`, started from EM (``init="em"``) or from given parameters.

    Parameters
    ----------
    X, n_components, covariance_type, prior, draws, tune, chains, sampler, cores, progressbar,
    target_accept
        As :func:`models.pymc.sample`.
    init : "em" or GMMParams
        ``"em"``: every chain starts at the EM MAP estimate with a small jitter, and the draws
        are relabelled against it.
    random_seed : int or numpy.random.SeedSequence
        One seed for the call: EM's restarts and the sampler each get a stream of their own.
    feature_names : sequence of str or None
        Labels of the ``feature`` coordinate; default: a DataFrame's column names, else 0..d-1.
    **groups
        ``sample_z``, ``prior_predictive``, ``posterior_predictive`` (see
        :func:`models.pymc.sample`).

    Returns
    -------
    xarray.DataTree
    """
    feature_names = feature_names_of(X, feature_names)
    inputs = check_inputs(X, n_components, covariance_type, prior, allow_flat=False)
    chosen = route(sampler)
    chosen.require()
    em_seq, sampler_seq = seed_sequence(random_seed).spawn(2)
    settings = Settings(draws=check_count(draws, "draws"), tune=check_count(tune, "tune", 0),
                        chains=check_count(chains, "chains"),
                        cores=default_cores(chains) if cores is None else min(
                            check_count(cores, "cores"), chains),
                        seed=sampler_seq, target_accept=target_accept, progressbar=progressbar)
    start = check_start(_resolve(init, inputs, em_seq), inputs.K, inputs.d)
    dt = run(inputs, start, chosen, settings, **groups)
    dt.attrs["random_seed"] = describe(seed_sequence(random_seed))
    return name_features(dt, feature_names)


def find_map(X, n_components=2, covariance_type="full", prior=None, init="em", random_state=0,
             **kwargs):
    """:func:`models.pymc.find_map`, started from EM (``init="em"``) or from given parameters.

    Returns
    -------
    GMMParams
    """
    from models.pymc.map import find_map as pymc_find_map  # PyMC, only for the mode

    inputs = check_inputs(X, n_components, covariance_type, prior)
    start = _resolve(init, inputs, seed_sequence(random_state, "random_state"))
    return pymc_find_map(inputs.X, inputs.K, inputs.covariance_type, prior=prior, init=start,
                         **kwargs)


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
    feature_names = feature_names_of(X, feature_names)
    p = em_result.params
    X = check_X(X, d=p.d).astype(np.float64, copy=False)
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


def align(result, reference):
    """An EM result with its components relabelled onto ``reference`` (the posterior's labels).

    Parameters
    ----------
    result : em.EMResult
    reference : GMMParams

    Returns
    -------
    em.EMResult
    """
    perm = match_labels(result.params.pi, result.params.mu, reference)
    if np.array_equal(perm, np.arange(len(perm))):
        return result
    return dataclasses.replace(result, params=result.params.permute(perm))

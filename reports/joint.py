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
import xarray as xr

import em
from em.variational import VBResult
from models.params import GMMParams
from models.pymc.inputs import check_count, check_inputs, check_start
from models.pymc.routes import DEFAULT_SAMPLER, route
from models.pymc.sampling import MAX_SECONDS, run, settings_for
from models.results import (
    draws_to_datatree,
    match_labels,
    name_features,
    point_to_datatree,
    with_groups,
)
from models.seeds import describe, seed_sequence
from models.validation import check_X, feature_names_of


def em_start(X, n_components, covariance_type, prior, random_state=0, tol=1e-6):
    """The EM estimate used as start and label reference (it need only be near a mode).

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
    from sklearn.exceptions import ConvergenceWarning  # em.fit's, raised only when unconverged

    prior = inputs.prior
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # under a proper prior a MAP with a nearly empty component is still a mode of the
        # posterior, and a fine start: small data sets (simulation-based calibration's 40 rows)
        # meet it often
        return em.fit(inputs.X, inputs.K, inputs.covariance_type,
                      prior=None if prior.is_flat else prior, random_state=seq,
                      max_iter=5000, tol=tol, check_collapse=prior.is_flat).params


def _resolve(init, inputs, seq):
    if isinstance(init, GMMParams):
        return init
    if isinstance(init, str) and init == "em":
        return _em_start(inputs, seq)
    raise ValueError(f"init={init!r} is not supported; use 'em' or a models.GMMParams.")


def sample(X, n_components=2, covariance_type="full", prior=None, init="em", random_seed=0,
           draws=None, tune=None, chains=4, sampler=DEFAULT_SAMPLER, cores=None,
           feature_names=None, progressbar=False, target_accept=0.9, max_seconds=MAX_SECONDS,
           pointwise=None, **groups):
    """:func:`models.pymc.sample`, started from EM (``init="em"``) or from given parameters.

    Parameters
    ----------
    X, n_components, covariance_type, prior, draws, tune, chains, sampler, cores, progressbar,
    target_accept, max_seconds, pointwise
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
    settings = settings_for(chosen, draws, tune, chains, cores, sampler_seq, target_accept,
                            progressbar, max_seconds, groups.get("sample_z", False))
    start = check_start(_resolve(init, inputs, em_seq), inputs.K, inputs.d)
    dt = run(inputs, start, chosen, settings, pointwise=pointwise, **groups)
    dt.attrs["random_seed"] = describe(seed_sequence(random_seed))
    return name_features(dt, feature_names)


def find_map(X, n_components=2, covariance_type="full", prior=None, init="em", random_state=0,
             **kwargs):
    """:func:`models.pymc.find_map`, started from EM (``init="em"``) or from given parameters.

    Returns
    -------
    GMMParams
    """
    from models.pymc.map import find_map as pymc_find_map  # PyMC, only for find_map

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
    X = check_X(X, d=p.d, finite=False).astype(np.float64, copy=False)   # NaN: missing
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
    """An EM or VB result with its components relabelled onto ``reference`` (the posterior's labels).

    Parameters
    ----------
    result : em.EMResult or em.variational.VBResult
    reference : GMMParams

    Returns
    -------
    em.EMResult or em.variational.VBResult
    """
    perm = match_labels(result.params.pi, result.params.mu, reference)
    if np.array_equal(perm, np.arange(len(perm))):
        return result
    if isinstance(result, VBResult):
        return dataclasses.replace(result, posterior=result.posterior.permute(perm))
    return dataclasses.replace(result, params=result.params.permute(perm))


def vb_to_datatree(vb_result, X, feature_names=None, draws=1000, random_seed=0):
    """A variational posterior in the results schema: its draws, its means and its factors.

    Parameters
    ----------
    vb_result : em.variational.VBResult
    X : array-like of shape (N, d)
        The data the result was fitted on.
    feature_names : sequence of str or None
    draws : int
        Independent draws from ``q(pi, mu, Sigma)``: the ``posterior`` group (one chain).
    random_seed : int or numpy.random.SeedSequence

    Returns
    -------
    xarray.DataTree
        ``posterior`` (the draws), ``responsibilities`` (``q(z)``), ``log_likelihood`` (per
        draw, within :data:`models.results.MAX_POINTWISE`), ``observed_data``, and
        ``variational``: the means ``pi``, ``mu``, ``Sigma`` (``E[Sigma]``, NaN where it has
        none) and the factors' parameters ``alpha``, ``kappa``, ``sigma_shape``, ``sigma_scale``
        (inverse-Wishart ``nu``, ``Psi`` or inverse-gamma ``a``, ``b``, one per component);
        attrs ``method = "vb"``, the ELBO, iterations, convergence, the effective number of
        components.
    """
    if not isinstance(vb_result, VBResult):
        raise TypeError(f"vb_result must be an em.variational.VBResult, got "
                        f"{type(vb_result).__name__}.")
    feature_names = feature_names_of(X, feature_names)
    q = vb_result.posterior
    X = check_X(X, d=q.d).astype(np.float64, copy=False)
    rng = np.random.default_rng(seed_sequence(random_seed))
    drawn = q.draw(check_count(draws, "draws"), rng)
    dt = draws_to_datatree(drawn["pi"], drawn["mu"], drawn["Sigma"], X, q.covariance_type,
                           gamma=vb_result.gamma)
    storage, K = q.family.storage, q.K
    mean = q.mean()
    dims = storage.dims
    variational = xr.Dataset({
        "pi": (("component",), mean["pi"]), "mu": (("component", "feature"), mean["mu"]),
        "Sigma": (dims, mean["Sigma"]), "alpha": (("component",), q.alpha),
        "kappa": (("component",), q.kappa),
        "sigma_shape": (("component",), np.broadcast_to(q.shape, (K,)).copy()),
        "sigma_scale": (dims, storage.from_components(q.scale, K))},
        coords={"component": np.arange(K), "feature": np.arange(q.d),
                "feature_bis": np.arange(q.d)})
    dt = with_groups(dt, variational=variational)
    dt.attrs.update({"method": "vb", "elbo": vb_result.elbo, "n_iter": vb_result.n_iter,
                     "converged": int(vb_result.converged),
                     "effective_n_components": vb_result.effective_n_components_,
                     "weight_threshold": vb_result.weight_threshold,
                     "random_seed": describe(seed_sequence(random_seed))})
    return name_features(dt, feature_names)

"""Where EM and MCMC meet: the EM start of the PyMC model, and EM results as DataTrees.

:mod:`models.pymc` takes its starting point as parameters and never imports :mod:`em`;
:mod:`em` never imports PyMC. This module, above both, starts :func:`models.pymc.sample` and
:func:`models.pymc.find_map` from the EM estimate (the MAP under the same prior, or the MLE under
the flat one), which is also the reference the draws are relabelled to, and writes an
:class:`em.EMResult` in the MCMC DataTree's schema.
"""

from __future__ import annotations

import warnings

from sklearn.exceptions import ConvergenceWarning

import em
from models import GMMParams
from models import pymc as gmm_pymc
from models.pymc.model import _check_data, _names, check_inputs


def em_start(X, n_components, covariance_type, prior, random_state=0, tol=1e-6):
    """The EM estimate used as start and label reference (it need only be near the mode).

    Parameters
    ----------
    X : array-like of shape (N, d)
    n_components : int
    covariance_type : str
    prior : Prior or None
        A proper prior gives the MAP, None or ``Prior.flat()`` the MLE.
    random_state : int
    tol : float
        EM stops when the objective's relative change is at most ``tol``: 1e-6 puts the start well
        within the posterior's spread (:func:`em.fit`'s 1e-10 costs 2-3x the iterations on small
        data sets, which simulation-based calibration starts hundreds of).

    Returns
    -------
    GMMParams
    """
    X, K, covariance_type, prior = check_inputs(X, n_components, covariance_type, prior)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return em.fit(X, K, covariance_type, prior=None if prior.is_flat else prior,
                      random_state=random_state, max_iter=5000, tol=tol).params


def _resolve(init, X, n_components, covariance_type, prior, random_state):
    if isinstance(init, GMMParams):
        return init
    if isinstance(init, str) and init == "em":
        return em_start(X, n_components, covariance_type, prior, random_state)
    raise ValueError(f"init={init!r} is not supported; use 'em' or a models.GMMParams.")


def sample(X, n_components=2, covariance_type="full", prior=None, init="em", random_seed=0,
           **kwargs):
    """:func:`models.pymc.sample`, started from EM (``init="em"``) or from given parameters.

    Parameters
    ----------
    X, n_components, covariance_type, prior
        As :func:`models.pymc.sample`.
    init : "em" or GMMParams
        ``"em"``: every chain starts at the EM MAP estimate with a small jitter, and the draws
        are relabelled against it.
    random_seed : int
        Seeds the EM start and the sampler.
    **kwargs
        Passed to :func:`models.pymc.sample` (draws, tune, chains, sampler, ...).

    Returns
    -------
    xarray.DataTree
    """
    feature_names = kwargs.pop("feature_names", None)
    start = _resolve(init, X, n_components, covariance_type, prior, random_seed)
    return gmm_pymc.sample(X, n_components, covariance_type, prior=prior, init=start,
                           random_seed=random_seed, feature_names=_names(X, feature_names),
                           **kwargs)


def find_map(X, n_components=2, covariance_type="full", prior=None, init="em", random_state=0,
             **kwargs):
    """:func:`models.pymc.find_map`, started from EM (``init="em"``) or from given parameters.

    Returns
    -------
    GMMParams
    """
    start = _resolve(init, X, n_components, covariance_type, prior, random_state)
    return gmm_pymc.find_map(X, n_components, covariance_type, prior=prior, init=start, **kwargs)


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
    dt = gmm_pymc.point_to_datatree(p, X, feature_names)
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

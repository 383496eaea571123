"""The Bayesian model's inputs, checked once at the public edge; inward code takes them as they are.

No PyMC here: the Gibbs route and the route table run without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.families import Family, family
from models.missing import scan
from models.params import GMMParams
from models.prior import Prior, check_prior
from models.validation import check_n_components, check_X


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """Data, K, family and prior of one Bayesian mixture, checked.

    Attributes
    ----------
    X : ndarray of shape (N, d)
        float64; NaN where a value is missing (every row and column has an observed value).
    K : int
    family : Family
        One the PyMC model has (a natural conjugate prior): EII, VII, EEI, VVI, EEE, VVV.
    covariance_type : str
        The model's name for it (:func:`pymc_covariance_type`).
    prior : Prior
        ``Prior.flat()`` for the flat prior (its mode is the MLE; never sampled).
    missing : bool
        Whether ``X`` has missing cells: the model then takes each row's observed cells.
    """

    X: np.ndarray
    K: int
    family: Family
    covariance_type: str
    prior: Prior
    missing: bool = False

    @property
    def N(self):
        """Number of observations."""
        return self.X.shape[0]

    @property
    def d(self):
        """Number of features."""
        return self.X.shape[1]


def pymc_covariance_type(covariance_type):
    """The name the PyMC model uses for a family it has, else a ``ValueError`` naming them.

    The PyMC program covers the families with a natural conjugate prior (:mod:`models.prior`):
    EII, VII, EEI, VVI, EEE and VVV.

    Parameters
    ----------
    covariance_type : str or Family

    Returns
    -------
    str
        scikit-learn's name where the family has one (``"full"``, ``"tied"``, ``"diag"``,
        ``"spherical"``), else mclust's (``"EII"``, ``"EEI"``).
    """
    fam = family(covariance_type)
    if not fam.pymc:
        raise ValueError(
            f"covariance_type={covariance_type!r} is not in the PyMC model, which has the families "
            "with a natural conjugate prior: EII, VII, EEI, VVI, EEE, VVV (VII, VVI, EEE, VVV also "
            "as spherical, diag, tied, full); fit it with em.fit (maximum likelihood, or MAP where "
            "it has a prior).")
    return fam.alias or fam.name


def check_inputs(X, n_components, covariance_type, prior, allow_flat=True):
    """The four inputs every entry point takes, checked once.

    Parameters
    ----------
    X : array-like of shape (N, d)
    n_components : int
    covariance_type : str
    prior : Prior or None
    allow_flat : bool
        Accept the improper flat prior (``None`` or ``Prior.flat()``); sampling does not.

    Returns
    -------
    ModelInputs
    """
    name = pymc_covariance_type(covariance_type)
    fam = family(name)
    X = check_X(X, finite=False).astype(np.float64, copy=False)
    missing = scan(X, keep_rows=False) is not None
    K = check_n_components(n_components, X.shape[0])
    prior = check_prior(prior, K, X.shape[1], fam, proper=not allow_flat, exact=True)
    return ModelInputs(X, K, fam, name, Prior.flat() if prior is None else prior, missing)


def check_start(init, K, d):
    """The starting point of the samplers and the mode finder: a GMMParams of K and d.

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


def check_count(value, name, minimum=1):
    """An integer setting (draws, tune, chains, cores) of at least ``minimum``.

    Parameters
    ----------
    value : int
    name : str
    minimum : int

    Returns
    -------
    int
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def jittered_starts(params, chains, rng, scale=0.01):
    """One start per chain near ``params``: small perturbations of pi and mu.

    The weights are multiplied by ``exp(scale * N(0, 1))`` and renormalised; each mean moves by
    ``scale`` times its component's sd along every feature.

    Parameters
    ----------
    params : GMMParams
    chains : int
    rng : numpy.random.Generator
    scale : float

    Returns
    -------
    list of GMMParams
    """
    sd = np.sqrt(np.diagonal(params.family.to_full(params.Sigma, params.K, params.d),
                             axis1=1, axis2=2))
    starts = []
    for _ in range(chains):
        pi = np.clip(params.pi * np.exp(scale * rng.standard_normal(params.K)), 1e-6, None)
        mu = params.mu + scale * sd * rng.standard_normal(params.mu.shape)
        starts.append(GMMParams(pi / pi.sum(), mu, params.Sigma, params.covariance_type))
    return starts

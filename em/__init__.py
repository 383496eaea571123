"""Closed-form EM for Gaussian mixtures: maximum likelihood, or MAP under ``models.Prior``.

Imports the model specification (:mod:`models`) only, never PyMC. The two scikit-learn
estimators, ``em.GaussianMixture`` and ``em.BayesianGaussianMixture``, load lazily, on first use:
they need scikit-learn's estimator machinery, which the command line's EM commands do without.
"""

from em.estep import e_step, predict_proba, score_samples
from em.fit import EMResult, fit
from em.missing import impute
from em.mstep import DegenerateComponentError, m_step
from models.lazy import exports

#: names loaded on first use -> the module that defines them
_LAZY = {"BayesianGaussianMixture": "em.bayesian", "GaussianMixture": "em.estimator"}

__all__ = [
    "BayesianGaussianMixture",
    "DegenerateComponentError",
    "EMResult",
    "GaussianMixture",
    "e_step",
    "fit",
    "impute",
    "m_step",
    "predict_proba",
    "score_samples",
]

__getattr__, __dir__ = exports(__name__, globals(), _LAZY)

"""Closed-form EM for Gaussian mixtures: maximum likelihood, or MAP under ``models.Prior``.

Imports the model specification (:mod:`models`) only, never PyMC.
"""

from em.bayesian import BayesianGaussianMixture
from em.estep import e_step, predict_proba, score_samples
from em.estimator import GaussianMixture
from em.fit import EMResult, fit
from em.mstep import DegenerateComponentError, m_step

__all__ = [
    "BayesianGaussianMixture",
    "DegenerateComponentError",
    "EMResult",
    "GaussianMixture",
    "e_step",
    "fit",
    "m_step",
    "predict_proba",
    "score_samples",
]

"""Closed-form EM for Gaussian mixtures: maximum likelihood, or MAP under ``models.Prior``.

Imports the model specification (:mod:`models`) only, never PyMC. ``em.GaussianMixture`` loads
lazily, on first use: it is the one name that needs scikit-learn's estimator machinery, which the
command line's EM commands do without.
"""

import importlib

from em.estep import e_step, predict_proba, score_samples
from em.fit import EMResult, fit
from em.missing import impute
from em.mstep import DegenerateComponentError, m_step

#: names loaded on first use -> the module that defines them
_LAZY = {"GaussianMixture": "em.estimator"}

__all__ = [
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


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'em' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))

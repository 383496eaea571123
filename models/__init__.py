"""The Gaussian mixture model, once: parameters, prior, generative story and datasets.

This package imports neither :mod:`em` nor PyMC; the PyMC program lives in :mod:`models.pymc`,
imported on demand (``from models import pymc as gmm_pymc``).
"""

from models.datasets import load_faithful, load_iris
from models.families import FAMILIES, MCLUST_NAMES, Family, family
from models.params import COVARIANCE_TYPES, SKLEARN_TYPES, GMMParams, sigma_shape
from models.prior import Prior, sample_params
from models.simulate import simulate

__all__ = [
    "COVARIANCE_TYPES",
    "FAMILIES",
    "Family",
    "MCLUST_NAMES",
    "SKLEARN_TYPES",
    "family",
    "GMMParams",
    "Prior",
    "load_faithful",
    "load_iris",
    "sample_params",
    "sigma_shape",
    "simulate",
]

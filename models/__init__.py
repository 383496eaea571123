"""The Gaussian mixture model, once: parameters, prior, generative story and datasets.

This package imports neither :mod:`em` nor PyMC; the PyMC program lives in :mod:`models.pymc`,
imported on demand (``from models import pymc as gmm_pymc``). Its names load lazily, each with the
module that defines it, so ``import models.families`` costs NumPy alone (the command line's
start-up).
"""

from models.lazy import exports

#: public name -> the module that defines it
_EXPORTS = {
    "COVARIANCE_TYPES": "models.families",
    "FAMILIES": "models.families",
    "Family": "models.families",
    "MCLUST_NAMES": "models.families",
    "SKLEARN_TYPES": "models.families",
    "family": "models.families",
    "STORAGES": "models.storage",
    "GMMParams": "models.params",
    "sigma_shape": "models.params",
    "Prior": "models.prior",
    "sample_params": "models.prior",
    "simulate": "models.simulation",
    "load_faithful": "models.datasets",
    "load_iris": "models.datasets",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = exports(__name__, globals(), _EXPORTS)

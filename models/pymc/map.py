"""A mode of the posterior by PyMC's optimiser: the one uphill of a given start.

A mixture's posterior can have several local modes (iris K = 3: EM reaches some 20); which one
holds most of the mass is a question for the draws (:mod:`reports.modes`), not for an optimiser.
"""

from __future__ import annotations

import warnings

import pymc as pm
import pytensor

from models.pymc.inputs import check_inputs, check_start
from models.pymc.model import build_from_inputs, params_to_point
from models.results import point_to_params


def find_map(X, n_components=2, covariance_type="full", prior=None, init=None, tol=1e-13,
             maxiter=20000):
    """A mode of the PyMC model's posterior (``model.logp(jacobian=False)``), in ``Sigma``-space.

    The local mode uphill of ``init``. With ``prior=None`` or ``Prior.flat()`` this is a maximum
    of the likelihood; with a proper prior it is the MAP estimate that :func:`em.fit` computes in
    closed form from the same start.

    Parameters
    ----------
    X : array-like of shape (N, d)
    n_components : int, default 2
    covariance_type : str
        A family the PyMC model has: EII, VII, EEI, VVI, EEE, VVV (VII, VVI, EEE, VVV also as
        spherical, diag, tied, full).
    prior : Prior or None
    init : GMMParams
        Starting point (:func:`reports.joint.find_map` starts from EM).
    tol : float
        Optimiser tolerance (``ftol`` and ``gtol`` of L-BFGS-B).
    maxiter : int

    Returns
    -------
    GMMParams
    """
    inputs = check_inputs(X, n_components, covariance_type, prior)
    start = check_start(init, inputs.K, inputs.d)
    model = build_from_inputs(inputs, latent="marginal")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS",
                                category=UserWarning)
        # At ftol = gtol = 1e-13 L-BFGS-B can end its line search "ABNORMAL"ly once it sits on
        # the optimum to float precision; the result is still that mode (tests check it to 1e-5).
        warnings.filterwarnings("ignore", message="The optimizer did not converge: ABNORMAL",
                                category=UserWarning)
        # PyTensor's Python linker (FAST_COMPILE): nothing to compile, where the C backend spent
        # about a minute of gcc on a fresh machine (numba longer); an evaluation is one NumPy call
        # per operation, and L-BFGS needs a few hundred (Old Faithful K = 2: 2.8 s with the EM start).
        # Without a C++ compiler named (cxx=""), the ops that run an inner function (logsumexp,
        # its gradient) link it in Python too: with one, 27 C modules, 15 s on a fresh machine.
        with pytensor.config.change_flags(cxx=""):
            fit = pm.find_MAP(initvals=params_to_point(start), jitter=False,
                              return_inferencedata=True, compile_kwargs={"mode": "FAST_COMPILE"},
                              progressbar=False, model=model, method="L-BFGS-B",
                              options={"ftol": tol, "gtol": tol, "maxiter": maxiter,
                                       "maxcor": 50})
    post = fit["posterior"].to_dataset()
    point = {v: post[v].values[0, 0] for v in ("pi", "mu", "Sigma")}
    return point_to_params(point, inputs.covariance_type)

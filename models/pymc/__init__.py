r"""The Gaussian mixture as a PyMC program, with the priors of :class:`models.Prior`, and its samplers.

The generative story, as in the lecture notes and :func:`models.simulate`:

.. math::
    \pi \sim \mathrm{Dirichlet}(\alpha), \quad
    (\mu_k, \Sigma_k) \sim p(\mu, \Sigma) \text{ (see models.prior)}, \quad
    z_n \sim \mathrm{Categorical}(\pi), \quad
    x_n \mid z_n = k \sim \mathcal{N}(\mu_k, \Sigma_k).

``latent="explicit"`` writes it literally; ``latent="marginal"`` sums ``z`` out,
``log p(x_n) = logsumexp_k [log pi_k + log N(x_n | mu_k, Sigma_k)]``, computed for all components at
once from batched Cholesky factors, for NUTS.

The covariance itself is the value variable (an inverse-Wishart written here, since PyMC has none,
or PyMC's inverse-gamma), with a transform to unconstrained space. So NUTS samples the exact prior
and :func:`find_map` (which maximises without the Jacobian) returns a mode in ``Sigma``-space,
the quantity :mod:`em`'s MAP M-step computes (the local mode uphill of its start).

This package imports the specification (:mod:`models`) only, never :mod:`em`: :func:`find_map` and
:func:`sample` take their starting point as parameters. :mod:`reports.joint` starts them from EM.

Modules: :mod:`~models.pymc.inputs` (the checked inputs and start points),
:mod:`~models.pymc.routes` (the table of sampler routes), :mod:`~models.pymc.sampling` (any route,
relabelled, in the results schema), :mod:`~models.pymc.distributions` (the inverse-Wishart, its
transform, the mixture's log densities), :mod:`~models.pymc.model` (the model),
:mod:`~models.pymc.map` (a mode), :mod:`~models.pymc.nuts` (the NUTS routes' runs) and
:mod:`~models.pymc.jax_routes` (blackjax's and numpyro's NUTS on the model's log density in JAX,
the data an argument of the compiled program). The results schema and relabelling are the
specification's (:mod:`models.results`).

Its names load lazily, each with its module: ``models.pymc.routes`` and ``models.pymc.sampling``
do not import PyMC, so a route that needs no PyMC never loads it.
"""

from models.lazy import exports

#: public name -> the module that defines it
_EXPORTS = {
    "CholeskyLogDiag": "models.pymc.distributions",
    "InverseWishart": "models.pymc.distributions",
    "find_map": "models.pymc.map",
    "LATENT": "models.pymc.model",
    "add_prior_predictive": "models.pymc.model",
    "build_model": "models.pymc.model",
    "params_to_point": "models.pymc.model",
    "value_point_function": "models.pymc.model",
    "cached_model": "models.pymc.nuts",
    "jax_cache_dir": "models.pymc.nuts",
    "sample_batch": "models.pymc.nuts",
    "ModelInputs": "models.pymc.inputs",
    "check_inputs": "models.pymc.inputs",
    "pymc_covariance_type": "models.pymc.inputs",
    "DEFAULT_SAMPLER": "models.pymc.routes",
    "ROUTES": "models.pymc.routes",
    "default_cores": "models.pymc.sampling",
    "sample": "models.pymc.sampling",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = exports(__name__, globals(), _EXPORTS)

r"""The Gaussian mixture as a PyMC program, with the priors of :class:`models.Prior`.

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
and :func:`find_map` (which maximises without the Jacobian) returns the mode in ``Sigma``-space,
the quantity :mod:`em`'s MAP M-step computes.

This package imports the specification (:mod:`models`) only, never :mod:`em`: :func:`find_map` and
:func:`sample` take their starting point as parameters. :mod:`reports.joint` starts them from EM.

Modules: :mod:`~models.pymc.distributions` (the inverse-Wishart, its transform, the mixture's log
densities), :mod:`~models.pymc.model` (the model and the conversions to and from GMMParams),
:mod:`~models.pymc.map` (the mode), :mod:`~models.pymc.sampling` (NUTS and relabelling),
:mod:`~models.pymc.jax_routes` (the default route: blackjax's or numpyro's NUTS on the model's
log density in JAX, the data an argument of the compiled program) and
:mod:`~models.pymc.schema` (the DataTree layout shared with EM results).
"""

from models.pymc.distributions import CholeskyLogDiag, InverseWishart
from models.pymc.map import find_map
from models.pymc.model import (
    LATENT,
    build_model,
    params_to_point,
    point_to_params,
    pymc_covariance_type,
    value_point_function,
)
from models.pymc.sampling import (
    DEFAULT_SAMPLER,
    JAX_SAMPLERS,
    SAMPLERS,
    _cached_model,
    default_cores,
    jax_cache_dir,
    match_labels,
    relabel,
    sample,
    sample_batch,
)
from models.pymc.schema import (
    _versions,
    add_posterior_predictive,
    add_prior_predictive,
    loo_pit_view,
    name_features,
    point_to_datatree,
    with_groups,
)

__all__ = [
    "_cached_model",
    "_versions",
    "DEFAULT_SAMPLER",
    "JAX_SAMPLERS",
    "LATENT",
    "SAMPLERS",
    "CholeskyLogDiag",
    "InverseWishart",
    "add_posterior_predictive",
    "add_prior_predictive",
    "build_model",
    "default_cores",
    "find_map",
    "jax_cache_dir",
    "loo_pit_view",
    "match_labels",
    "name_features",
    "params_to_point",
    "point_to_datatree",
    "point_to_params",
    "pymc_covariance_type",
    "relabel",
    "sample",
    "sample_batch",
    "value_point_function",
    "with_groups",
]

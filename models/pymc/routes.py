"""The sampler routes, one entry each: how a posterior is drawn once the inputs are checked.

Every route takes the same checked inputs (:class:`models.pymc.inputs.ModelInputs`), one start
per chain and the same settings, and returns the same DataTree: a ``posterior`` group with ``pi``,
``mu`` and ``Sigma`` (chain, draw, ...) and a ``sample_stats`` group. :func:`models.pymc.sample`
relabels the draws and adds the rest of the results schema, whatever the route.

The Gibbs route (:mod:`models.pymc.gibbs`, NumPy) samples the explicit-z model's full
conditionals and decides its run length by convergence; the NUTS routes sample the marginal
model with PyMC's, nutpie's, blackjax's or numpyro's NUTS, for fixed draws and tuning steps.

Adding a route means adding one :class:`Route` to :data:`ROUTES` and its tests; the command
line's ``--sampler`` choices and help are made from this table. This module imports neither PyMC
nor JAX: each route's ``run`` loads what it needs when it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Settings:
    """What every route is asked for.

    Attributes
    ----------
    draws : int or None
        Draws kept per chain; None (routes that decide their run length, :attr:`Route.adapts`):
        until converged or ``max_seconds``.
    tune, chains : int
        Tuning steps (burn-in sweeps) per chain, and chains.
    cores : int
        Processes for routes that run one chain per process.
    seed : numpy.random.SeedSequence
        The route's own stream.
    target_accept : float
        NUTS's target acceptance rate.
    progressbar : bool
    max_seconds : float
        The time budget of a run whose length convergence decides.
    keep_z : bool
        Keep the sampled allocations ``z`` of every kept draw (routes that sample them).
    thin : int
        The Gibbs route with fixed ``draws``: keep every ``thin``-th sweep (``draws * thin``
        sweeps after the burn-in).
    """

    draws: int | None
    tune: int
    chains: int
    cores: int
    seed: np.random.SeedSequence
    target_accept: float = 0.9
    progressbar: bool = False
    max_seconds: float = 60.0
    keep_z: bool = False
    thin: int = 1


@dataclass(frozen=True)
class Route:
    """One way to draw the posterior.

    Attributes
    ----------
    name : str
        The ``sampler=`` / ``--sampler`` value.
    summary : str
        One line for the command line's help.
    run : callable
        ``run(inputs, starts, settings) -> xarray.DataTree`` with ``posterior`` (``pi``, ``mu``,
        ``Sigma``, by chain and draw, on the sampler's own labels) and ``sample_stats``;
        ``starts`` holds one GMMParams per chain.
    vectorises : bool
        All chains advance in one vectorised program (else one process per chain, up to
        ``cores``).
    warm : str
        The module ``run`` imports, loaded ahead of time by :meth:`warm_up`.
    needs : tuple of str
        The packages it imports, checked before running.
    extra : str or None
        The optional dependency group (``pip install 'gmm-suite[extra]'``) that provides them,
        where they are not core dependencies.
    adapts : bool
        Decides its run length by convergence when ``draws`` is None (else it gets
        :data:`FIXED_DRAWS` draws after as many tuning steps).
    method : str
        The results' ``method`` attribute.
    burn_in : int or None
        Tuning steps when a call with ``draws`` leaves ``tune`` to the route: at most this many
        (None: as many as draws). Gibbs needs a burn-in from its start, not an adaptation.
    """

    name: str
    summary: str
    run: Callable
    vectorises: bool
    warm: str
    needs: tuple = ()
    extra: str | None = None
    adapts: bool = False
    method: str = "nuts"
    burn_in: int | None = None

    def require(self):
        """Raise ``ValueError`` naming the install command when a package the route needs is missing."""
        for package in self.needs:
            try:
                importlib.import_module(package)
            except ImportError:
                how = f"'gmm-suite[{self.extra}]'" if self.extra else package
                raise ValueError(f"sampler={self.name!r} needs the {package} package, which "
                                 f"cannot be imported here: pip install {how}.") from None

    def warm_up(self):
        """Import what :attr:`run` needs (a helper process does it while its parent works)."""
        importlib.import_module(self.warm)


def _gibbs(inputs, starts, settings):
    from models.pymc import gibbs

    return gibbs.run(inputs, starts, settings)


def _blackjax(inputs, starts, settings):
    from models.pymc import nuts

    return nuts.run_jax(inputs, starts, settings, "blackjax")


def _numpyro(inputs, starts, settings):
    from models.pymc import nuts

    return nuts.run_jax(inputs, starts, settings, "numpyro")


def _pymc_numba(inputs, starts, settings):
    from models.pymc import nuts

    return nuts.run_pymc(inputs, starts, settings, "NUMBA")


def _pymc_c(inputs, starts, settings):
    from models.pymc import nuts

    return nuts.run_pymc(inputs, starts, settings, "CVM")


def _nutpie_numba(inputs, starts, settings):
    from models.pymc import nuts

    return nuts.run_nutpie(inputs, starts, settings, {"backend": "numba"})


def _nutpie_jax(inputs, starts, settings):
    from models.pymc import nuts

    return nuts.run_nutpie(inputs, starts, settings, {"backend": "jax", "gradient_backend": "jax"})


ROUTES = {r.name: r for r in (
    Route("gibbs", "conjugate Gibbs sampling of the explicit-z model in NumPy, all chains at once; "
          "runs until the label-invariant quantities converge (or --max-seconds)",
          _gibbs, vectorises=True, warm="models.pymc.gibbs", adapts=True, method="gibbs",
          burn_in=500),
    Route("blackjax", "blackjax's NUTS on JAX, all chains in one vectorised program",
          _blackjax, vectorises=True, warm="models.pymc.jax_routes",
          needs=("pymc", "jax", "blackjax")),
    Route("numpyro", "numpyro's NUTS on JAX, all chains in one vectorised program",
          _numpyro, vectorises=True, warm="models.pymc.jax_routes",
          needs=("pymc", "jax", "numpyro")),
    Route("numba", "PyMC's NUTS on PyTensor's numba backend, a process per chain",
          _pymc_numba, vectorises=False, warm="pymc", needs=("pymc",)),
    Route("c", "PyMC's NUTS on PyTensor's C backend, a process per chain",
          _pymc_c, vectorises=False, warm="pymc", needs=("pymc",)),
    Route("nutpie", "nutpie's NUTS on PyTensor's numba backend",
          _nutpie_numba, vectorises=False, warm="pymc", needs=("pymc", "nutpie"), extra="nutpie"),
    Route("nutpie-jax", "nutpie's NUTS with its JAX backend",
          _nutpie_jax, vectorises=False, warm="pymc", needs=("pymc", "jax", "nutpie"),
          extra="nutpie"),
)}

#: the route a call gets unless it names one: the most ESS per second (benchmarks/gibbs_speed.py,
#: benchmarks/pymc_sampling.py; docs/performance.md)
DEFAULT_SAMPLER = "gibbs"

#: draws and tuning steps per chain of a route that does not decide its run length, when a call
#: leaves ``draws`` (``tune``) to the route
FIXED_DRAWS = 1000


def route(name):
    """The route called ``name``, else a ``ValueError`` listing them.

    Parameters
    ----------
    name : str

    Returns
    -------
    Route
    """
    try:
        return ROUTES[name]
    except (KeyError, TypeError):
        raise ValueError(f"sampler={name!r} is not supported; use one of {tuple(ROUTES)}.") from None

"""The generative story in NumPy: ``z ~ Categorical(pi)``, then ``x | z = k ~ N(mu_k, Sigma_k)``."""

from __future__ import annotations

import numpy as np

from models.params import GMMParams


def simulate(params, n, rng=None):
    """Draw ``n`` observations from the mixture, with their component labels.

    Each draw is independent: ``z_n ~ Categorical(pi)``, then ``x_n | z_n = k ~ N(mu_k, Sigma_k)``,
    so the rows come out in random order, not grouped by component.

    Parameters
    ----------
    params : GMMParams
    n : int
        Number of observations, ``n >= 1``.
    rng : numpy.random.Generator or int or None

    Returns
    -------
    X : ndarray of shape (n, d)
    z : ndarray of int, shape (n,)
    """
    if not isinstance(params, GMMParams):
        raise TypeError(f"params must be a models.GMMParams, got {type(params).__name__}.")
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    rng = np.random.default_rng(rng)
    z = rng.choice(params.K, size=int(n), p=params.pi)
    return draw_given_z(params, z, rng), z


def draw_given_z(params, z, rng):
    """Draw ``x_n | z_n = k ~ N(mu_k, Sigma_k)`` for given labels.

    Parameters
    ----------
    params : GMMParams
    z : ndarray of int, shape (n,)
    rng : numpy.random.Generator or numpy.random.RandomState
        Anything with ``standard_normal``.

    Returns
    -------
    ndarray of shape (n, d)
    """
    eps = rng.standard_normal((len(z), params.d))
    return params.mu[z] + np.einsum("nij,nj->ni", params.cholesky[z], eps)

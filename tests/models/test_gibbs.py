"""The Gibbs route: its full conditionals against the PyMC model, its draws, its run length."""

import numpy as np
import pytest
from scipy import stats

from models import GMMParams, Prior, family, load_faithful, sample_params
from models import pymc as gmm_pymc
from models.features import design_moments
from models.pymc import gibbs
from models.pymc.inputs import check_inputs
from tests.shared.helpers import EVAL, PYMC_TYPES


def _onehot_moments(cj, z):
    """The summed feature rows of allocations ``z`` (C, N), as the sweep computes them."""
    C, K = z.shape[0], cj.K
    GZ = 0.0
    for r, Zb in zip(cj.starts, cj.Z):
        n = Zb.shape[1]
        G = (z[:, None, r:r + n] == np.arange(K)[None, :, None]).astype(float).reshape(C * K, n)
        GZ = GZ + design_moments(G, Zb, cj.storage, w=False)[0]
    return GZ


def _log_block(fam, cond, k, mu, Sigma, shift):
    """log q of one block under the sampler's conditional: component k's (mu_k, Sigma_k), or
    (Sigma, every mu) when the covariance is shared (k = None). Densities are scipy's."""
    storage = fam.storage
    K, d = mu.shape
    comps = range(K) if k is None else [k]
    e = 0 if k is None else k                     # the covariance entry of the block
    full = fam.to_full(Sigma, K, d)
    lp = sum(stats.multivariate_normal.logpdf(mu[j], cond.m[0, j] + shift,
                                              full[j] / cond.kappa[0, j]) for j in comps)
    if storage.matrix:
        return lp + stats.invwishart.logpdf(full[e], df=cond.shape[0, e], scale=cond.scale[0, e])
    var = np.diagonal(full[e])
    if cond.scale.ndim == 2:                      # one variance per entry
        return lp + stats.invgamma.logpdf(var[0], cond.shape[0, e], scale=cond.scale[0, e])
    return lp + stats.invgamma.logpdf(var, cond.shape[0, e], scale=cond.scale[0, e]).sum()


def _replace(p, q, k):
    """``p`` with component k's mean and covariance from ``q`` (k = None: every mean and the
    shared covariance)."""
    if k is None:
        return GMMParams(p.pi, q.mu, q.Sigma, p.covariance_type)
    mu, Sigma = p.mu.copy(), np.array(p.Sigma, copy=True)
    mu[k] = q.mu[k]
    Sigma[k] = q.Sigma[k]
    return GMMParams(p.pi, mu, Sigma, p.covariance_type)


@pytest.mark.parametrize("covariance_type", PYMC_TYPES)
def test_every_full_conditional_is_the_models_conditional(covariance_type):
    # For two values of one block, the rest fixed, the difference of the conditional's log
    # density (the parameters the sampler draws from) equals the difference of the PyMC
    # explicit-z model's logp (jacobian=False, so in Sigma-space).
    rng = np.random.default_rng(5)
    X = load_faithful()[0][::9]                               # 31 rows
    K, N = 3, X.shape[0]
    fam = family(covariance_type)
    prior = Prior(alpha=[1.5, 2.0, 0.7], m0=X.mean(0) + [0.3, -2.0], kappa0=0.2, nu0=4.5,
                  Psi0=np.cov(X.T) / 3 + np.diag([0.05, 2.0]))
    model = gmm_pymc.build_model(X, K, covariance_type, prior, latent="explicit")
    logp = model.compile_logp(jacobian=False, **EVAL)
    to_values = gmm_pymc.value_point_function(model)
    inputs = check_inputs(X, K, covariance_type, prior, allow_flat=False)
    cj = gibbs.conjugate(inputs, 1)

    def model_lp(p, z):
        return float(logp(to_values(p, z)))

    p1, p2 = (sample_params(prior, K, 2, covariance_type, rng) for _ in range(2))
    z1 = rng.integers(0, K, N)
    z1[z1 == 2] = 1                                             # component 2 is empty
    z2 = rng.integers(0, K, N)
    checked = 0
    # z | pi, mu, Sigma: the sampler's responsibilities, as the sweep computes them
    chains = gibbs.Chains(cj, [p1], rng)
    log_gamma = np.empty((N, K))
    for r, Zb, E, _ in chains._blocks(chains._kernel()):
        log_gamma[r:r + Zb.shape[1]] = np.log(E[0] / E[0].sum(0)).T
    dq = log_gamma[np.arange(N), z1].sum() - log_gamma[np.arange(N), z2].sum()
    expected = model_lp(p1, z1) - model_lp(p1, z2)
    assert dq == pytest.approx(expected, abs=1e-8 * (1 + abs(expected)))
    checked += 1
    # pi | z: Dirichlet(alpha + N_k)
    cond = gibbs.conditionals(cj, _onehot_moments(cj, z1[None]))
    np.testing.assert_array_equal(cond.counts[0], np.bincount(z1, minlength=K))
    q1 = GMMParams(p2.pi, p1.mu, p1.Sigma, covariance_type)
    dq = (stats.dirichlet.logpdf(p1.pi, cond.alpha[0]) - stats.dirichlet.logpdf(q1.pi, cond.alpha[0]))
    expected = model_lp(p1, z1) - model_lp(q1, z1)
    assert dq == pytest.approx(expected, abs=1e-8 * (1 + abs(expected)))
    checked += 1
    # (mu_k, Sigma_k) | z, or (Sigma, mu) | z when shared: occupied and empty components
    shift = cj.shift
    for k in ([None] if fam.shared_prior else range(K)):
        q = _replace(p1, p2, k)
        dq = _log_block(fam, cond, k, p1.mu, p1.Sigma, shift) - \
            _log_block(fam, cond, k, q.mu, q.Sigma, shift)
        expected = model_lp(p1, z1) - model_lp(q, z1)
        assert dq == pytest.approx(expected, abs=1e-8 * (1 + abs(expected))), k
        checked += 1
    assert checked >= 3

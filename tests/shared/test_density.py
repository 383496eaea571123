"""One density, two implementations: the PyMC model's logp equals the NumPy spec's."""

import numpy as np
import pytest

from models import Prior, load_faithful, sample_params, simulate
from models import pymc as gmm_pymc
from models.pymc.distributions import LOG_GAUSS_OBSERVED, UNROLL_MAX
from models.storage import FULL, TIED
from tests.shared.helpers import EVAL, PYMC_TYPES


@pytest.mark.parametrize("covariance_type", PYMC_TYPES)
def test_marginal_logp_equals_numpy_density(covariance_type):
    X, _ = load_faithful()
    X = X[::4]
    K = 3
    prior = Prior.default(X, K, covariance_type)
    model = gmm_pymc.build_model(X, K, covariance_type, prior, latent="marginal")
    logp = model.compile_logp(jacobian=False, **EVAL)
    to_values = gmm_pymc.value_point_function(model)
    rng = np.random.default_rng(0)
    for _ in range(50):
        params = sample_params(prior, K, 2, covariance_type, rng)
        expected = params.log_pdf(X).sum() + prior.log_density(params)
        assert float(logp(to_values(params))) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("covariance_type", PYMC_TYPES)
def test_explicit_logp_equals_numpy_joint(covariance_type):
    rng = np.random.default_rng(1)
    X, _ = load_faithful()
    K = 2
    prior = Prior.default(X, K, covariance_type)
    model = gmm_pymc.build_model(X[:30], K, covariance_type, prior, latent="explicit")
    logp = model.compile_logp(jacobian=False, **EVAL)
    to_values = gmm_pymc.value_point_function(model)
    for _ in range(10):
        params = sample_params(prior, K, 2, covariance_type, rng)
        _, z = simulate(params, 30, rng)
        joint = params.log_joint(X[:30])[np.arange(30), z].sum()
        expected = joint + prior.log_density(params)
        assert float(logp(to_values(params, z))) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("d", [3, UNROLL_MAX + 1])
@pytest.mark.parametrize("covariance_type", PYMC_TYPES)
def test_marginal_logp_with_missing_cells_equals_numpy_observed_density(covariance_type, d):
    # NaN cells: the model's density of each row is that of its observed cells, as the spec's
    # (models.missing, per pattern); rows miss one or more features; d = 3 takes the unrolled
    # factorisation of the full and tied layouts, d = UNROLL_MAX + 1 the batched one
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, d)) * np.linspace(0.5, 2.0, d) + np.linspace(-1.0, 1.0, d)
    X[rng.random(X.shape) < 0.3] = np.nan
    X[np.isnan(X).all(axis=1), 1] = 0.5
    K = 2
    prior = Prior.default(X, K, covariance_type)
    model = gmm_pymc.build_model(X, K, covariance_type, prior, latent="marginal")
    logp = model.compile_logp(jacobian=False, **EVAL)
    to_values = gmm_pymc.value_point_function(model)
    for _ in range(10):
        params = sample_params(prior, K, d, covariance_type, rng)
        expected = params.log_pdf(X).sum() + prior.log_density(params)
        assert float(logp(to_values(params))) == pytest.approx(expected, rel=1e-8)
    with pytest.raises(ValueError, match="latent='explicit' takes complete data"):
        gmm_pymc.build_model(X, K, covariance_type, prior, latent="explicit")


def _parameters_and_symbols(rng, K, d, storage):
    """Random ``mu`` (K, d) and positive-definite ``Sigma`` in ``storage``'s layout (tied: one),
    and the symbolic data, mean and covariance a density of that layout takes."""
    import pytensor.tensor as pt

    A = rng.normal(size=(K, d, d))
    Sigma = A @ np.swapaxes(A, 1, 2) + np.eye(d)
    Sigma = Sigma[0] if storage is TIED else Sigma
    mu = rng.normal(size=(K, d))
    symbols = (pt.matrix("x"), pt.tensor("mu", shape=(None, d)),
               pt.tensor("Sigma", shape=(d, d) if storage is TIED else (None, d, d)))
    return mu, Sigma, symbols


@pytest.mark.parametrize("storage", [FULL, TIED], ids=["full", "tied"])
@pytest.mark.parametrize("d", [1, 2, 5, UNROLL_MAX])
def test_the_unrolled_observed_density_and_its_gradient_equal_the_batched_factorisation(
        storage, d, monkeypatch):
    # what NUTS differentiates: the observed-cell log densities (N, K) and their gradients in
    # mu and Sigma, unrolled entry by entry against one batched Cholesky per row and component
    import pytensor

    from models.pymc import distributions

    rng = np.random.default_rng(d)
    K, N = 3, 40
    X = rng.normal(size=(N, d)) * 3.0
    absent = rng.random((N, d)) < 0.3
    absent[absent.all(axis=1), 0] = False
    X[absent] = np.inf                                 # as pm.Data holds a missing cell
    mu, Sigma, (x, m, S) = _parameters_and_symbols(rng, K, d, storage)
    log_gauss = LOG_GAUSS_OBSERVED[storage][0]
    results = []
    for unroll_max in (UNROLL_MAX, 0):
        monkeypatch.setattr(distributions, "UNROLL_MAX", unroll_max)
        value = log_gauss(x, m, S)
        weighted = (value * np.arange(1.0, K + 1.0)).sum()
        fn = pytensor.function([x, m, S], [value, *pytensor.grad(weighted, [m, S])], **EVAL)
        results.append(fn(X, mu, Sigma))
    for unrolled, batched in zip(*results, strict=True):
        np.testing.assert_allclose(unrolled, batched, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("storage", [FULL, TIED], ids=["full", "tied"])
@pytest.mark.parametrize("d", [1, 2, UNROLL_MAX])
def test_the_written_out_inverse_and_its_gradient_equal_the_triangular_solve(storage, d,
                                                                             monkeypatch):
    # the complete-data density and the inverse-Wishart prior with L^-1 written out entry by
    # entry, against one batched triangular solve: values and gradients in mu and Sigma, and
    # both against scipy's densities
    import pytensor
    from scipy import stats

    from models.pymc import distributions

    rng = np.random.default_rng(10 + d)
    K, N, nu, Psi = 3, 40, d + 3.0, np.eye(d) * 2.0 + 0.3
    X = rng.normal(size=(N, d)) * 3.0
    mu, Sigma, (x, m, S) = _parameters_and_symbols(rng, K, d, storage)
    results = []
    for unroll_max in (UNROLL_MAX, 0):
        monkeypatch.setattr(distributions, "UNROLL_MAX", unroll_max)
        density = distributions.LOG_GAUSS[storage][0](x, m, S)                   # (N, K)
        prior = distributions._invwishart_logp_for(nu, Psi)(S)                  # (K,) or ()
        weighted = (density * np.arange(1.0, K + 1.0)).sum() + 0.7 * prior.sum()
        fn = pytensor.function([x, m, S], [density, prior, *pytensor.grad(weighted, [m, S])],
                               **EVAL)
        results.append(fn(X, mu, Sigma))
    for written_out, solved in zip(*results, strict=True):
        np.testing.assert_allclose(written_out, solved, rtol=1e-11, atol=1e-11)
    full = np.broadcast_to(Sigma, (K, d, d))
    expected = np.stack([stats.multivariate_normal(mu[k], full[k]).logpdf(X).reshape(N)
                         for k in range(K)], axis=1)
    np.testing.assert_allclose(results[0][0], expected, rtol=1e-10)
    iw = [stats.invwishart(nu, Psi).logpdf(s) for s in np.reshape(Sigma, (-1, d, d))]
    np.testing.assert_allclose(np.reshape(results[0][1], -1), iw, rtol=1e-10)


@pytest.mark.parametrize("d", [2, UNROLL_MAX, UNROLL_MAX + 2])
def test_the_sampled_log_density_factors_no_covariance(d):
    # Sigma is sampled through its Cholesky factor (CholeskyLogDiag), tagged lower-triangular:
    # the log density the JAX routes differentiate (Sigma's prior, the mean's prior, the
    # likelihood) factors no covariance, and up to UNROLL_MAX features inverts no factor by a
    # solve but for PyMC's MvNormal, the mean's prior
    from pytensor.compile.mode import get_mode
    from pytensor.graph import FunctionGraph
    from pytensor.tensor.linalg import Cholesky, SolveTriangular

    rng = np.random.default_rng(d)
    X = rng.normal(size=(30, d))
    model = gmm_pymc.build_model(X, 2, "full", Prior.default(X, 2, "full"), latent="marginal")

    def ops(logp):
        graph = FunctionGraph(outputs=[logp])
        get_mode("JAX").optimizer.rewrite(graph)        # the JAX routes' rewrites, uncompiled
        return [getattr(node.op, "core_op", node.op) for node in graph.apply_nodes]

    def solves(found):
        return sum(isinstance(op, SolveTriangular) for op in found)

    every = ops(model.logp())
    assert not any(isinstance(op, Cholesky) for op in every), every
    mean_prior = solves(ops(model.logp(vars=[model["mu"]])))
    if d <= UNROLL_MAX:
        assert solves(every) == mean_prior == 1
    else:                       # beyond, L^-1 by a solve in Sigma's prior and the likelihood
        assert solves(every) > mean_prior == 1

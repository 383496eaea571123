"""EM's estimates are modes of the PyMC model's posterior (the MLE under the flat prior, the MAP):
PyMC's optimiser, started near one, climbs to it."""

import numpy as np
import pytest

import em
from models import GMMParams, Prior, load_faithful, simulate
from reports import joint
from tests.shared.helpers import PYMC_TYPES, assert_params_close, match


def _simulated_d3():
    truth = GMMParams([0.3, 0.3, 0.4], [[0, 0, 0], [4, 0, 1], [0, 4, -1]],
                      np.stack([np.eye(3), 0.5 * np.eye(3) + 0.2, np.diag([1.0, 2.0, 0.5])]))
    return simulate(truth, 400, np.random.default_rng(3))[0]


DATASETS = {"faithful": lambda: load_faithful()[0], "simulated-d3": _simulated_d3}
CASES = [("faithful", 2), ("faithful", 3), ("simulated-d3", 3)]


def _perturbed(params, rng):
    """A start away from the optimum, so find_map has real work to do."""
    pi = params.pi * np.exp(0.1 * rng.standard_normal(params.K))
    sd = np.sqrt(np.diagonal(params.to_full().Sigma, axis1=1, axis2=2))
    mu = params.mu + 0.2 * sd * rng.standard_normal(params.mu.shape)
    return GMMParams(pi / pi.sum(), mu, np.asarray(params.Sigma) * 1.2, params.covariance_type)


@pytest.mark.parametrize("covariance_type", PYMC_TYPES)
@pytest.mark.parametrize(("data", "K"), CASES)
@pytest.mark.parametrize("kind", ["mle", "map"])
def test_em_equals_find_map(kind, data, K, covariance_type):
    X = DATASETS[data]()
    prior = Prior.default(X, K, covariance_type) if kind == "map" else None
    res = em.fit(X, K, covariance_type, prior=prior, tol=1e-15, max_iter=100_000, random_state=0)
    start = _perturbed(res.params, np.random.default_rng(0))
    mode = joint.find_map(X, K, covariance_type,
                          prior=Prior.flat() if prior is None else prior, init=start)
    mode = match(mode, res.params)
    assert_params_close(mode, res.params, rtol=1e-5)
    assert mode.log_pdf(X).sum() == pytest.approx(res.log_likelihood, rel=1e-8)
    if prior is not None:
        lp = mode.log_pdf(X).sum() + prior.log_density(mode)
        assert lp == pytest.approx(res.log_posterior, rel=1e-8)


@pytest.mark.slow(cpu_s=15)
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_em_map_with_missing_cells_equals_find_map(covariance_type):
    # 20 % of the cells deleted completely at random: EM's MAP (the observed-data posterior's
    # mode, em.missing) equals PyMC's mode of the model that takes each row's observed cells
    # (a matrix and a variance layout; every layout's observed-cell density equals the spec's in
    # tests/shared/test_density.py)
    rng = np.random.default_rng(30)
    X = _simulated_d3()
    X[rng.random(X.shape) < 0.2] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    prior = Prior.default(X, 3, covariance_type)
    res = em.fit(X, 3, covariance_type, prior=prior, tol=1e-15, max_iter=100_000, random_state=0)
    mode = joint.find_map(X, 3, covariance_type, prior=prior,
                          init=_perturbed(res.params, np.random.default_rng(0)))
    mode = match(mode, res.params)
    assert_params_close(mode, res.params, rtol=1e-5)
    lp = mode.log_pdf(X).sum() + prior.log_density(mode)
    assert lp == pytest.approx(res.log_posterior, rel=1e-8)


def test_find_map_builds_no_c_code(monkeypatch):
    # find_map evaluates the log density with PyTensor's Python linker: nothing for gcc, whose
    # 27 modules (logsumexp's inner function and its gradient, linked with C thunks) took 15 of
    # a fresh machine's 17 s
    from pytensor.link.c.basic import CLinker

    built = []
    factory = CLinker.cthunk_factory

    def counted(self, *args, **kwargs):
        built.append(self)
        return factory(self, *args, **kwargs)

    monkeypatch.setattr(CLinker, "cthunk_factory", counted)
    X, _ = load_faithful()
    prior = Prior.default(X, 2)
    mode = joint.find_map(X, 2, prior=prior)
    assert not built
    assert_params_close(mode, em.fit(X, 2, prior=prior).params, rtol=1e-5)

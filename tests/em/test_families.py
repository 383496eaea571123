"""Every family's M-step, ML and MAP, against the objective it maximises.

The reference is independent of :mod:`models.families`: the complete-data objective is evaluated
with ``GMMParams.log_joint`` and ``Prior.log_density``, and perturbed along the directions the
family's letters leave free (a volume, a shape, a rotation of an orientation), equal ones moved
together. At the M-step's answer the finite-difference gradient along each direction vanishes
and no step lowers the objective; over EM iterations the objective never decreases.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import expm

import em
from em.mstep import m_step
from models import MCLUST_NAMES, GMMParams, Prior, family, simulate
from tests.conftest import random_params

MAP_NAMES = [f for f in MCLUST_NAMES if family(f).has_map]
#: every family by ML, and the 10 with a conjugate prior by MAP too
CASES = [(name, False) for name in MCLUST_NAMES] + [(name, True) for name in MAP_NAMES]


def _objective(X, gamma, p, prior):
    """-(sum_nk gamma_nk log N(x_n | mu_k, Sigma_k) + log p(mu, Sigma)): minimised by the M-step."""
    F = -(gamma * (p.log_joint(X) - np.log(p.pi))).sum()
    return F if prior is None else F - prior.log_density(p)


def _directions(fam, K, d, rng):
    """Functions (p, h) -> Sigma (K, d, d) moving the free parts of the decomposition by h."""
    def targets(letter):
        return [slice(None)] if letter == "E" else [slice(k, k + 1) for k in range(K)]

    moves = []
    for k in targets(fam.volume):
        moves.append(("volume", k, None))
    if fam.shape != "I" and d > 1:
        for k in targets(fam.shape):
            v = rng.normal(size=d)
            moves.append(("shape", k, v - v.mean()))
    if fam.orientation != "I" and d > 1:
        for k in targets(fam.orientation):
            S = rng.normal(size=(d, d))
            moves.append(("orientation", k, S - S.T))
    return moves


def _moved(p, move, h):
    scale, shape, D = (np.array(a, dtype=float) for a in p.decomposition())
    what, k, v = move
    if what == "volume":
        scale[k] *= np.exp(h)
    elif what == "shape":
        shape[k] *= np.exp(h * v)
    else:
        D[k] = expm(h * v) @ D[k]
    full = np.einsum("kij,kj,klj->kil", D, scale[:, None] * shape, D)
    return GMMParams(p.pi, p.mu, 0.5 * (full + np.swapaxes(full, 1, 2)), "VVV")


@pytest.mark.parametrize(("name", "use_prior"), CASES)
def test_m_step_is_a_stationary_minimum(name, use_prior):
    fam = family(name)
    rng = np.random.default_rng(hash(name) % 2**32)
    K, d = 3, 3
    X = simulate(random_params(rng, K, d, "VVV", spread=2.0), 90, rng)[0]
    gamma = rng.dirichlet(np.ones(K), size=90)
    prior = Prior.default(X, K, name) if use_prior else None
    p = m_step(X, gamma, name, prior=prior)
    full = GMMParams(p.pi, p.mu, p.to_full().Sigma, "VVV")
    prior_full = None if prior is None else _FullPrior(prior, fam)
    F0 = _objective(X, gamma, full, prior_full)
    for move in _directions(fam, K, d, rng):
        h = 1e-5
        grad = (_objective(X, gamma, _moved(p, move, h), prior_full)
                - _objective(X, gamma, _moved(p, move, -h), prior_full)) / (2 * h)
        assert abs(grad) < 1e-5 * abs(F0), (name, move[0], grad)
        for step in (1e-2, -1e-2):
            assert _objective(X, gamma, _moved(p, move, step), prior_full) >= F0 - 1e-9 * abs(F0)


class _FullPrior:
    """The family's prior density, evaluated on matrices the perturbation left in VVV storage."""

    def __init__(self, prior, fam):
        self.prior, self.fam = prior, fam

    def log_density(self, p):
        K, d = p.K, p.d
        Sigma = p.Sigma
        if self.fam.storage.name == "tied":
            Sigma = Sigma[0]
        elif self.fam.storage.name == "diag":
            Sigma = np.diagonal(Sigma, axis1=1, axis2=2)
        elif self.fam.storage.name == "spherical":
            Sigma = np.diagonal(Sigma, axis1=1, axis2=2)[:, 0]
        return self.prior.log_density(_Unchecked(p.pi, p.mu, Sigma, self.fam.name, K, d))


class _Unchecked(GMMParams):
    """GMMParams whose constraints are not checked (a perturbed point is off the family)."""

    def __init__(self, pi, mu, Sigma, name, K, d):
        object.__setattr__(self, "pi", pi)
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "Sigma", Sigma)
        object.__setattr__(self, "covariance_type", name)
        object.__setattr__(self, "family", family(name))
        full = family(name).to_full(Sigma, K, d)
        object.__setattr__(self, "_chol", np.linalg.cholesky(full))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(("name", "use_prior"), CASES)
def test_em_objective_never_decreases(name, use_prior):
    rng = np.random.default_rng(7)
    X = simulate(random_params(rng, 3, 3, "VVV", spread=1.5), 300, rng)[0]
    prior = Prior.default(X, 3, name) if use_prior else None
    for seed in range(3):
        res = em.fit(X, 3, name, prior=prior, init="random", n_init=1, random_state=seed,
                     max_iter=300)
        steps = np.diff(res.history)
        assert steps.min() >= -1e-9 * abs(res.history[-1]), (name, seed, steps.min())


@pytest.mark.parametrize("name", MCLUST_NAMES)
def test_ridge_keeps_the_constraints(name, rng):
    X = simulate(random_params(rng, 2, 3, "VVV"), 200, rng)[0]
    gamma = rng.dirichlet(np.ones(2), size=200)
    p = m_step(X, gamma, name, reg_covar=1e-3)       # GMMParams checks the family's constraints
    q = m_step(X, gamma, name)
    if name in ("VVV", "VVI", "EEE", "VII"):           # scikit-learn's Sigma + reg_covar I
        np.testing.assert_allclose(p.to_full().Sigma, q.to_full().Sigma + 1e-3 * np.eye(3),
                                   rtol=1e-10)


def _mclust_mstep_rows():
    path = Path(__file__).resolve().parents[1] / "data/mclust/mstep_map.csv"
    return pd.read_csv(path).groupby(["data", "G", "model"], sort=False)


@pytest.mark.parametrize("name", MAP_NAMES)
def test_map_m_step_is_mclusts(name):
    # mclust 6.0.0's first M-step of me(model, X, z, prior = priorControl()) (mvn at G = 1) for
    # fixed responsibilities
    # (tests/data/mclust/make_mstep.R writes mstep_map.csv): faithful, iris, sim3; G = 1, 2, 3, 5;
    # to 1e-7 of the largest entry: mclust's eigen-decompositions (EEV) agree to about 3e-8
    root = Path(__file__).resolve().parents[2]
    paths = {"faithful": root / "models/data/faithful.csv",
             "iris": root / "tests/data/mclust/iris.csv",
             "sim3": root / "tests/data/mclust/sim3.csv"}
    checked = 0
    for (data, G, model), rows in _mclust_mstep_rows():
        if model != name:
            continue
        X = pd.read_csv(paths[data]).to_numpy(dtype=float)
        n, d = X.shape
        i, k = np.meshgrid(np.arange(1, n + 1), np.arange(1, G + 1), indexing="ij")
        gamma = 1 + 0.9 * np.sin(1.3 * i + 2.1 * k)
        gamma /= gamma.sum(axis=1, keepdims=True)
        expected = np.stack([np.array(s.split(), dtype=float).reshape(d, d, order="F")
                             for s in rows["sigma"]])
        Sigma = m_step(X, gamma, name, prior=Prior.default(X, G, name, mclust=True))
        Sigma = Sigma.to_full().Sigma
        np.testing.assert_allclose(Sigma, expected, rtol=1e-6,
                                   atol=1e-7 * np.abs(expected).max(), err_msg=f"{data} G={G}")
        checked += 1
    assert checked == 12


@pytest.mark.parametrize("name", ["EII", "EEI"])
def test_mclust_option_changes_only_mclusts_departures(name, rng):
    # by default EII and EEI are the modes of the proper prior; mclust's EM leaves out the scale
    # (EII) or the mean prior's determinant (EEI): only those two differ, by those terms
    X = simulate(random_params(rng, 3, 2, "VVV"), 120, rng)[0]
    gamma = rng.dirichlet(np.ones(3), size=120)
    exact = m_step(X, gamma, name, prior=Prior.default(X, 3, name)).Sigma
    ours = m_step(X, gamma, name, prior=Prior.default(X, 3, name, mclust=True)).Sigma
    N, K, d, nu0 = 120, 3, 2, 4.0
    if name == "EII":
        s2 = np.trace(Prior.default(X, 3, name).Psi0) / d
        np.testing.assert_allclose(exact - ours, s2 / (nu0 + 2 + (N + K) * d), rtol=1e-10)
    else:
        np.testing.assert_allclose(exact / ours, (N + nu0 + 2) / (N + K + nu0 + 2), rtol=1e-10)
    for other in ("VII", "VVI", "EEE", "VVV", "VEI", "EVI", "EEV", "VEV"):
        np.testing.assert_array_equal(
            m_step(X, gamma, other, prior=Prior.default(X, 3, other)).Sigma,
            m_step(X, gamma, other, prior=Prior.default(X, 3, other, mclust=True)).Sigma)

"""Sampling reproduces the generative story: prior predictive, SBC, posterior, predictive."""

import os
from pathlib import Path

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
from scipy import stats

import em
from models import GMMParams, Prior, load_faithful, sample_params, simulate
from models import pymc as gmm_pymc
from models.pymc.model import PRIOR_PREDICTIVE_COMPILE
from reports import joint
from tests.shared.helpers import PYMC_TYPES

ALPHA = 0.001
N_DRAWS = 4000


def _prior(d, kappa0=0.05):
    return Prior(alpha=[2.0, 2.0], m0=np.zeros(d), kappa0=kappa0, nu0=d + 3.0,
                 Psi0=np.eye(d) * 2.0 + 0.3)


def _simulator_draws(prior, covariance_type, n_obs, rng):
    pis, mus, sigmas, xs, zs = [], [], [], [], []
    for _ in range(N_DRAWS):
        p = sample_params(prior, 2, prior.d, covariance_type, rng)
        x, z = simulate(p, n_obs, rng)
        full = p.to_full()
        pis.append(p.pi)
        mus.append(p.mu)
        sigmas.append(np.diagonal(full.Sigma, axis1=1, axis2=2))
        xs.append(x[0])
        zs.append(z)
    return (np.array(pis), np.array(mus), np.log(np.array(sigmas)), np.array(xs),
            np.concatenate(zs))


def _pymc_draws(prior, covariance_type, n_obs, seed):
    X = np.zeros((n_obs, prior.d))
    model = gmm_pymc.build_model(X, 2, covariance_type, prior, latent="explicit")
    # compiled as models.pymc.add_prior_predictive compiles it
    pp = pm.sample_prior_predictive(draws=N_DRAWS, model=model, random_seed=seed,
                                    compile_kwargs=PRIOR_PREDICTIVE_COMPILE)
    pri, ppd = pp["prior"], pp["prior_predictive"]
    pi = pri["pi"].values[0]
    mu = pri["mu"].values[0]
    S = pri["Sigma"].values[0]
    K, d = 2, prior.d
    full = np.stack([GMMParams(np.full(K, 1 / K), np.zeros((K, d)), s, covariance_type)
                     .to_full().Sigma for s in S])
    x = ppd["x"].values[0][:, 0, :]
    return (pi, mu, np.log(np.diagonal(full, axis1=2, axis2=3)), x,
            pri["z"].values[0].ravel())


def _two_sample_pvalues(a, b):
    pvals = {}
    for name, u, v in zip(("pi", "mu", "log_Sigma_jj", "x"), a[:4], b[:4]):
        u2, v2 = u.reshape(N_DRAWS, -1), v.reshape(N_DRAWS, -1)
        for j in range(u2.shape[1]):
            pvals[f"{name}[{j}]"] = stats.ks_2samp(u2[:, j], v2[:, j]).pvalue
    table = np.array([np.bincount(a[4], minlength=2), np.bincount(b[4], minlength=2)])
    pvals["z counts"] = stats.chi2_contingency(table).pvalue
    return pvals


@pytest.mark.parametrize("covariance_type", PYMC_TYPES)
def test_prior_predictive_matches_simulator(covariance_type):
    prior = _prior(2)
    ours = _pymc_draws(prior, covariance_type, n_obs=5, seed=1)
    sim = _simulator_draws(prior, covariance_type, 5, np.random.default_rng(2))
    pvals = _two_sample_pvalues(ours, sim)
    assert min(pvals.values()) > ALPHA, pvals
    # power: a simulator with another kappa0 is detected
    wrong = _simulator_draws(_prior(2, kappa0=0.5), covariance_type, 5, np.random.default_rng(3))
    pvals_wrong = _two_sample_pvalues(ours, wrong)
    assert min(pvals_wrong[k] for k in pvals_wrong if k.startswith("mu")) < ALPHA


# --- simulation-based calibration ------------------------------------------------------------
# All replicates' posteriors are sampled in one vectorised program (models.pymc.sample_batch), so
# the replicates cost little; their number is set by the power against the two mutations below.
SBC_REPLICATES = int(os.environ.get("GMM_SBC_REPLICATES", "400"))
SBC_DRAWS = 300
SBC_THIN = 3
SBC_BINS = 10


def _order(mu):
    """Label rule applied identically to draws and to the truth: sort by mu[:, 0]."""
    return np.argsort(mu[..., 0], axis=-1)


def _scalars(pi, mu, Sigma):
    out = {"pi[0]": pi[..., 0]}
    for k in range(mu.shape[-2]):
        for j in range(mu.shape[-1]):
            out[f"mu[{k},{j}]"] = mu[..., k, j]
            out[f"Sigma[{k},{j},{j}]"] = Sigma[..., k, j, j]
        if mu.shape[-1] > 1:
            out[f"Sigma[{k},0,1]"] = Sigma[..., k, 0, 1]
    return out


def sbc_ranks(d, replicates, seed, sampling_prior=None, missing_rate=0.0):
    """Ranks of the truths among the posterior draws; truths from ``_prior(d)``.

    ``sampling_prior`` replaces the prior the posterior is sampled under (a mutation);
    ``missing_rate`` deletes that share of the cells completely at random (every row keeps one).
    """
    rng = np.random.default_rng(seed)
    prior = _prior(d)
    truths, Xs, inits = [], [], []
    for _ in range(replicates):
        truth = sample_params(prior, 2, d, "full", rng)
        X, _ = simulate(truth, 40, rng)
        if missing_rate:
            holes = rng.random(X.shape) < missing_rate
            holes[holes.all(axis=1), rng.integers(d)] = False
            X[holes] = np.nan
        truths.append(truth)
        Xs.append(X)
        inits.append(joint.em_start(X, 2, "full", prior))
    post = gmm_pymc.sample_batch(np.stack(Xs), 2, "full", sampling_prior or prior, inits,
                                 draws=SBC_DRAWS, tune=300, chains=1,
                                 random_seed=int(rng.integers(2**31 - 1)))
    ranks = {}
    for r, truth in enumerate(truths):
        pi, mu, S = (post[v].values[r, 0, ::SBC_THIN] for v in ("pi", "mu", "Sigma"))
        idx = _order(mu)
        take = np.arange(len(pi))[:, None]
        pi, mu, S = pi[take, idx], mu[take, idx], S[take, idx]
        t_idx = _order(truth.mu)
        true = _scalars(truth.pi[t_idx], truth.mu[t_idx], truth.Sigma[t_idx])
        draws = _scalars(pi, mu, S)
        for name, value in true.items():
            ranks.setdefault(name, []).append(int((draws[name] < value).sum()))
    return {k: np.array(v) for k, v in ranks.items()}, SBC_DRAWS // SBC_THIN


def sbc_pvalues(ranks, L):
    """Chi-square p-value of each scalar's rank histogram against the uniform."""
    return {name: stats.chisquare(np.histogram(r, bins=SBC_BINS, range=(0, L + 1))[0]).pvalue
            for name, r in ranks.items()}


def save_rank_histograms(ranks, L, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(ranks)
    fig, axes = plt.subplots(1, len(names), figsize=(2.2 * len(names), 2.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        ax.hist(ranks[name], bins=SBC_BINS, range=(0, L + 1), color="C0", edgecolor="white")
        ax.axhline(len(ranks[name]) / SBC_BINS, color="k", lw=1)
        ax.set_title(name, fontsize=8)
        ax.set_yticks([])
    fig.suptitle("SBC rank histograms (flat = calibrated)", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


@pytest.mark.slow(cpu_s=75)
@pytest.mark.parametrize("d", [1, 2])
def test_simulation_based_calibration(d):
    # d = 1 (overlapping components on a line, long trajectories) at half the replicates: the
    # power checks below run at d = 2
    ranks, L = sbc_ranks(d, SBC_REPLICATES if d == 2 else SBC_REPLICATES // 2, seed=100 + d)
    save_rank_histograms(ranks, L, Path("reports/out/sbc") / f"rank_histograms_d{d}.png")
    pvals = sbc_pvalues(ranks, L)
    assert min(pvals.values()) > ALPHA, pvals


@pytest.mark.slow(cpu_s=80)
def test_simulation_based_calibration_with_cells_missing_completely_at_random():
    # a fifth of the cells deleted at random (MCAR, so ignorable): the posterior of the model
    # that takes each row's observed cells is still calibrated
    ranks, L = sbc_ranks(2, SBC_REPLICATES // 4, seed=130, missing_rate=0.2)
    save_rank_histograms(ranks, L, Path("reports/out/sbc") / "rank_histograms_missing_d2.png")
    pvals = sbc_pvalues(ranks, L)
    assert min(pvals.values()) > ALPHA, pvals


@pytest.mark.slow
def test_sbc_detects_a_changed_kappa0():
    # power: the posterior sampled under kappa0 = 0.5 while the truths come from kappa0 = 0.05
    # (the prior predictive test's mutation) is flagged at the same ALPHA
    # (p about 1e-66 at 400 replicates; a quarter of them is plenty)
    ranks, L = sbc_ranks(2, SBC_REPLICATES // 4, seed=102,
                         sampling_prior=_prior(2, kappa0=0.5))
    assert min(sbc_pvalues(ranks, L).values()) < ALPHA


@pytest.mark.slow(cpu_s=75)
def test_sbc_detects_a_wrong_jacobian_power(monkeypatch):
    # power: the Cholesky transform's log-Jacobian with every power one too small, i.e. the
    # prior on Sigma silently multiplied by prod_i L_ii^-1 = |Sigma|^(-1/2) (p about 3e-5 at
    # 400 replicates; the 100 of the sequential SBC this replaced would not see it)
    def log_jac_det(self, value, *inputs):
        log_diag = pt.as_tensor_variable(value)[..., self.diag_pos]
        return self.d * np.log(2.0) + (log_diag * (self.power - 1.0)).sum(axis=-1)

    monkeypatch.setattr(gmm_pymc.CholeskyLogDiag, "log_jac_det", log_jac_det)
    ranks, L = sbc_ranks(2, SBC_REPLICATES, seed=102, sampling_prior=_prior(2))
    assert min(sbc_pvalues(ranks, L).values()) < ALPHA


# --- posterior against EM --------------------------------------------------------------------
@pytest.mark.slow
def test_em_mle_inside_posterior_intervals_and_responsibilities_agree():
    truth = GMMParams([0.3, 0.7], [[0.0, 0.0], [3.0, 1.0]],
                      np.stack([np.eye(2), [[1.0, 0.4], [0.4, 0.8]]]))
    X, _ = simulate(truth, 5000, np.random.default_rng(7))
    mle = em.fit(X, 2, "full", tol=1e-14, max_iter=10_000)
    prior = Prior.default(X, 2, "full")
    dt = joint.sample(X, 2, "full", prior=prior, init=mle.params, draws=500, tune=500,
                         chains=2, random_seed=7)
    post = dt["posterior"]
    inside = []
    for name, est in (("pi", mle.params.pi), ("mu", mle.params.mu), ("Sigma", mle.params.Sigma)):
        draws = post[name].values.reshape(-1, *est.shape)
        lo, hi = np.quantile(draws, [0.025, 0.975], axis=0)
        inside.append(((est >= lo) & (est <= hi)).ravel())
    inside = np.concatenate(inside)
    assert inside.mean() >= 0.9, inside
    diff = np.abs(mle.gamma - dt["responsibilities"]["gamma"].values).mean()
    assert diff < 0.02


@pytest.mark.slow
def test_posterior_predictive_covers_observed_quantiles():
    X, _ = load_faithful()
    prior = Prior.default(X, 2, "full")
    dt = joint.sample(X, 2, "full", prior=prior, draws=500, tune=500, chains=2,
                         random_seed=3, posterior_predictive=True)
    rep = dt["posterior_predictive"]["x"].values[0]          # (draws, N, d)
    for q in (0.05, 0.5, 0.95):
        observed = np.quantile(X, q, axis=0)
        replicated = np.quantile(rep, q, axis=1)               # (draws, d)
        lo, hi = np.quantile(replicated, [0.03, 0.97], axis=0)
        assert np.all((observed >= lo) & (observed <= hi)), (q, observed, lo, hi)

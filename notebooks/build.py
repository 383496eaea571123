"""Write the notebooks from the cell sources below (outputs stripped, so diffs stay reviewable).

Run ``python notebooks/build.py`` after editing a cell here; the ``.ipynb`` files are the ones
users open and the tests execute.
"""

from pathlib import Path

import nbformat

HERE = Path(__file__).parent
SETUP = '''import os

# GMM_SUITE_FAST=1 (set by the tests) keeps every sample size small
FAST = os.environ.get("GMM_SUITE_FAST") == "1"
import warnings

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

warnings.filterwarnings("ignore", category=FutureWarning)
'''


def md(text):
    return nbformat.v4.new_markdown_cell(text.strip())


def code(text):
    return nbformat.v4.new_code_cell(text.strip())


NOTEBOOKS = {}

NOTEBOOKS["01_generative_story.ipynb"] = [
    md("""
# 1. The generative story, step by step

The lecture's model: draw a component `z ~ Categorical(pi)`, then `x | z = k ~ N(mu_k, Sigma_k)`.
We draw data that way, compute the responsibilities gamma(z_nk) by Bayes' rule, derive the
closed-form updates and run EM one iteration at a time.
"""),
    code(SETUP + '''
from scipy.special import logsumexp

import em
from models import GMMParams, simulate
'''),
    md("## Draw z, then x"),
    code('''
truth = GMMParams(pi=[0.5, 0.3, 0.2],
                  mu=[[0.0, 0.0], [4.0, 1.0], [1.0, 4.0]],
                  Sigma=[[[1.0, 0.3], [0.3, 0.8]], [[0.6, -0.2], [-0.2, 1.2]], [[0.5, 0.0], [0.0, 0.5]]])
N = 300 if FAST else 1500
X, z = simulate(truth, N, rng=0)
fig, ax = plt.subplots(figsize=(5, 4))
for k in range(truth.K):
    ax.scatter(*X[z == k].T, s=6, label=f"z = {k}")
ax.legend(); ax.set_title("Data coloured by the latent z");
'''),
    md("""
## Responsibilities by Bayes' rule

gamma(z_nk) = pi_k N(x_n | mu_k, Sigma_k) / sum_j pi_j N(x_n | mu_j, Sigma_j), computed in log
space from the model's `log_joint`, and checked against `em.e_step`.
"""),
    code('''
log_joint = truth.log_joint(X)                      # log pi_k + log N(x_n | mu_k, Sigma_k)
gamma_bayes = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
log_gamma, log_lik = em.e_step(X, truth)
gap_estep = np.abs(gamma_bayes - np.exp(log_gamma)).max()
print("max |Bayes' rule - em.e_step| =", gap_estep)
'''),
    md("""
## The closed-form updates

Setting the derivatives of the log-likelihood to zero gives (lecture, section 2.2)
N_k = sum_n gamma_nk, mu_k = (1/N_k) sum_n gamma_nk x_n,
Sigma_k = (1/N_k) sum_n gamma_nk (x_n - mu_k)(x_n - mu_k)^T and pi_k = N_k / N.
Written out here, and compared with `em.m_step`.
"""),
    code('''
def m_step_by_hand(X, gamma):
    N_k = gamma.sum(axis=0)
    mu = gamma.T @ X / N_k[:, None]
    Sigma = np.stack([(gamma[:, k, None] * (X - mu[k])).T @ (X - mu[k]) / N_k[k]
                      for k in range(gamma.shape[1])])
    return GMMParams(N_k / len(X), mu, Sigma)

by_hand = m_step_by_hand(X, gamma_bayes)
library = em.m_step(X, gamma_bayes, "full")
gap_mstep = max(np.abs(by_hand.mu - library.mu).max(), np.abs(by_hand.Sigma - library.Sigma).max(),
                np.abs(by_hand.pi - library.pi).max())
print("max |by hand - em.m_step| =", gap_mstep)
'''),
    md("## EM one iteration at a time, from a poor start"),
    code('''
from matplotlib.patches import Ellipse

params = GMMParams([1 / 3] * 3, [[-1.0, 3.0], [0.0, 2.5], [1.0, 3.0]], np.stack([np.eye(2) * 4] * 3))
snapshots, history = {}, []
for it in range(41):
    log_gamma, log_lik = em.e_step(X, params)
    history.append(log_lik.sum())
    if it in (0, 1, 3, 8, 20, 40):
        snapshots[it] = params
    params = m_step_by_hand(X, np.exp(log_gamma))

fig, axes = plt.subplots(1, 6, figsize=(16, 3), sharex=True, sharey=True)
for ax, (it, p) in zip(axes, snapshots.items()):
    ax.scatter(*X.T, s=3, color="0.7")
    for k in range(3):
        vals, vecs = np.linalg.eigh(p.Sigma[k])
        angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
        ax.add_patch(Ellipse(p.mu[k], *(4 * np.sqrt(vals[::-1])), angle=angle, fill=False, color=f"C{k}"))
    ax.set_title(f"iteration {it}")
plt.figure(figsize=(5, 3)); plt.plot(history); plt.xlabel("iteration"); plt.ylabel("log-likelihood");
'''),
    md("## What this notebook claims"),
    code('''
assert gap_estep < 1e-12, "Bayes' rule and em.e_step agree"
assert gap_mstep < 1e-10, "the hand-written updates equal em.m_step"
assert np.all(np.diff(history) > -1e-9 * np.abs(history[-1])), "EM never lowers the log-likelihood"
fit = em.fit(X, 3, random_state=0)
assert abs(history[-1] - fit.log_likelihood) / abs(fit.log_likelihood) < 1e-4, "reaches em.fit's optimum"
'''),
]

NOTEBOOKS["02_em_vs_posterior.ipynb"] = [
    md("""
# 2. Old Faithful: EM against the posterior

EM's MLE and MAP against NUTS on the same model and prior; label switching shown and fixed.
"""),
    code(SETUP + '''
import arviz as az
import xarray as xr

import em
from models import Prior, load_faithful
from models import pymc as gmm_pymc
from models.results import relabel
from reports import joint

X, columns = load_faithful()
prior = Prior.default(X, 2, "full")
draws = 300 if FAST else 1000
'''),
    md("## EM: maximum likelihood and MAP"),
    code('''
mle = em.fit(X, 2)
map_ = em.fit(X, 2, prior=prior)
print("MLE mu:", mle.params.mu.round(3).tolist())
print("MAP mu:", map_.params.mu.round(3).tolist())
'''),
    md("""
## Label switching, shown

The posterior is symmetric under relabelling the components. Two runs started from the two
labellings of the same EM solution explore the same posterior under different names; pooled as
chains of one run, r_hat is far above 1.
"""),
    code('''
run_a = joint.sample(X, 2, prior=prior, init=map_.params, draws=draws, tune=draws, chains=2, random_seed=1)
run_b = joint.sample(X, 2, prior=prior, init=map_.params.permute([1, 0]), draws=draws, tune=draws,
                        chains=2, random_seed=2)
post = xr.concat([run_a["posterior"].to_dataset(), run_b["posterior"].to_dataset()], dim="chain")
post = post.assign_coords(chain=np.arange(4))
mixed = xr.DataTree.from_dict({"posterior": post,
                               "observed_data": run_a["observed_data"].to_dataset()})
rhat_mixed = float(az.summary(mixed, var_names=["mu"])["r_hat"].max())
print("max r_hat with switched labels:", rhat_mixed)
'''),
    md("## ... and fixed: `relabel` aligns every draw to the EM reference"),
    code('''
fixed = relabel(mixed, reference=map_.params)
rhat_fixed = float(az.summary(fixed, var_names=["mu"])["r_hat"].max())
print("max r_hat after relabel:", rhat_fixed)
print("draws permuted:", fixed.attrs["relabel_draws_permuted"])
'''),
    md("""
## MLE and MAP against PyMC's optimiser and the posterior mean

EM's MAP is a mode of the posterior: `find_map` (PyMC's optimiser on the same density) finds it
too. Whether it is *the* posterior mode depends on how much of the posterior lies near it: here
EM's restarts reach one mode, and every draw lies near it (notebook 5 shows a posterior where
that fails).
"""),
    code('''
from reports import modes

mode = joint.find_map(X, 2, prior=prior)
mode_map = modes.assign(modes.em_modes(X, 2, "full", prior), fixed, X,
                        {"EM MAP": (map_.params.pi, map_.params.mu)})
print(mode_map.summary("EM MAP"))
summ = az.summary(fixed, var_names=["pi", "mu"], round_to="none")
table = summ[["mean", "sd"]].copy()
table["EM MAP"] = np.concatenate([map_.params.pi, map_.params.mu.ravel()])
table["EM MLE"] = np.concatenate([mle.params.pi, mle.params.mu.ravel()])
table["find_map"] = np.concatenate([mode.pi, mode.mu.ravel()])
table
'''),
    code('''
gap_mode = np.abs(mode.mu - map_.params.mu).max() / np.abs(map_.params.mu).max()
z_scores = ((table["EM MAP"] - table["mean"]) / table["sd"]).abs()
print("relative gap EM MAP vs find_map:", gap_mode, "; max |EM MAP - mean| / sd:", z_scores.max())
'''),
    md("## What this notebook claims"),
    code('''
assert rhat_mixed > 1.5, "pooled chains with switched labels do not mix"
assert rhat_fixed < 1.02, "relabel removes the label switching"
assert gap_mode < 1e-5, "EM MAP and find_map agree to 1e-5"
assert z_scores.max() < 1.0, "EM MAP lies within one posterior sd of the posterior mean"
assert mode_map.em_share("EM MAP") == 1.0, "every draw lies near EM's MAP: the posterior mode"
'''),
]

NOTEBOOKS["03_model_selection.ipynb"] = [
    md("""
# 3. Model selection: BIC and ICL against LOO

mclust's approach (BIC over K and covariance structures) on Old Faithful and iris, against
PSIS-LOO of the posterior over K.
"""),
    code(SETUP + '''
import arviz as az

from models import Prior, load_faithful, load_iris
from models import pymc as gmm_pymc
from reports import joint
from reports.select import best, ranked, select_grid

X, _ = load_faithful()
rows = select_grid(X, 3 if FAST else 6)
top = best(rows, "bic")
print("Old Faithful, best by BIC:", top["K"], top["covariance_type"], round(top["bic"], 2))
'''),
    md("""
The grid covers mclust's 14 covariance models. mclust reports BIC with the opposite sign
(higher is better). Its published choice for Old Faithful is `EEE` (one shared covariance,
scikit-learn's `tied`) with 3 components and BIC -2314.3.
"""),
    code('''
fig, ax = plt.subplots(figsize=(6, 3.5))
for ct in ("VVV", "EEE", "VVI", "VII"):
    r = [x for x in rows if x["covariance_type"] == ct]
    ax.plot([x["K"] for x in r], [x["bic"] for x in r], "o-", label=f"{ct} BIC")
    ax.plot([x["K"] for x in r], [x["icl"] for x in r], "x--", label=f"{ct} ICL")
ax.legend(fontsize=7, ncols=2); ax.set_xlabel("K"); ax.set_ylabel("lower is better");
best_icl = best(rows, "icl")
print("best by ICL:", best_icl["K"], best_icl["covariance_type"])
'''),
    md("## LOO over K (tied covariance, NUTS)"),
    code('''
draws = 200 if FAST else 1000
loo = {}
for K in (1, 2, 3):
    dt = joint.sample(X, K, "tied", prior=Prior.default(X, K, "tied"), draws=draws, tune=draws,
                         chains=2, random_seed=K)
    loo[K] = az.loo(dt)
    print(K, round(float(loo[K].elpd), 2), "+/-", round(float(loo[K].se), 2))
best_loo = max(loo, key=lambda K: loo[K].elpd)
'''),
    md("""
## Iris

mclust's published analysis of iris (Scrucca et al. 2016, *The R Journal*) selects `VEV` with 2
components by BIC: equal shape, varying volume and orientation, between `EEE` (tied) and `VVV`
(full).
"""),
    code('''
Xi, names, species = load_iris()
rows_i = select_grid(Xi, 3 if FAST else 5)
top_i = best(rows_i, "bic")
print("iris, best by BIC:", top_i["K"], top_i["covariance_type"], round(top_i["bic"], 2))
for r in ranked(rows_i)[:5]:
    print(r["K"], r["covariance_type"], round(r["bic"], 2))
'''),
    md("## What this notebook claims"),
    code('''
assert (top["K"], top["covariance_type"]) == (3, "EEE"), "BIC picks mclust's EEE,3 on Old Faithful"
assert abs(top["bic"] - 2314.3) < 0.1, "with mclust's BIC value (sign flipped)"
assert best_loo >= 2, "LOO prefers more than one component"
assert loo[2].elpd - loo[1].elpd > 4 * loo[2].se / 10, "the gain from K=1 to K=2 is clear"
assert (top_i["K"], top_i["covariance_type"]) == (2, "VEV"), "on iris BIC picks mclust's VEV,2"
'''),
]

NOTEBOOKS["04_calibration.ipynb"] = [
    md("""
# 4. Calibration: does sampling reproduce the generative story?

Prior predictive against the NumPy simulator, simulation-based calibration (Talts et al. 2018),
and what a miscalibrated prior looks like.
"""),
    code(SETUP + '''
import pymc as pm
from scipy import stats

from models import Prior, sample_params, simulate
from models import pymc as gmm_pymc
from reports import joint

prior = Prior(alpha=[2.0, 2.0], m0=np.zeros(1), kappa0=0.05, nu0=4.0, Psi0=np.eye(1) * 2.0)
'''),
    md("## Prior predictive of the PyMC model against the simulator"),
    code('''
n_draws = 1000 if FAST else 4000
model = gmm_pymc.build_model(np.zeros((5, 1)), 2, "full", prior, latent="explicit")
# compiled with PyTensor's Python linker, as gmm_pymc.add_prior_predictive does: a few
# thousand draws need no compiled program
pp = pm.sample_prior_predictive(draws=n_draws, model=model, random_seed=0,
                                compile_kwargs={"mode": "FAST_COMPILE"})
x_pymc = pp["prior_predictive"]["x"].values[0, :, 0, 0]
rng = np.random.default_rng(1)
x_sim = np.array([simulate(sample_params(prior, 2, 1, "full", rng), 5, rng)[0][0, 0]
                  for _ in range(n_draws)])
p_prior_pred = stats.ks_2samp(x_pymc, x_sim).pvalue
plt.hist([x_pymc, x_sim], bins=40, density=True, label=["PyMC prior predictive", "simulator"]);
plt.legend(); print("KS p-value:", p_prior_pred)
'''),
    md("""
## Simulation-based calibration

Draw parameters from the prior, simulate, sample the posterior, and take the rank of the true
value among the draws. With a correct sampler the ranks are uniform. Labels: draws and truth are
both ordered by mu.
"""),
    code('''
def sbc(prior_fit, prior_true, replicates, seed):
    """Rank of the smaller true mean among 50 thinned posterior draws, per replicate.

    Every replicate's posterior is sampled in one compiled program (gmm_pymc.sample_batch), each
    from its own EM start.
    """
    rng = np.random.default_rng(seed)
    truths = [sample_params(prior_true, 2, 1, "full", rng) for _ in range(replicates)]
    Xs = np.stack([simulate(truth, 40, rng)[0] for truth in truths])
    inits = [joint.em_start(X, 2, "full", prior_fit) for X in Xs]
    post = gmm_pymc.sample_batch(Xs, 2, "full", prior_fit, inits, draws=200, tune=300, chains=1,
                                 random_seed=seed)
    mu_min = post["mu"].values[:, 0, ::4, :, 0].min(axis=-1)        # (replicate, draw)
    true_min = np.array([truth.mu[:, 0].min() for truth in truths])
    return (mu_min < true_min[:, None]).sum(axis=1)

replicates = 100 if FAST else 400
ranks = sbc(prior, prior, replicates, seed=2)
p_sbc = stats.chisquare(np.histogram(ranks, bins=5, range=(0, 51))[0]).pvalue
plt.hist(ranks, bins=5, range=(0, 51)); plt.title(f"SBC ranks of min(mu): chi-square p = {p_sbc:.3f}");
'''),
    md("""
## A miscalibrated prior

Fit with a prior that is much tighter on the means (kappa0 = 5) than the one that generated the
data: the truth falls in the tails of the posterior, and the rank histogram turns U-shaped.
"""),
    code('''
tight = Prior(alpha=[2.0, 2.0], m0=np.zeros(1), kappa0=5.0, nu0=4.0, Psi0=np.eye(1) * 2.0)
ranks_bad = sbc(tight, prior, replicates, seed=3)
counts_bad = np.histogram(ranks_bad, bins=5, range=(0, 51))[0]
p_bad = stats.chisquare(counts_bad).pvalue
plt.hist(ranks_bad, bins=5, range=(0, 51)); plt.title(f"miscalibrated: chi-square p = {p_bad:.2g}");
'''),
    md("## What this notebook claims"),
    code('''
assert p_prior_pred > 0.001, "PyMC's prior predictive matches the simulator"
assert p_sbc > 0.001, "ranks are uniform under the right prior"
assert p_bad < 0.001, "a miscalibrated prior is detected"
assert counts_bad[0] + counts_bad[-1] > counts_bad[1:-1].sum() / 3 * 2, "its histogram is U-shaped"
'''),
]

NOTEBOOKS["05_modes.ipynb"] = [
    md("""
# 5. Iris: a posterior with several modes

A mixture's posterior has K! copies of every mode (one per labelling), and often more than one
mode besides: different ways of cutting the data into K clusters. EM from one start climbs to one
of them. On iris with K = 3 full covariances under mclust's prior (`Prior.default`), EM's
restarts end at several local modes, and the one they reach most often is not where the
posterior is.
"""),
    code(SETUP + '''
from pathlib import Path

import pandas as pd
import xarray as xr

from models import Prior, load_iris
from models.pymc.routes import ROUTES
from reports import joint, modes
from reports.tables import format_table

X, columns, species = load_iris()
prior = Prior.default(X, 3, "full")
'''),
    md("""
## EM's local modes

`em_modes` runs EM's MAP from 52 starts (mclust's and Ward's agglomerations, 50 k-means++) and
keeps the distinct ends: log posteriors more than 1e-3 apart. Each has its log posterior, its
weights (heaviest first) and its component sizes (sums of responsibilities).
"""),
    code('''
mode_map = modes.em_modes(X, 3, "full", prior, random_state=0)
print(format_table(mode_map.local_rows()))
'''),
    md("""
## The posterior's draws, each at its nearest mode

The draws come from the conjugate Gibbs sampler (`sampler="gibbs"`), which moves between modes;
where this tree lacks it, from bayesm's Gibbs sampler in R on the same model and prior
(`tests/data/bayesm/iris_modes_draws.csv`, made by `make_modes.R`). Each draw goes to its nearest
local mode in a distance that does not depend on the labels (weights, and means weighted by
their component's weight, under the best matching); local modes that differ only in where a
light component sits are one row.
"""),
    code('''
if "gibbs" in ROUTES:
    post = joint.sample(X, 3, prior=prior, init=mode_map.modes[0].params, sampler="gibbs",
                        draws=1000 if FAST else 5000, tune=500, chains=4, random_seed=1)
    source = "the Gibbs route"
else:
    D = pd.read_csv(Path("..") / "tests/data/bayesm/iris_modes_draws.csv")
    pi = D[["pi1", "pi2", "pi3"]].to_numpy().reshape(4, -1, 3)
    mu = D[[f"mu{k}_{j}" for k in range(1, 4) for j in range(1, 5)]].to_numpy().reshape(4, -1, 3, 4)
    post = xr.DataTree.from_dict({"posterior": xr.Dataset(
        {"pi": (("chain", "draw", "component"), pi),
         "mu": (("chain", "draw", "component", "feature"), mu)},
        coords={"chain": np.arange(4), "draw": np.arange(pi.shape[1])})})
    source = "bayesm (R)"
best = mode_map.modes[0].params
modes.assign(mode_map, post, X, {"EM MAP": (best.pi, best.mu)})
rows = mode_map.rows()
print(f"draws from {source}")
print(format_table(modes.display_rows(rows)))
print(mode_map.summary("EM MAP"))
'''),
    md("""
The first row holds setosa (0.333), one large component (about 0.60: versicolor and most of
virginica) and one light component (about 0.06) that picks a few points; the three species
(about a third each) hold almost none of the draws, though most of EM's restarts end there.
"""),
    code('''
pi_sorted = -np.sort(-post["posterior"]["pi"].values.reshape(-1, 3), axis=1)
row = np.array([mode_map.number(j) for j in mode_map.draw_mode.ravel()])
fig, ax = plt.subplots(figsize=(5.5, 4))
for r in rows:
    sel = row == r["mode"]
    ax.scatter(pi_sorted[sel, 0], pi_sorted[sel, 2], s=4, alpha=0.5,
               label=f"mode {r['mode']} ({r['share']:.1%})")
for m in mode_map.modes:
    ax.plot(m.params.pi[0], m.params.pi[2], "kx", ms=8)
ax.set_xlabel("largest weight"); ax.set_ylabel("smallest weight"); ax.legend(fontsize=8)
ax.set_title("Draws' sorted weights by mode; x: EM's local modes");
'''),
    md("## What this notebook claims"),
    code('''
weights = [np.array([float(v) for v in r["pi"].split(", ")]) for r in rows]
major = [r for r, w in zip(rows, weights) if np.all(np.abs(w - [0.60, 0.33, 0.065]) <= 0.05)]
species = [r for r, w in zip(rows, weights) if np.all(np.abs(w - 1 / 3) <= 0.05)]
assert len(major) == 1 and 0.85 <= major[0]["share"] <= 0.99, "most draws lie near (0.60, 0.33, 0.065)"
assert sum(r["share"] for r in species) <= 0.05, "the three species hold at most 5 % of the draws"
assert major[0]["em"] == "EM MAP", "EM's best restart is the posterior mode"
assert sum(r["restarts"] for r in species) > 26, "yet most of EM's restarts end at the species"
'''),
]


NOTEBOOKS["06_variational.ipynb"] = [
    md("""
# 5. Variational Bayes against the exact posterior

One model, one prior (`Prior.default`), three estimators: EM's MAP (a point), variational Bayes
(`em.fit(..., method="vb")`: the mean-field `q(z) q(pi) q(mu, Sigma)` that maximises the ELBO)
and the posterior's draws. Where the clusters are separated VB is right; where the posterior has
several modes, VB picks one and its spread is too small.
"""),
    code(SETUP + '''
import pandas as pd

import em
from models import Prior, load_faithful, load_iris
from reports import joint
from reports.compare import compare, compare_vb
'''),
    md("""
## Old Faithful, K = 2: separated clusters

EM's MAP, VB and NUTS under the same prior, scalar by scalar. `vb_coverage` is the share of the
posterior's draws inside VB's 89% interval: 0.89 when VB is right.
"""),
    code('''
X, columns = load_faithful()
prior = Prior.default(X, 2, "full")
map_ = em.fit(X, 2, prior=prior)
vb = joint.align(em.fit(X, 2, prior=prior, method="vb"), map_.params)
draws = 300 if FAST else 1000
post = joint.sample(X, 2, prior=prior, init=map_.params, draws=draws, tune=draws, chains=2,
                    random_seed=1, feature_names=columns)
rows, _ = compare(joint.em_to_datatree(map_, X, columns), post)
rows = compare_vb(rows, joint.vb_to_datatree(vb, X, columns, draws=2 * draws, random_seed=2),
                  post)
faithful = pd.DataFrame(rows).set_index("parameter")[
    ["em", "vb", "mean", "vb_sd", "sd", "vb_sd_ratio", "vb_z", "vb_coverage"]]
faithful.round(4)
'''),
    code('''
def intervals(ax, table, title):
    y = np.arange(len(table))[::-1]
    post_half = (table["upper"] - table["lower"]) / 2 / table["sd"]
    ax.errorbar(np.zeros(len(y)), y + 0.15, xerr=post_half, fmt="o", color="C0", ms=3,
                label="posterior 89%")
    ax.errorbar(table["vb_z"], y - 0.15, fmt="s", ms=3, color="C1", label="VB 89%",
                xerr=[(table["vb"] - table["vb_lower"]) / table["sd"],
                      (table["vb_upper"] - table["vb"]) / table["sd"]])
    ax.set_yticks(y, table.index, fontsize=7); ax.set_title(title)
    ax.set_xlabel("(value - posterior mean) / posterior sd"); ax.legend(fontsize=7)

fig, ax = plt.subplots(figsize=(6, 5))
intervals(ax, pd.DataFrame(rows).set_index("parameter"), "Old Faithful: VB against NUTS")
'''),
    md("""
## Iris, K = 3: a multimodal posterior

The reference posterior is bayesm's conjugate Gibbs sampler under the same prior, 4 chains of
100,000 sweeps (`tests/data/bayesm`, every 200th draw). Its draws are compared on what does not
depend on the labels: the weights sorted by size. It puts most of its mass near weights
(0.60, 0.33, 0.065) (setosa, one large and one small component), and almost none on the three
species.

First scikit-learn's variational model with this prior (`em.BayesianGaussianMixture`, the
drop-in, with the Dirichlet-distribution weight prior), started as scikit-learn starts it, from
k-means:
"""),
    code('''
Xi, names, species = load_iris()
prior_i = Prior.default(Xi, 3, "full")
reference = pd.read_csv("../tests/data/bayesm/iris_draws.csv")
w_post = reference[["pi1", "pi2", "pi3"]].to_numpy()
drop_in = em.BayesianGaussianMixture(
    n_components=3, weight_concentration_prior_type="dirichlet_distribution",
    weight_concentration_prior=1.0, mean_prior=prior_i.m0, mean_precision_prior=prior_i.kappa0,
    degrees_of_freedom_prior=prior_i.nu0, covariance_prior=prior_i.Psi0, max_iter=1000,
    random_state=0).fit(Xi)
w_species = np.sort(drop_in.weights_)[::-1]

def near(w, centre, tol=0.05):
    """Share of draws whose sorted weights all lie within tol of centre."""
    return float(np.mean(np.all(np.abs(w - centre) < tol, axis=1)))

mass_species = near(w_post, w_species)
print("drop-in's weights:", w_species.round(3), "; posterior draws near them:", mass_species)
'''),
    md("""
The suite's VB keeps the best ELBO of its restarts (mclust's hierarchical start, Ward's, and
k-means++): two optima of the ELBO, the three species and the major mode.
"""),
    code('''
vb_i = em.fit(Xi, 3, "full", prior=prior_i, method="vb")
print("ELBO of each restart:", np.round(vb_i.restarts, 2))
q_draws = vb_i.posterior.draw(4000, np.random.default_rng(3))
w_vb = -np.sort(-q_draws["pi"], axis=1)
major = np.array([0.60, 0.33, 0.065])
share = {"posterior": near(w_post, major), "VB": near(w_vb, major)}
weights = []
for j, name in enumerate(["largest", "middle", "smallest"]):
    lo, hi = np.quantile(w_vb[:, j], [0.055, 0.945])
    weights.append({"weight": name, "vb": w_vb[:, j].mean(), "mean": w_post[:, j].mean(),
                    "vb_sd": w_vb[:, j].std(), "sd": w_post[:, j].std(),
                    "vb_coverage": np.mean((w_post[:, j] >= lo) & (w_post[:, j] <= hi))})
weights = pd.DataFrame(weights).set_index("weight")
weights["vb_sd_ratio"] = weights["vb_sd"] / weights["sd"]
print("share of draws near the major mode:", share)
weights.round(4)
'''),
    code('''
fig, axes = plt.subplots(1, 3, figsize=(12, 3))
for j, ax in enumerate(axes):
    bins = np.linspace(0, max(w_post[:, j].max(), w_vb[:, j].max()), 50)
    ax.hist(w_post[:, j], bins=bins, density=True, alpha=0.6, label="posterior (bayesm)")
    ax.hist(w_vb[:, j], bins=bins, density=True, alpha=0.6, label="VB q")
    ax.axvline(w_species[j], color="k", ls="--", label="drop-in (three species)")
    ax.set_title(f"{weights.index[j]} weight")
axes[0].legend(fontsize=7);
'''),
    md("## What this notebook claims"),
    code('''
assert (faithful["vb_z"].abs() < 0.5).all(), "on Old Faithful VB's means sit within 0.5 sd of the posterior's"
assert faithful["vb_coverage"].between(0.7, 0.99).all(), "and its intervals hold about 89% of the posterior"
assert np.abs(w_species - 1 / 3).max() < 0.05, "scikit-learn's model from k-means sits on the three species"
assert mass_species < 0.02, "where the posterior puts almost no mass"
assert vb_i.elbo > min(vb_i.restarts) + 5, "the ELBO has two optima; the best is the major mode"
assert share["VB"] > share["posterior"] + 0.05, "VB's q is more concentrated on one mode than the posterior"
assert weights.loc["smallest", "vb_sd_ratio"] < 0.7, "its sd of the smallest weight is too small"
assert weights.loc["smallest", "vb_coverage"] < 0.8, "its 89% interval holds under 80% of the posterior"
'''),
]


NOTEBOOKS["07_missing_values.ipynb"] = [
    md("""
# 5. Data with holes: EM, imputation and the posterior

A missing cell is one more latent quantity beside `z`: EM integrates it out of the likelihood
(the E-step works on each row's observed cells; the M-step takes the expected statistics), the
PyMC model uses each row's observed sub-vector, and imputation draws the missing cells from the
mixture's conditional. Here the cells go missing *at random* (MAR) but not *completely* at
random: a row's third feature is more often missing when its first is large. Dropping the
incomplete rows then throws away information and biases the fit; keeping them does not.
"""),
    code(SETUP + '''
import em
from models import GMMParams, Prior, simulate
from models.results import posterior_imputations
from reports import joint
'''),
    md("## Data, and holes that depend on what is observed"),
    code('''
truth = GMMParams([0.5, 0.5], [[0.0, 0.0, 0.0], [3.0, 1.0, 2.0]],
                  [[[1.0, 0.3, 0.6], [0.3, 1.0, 0.2], [0.6, 0.2, 1.0]],
                   [[1.0, -0.2, 0.5], [-0.2, 0.8, 0.1], [0.5, 0.1, 1.2]]])
N = 600 if FAST else 2000
X, z = simulate(truth, N, rng=5)
rng = np.random.default_rng(6)
p_missing = 0.7 / (1 + np.exp(-2.0 * (X[:, 0] - 1.5)))   # MAR: depends on the observed x_0
Xm = X.copy()
Xm[rng.random(N) < p_missing, 2] = np.nan
Xm[:, :2][rng.random((N, 2)) < 0.05] = np.nan              # and a few cells MCAR
Xm[np.isnan(Xm).all(axis=1), 0] = X[np.isnan(Xm).all(axis=1), 0]
incomplete = np.isnan(Xm).any(axis=1)
print(f"{np.isnan(Xm).sum()} cells missing in {incomplete.sum()} of {N} rows")
fig, ax = plt.subplots(figsize=(5, 4))
ax.scatter(*X[~incomplete][:, [0, 2]].T, s=5, label="complete rows")
ax.scatter(*X[incomplete][:, [0, 2]].T, s=5, label="rows with a hole (true values)")
ax.set_xlabel("x0"); ax.set_ylabel("x2"); ax.legend();
'''),
    md("""
## EM: all the rows against the complete rows only

`em.fit` takes the NaN cells as they are (its objective is the observed-data log-likelihood);
the alternative is to drop every incomplete row. Both are compared with the fit of the data
before any cell went missing.
"""),
    code('''
def ordered(p):
    return p.permute(np.argsort(p.mu[:, 0]))

full_fit = ordered(em.fit(X, 2, random_state=0).params)
holes_fit = ordered(em.fit(Xm, 2, random_state=0).params)
dropped_fit = ordered(em.fit(Xm[~incomplete], 2, random_state=0).params)
for name, p in (("truth", truth), ("complete data", full_fit), ("EM with the holes", holes_fit),
                ("incomplete rows dropped", dropped_fit)):
    print(f"{name:24s} pi = {np.round(p.pi, 3)}  mu[1] = {np.round(p.mu[1], 2)}")
err_holes = np.abs(holes_fit.pi - full_fit.pi).max()
err_dropped = np.abs(dropped_fit.pi - full_fit.pi).max()
print(f"largest pi error: with the holes {err_holes:.3f}, rows dropped {err_dropped:.3f}")
'''),
    md("""
## Imputation

`em.impute(X, params)` fills each missing cell with its conditional mean given the row's observed
cells (the components' conditional means weighted by the responsibilities); with
`n_imputations=m` it draws m completed data sets from the conditional mixture.
"""),
    code('''
filled = em.impute(Xm, holes_fit)
hole = np.isnan(Xm)
rmse_conditional = np.sqrt(np.mean((filled[hole] - X[hole]) ** 2))
column_means = np.where(hole, np.nanmean(Xm, axis=0), Xm)
rmse_mean = np.sqrt(np.mean((column_means[hole] - X[hole]) ** 2))
draws = em.impute(Xm, holes_fit, n_imputations=200, random_state=1)
lo, hi = np.quantile(draws[:, hole], [0.05, 0.95], axis=0)
coverage = np.mean((X[hole] >= lo) & (X[hole] <= hi))
print(f"RMSE of the conditional mean {rmse_conditional:.3f}, of the column mean {rmse_mean:.3f}")
print(f"90 % intervals of 200 imputations cover {coverage:.1%} of the true values")
'''),
    md("""
## The posterior on the same data

The PyMC model's likelihood of a row is the density of its observed cells, exact for a Gaussian.
We sample it with all the rows and with the complete rows only, and compare the posterior of
`mu` (its mean and 90 % interval width) with the truth.
"""),
    code('''
draws_n = 200 if FAST else 1000
post = {}
for name, data in (("with the holes", Xm), ("rows dropped", Xm[~incomplete])):
    prior = Prior.default(data, 2, "full")
    dt = joint.sample(data, 2, "full", prior=prior, draws=draws_n, tune=draws_n, chains=2,
                      random_seed=2)
    mu = dt["posterior"]["mu"].values.reshape(-1, 2, 3)
    order = np.argsort(mu[..., 0].mean(axis=0))
    post[name] = (dt, mu[:, order])
for name, (dt, mu) in post.items():
    lo, hi = np.quantile(mu, [0.05, 0.95], axis=0)
    print(f"{name:15s} mu[1] mean {np.round(mu.mean(axis=0)[1], 2)}  90 % width "
          f"{np.round((hi - lo)[1], 3)}")
width = {name: np.diff(np.quantile(mu, [0.05, 0.95], axis=0), axis=0)[0].mean()
         for name, (_, mu) in post.items()}
bias = {name: np.abs(mu.mean(axis=0) - full_fit.mu).max() for name, (_, mu) in post.items()}
print("mean 90 % width:", {k: round(v, 3) for k, v in width.items()})
print("largest |posterior mean - complete-data fit|:", {k: round(v, 3) for k, v in bias.items()})
'''),
    md("""
## Imputations over the posterior

For each posterior draw theta the missing cells are drawn from p(x_m | x_o, theta), so their
spread carries the parameters' uncertainty as well as the cells' own (`gmm impute` on a
`gmm sample` folder does this).
"""),
    code('''
imputations = posterior_imputations(post["with the holes"][0], Xm, random_seed=3)
spread_posterior = imputations[:, hole].std(axis=0).mean()
cond_sd = np.sqrt(em.impute(Xm, holes_fit, n_imputations=400, random_state=4)[:, hole]
                  .var(axis=0)).mean()
print(f"mean sd of a cell's imputations: over the posterior {spread_posterior:.3f}, "
      f"at the EM estimate {cond_sd:.3f}")
'''),
    md("## What this notebook claims"),
    code('''
assert err_holes < err_dropped / 2, "keeping the incomplete rows removes most of the bias in pi"
assert rmse_conditional < 0.8 * rmse_mean, "conditional means beat column means"
assert 0.8 < coverage < 0.97, "multiple imputations' 90 % intervals cover about 90 %"
assert width["with the holes"] < width["rows dropped"], "the posterior with every row is narrower"
assert bias["with the holes"] < bias["rows dropped"], "and centred nearer the complete-data fit"
'''),
]


def main():
    for name, cells in NOTEBOOKS.items():
        nb = nbformat.v4.new_notebook(cells=cells, metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"}})
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()

"""The posterior's modes (reports/modes.py): EM's local modes, their shares of the draws."""

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from models import GMMParams, Prior, load_faithful
from models.results import invariant_diagnostics, label_invariant, point_to_datatree, with_groups
from reports import modes

ROOT = Path(__file__).parents[2]
MAJOR, SPECIES = np.array([0.60, 0.33, 0.065]), np.full(3, 1 / 3)


def iris():
    return pd.read_csv(ROOT / "tests/data/mclust/iris.csv").to_numpy(dtype=float)


@pytest.fixture(scope="module")
def iris_modes():
    X = iris()
    return X, modes.em_modes(X, 3, "full", Prior.default(X, 3, "full"), random_state=0)


def bayesm_tree():
    """bayesm's iris draws (make_modes.R): weights and means on bayesm's own labels."""
    D = pd.read_csv(ROOT / "tests/data/bayesm/iris_modes_draws.csv")
    C = D["chain"].nunique()
    pi = D[["pi1", "pi2", "pi3"]].to_numpy().reshape(C, -1, 3)
    mu = D[[f"mu{k}_{j}" for k in range(1, 4) for j in range(1, 5)]].to_numpy().reshape(
        C, -1, 3, 4)
    return xr.DataTree.from_dict({"posterior": xr.Dataset({
        "pi": (("chain", "draw", "component"), pi),
        "mu": (("chain", "draw", "component", "feature"), mu)},
        coords={"chain": np.arange(C), "draw": np.arange(pi.shape[1])})}), D


def test_distance_is_label_invariant_and_its_matching_is_hungarians():
    rng = np.random.default_rng(0)
    for K in (3, 6):                      # enumeration (K <= 4), Hungarian above
        d = 2
        pi = rng.dirichlet(np.ones(K), size=50)
        mu = rng.normal(size=(50, K, d))
        ref = GMMParams(rng.dirichlet(np.ones(K)), rng.normal(size=(K, d)),
                        np.stack([np.eye(d)] * K), "full")
        scale = np.array([0.5, 2.0])
        D = modes.distance(pi, mu, ref, scale)
        perm = rng.permutation(K)
        np.testing.assert_allclose(modes.distance(pi[:, perm], mu[:, perm], ref, scale), D,
                                   rtol=1e-12)
        # by the formula, with the best of every matching (brute force for K = 3)
        for s in range(5):
            cost = np.array([[(pi[s, j] - ref.pi[k]) ** 2 + 0.5 * (pi[s, j] + ref.pi[k])
                              * np.mean(((mu[s, j] - ref.mu[k]) / scale) ** 2)
                              for k in range(K)] for j in range(K)])
            if K == 3:
                best = min(sum(cost[p[k], k] for k in range(K))
                           for p in itertools.permutations(range(K)))
            else:
                r, c = linear_sum_assignment(cost)
                best = cost[r, c].sum()
            assert D[s] == pytest.approx(best, rel=1e-12)
    assert modes.distance(ref.pi[None], ref.mu[None], ref, scale)[0] == 0.0


def test_em_modes_are_distinct_local_modes_with_their_log_posteriors(iris_modes):
    X, mm = iris_modes
    prior = Prior.default(X, 3, "full")
    assert mm.n_restarts == 52 and len(mm.modes) >= 4
    lps = np.array([m.log_posterior for m in mm.modes])
    assert np.all(np.diff(lps) < -modes.LOG_POSTERIOR_TOL)      # distinct, highest first
    for m in mm.modes:
        p = m.params
        # the log posterior from scipy's densities, and the sizes from the responsibilities
        log_joint = np.log(p.pi) + np.column_stack([
            multivariate_normal(p.mu[k], p.Sigma[k]).logpdf(X) for k in range(3)])
        assert log_joint.sum() > -np.inf
        lp = logsumexp(log_joint, axis=1).sum() + prior.log_density(p)
        assert m.log_posterior == pytest.approx(lp, abs=1e-6)
        gamma = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
        np.testing.assert_allclose(m.N_k, gamma.sum(0), rtol=1e-10)
        assert np.all(np.diff(p.pi) <= 0)                       # heaviest component first
    assert sum(m.restarts for m in mm.modes) + len(mm.failures) == 52
    # the highest is EM's MAP (em.fit's best of the same restarts), mclust's: setosa, one
    # component of about 0.6 and one of about 0.06
    np.testing.assert_allclose(mm.modes[0].params.pi, [0.607, 0.333, 0.060], atol=2e-3)
    assert mm.modes[0].log_posterior == pytest.approx(-173.482, abs=1e-3)
    with pytest.raises(ValueError, match="at least 50"):
        modes.em_modes(X, 3, "full", prior, n_init=10)


def test_bayesm_draws_lie_near_the_major_configuration(iris_modes):
    # bayesm's Gibbs sampler (R, an independent implementation; 4 chains, 2000 draws): the
    # configuration with weights near (0.60, 0.33, 0.065) holds 85-99 % of the draws, the three
    # species at most 5 %; bayesm's long runs put 98.8 % nearer the first than the species
    X, mm = iris_modes
    tree, D = bayesm_tree()
    modes.assign(mm, tree, X, {"EM MAP": (mm.modes[0].params.pi, mm.modes[0].params.mu)})
    rows = mm.rows()
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    weights = [np.array([float(v) for v in r["pi"].split(", ")]) for r in rows]
    major = [r for r, w in zip(rows, weights) if np.all(np.abs(w - MAJOR) <= 0.05)]
    species = [r for r, w in zip(rows, weights) if np.all(np.abs(w - SPECIES) <= 0.05)]
    assert len(major) == 1 and len(species) == 1
    assert 0.85 <= major[0]["share"] <= 0.99 and major[0]["mode"] == 1
    assert species[0]["share"] <= 0.05
    assert major[0]["em"] == "EM MAP"
    line = mm.summary("EM MAP")
    assert line.startswith(f"EM's MAP is a mode of the posterior with {major[0]['share']:.1%} "
                           "of the draws near it (mode 1 of")
    assert line.endswith("the largest share, so it is the posterior mode.")
    # each draw's row, and the table's shares are the group's
    group = modes.modes_group(mm, tree)
    assert group.attrs["em_map_mode"] == 1
    for r in rows:
        assert (group["mode"].values == r["mode"]).mean() == pytest.approx(r["share"])
    # the draws bayesm puts nearer the major weights than the species' lie in the first row
    s = -np.sort(-D[["pi1", "pi2", "pi3"]].to_numpy(), axis=1)
    nearer = ((s - MAJOR) ** 2).sum(1) < ((s - SPECIES) ** 2).sum(1)
    assert nearer.mean() == pytest.approx(0.991, abs=1e-3)
    assert (group["mode"].values.ravel()[~nearer] != 1).mean() > 0.9


def test_summary_line_says_where_em_is():
    def row(mode, share, em=""):
        return {"mode": mode, "share": share, "em": em}

    line = modes.summary_line([row(1, 0.7), row(2, 0.3, "EM MAP, EM MLE")])
    assert line == ("EM's MAP is a mode of the posterior with 30.0% of the draws near it (mode 2 "
                    "of 2). Less than half of the draws lie near EM's MAP: most of the posterior "
                    "is elsewhere (see the modes table).")
    assert "posterior mode" not in line
    assert modes.summary_line([row(1, 0.45, "EM MAP"), row(2, 0.55), row(3, 0)]).endswith(
        "Less than half of the draws lie near EM's MAP: most of the posterior is elsewhere "
        "(see the modes table).")
    assert modes.summary_line([row(1, 0.6, "EM MAP"), row(2, 0.4)]).endswith(
        ": the largest share, so it is the posterior mode.")
    assert modes.summary_line([row(1, 1.0, "EM MAP")]) == (
        "EM's MAP is at the one mode of the posterior that EM reaches, with 100.0% of the "
        "draws near it: the posterior mode.")
    assert modes.summary_line([row(1, 0.7), row(2, 0.3, "EM MAP, EM MLE")], "EM MLE") == (
        "EM's MLE lies nearest mode 2 of 2 (30.0% of the draws).")
    assert modes.summary_line([row(1, 1.0)]) == ""
    # EM's own local mode below its row's highest: the line says which
    rows = [{**row(1, 0.8), "log_posterior": -173.48}, {**row(2, 0.2, "EM MAP"),
                                                       "log_posterior": -174.0}]
    local = [{"local_mode": 0, "mode": 1, "log_posterior": -173.48, "em": ""},
             {"local_mode": 1, "mode": 2, "log_posterior": -174.0, "em": ""},
             {"local_mode": 2, "mode": 2, "log_posterior": -178.47, "pi[0]": 0.6139,
              "pi[1]": 0.3333, "pi[2]": 0.0528, "em": "EM MAP"}]
    assert modes.summary_line(rows, "EM MAP", local).startswith(
        "EM's MAP is a mode of the posterior with 20.0% of the draws near it (mode 2 of 2, at a "
        "lower local mode of that row: log posterior -178.47, weights 0.614, 0.333, 0.053). ")


def switching_posterior(switch):
    """Old Faithful draws around EM's MAP, 2 chains x 200; chain 1's labels swapped if asked."""
    X, names = load_faithful()
    prior = Prior.default(X, 2)
    import em

    p = em.fit(X, 2, prior=prior).params
    rng = np.random.default_rng(0)
    C, D = 2, 200
    pi = p.pi * (1 + 0.02 * rng.standard_normal((C, D, 2)))
    pi /= pi.sum(-1, keepdims=True)
    mu = p.mu * (1 + 0.002 * rng.standard_normal((C, D, 2, 2)))
    Sigma = p.Sigma * np.exp(0.01 * rng.standard_normal((C, D, 2, 1, 1)))
    if switch:
        pi[1], mu[1], Sigma[1] = pi[1][..., ::-1], mu[1][:, ::-1], Sigma[1][:, ::-1]
    tree = point_to_datatree(p, X, names)
    post = tree["posterior"].to_dataset().isel(chain=[0] * C, draw=[0] * D)
    post = post.assign_coords(chain=np.arange(C), draw=np.arange(D))
    for v, a in (("pi", pi), ("mu", mu), ("Sigma", Sigma)):
        post[v] = (post[v].dims, a)
    return X, prior, with_groups(tree, posterior=post)


def test_label_invariant_quantities_and_their_diagnostics():
    X, prior, tree = switching_posterior(switch=True)
    inv = label_invariant(tree, prior)
    post = tree["posterior"]
    for c, t in ((0, 3), (1, 150)):
        pi, mu, S = (post[v].values[c, t] for v in ("pi", "mu", "Sigma"))
        dens = sum(pi[k] * multivariate_normal(mu[k], S[k]).pdf(X) for k in range(2))
        assert inv["log_likelihood"].values[c, t] == pytest.approx(np.log(dens).sum(), rel=1e-10)
        lp = np.log(dens).sum() + prior.log_density(GMMParams(pi, mu, S, "full"))
        assert inv["log_posterior"].values[c, t] == pytest.approx(lp, rel=1e-10)
        np.testing.assert_array_equal(inv["pi_sorted"].values[c, t], np.sort(pi)[::-1])
    # labels swapped in one chain: pi's r_hat says the chains disagree, the label-invariant
    # quantities' r_hat says they do not, which is the truth about these draws
    import arviz as az

    tree = with_groups(tree, label_invariant=inv)
    diag = invariant_diagnostics(tree)
    assert list(diag.index) == ["log_likelihood", "log_posterior", "pi_sorted[0]",
                                "pi_sorted[1]"]
    assert diag["r_hat"].max() < 1.02
    assert float(az.rhat(tree["posterior"].to_dataset()[["pi"]])["pi"].max()) > 1.5

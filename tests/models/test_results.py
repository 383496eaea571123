"""models.results: relabelling that an empty component cannot fool, the label-invariant group and
its diagnostics, per-observation arrays under a size limit, co-clustering."""

import numpy as np
import pytest
import xarray as xr
from arviz_stats import ess, rhat

import models.results as results
from models import GMMParams, Prior, family, load_faithful, load_iris, sample_params
from models.results import (
    coclustering_group,
    draw_pass,
    draws_to_datatree,
    invariant_diagnostics,
    label_invariant,
    log_prior_density,
    occupied_posterior,
    relabel,
)
from reports import joint
from tests.shared.helpers import PYMC_TYPES


def _tree(pi, mu, Sigma, X, covariance_type, occupied=None):
    C, D, K = pi.shape
    fam = family(covariance_type)
    post = xr.Dataset({"pi": (("chain", "draw", "component"), pi),
                       "mu": (("chain", "draw", "component", "feature"), mu),
                       "Sigma": (("chain", "draw", *fam.storage.dims), Sigma)})
    stats = xr.Dataset(coords={"chain": np.arange(C), "draw": np.arange(D)})
    if occupied is not None:
        stats["occupied"] = (("chain", "draw", "component"), occupied)
    dt = xr.DataTree.from_dict({
        "posterior": post, "sample_stats": stats,
        "observed_data": xr.Dataset({"x": (("obs_id", "feature"), X)})})
    dt.attrs["covariance_type"] = covariance_type
    return dt


def test_an_empty_component_cannot_take_an_occupied_clusters_label():
    # the reference has components at (0, 0) and (3, 0); in the draw an empty component sits
    # right on (0, 0), while the occupied cluster it stands for is at (1.2, 0). Matching every
    # component at once gives label 0 to the empty one (total cost 0 + 1.62 < 4.5 + 0.72).
    X = np.random.default_rng(0).normal(size=(50, 2))
    ref = GMMParams([0.5, 0.5], [[0.0, 0.0], [3.0, 0.0]], np.stack([np.eye(2)] * 2))
    pi = np.array([[[0.5, 0.5]]])                                   # (chain, draw, component)
    mu = np.array([[[[0.0, 0.0], [1.2, 0.0]]]])
    Sigma = np.broadcast_to(np.eye(2), (1, 1, 2, 2, 2)).copy()
    occupied = np.array([[[False, True]]])
    assert list(results.match_labels(pi[0, 0], mu[0, 0], ref)) == [0, 1]
    assert list(results.match_labels(pi[0, 0], mu[0, 0], ref, occupied=occupied[0, 0])) == [1, 0]
    out = relabel(_tree(pi, mu, Sigma, X, "full", occupied), ref)
    np.testing.assert_array_equal(out["sample_stats"]["label_permutation"].values[0, 0], [1, 0])
    np.testing.assert_array_equal(out["sample_stats"]["occupied"].values[0, 0], [True, False])
    masked = occupied_posterior(out)
    assert np.isnan(masked["mu"].values[0, 0, 1]).all() and np.isfinite(masked["mu"].values[0, 0, 0]).all()
    assert np.isnan(masked["Sigma"].values[0, 0, 1]).all()
    # without a sampler's occupancy, the expected count N pi_k >= 1 decides (both occupied here)
    out = relabel(_tree(pi, mu, Sigma, X, "full"), ref)
    assert "expected count" in out.attrs["relabel_occupied"]
    assert out["sample_stats"]["occupied"].values.all()


def test_a_nearly_empty_component_cannot_outbid_the_cluster_that_holds_the_data():
    # a tight reference cluster at (0, 0) (sd 0.1), a broad one at (4, 4) and a small, very broad
    # one at (2, 2); the draw has a one-observation component (weight 0.007) right on (0, 0), the
    # cluster itself 4 sd off it at (0.4, 0.4), and the broad one. Unweighted distances give the
    # tight label to the one-observation component (15.3 + 3.8 against 32 + 3.9); weighted by
    # the components' weights the cluster that holds the data keeps it.
    ref = GMMParams([0.35, 0.6, 0.05], [[0.0, 0.0], [4.0, 4.0], [2.0, 2.0]],
                    np.stack([0.01 * np.eye(2), np.eye(2), 9 * np.eye(2)]))
    pi = np.array([0.007, 0.35, 0.643])
    mu = np.array([[0.0, 0.0], [0.4, 0.4], [4.0, 4.0]])
    assert list(results.match_labels(pi, mu, ref)) == [1, 2, 0]
    y = np.einsum("kab,jkb->jka", np.linalg.inv(ref.cholesky), mu[:, None, :] - ref.mu)
    unweighted = (y**2).sum(-1) + (np.log(pi)[:, None] - np.log(ref.pi)) ** 2
    assert list(results._assignment(unweighted)) == [0, 2, 1]


@pytest.mark.parametrize("covariance_type", PYMC_TYPES)
def test_label_invariant_group_against_numpy_and_scipy(covariance_type):
    # references: GMMParams.log_pdf (triangular solves) and Prior.log_density (scipy's densities),
    # draw by draw
    X = load_iris()[0]
    K = 3
    prior = Prior.default(X, K, covariance_type)
    rng = np.random.default_rng(1)
    draws = [sample_params(prior, K, 4, covariance_type, rng) for _ in range(6)]
    pi, mu, Sigma = (np.stack([getattr(p, v) for p in draws]).reshape(2, 3, *getattr(draws[0], v).shape)
                     for v in ("pi", "mu", "Sigma"))
    dt = _tree(pi, mu, Sigma, X, covariance_type)
    group = label_invariant(dt, prior)                               # computed by draw_pass
    ll = np.array([p.log_pdf(X).sum() for p in draws]).reshape(2, 3)
    lp = np.array([prior.log_density(p) for p in draws]).reshape(2, 3)
    np.testing.assert_allclose(group["log_likelihood"].values, ll, rtol=1e-11)
    np.testing.assert_allclose(group["log_posterior"].values, ll + lp, rtol=1e-11)
    np.testing.assert_allclose(log_prior_density(pi, mu, Sigma, prior, family(covariance_type)), lp,
                               rtol=1e-11, atol=1e-11)
    np.testing.assert_array_equal(group["pi_sorted"].values, -np.sort(-pi, axis=-1))
    # the same from relabel's stored totals and from its pointwise group
    ref = draws[0]
    out = relabel(dt, ref)
    np.testing.assert_allclose(out["sample_stats"]["log_likelihood"].values,
                               out["log_likelihood"]["x"].sum("obs_id").values, rtol=1e-12)
    np.testing.assert_allclose(label_invariant(out, prior)["log_likelihood"].values, ll, rtol=1e-11)
    gamma = np.mean([p.permute(perm).responsibilities(X) for p, perm in
                     zip(draws, out["sample_stats"]["label_permutation"].values.reshape(6, K))], axis=0)
    np.testing.assert_allclose(out["responsibilities"]["gamma"].values, gamma, atol=1e-12)


def test_invariant_diagnostics_are_arvizs_on_each_scalar():
    rng = np.random.default_rng(2)
    C, D, K = 4, 300, 3
    pi = rng.dirichlet(np.ones(K), size=(C, D))
    group = results.invariant_group(pi, rng.normal(size=(C, D)), rng.normal(size=(C, D)))
    table = invariant_diagnostics(group)
    assert list(table.index) == ["log_likelihood", "log_posterior", "pi_sorted[0]", "pi_sorted[1]",
                                 "pi_sorted[2]"]
    x = np.sort(pi, axis=-1)[..., ::-1][..., 1]
    ds = xr.Dataset({"a": (("chain", "draw"), x)})
    dims = ["chain", "draw"]
    assert table.loc["pi_sorted[1]", "r_hat"] == pytest.approx(float(rhat(ds, sample_dims=dims)["a"]))
    assert table.loc["pi_sorted[1]", "ess_tail"] == pytest.approx(
        float(ess(ds, sample_dims=["chain", "draw"], method="tail")["a"]))


def test_pointwise_arrays_are_left_out_above_the_limit_and_kept_on_request(monkeypatch):
    X = load_faithful()[0]
    prior = Prior.default(X, 2)
    dt = joint.sample(X, 2, "full", prior=prior, draws=50, tune=50, chains=2, random_seed=1)
    assert "log_likelihood" in dt.children and "left_out" not in dt.attrs
    monkeypatch.setattr(results, "MAX_POINTWISE", 1000)
    small = joint.sample(X, 2, "full", prior=prior, draws=50, tune=50, chains=2, random_seed=1)
    assert "log_likelihood" not in small.children
    assert "log_likelihood (2 x 50 x 272" in small.attrs["left_out"]
    # the label-invariant group is the same either way
    for v in ("log_likelihood", "log_posterior", "pi_sorted"):
        np.testing.assert_allclose(small["label_invariant"][v].values, dt["label_invariant"][v].values,
                                   rtol=1e-12)
    kept = joint.sample(X, 2, "full", prior=prior, draws=50, tune=50, chains=2, random_seed=1,
                        pointwise=True)
    assert kept["log_likelihood"]["x"].shape == (2, 50, 272)


def test_draw_pass_switches_to_triangular_solves_for_a_tight_far_component():
    # a component 1e4 sd from the data's centre: the expanded quadratic form would lose digits
    X = np.random.default_rng(3).normal(size=(40, 2))
    p = GMMParams([0.5, 0.5], [[0.0, 0.0], [300.0, 0.0]], np.stack([np.eye(2), 1e-3 * np.eye(2)]))
    out = draw_pass(p.pi[None], p.mu[None], p.Sigma[None], p.family, X, pointwise=True)
    np.testing.assert_allclose(out["pointwise"][0], p.log_pdf(X), rtol=1e-13)


def test_coclustering_is_the_share_of_draws_with_the_same_label():
    rng = np.random.default_rng(4)
    z = rng.integers(0, 3, size=(37, 9))
    p = coclustering_group(z, 3)["p_same"].values
    brute = np.mean([[[zs[n] == zs[m] for m in range(9)] for n in range(9)] for zs in z], axis=0)
    np.testing.assert_allclose(p, brute, rtol=1e-12)
    # invariant to relabelling any draw
    z2 = z.copy()
    z2[5] = (z2[5] + 1) % 3
    np.testing.assert_allclose(coclustering_group(z2, 3)["p_same"].values, p)


def some_draws(S=5, K=2, covariance_type="diag", seed=0):
    X, names = load_faithful()
    rng = np.random.default_rng(seed)
    prior = Prior.default(X, K, covariance_type)
    draws = [sample_params(prior, K, 2, covariance_type, rng) for _ in range(S)]
    stack = {v: np.stack([getattr(p, v) for p in draws]) for v in ("pi", "mu", "Sigma")}
    return X, names, draws, stack


def test_draws_to_datatree_holds_each_draws_log_likelihood_and_the_mean_responsibilities():
    X, names, draws, stack = some_draws()
    dt = draws_to_datatree(stack["pi"], stack["mu"], stack["Sigma"], X, "diag", names)
    assert dt["posterior"]["Sigma"].dims == ("chain", "draw", "component", "feature")
    assert list(dt["posterior"]["feature"].values) == names
    for s, p in enumerate(draws):
        np.testing.assert_allclose(dt["log_likelihood"]["x"].values[0, s], p.log_pdf(X),
                                   rtol=1e-10)
    gamma = np.mean([np.exp(p.log_joint(X) - p.log_pdf(X)[:, None]) for p in draws], axis=0)
    np.testing.assert_allclose(dt["responsibilities"]["gamma"].values, gamma, rtol=1e-10)
    given = draws_to_datatree(stack["pi"], stack["mu"], stack["Sigma"], X, "diag",
                              gamma=np.full((272, 2), 0.5))
    assert np.all(given["responsibilities"]["gamma"].values == 0.5)


def test_a_log_likelihood_over_the_budget_is_left_out(monkeypatch):
    X, _, _, stack = some_draws()
    monkeypatch.setattr(results, "MAX_POINTWISE", 5 * 272 - 1)
    dt = draws_to_datatree(stack["pi"], stack["mu"], stack["Sigma"], X, "diag")
    assert "log_likelihood" not in dt.children and "responsibilities" in dt.children
    assert dt["posterior"]["pi"].shape == (1, 5, 2)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "spherical"])
def test_every_layout_keeps_its_dims(covariance_type):
    X, _, _, stack = some_draws(covariance_type=covariance_type)
    dt = draws_to_datatree(stack["pi"], stack["mu"], stack["Sigma"], X, covariance_type)
    assert dt["posterior"]["Sigma"].shape == (1, 5) + stack["Sigma"].shape[1:]

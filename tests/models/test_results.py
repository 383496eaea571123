"""The results schema (models/results.py): independent draws as a DataTree."""

import numpy as np
import pytest

from models import Prior, load_faithful, results, sample_params
from models.results import draws_to_datatree


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
    monkeypatch.setattr(results, "MAX_LOG_LIKELIHOOD_VALUES", 5 * 272 - 1)
    dt = draws_to_datatree(stack["pi"], stack["mu"], stack["Sigma"], X, "diag")
    assert "log_likelihood" not in dt.children and "responsibilities" in dt.children
    assert dt["posterior"]["pi"].shape == (1, 5, 2)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "spherical"])
def test_every_layout_keeps_its_dims(covariance_type):
    X, _, _, stack = some_draws(covariance_type=covariance_type)
    dt = draws_to_datatree(stack["pi"], stack["mu"], stack["Sigma"], X, covariance_type)
    assert dt["posterior"]["Sigma"].shape == (1, 5) + stack["Sigma"].shape[1:]

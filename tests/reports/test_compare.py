"""EM and VB against the posterior, scalar by scalar (reports/compare.py)."""

import numpy as np
import pytest
import xarray as xr
from scipy.stats import norm

from reports.compare import compare_vb, scalars, summary


def tree(rng, scale, shift=0.0, draws=20000, covariance="full"):
    """A posterior group of normal draws: pi (2), mu (2 x 2), Sigma (full: 2 x 2 x 2)."""
    dims = {"full": ("component", "feature", "feature_bis"), "spherical": ("component",)}[covariance]
    shape = {"full": (2, 2, 2), "spherical": (2,)}[covariance]
    ds = xr.Dataset({
        "pi": (("chain", "draw", "component"), shift + scale * rng.normal(size=(1, draws, 2))),
        "mu": (("chain", "draw", "component", "feature"),
               shift + scale * rng.normal(size=(1, draws, 2, 2))),
        "Sigma": (("chain", "draw", *dims), shift + scale * rng.normal(size=(1, draws, *shape)))},
        coords={"component": [0, 1], "feature": ["a", "b"], "feature_bis": ["a", "b"]})
    return xr.DataTree.from_dict({"posterior": ds})


@pytest.mark.parametrize("covariance", ["full", "spherical"])
def test_scalars_are_labelled_as_arviz_labels_them(covariance):
    dt = tree(np.random.default_rng(0), 1.0, draws=50, covariance=covariance)
    from reports.compare import lower_triangle

    labelled = scalars(lower_triangle(dt))
    summ = summary(dt, kind="stats", round_to="none")
    assert list(labelled) == list(summ.index)
    for label, values in labelled.items():
        assert values.mean() == pytest.approx(summ.loc[label, "mean"], rel=1e-12)


def test_coverage_sd_ratio_and_z_of_a_too_narrow_shifted_vb():
    # posterior N(0, 1), VB N(0.5, 0.5^2): VB's 89% interval 0.5 +- 0.5 * 1.598 holds
    # Phi(1.299) - Phi(-0.299) of the posterior's mass
    rng = np.random.default_rng(1)
    post, vb = tree(rng, 1.0), tree(rng, 0.5, shift=0.5)
    rows = [{"parameter": label, "mean": 0.0, "sd": 1.0} for label in summary(post).index]
    out = compare_vb(rows, vb, post)
    expected = norm.cdf(0.5 + 0.5 * norm.ppf(0.945)) - norm.cdf(0.5 - 0.5 * norm.ppf(0.945))
    for r in out:
        assert r["vb_coverage"] == pytest.approx(expected, abs=0.015)
        assert r["vb_sd_ratio"] == pytest.approx(0.5, abs=0.01)
        assert r["vb_z"] == pytest.approx(0.5, abs=0.02)
        assert r["vb_lower"] == pytest.approx(0.5 - 0.5 * norm.ppf(0.945), abs=0.02)

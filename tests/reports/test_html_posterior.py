"""The report's sections on the posterior's modes, its label-invariant quantities and allocations."""

import numpy as np
import pytest
import xarray as xr
from scipy.stats import rankdata

from models.results import invariant_diagnostics, label_invariant, with_groups
from reports import figures, html
from reports.runs import write_rows
from tests.reports.test_modes import switching_posterior


def test_allocation_order_is_by_most_probable_component_then_certainty():
    rng = np.random.default_rng(0)
    gamma = rng.dirichlet(np.ones(3) * 0.5, size=60)
    order = figures.allocation_order(gamma)
    ref = sorted(range(60), key=lambda n: (gamma[n].argmax(), -gamma[n].max()))
    np.testing.assert_array_equal(order, ref)


def test_rank_plots_are_thinned_to_half_the_smallest_ess():
    # 4 converged chains of AR(1) draws (rho = 0.6, ESS about a quarter of the draws): the
    # multi-chain rank test takes draws as independent and rejects them at p < 0.01 in about
    # half the runs; thinned as the report thins them, at about its nominal rate
    import arviz as az

    rng = np.random.default_rng(1)

    def p_value(x):
        r = (rankdata(x.ravel()).reshape(x.shape) - 0.5) / x.size
        da = xr.DataArray(r, dims=("chain", "draw"))
        return float(da.azstats.mchain_uniformity_test(dim=["chain", "draw"])[0])

    raw, thinned = [], []
    for _ in range(20):
        e = rng.standard_normal((4, 1000))
        x = np.empty_like(e)
        x[:, 0] = e[:, 0]
        for t in range(1, 1000):
            x[:, t] = 0.6 * x[:, t - 1] + 0.8 * e[:, t]
        ds = xr.Dataset({"x": (("chain", "draw"), x)})
        tree = xr.DataTree.from_dict({"posterior": ds})
        summ = az.summary(ds, kind="diagnostics", round_to="none")
        factor = html.rank_thinning(tree, summ)["stats"]["thin"]["factor"]
        assert 6 <= factor <= 12
        raw.append(p_value(x))
        thinned.append(p_value(x[:, ::factor]))
    assert np.mean(np.array(raw) < 0.01) >= 0.25
    assert np.mean(np.array(thinned) < 0.01) <= 0.1


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A posterior folder: one chain's labels swapped, a modes table, a co-clustering matrix."""
    X, prior, tree = switching_posterior(switch=True)
    gamma = tree["responsibilities"]["gamma"].values
    z = gamma.argmax(1)
    p_same = np.where(z[:, None] == z[None, :], 0.9, 0.1)
    C, D = tree["posterior"]["pi"].shape[:2]
    tree = with_groups(
        tree, label_invariant=label_invariant(tree, prior),
        coclustering=xr.Dataset({"p_same": (("obs_id", "obs_id_bis"), p_same)}),
        modes=xr.Dataset({"mode": (("chain", "draw"), np.ones((C, D), int)),
                          "local_mode": (("chain", "draw"), np.zeros((C, D), int))},
                         attrs={"em_map_mode": 1}),
        sample_stats=xr.Dataset({"diverging": (("chain", "draw"), np.zeros((C, D), bool))}))
    out = tmp_path_factory.mktemp("post")
    tree.to_netcdf(out / "posterior.nc")
    write_rows(out / "modes.csv", [
        {"mode": 1, "pi": "0.644, 0.356", "N_k": "175.1, 96.9", "log_posterior": -1157.2,
         "local_modes": 1, "restarts": 40, "share": 0.7, "em": ""},
        {"mode": 2, "pi": "0.5, 0.5", "N_k": "136.0, 136.0", "log_posterior": -1190.0,
         "local_modes": 2, "restarts": 12, "share": 0.3, "em": "EM MAP"}])
    return out, tree


def test_the_modes_invariant_and_allocation_sections(folder):
    out, tree = folder
    body = html.sections(out, skip=("data", "classification", "uncertainty", "density", "rank",
                                    "trace", "energy", "ppc", "loo_pit", "diagnostics"))
    section = body["modes"]
    assert ("EM&#x27;s MAP is a mode of the posterior with 30.0% of the draws near it (mode 2 of "
            "2). Less than half of the draws lie near EM&#x27;s MAP") in section
    assert "the posterior mode" not in section
    assert "<td>70.0%</td>" in section and "<td>-1157.20</td>" in section
    assert section.count("<img") == 1
    # the label-invariant table: the chains agree although one has swapped labels
    diag = invariant_diagnostics(tree)
    section = body["invariant"]
    assert f"max r_hat = {diag['r_hat'].max():.4f}" in section and diag["r_hat"].max() < 1.02
    assert "pi_sorted[1]" in section and section.count("<img") == 1
    assert "gives no co-clustering" not in body["allocation"]
    assert (out / "allocation.png").exists() and (out / "invariant_rank.png").exists()

"""Model selection as mclust's mclustBIC: its maxima, one agglomeration per grid, tables that read."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import em.init
from models.families import MCLUST_NAMES
from reports.select import bic_table, select_grid

ROOT = "tests/data/mclust"

# mclust 6.0.0, Mclust(X, G = 1:9) (benchmarks/mclust_select.R): its chosen model and BIC
MCLUST = {"banknote": ("VVE", 3, -1607.574), "diabetes": ("VVV", 3, -4751.316)}


@pytest.mark.parametrize("name", sorted(MCLUST))
def test_reaches_mclusts_choice_and_bic_without_a_numpy_warning(name, monkeypatch):
    X = pd.read_csv(f"{ROOT}/{name}.csv").to_numpy(float)
    calls = []
    merges = em.init.hc_merges
    monkeypatch.setattr(em.init, "hc_merges", lambda Z: calls.append(Z.shape) or merges(Z))
    monkeypatch.setattr(em.init, "_HC_CACHE", {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # no RuntimeWarning from a collapsing M-step
        rows = select_grid(X, 9)
    assert len(rows) == 14 * 9 and calls == [X.shape]   # one agglomeration serves the grid
    ok = [r for r in rows if np.isfinite(r["bic"])]
    best = min(ok, key=lambda r: r["bic"])
    model, G, bic = MCLUST[name]
    assert (best["covariance_type"], best["K"]) == (model, G)
    assert -best["bic"] >= bic - 5e-4                     # mclust's sign: as high or higher
    assert all(r["error"] and "\n" not in r["error"] for r in rows if r not in ok)


def test_one_subsample_serves_every_fit_of_a_large_grid(monkeypatch):
    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(size=(1500, 2)), rng.normal(size=(1500, 2)) + 6])
    calls = []
    merges = em.init.hc_merges
    monkeypatch.setattr(em.init, "hc_merges", lambda Z: calls.append(Z.shape) or merges(Z))
    monkeypatch.setattr(em.init, "_HC_CACHE", {})
    rows = select_grid(X, 3, ["VVV", "EII", "VEE"])
    assert calls == [(em.init.HC_MAX_ROWS, 2)]            # mclust's one subset, once
    assert min(rows, key=lambda r: r["bic"])["K"] == 2


def test_bic_table_keeps_seven_digit_values_apart():
    rows = [{"K": K, "covariance_type": ct, "bic": 27811242.257933 + 1000 * i + K,
             "icl": np.nan} for i, ct in enumerate(MCLUST_NAMES) for K in (1, 2)]
    rows[3]["bic"] = np.nan                                # a failed fit
    text = bic_table(rows)
    lines = text.splitlines()
    header = lines[1].split()
    assert header == ["K", *MCLUST_NAMES]
    for line in lines[2:4]:
        cells = line.split()
        assert len(cells) == 15 and cells[0] in ("1", "2")
        for c in cells[1:]:
            assert c == "failed" or re.fullmatch(r"\d{8}\.\d{2}", c), c
    assert "27811243.26" in lines[2] and "27811244.26" in lines[3]
    top = lines[lines.index("Top 3 models based on the BIC criterion:") + 1:]
    assert top[0].split() == ["EII,1", "EII,2", "VII,1"]
    assert top[1].split() == ["27811243.26", "27811244.26", "27812243.26"]



def test_select_prints_seven_digit_criteria_in_full(tmp_path, capsys):
    from models import GMMParams, simulate
    from reports.cli import main

    truth = GMMParams([0.5, 0.5], [[0.0, 0.0], [5.0, 5.0]], np.stack([np.eye(2)] * 2))
    X, _ = simulate(truth, 1500, np.random.default_rng(2))
    path = tmp_path / "big.csv"                # values near 1e100: BIC near 1.4e6
    path.write_text("a,b\n" + "\n".join(f"{u!r},{v!r}" for u, v in (X * 1e100).tolist()))
    code = main(["select", str(path), "--kmax", "2", "--types", "VVV,EII,VII", "--out",
                 str(tmp_path / "s")])
    out = capsys.readouterr().out
    assert code == 0
    grid = [line.split() for line in out.splitlines()[2:4]]
    assert all(len(cells) == 4 for cells in grid), out
    bics = [float(c) for cells in grid for c in cells[1:]]
    assert min(bics) > 1e6
    top = out.split("log_likelihood")[1].splitlines()[1:4]
    shown = [line.split()[-2] for line in top]             # the bic column, two decimals
    assert all(re.fullmatch(r"\d{7}\.\d{2}", b) for b in shown) and len(set(shown)) == 3, top


def test_an_unconverged_fit_says_so_in_one_line_not_a_warning(tmp_path, capsys, monkeypatch):
    # EM capped at one iteration: the fits that did not converge say so in their rows, and the
    # command prints one line for each, no Python warning
    import reports.select
    from reports.cli import main

    fit = em.fit
    monkeypatch.setattr(reports.select.em, "fit", lambda *a, **k: fit(*a, **{**k, "max_iter": 1}))
    code = main(["select", "iris", "--kmax", "3", "--types", "VVV,EII", "--out",
                 str(tmp_path / "s")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Warning" not in err
    rows = pd.read_csv(tmp_path / "s" / "select.csv")
    unconverged = rows[~rows["converged"] & rows["error"].isna()]
    assert len(unconverged) >= 2
    lines = [line for line in out.splitlines() if line.startswith("not converged:")]
    assert lines == [f"not converged: K={r.K} {r.covariance_type}: EM stopped at its iteration "
                     "limit; its criteria are the last iterate's"
                     for r in unconverged.itertuples()]

import argparse
import base64
import csv
import io
import json
import os
import re
import shutil
from pathlib import Path

import arviz as az
import arviz_plots as azp
import numpy as np
import pytest
import xarray as xr
from PIL import Image
from scipy.stats import kstest

import em
import reports.joint
from models import Prior, load_faithful
from models.results import (
    loo_pit_view,
    point_to_datatree,
    point_to_params,
    with_groups,
)
from models.seeds import seed_sequence
from reports.cli import main
from reports.html import SECTIONS
from reports.joint import em_to_datatree

FAST = ["--draws", "150", "--tune", "150", "--chains", "2"]


def read_rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_writes_csv_with_z(tmp_path, capsys):
    code, out, _ = run(capsys, "simulate", "-n", "300", "-k", "3", "-d", "2", "--seed", "4",
                       "--out", str(tmp_path / "sim"))
    assert code == 0 and "wrote 300 draws" in out
    with open(tmp_path / "sim" / "simulated.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 300 and list(rows[0]) == ["x0", "x1", "z"]
    z = np.array([int(r["z"]) for r in rows])
    params = json.loads((tmp_path / "sim" / "params.json").read_text())
    assert set(z) <= {0, 1, 2}
    counts = np.bincount(z, minlength=3) / 300
    assert np.all(np.abs(counts - np.array(params["pi"])) < 5 * np.sqrt(0.25 / 300))


def test_fit_writes_em_datatree(tmp_path, capsys):
    code, out, _ = run(capsys, "fit", "faithful", "-k", "2", "--out", str(tmp_path / "fit"))
    assert code == 0
    res = em.fit(load_faithful()[0], 2)
    assert f"{res.bic:.4f}" in out and "mu[eruptions]" in out
    dt = xr.open_datatree(tmp_path / "fit" / "em.nc")
    np.testing.assert_allclose(np.sort(dt["posterior"]["pi"].values.ravel()), np.sort(res.params.pi),
                               rtol=1e-8)
    assert dt.attrs["bic"] == pytest.approx(res.bic)
    assert dt["responsibilities"]["gamma"].shape == (272, 2)
    # MAP
    code, out, _ = run(capsys, "fit", "faithful", "-k", "2", "--map", "--out",
                       str(tmp_path / "fitmap"))
    assert code == 0 and xr.open_datatree(tmp_path / "fitmap" / "em.nc").attrs["method"] == "em-map"


def test_fit_reads_csv_columns_and_npy(tmp_path, capsys):
    X, _ = load_faithful()
    path = tmp_path / "d.csv"
    with open(path, "w") as fh:
        fh.write("name,a,b\n")
        for i, (u, v) in enumerate(X):
            fh.write(f"r{i},{u},{v}\n")
    code, out, err = run(capsys, "fit", str(path), "--columns", "a,b", "-k", "2", "--out",
                         str(tmp_path / "o1"))
    assert code == 0, err
    np.save(tmp_path / "d.npy", X)
    code, out2, _ = run(capsys, "fit", str(tmp_path / "d.npy"), "-k", "2", "--out",
                        str(tmp_path / "o2"))
    assert code == 0
    bic = re.search(r"BIC (\S+)", out).group(1)
    assert bic == re.search(r"BIC (\S+)", out2).group(1)


def test_select_ranks_grid(tmp_path, capsys):
    code, out, _ = run(capsys, "select", "faithful", "--kmax", "3", "--out", str(tmp_path / "s"))
    assert code == 0
    with open(tmp_path / "s" / "select.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 42                                  # mclust's 14 models x K = 1..3
    best = min(rows, key=lambda r: float(r["bic"]))
    assert f"best by BIC: K={best['K']} {best['covariance_type']}" in out
    # mclust's published result for Old Faithful: EEE (tied), 3 components, BIC -2314.3
    assert (best["K"], best["covariance_type"]) == ("3", "EEE")
    assert float(best["bic"]) == pytest.approx(2314.3, abs=0.1)
    # mclust's layout: models as columns, K as rows, the top three beneath
    header = next(line for line in out.splitlines() if line.lstrip().startswith("K "))
    assert header.split() == ["K", "EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE",
                              "VVE", "EEV", "VEV", "EVV", "VVV"]
    assert "Top 3 models based on the BIC criterion:" in out
    assert out.split("Top 3 models based on the BIC criterion:")[1].split()[0] == "EEE,3"
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        ".gmm-manifest.json", "em.nc", "run.json", "select.csv"]   # the figures: gmm report


def test_sample_with_one_chain_has_no_r_hat_and_no_error(tmp_path, capsys):
    # r_hat needs two chains: with one the summary's r_hat is NaN, and that is no problem
    code, out, err = run(capsys, "sample", "faithful", "-k", "2", "--draws", "100", "--tune",
                         "100", "--chains", "1", "--out", str(tmp_path / "one"))
    assert code == 0, err
    assert xr.open_datatree(tmp_path / "one" / "posterior.nc")["posterior"]["mu"].shape == (
        1, 100, 2, 2)


def test_fit_vb_writes_the_variational_posterior(tmp_path, capsys):
    code, out, _ = run(capsys, "fit", "faithful", "-k", "2", "--vb", "--out", tmp_path / "vb")
    assert code == 0 and "ELBO" in out and "effective components 2 of 2" in out
    X, _ = load_faithful()
    fit_seq, _ = seed_sequence(0, "--seed").spawn(2)
    res = em.fit(X, 2, "full", prior=Prior.default(X, 2, "full"), method="vb",
                 random_state=fit_seq)
    assert f"{res.elbo:.6f}" in out
    dt = xr.open_datatree(tmp_path / "vb" / "vb.nc")
    assert dt.attrs["method"] == "vb" and dt.attrs["elbo"] == pytest.approx(res.elbo)
    assert {"posterior", "variational", "responsibilities", "log_likelihood",
            "observed_data"} <= set(dt.children)
    assert dt["posterior"]["mu"].shape == (1, 1000, 2, 2)       # draws of q, one chain
    assert dt["log_likelihood"]["x"].shape == (1, 1000, 272)
    q = res.posterior
    v = dt["variational"]
    np.testing.assert_allclose(v["mu"].values, q.m, rtol=1e-10)
    np.testing.assert_allclose(v["alpha"].values, q.alpha, rtol=1e-10)
    np.testing.assert_allclose(v["sigma_shape"].values, q.shape, rtol=1e-10)
    np.testing.assert_allclose(v["Sigma"].values, q.mean()["Sigma"], rtol=1e-10)
    np.testing.assert_allclose(dt["responsibilities"]["gamma"].values, res.gamma, atol=1e-12)
    # the draws are q's: their means within 4 Monte-Carlo standard errors of q's means
    draws = dt["posterior"]["mu"].values[0]
    se = draws.std(axis=0) / np.sqrt(1000)
    assert np.all(np.abs(draws.mean(axis=0) - q.m) < 4 * se)
    assert run(capsys, "report", tmp_path / "vb")[0] == 0
    page = (tmp_path / "vb" / "index.html").read_text()
    assert "<img" in page.split('id="data"')[1].split("</section>")[0]


def test_sample_compare_and_report(tmp_path, capsys):
    code, out, _ = run(capsys, "sample", "faithful", "-k", "2", *FAST, "--out",
                       str(tmp_path / "p"))
    assert code == 0 and "r_hat" in out
    dt = xr.open_datatree(tmp_path / "p" / "posterior.nc")
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data",
            "responsibilities", "posterior_predictive", "label_invariant",
            "modes"} <= set(dt.children)
    assert dt["posterior"]["mu"].shape == (2, 150, 2, 2)
    # the chains start at EM's best local mode, the first row of the modes table
    assert "modes of the posterior: EM's MAP from 52 restarts reaches 1 local mode(s)" in out
    assert dt["modes"].attrs["em_map_mode"] == 1 and (dt["modes"]["mode"] == 1).all()
    inv = dt["label_invariant"]
    np.testing.assert_allclose(inv["log_likelihood"], dt["log_likelihood"]["x"].sum("obs_id"))

    code, out, _ = run(capsys, "compare", "faithful", "-k", "2", *FAST, "--out",
                       str(tmp_path / "c"))
    assert code == 0
    with open(tmp_path / "c" / "comparison.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 + 4 + 2 * 3          # each covariance entry once: lower triangle
    assert [r["parameter"] for r in rows if r["parameter"].startswith("Sigma[0")] == [
        "Sigma[0, eruptions, eruptions]", "Sigma[0, waiting, eruptions]",
        "Sigma[0, waiting, waiting]"]
    assert {"em", "em_mle", "mean", "sd", "lower", "upper", "r_hat", "ess_bulk"} <= set(rows[0])
    for r in rows:
        assert float(r["lower"]) <= float(r["mean"]) <= float(r["upper"])
        # the MLE on the posterior's labels: near the posterior, not 40-90 sd away
        assert abs(float(r["em_mle"]) - float(r["mean"])) < 5 * float(r["sd"]), r
    assert "responsibilities: mean |EM - posterior|" in out
    # variational Bayes under the same prior: on Old Faithful it is right, scalar by scalar
    assert {"vb", "vb_sd", "vb_lower", "vb_upper", "vb_coverage", "vb_sd_ratio"} <= set(rows[0])
    for r in rows:
        assert 0.7 < float(r["vb_coverage"]) < 0.99, r
        assert 0.75 < float(r["vb_sd_ratio"]) < 1.25, r
        assert abs(float(r["vb"]) - float(r["mean"])) < 0.5 * float(r["sd"]), r
    assert "VB's 89% ETI intervals hold" in out
    # the modes table: EM's local modes, each row's share of the draws, EM beside its own; the
    # comparison's mode_mean is the mean over the draws of EM's MAP's mode
    assert "modes of the posterior: EM's MAP from 52 restarts" in out
    assert "EM's MAP is at the one mode of the posterior that EM reaches" in out
    modes_rows = read_rows(tmp_path / "c" / "modes.csv")
    assert [r["em"] for r in modes_rows] == ["EM MAP, EM MLE"]
    assert float(modes_rows[0]["share"]) == 1.0 and modes_rows[0]["pi"].startswith("0.64")
    assert (tmp_path / "c" / "local_modes.csv").exists()
    for r in rows:
        assert float(r["mode_mean"]) == pytest.approx(float(r["mean"]), rel=1e-9)
    # one interval convention: ArviZ's default (the summary's own columns)
    post = xr.open_datatree(tmp_path / "c" / "posterior.nc")
    summ = az.summary(post, var_names=["pi"], round_to="none")
    lb = [c for c in summ.columns if c.endswith("_lb")][0]
    assert lb == f"eti{round(100 * az.rcParams['stats.ci_prob'])}_lb"
    assert float(rows[0]["lower"]) == pytest.approx(summ.loc["pi[0]", lb], rel=1e-12)
    # DataTrees a user can work with: column names as coordinates, LOO-PIT
    by_name = az.summary(post, var_names=["mu"], coords={"feature": ["waiting"]})
    assert list(by_name.index) == ["mu[0, waiting]", "mu[1, waiting]"]
    pp = post["posterior_predictive"]["x"]
    assert pp.sizes["chain"] == 2 and pp.sizes["draw"] == 150
    assert post["log_likelihood"]["x"].dims == ("chain", "draw", "obs_id")   # az.loo per row
    view = loo_pit_view(post)
    pit = az.loo_pit(view)["x"].values
    assert pit.shape == (272, 2) and np.all((pit >= 0) & (pit <= 1 + 1e-12))
    assert kstest(pit.ravel(), "uniform").pvalue > 1e-3   # a model that fits: LOO-PIT ~ U(0, 1)
    pc = azp.plot_loo_pit(view, backend="matplotlib")
    pc.savefig(tmp_path / "loo_pit.png")
    Image.open(tmp_path / "loo_pit.png").verify()

    code, out, _ = run(capsys, "report", str(tmp_path / "c"))
    assert code == 0
    page = (tmp_path / "c" / "index.html").read_text()
    for sid in ("data", "forest", "comparison", "variational", "rank", "trace",
                "responsibilities", "ppc", "diagnostics", "modes", "invariant", "allocation"):
        assert f'id="{sid}"' in page
        section = page.split(f'id="{sid}"')[1].split("</section>")[0]
        assert "Not available" not in section, sid
    assert 'id="energy"' not in page       # the default route, Gibbs, has no energy to plot


def test_demo_report_has_every_section(tmp_path, capsys):
    code, out, _ = run(capsys, "demo", "--kmax", "3", *FAST, "--out", str(tmp_path / "demo"))
    assert code == 0 and "report:" in out
    folder = tmp_path / "demo"
    page = (folder / "index.html").read_text()
    for sid in (s.id for s in SECTIONS if s.id != "energy"):   # Gibbs, the default, has none
        section = page.split(f'id="{sid}"')[1].split("</section>")[0]
        assert "Not available" not in section, sid
        assert "How to read it" in section
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    # data, classification, uncertainty, density, selection, modes, invariant_rank, rank, trace,
    # forest, variational, ppc, loo_pit, gamma, allocation, loo (the default route, Gibbs, has no
    # energy)
    assert len(images) == 16
    for b64 in images:
        Image.open(io.BytesIO(base64.b64decode(b64))).verify()
    pngs = sorted(folder.glob("*.png"))
    assert len(pngs) == 16
    for p in pngs:
        Image.open(p).verify()
    record = json.loads((folder / "run.json").read_text())
    assert record["seed"] == 0 and "pymc=" in record["versions"] and "sample_s" in record["timings"]
    assert "K=3 tied" in record["model"]
    # K = 2 feeds the LOO table (K = 4 is above --kmax); with two cores it is the neighbour the
    # helper process samples, alongside the chosen model
    assert "sample_K2_s" in record["timings"] and "sample_K4_s" not in record["timings"]
    assert (folder / "posterior_K2.nc").exists() and not (folder / "posterior_K4.nc").exists()
    assert xr.open_datatree(folder / "posterior_K2.nc")["posterior"]["pi"].shape == (2, 150, 2)
    if (os.cpu_count() or 1) >= 2:
        assert "in a second process: K = 2" in out
        # the chosen model's sections were built while the helper sampled: the page is the one
        # a report of the finished folder renders in one go
        assert "report_early_s" in record["timings"]
        shutil.copytree(folder, tmp_path / "again")
        assert run(capsys, "report", str(tmp_path / "again"))[0] == 0
        assert (tmp_path / "again" / "index.html").read_text() == page
    dt = xr.open_datatree(folder / "posterior.nc")
    assert dt["posterior"]["pi"].shape == (2, 150, 3)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["fit", "no/such/file.csv", "-k", "2"], "does not exist"),
        (["fit", "NONCSV", "--columns", "name", "-k", "2"], "not numeric"),
        (["fit", "NANCSV", "-k", "2", "--no-missing"], "missing value at row 2, column 'a'"),
        (["fit", "EMPTYROW", "-k", "1"], "row 2 of .* has no observed value"),
        (["fit", "NANCSV", "-k", "1", "--no-missing", "--complete-rows"], "not allowed with"),
        (["fit", "faithful", "-k", "300"], "exceeds the number of observations"),
        (["fit", "faithful", "-k", "2", "--covariance-type", "fullish"], "invalid choice"),
        (["fit", "faithful"], "required: -k"),
        (["fit", "faithful", "-k", "2", "--vb", "--covariance-type", "VEV"],
         "--vb needs a conjugate family"),
        (["fit", "faithful", "-k", "2", "--vb", "--map"], "not allowed with argument"),
        (["fit", "faithful", "-k", "2", "--out", "EXISTING"], "gmm did not write"),
        (["fit", "faithful", "-k", "2", "--out", "EXISTING", "--force"], "gmm did not write"),
        (["select", "faithful", "--types", "full,fullish"], "unknown covariance type"),
        (["select", "faithful", "--kmin", "4", "--kmax", "3"], "--kmin 4 is above --kmax 3"),
        (["sample", "faithful", "-k", "2", "--mode-restarts", "10"],
         "'10' restarts cannot map the modes; use at least 50"),
        (["predict", "no/such/folder", "faithful"], "neither a results folder"),
        (["report", "no/such/folder"], "does not exist"),
        # an option the command does not have: its own help named, not "gmm gmm -h"
        (["report", "EXISTING", "--force"], r"unrecognized arguments: --force \(see gmm report -h\)$"),
        (["nosuch"], r"invalid choice: 'nosuch'.*\(see gmm -h\)$"),
        # the API's fixes in the command's terms: the column by name, options it has
        (["fit", "CONSTCSV", "-k", "2"],
         r"column 'b' is constant.*--exclude b; or add --map \(MAP"),
        (["select", "CONSTCSV", "--kmax", "2"], r"column 'b' is constant.*--exclude b"),
        # a table of counts (as scikit-learn's digits): every constant column named at once, and
        # no integer column mistaken for labels
        (["fit", "COUNTSCSV", "-k", "2"],
         r"^gmm: error: column 'c0' is constant, so every covariance is singular in it: leave "
         r"the constant columns 'c0' and 'c3' out with --exclude c0,c3; or add --map \(MAP under "
         r"mclust's conjugate prior\)\.$"),
        (["fit", "LABELCSV", "-k", "3"],
         r"collapsed onto a point.*leave label column 'z' \(integers 0 to 2\) out with --exclude z"
         r"; add --map .*; or lower -k\.$"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, capsys, argv, match):
    (tmp_path / "bad.csv").write_text("name,a\nx,1.0\ny,2.0\n")
    (tmp_path / "nan.csv").write_text("a,b\n1.0,2.0\nnan,3.0\n4.0,5.0\n")
    (tmp_path / "empty.csv").write_text("a,b\n1.0,2.0\nNA,\n4.0,5.0\n")
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("user data")
    rng = np.random.default_rng(0)
    (tmp_path / "const.csv").write_text("a,b,c\n" + "".join(
        f"{u!r},7,{v!r}\n" for u, v in rng.normal(size=(60, 2)).tolist()))
    # gmm simulate's file as it is, the labels z included: three separated clusters
    (tmp_path / "labels.csv").write_text("a,b,z\n" + "".join(
        f"{u!r},{v!r},{k}\n" for k in range(3) for u, v in (rng.normal(size=(60, 2)) + 5 * k
                                                          ).tolist()))
    counts = rng.integers(0, 17, size=(60, 5))
    counts[:, 0], counts[:, 3] = 0, 5
    (tmp_path / "counts.csv").write_text("c0,c1,c2,c3,c4\n" + "".join(
        ",".join(map(str, row)) + "\n" for row in counts.tolist()))
    subst = {"NONCSV": str(tmp_path / "bad.csv"), "NANCSV": str(tmp_path / "nan.csv"),
             "COUNTSCSV": str(tmp_path / "counts.csv"),
             "EMPTYROW": str(tmp_path / "empty.csv"),
             "CONSTCSV": str(tmp_path / "const.csv"), "LABELCSV": str(tmp_path / "labels.csv"),
             "EXISTING": str(existing)}
    argv = [subst.get(a, a) for a in argv]
    if "--out" not in argv and argv[0] != "report":
        argv += ["--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as info:
        code = main(argv)
        raise SystemExit(code)
    assert info.value.code == 2
    _, err = capsys.readouterr()
    # one line, after the progress bar of a fit that ran before it failed
    lines = [line for line in err.strip().splitlines() if "%|" not in line and line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gmm: error:") and "Traceback" not in err, err
    assert re.search(match, lines[0]), lines[0]
    assert "prior=" not in lines[0] and "reg_covar" not in lines[0] and "array(" not in lines[0]
    assert (existing / "keep.txt").read_text() == "user data"


def test_version_and_every_help(capsys):
    from reports.cli import build_parser, version

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"gmm {version()}" and version() != "unknown"
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {"simulate", "fit", "select", "sample", "compare", "predict",
                                "impute", "report", "demo"}
    for name, sp in sub.choices.items():
        text = sp.format_help()
        assert sp.description and len(sp.description) > 40, name
        for action in sp._actions:
            if action.dest == "help":
                continue
            assert action.help, (name, action.dest)
            if action.choices:
                assert "{" + ",".join(map(str, action.choices)) + "}" in text, (name, action.dest)
            flat = " ".join(text.split())
            if action.option_strings and not any(
                    action.default is v for v in (None, False, argparse.SUPPRESS)):
                shown = action.default if not isinstance(action.default, list) else None
                assert "default" in action.help or f"(default: {shown})" in flat, (name, action.dest)
        assert "(default: None)" not in text, name


def test_select_range_types_and_failures(tmp_path, capsys):
    parser_defaults = __import__("reports.cli", fromlist=["build_parser"]).build_parser()
    args = parser_defaults.parse_args(["select", "faithful"])
    assert (args.kmin, args.kmax) == (1, 9)                 # mclust's default G = 1:9
    # 12 rows at four distinct points: K >= 5 cannot be fitted by ML
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), 3, axis=0)
    X = X + 1e-3 * np.random.default_rng(0).standard_normal(X.shape)
    path = tmp_path / "four.csv"
    path.write_text("a,b\n" + "\n".join(f"{u!r},{v!r}" for u, v in X.tolist()) + "\n")
    code, out, err = run(capsys, "select", path, "--kmin", "2", "--kmax", "6", "--types",
                         "full,spherical", "--out", tmp_path / "s")
    assert code == 0, err
    with open(tmp_path / "s" / "select.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {(int(r["K"]), r["covariance_type"]) for r in rows} == {
        (K, ct) for K in range(2, 7) for ct in ("full", "spherical")}
    failed = [r for r in rows if r["error"]]
    assert failed and all(int(r["K"]) >= 5 for r in failed)
    said = {}                                   # "failed: full (K=5-6): ..." -> full: {5, 6}
    for line in out.splitlines():
        m = re.match(r"failed: (\w+) \(K=([\d, -]+)\): ", line)
        if m:
            for part in m.group(2).split(", "):
                lo, _, hi = part.partition("-")
                said.setdefault(m.group(1), set()).update(range(int(lo), int(hi or lo) + 1))
    assert said == {ct: {int(r["K"]) for r in failed if r["covariance_type"] == ct}
                    for ct in {r["covariance_type"] for r in failed}}
    assert "K=4 spherical" in out or "K=4 full" in out
    best = xr.open_datatree(tmp_path / "s" / "em.nc")
    assert best.attrs["n_components"] == 4


def test_map_says_once_which_types_have_no_conjugate_prior(tmp_path, capsys):
    # as mclust: under --map the 4 types without a conjugate prior have no fit; one line each
    code, out, err = run(capsys, "select", "faithful", "--kmax", "3", "--map", "--out",
                         tmp_path / "s")
    assert code == 0, err
    lines = [line for line in out.splitlines() if "no conjugate prior" in line]
    assert lines == [f"failed: {ct} (K=1-3): no conjugate prior for a MAP fit (mclust has none "
                     "either); fit by maximum likelihood." for ct in ("VEE", "EVE", "VVE", "EVV")]
    assert "prior=None" not in out + err
    code, out, err = run(capsys, "select", "faithful", "--types", "VVE", "--map", "--out",
                         tmp_path / "t")
    assert code == 2 and not (tmp_path / "t").exists()
    assert err.endswith("\ngmm: error: every fit in the grid failed: VVE (K=1-9): no conjugate "
                        "prior for a MAP fit (mclust has none either); fit by maximum "
                        "likelihood.\n")                    # after the progress bar
    code, out, err = run(capsys, "fit", "faithful", "-k", "2", "--covariance-type", "VVE",
                         "--map", "--out", tmp_path / "f")
    assert code == 2 and "prior=None" not in err
    assert "--map needs a covariance type with a conjugate prior" in err


def test_predict_from_em_and_from_posterior(tmp_path, capsys):
    from scipy.stats import multivariate_normal

    X, names = load_faithful()
    new = tmp_path / "new.csv"            # the model's columns, reordered, plus another column
    new.write_text("id,waiting,eruptions\n" + "\n".join(
        f"r{i},{w!r},{e!r}" for i, (e, w) in enumerate(X[:40].tolist())) + "\n")

    def reference_gamma(tree):
        ct, post = tree.attrs["covariance_type"], tree["posterior"]
        total = 0
        for c in range(post.sizes["chain"]):
            for t in range(post.sizes["draw"]):
                p = point_to_params({v: post[v].values[c, t] for v in ("pi", "mu", "Sigma")},
                                    ct).to_full()
                dens = np.column_stack([p.pi[k] * multivariate_normal(p.mu[k], p.Sigma[k]).pdf(
                    X[:40]) for k in range(p.K)])
                total = total + dens / dens.sum(axis=1, keepdims=True)
        return total / (post.sizes["chain"] * post.sizes["draw"])

    assert run(capsys, "fit", "faithful", "-k", "2", "--out", tmp_path / "fit")[0] == 0
    code, out, err = run(capsys, "predict", tmp_path / "fit", new, "--out", tmp_path / "p1")
    assert code == 0, err
    assert "with the EM fit" in out
    with open(tmp_path / "p1" / "predict.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["row", "component", "uncertainty", "gamma_0", "gamma_1"]
    gamma = np.array([[float(r["gamma_0"]), float(r["gamma_1"])] for r in rows])
    ref = reference_gamma(xr.open_datatree(tmp_path / "fit" / "em.nc"))
    np.testing.assert_allclose(gamma, ref, atol=1e-10)
    np.testing.assert_array_equal([int(r["component"]) for r in rows], ref.argmax(axis=1))
    np.testing.assert_allclose([float(r["uncertainty"]) for r in rows], 1 - ref.max(axis=1),
                               atol=1e-10)
    # from a posterior: gamma averaged over every draw
    assert run(capsys, "sample", "faithful", "-k", "2", "--draws", "30", "--tune", "100",
               "--chains", "2", "--out", tmp_path / "post")[0] == 0
    code, out, err = run(capsys, "predict", tmp_path / "post" / "posterior.nc", new, "--out",
                         tmp_path / "p2")
    assert code == 0 and "with the posterior" in out, err
    with open(tmp_path / "p2" / "predict.csv") as fh:
        gamma = np.array([[float(r["gamma_0"]), float(r["gamma_1"])] for r in csv.DictReader(fh)])
    ref = reference_gamma(xr.open_datatree(tmp_path / "post" / "posterior.nc"))
    np.testing.assert_allclose(gamma, ref, atol=1e-10)
    # data without the model's columns: one line naming them
    code, _, err = run(capsys, "predict", tmp_path / "fit", "iris", "--out", tmp_path / "p3")
    assert code == 2 and "has 2 features (eruptions, waiting)" in err
    assert run(capsys, "report", tmp_path / "p2")[0] == 0
    assert (tmp_path / "p2" / "classification.png").exists()


def _synthetic_posterior(X, names, K, seed=0, diverging=0):
    """A posterior-shaped tree around an EM fit (2 chains x 40 draws), for the report."""
    res = em.fit(X, K, "diag")
    rng = np.random.default_rng(seed)
    tree = point_to_datatree(res.params, X, names)
    post = tree["posterior"].to_dataset()
    C, D = 2, 40
    noisy = {}
    for v in ("pi", "mu", "Sigma"):
        base = post[v].values[0, 0]
        jitter = 1 + 0.01 * rng.standard_normal((C, D, *base.shape))
        val = base * jitter
        if v == "pi":
            val = val / val.sum(axis=-1, keepdims=True)
        noisy[v] = (post[v].dims, val)
    coords = {c: post[c].values for c in post.coords if c not in ("chain", "draw")}
    new_post = xr.Dataset(noisy, coords={"chain": np.arange(C), "draw": np.arange(D), **coords})
    div = np.zeros((C, D), bool)
    div.flat[:diverging] = True
    stats = xr.Dataset({"diverging": (("chain", "draw"), div),
                        "energy": (("chain", "draw"), rng.standard_normal((C, D)))},
                       coords={"chain": np.arange(C), "draw": np.arange(D)})
    out = with_groups(tree, posterior=new_post, sample_stats=stats)
    out.attrs["method"] = "nuts"
    return res, out


def test_report_on_every_folder_and_13_dimensions(tmp_path, capsys):
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True).frame
    path = tmp_path / "wine.csv"
    wine.to_csv(path, index=False)
    assert run(capsys, "fit", path, "--exclude", "target", "-k", "3", "--covariance-type", "diag",
               "--out", tmp_path / "w")[0] == 0
    assert run(capsys, "select", "faithful", "--kmax", "2", "--out", tmp_path / "s")[0] == 0
    assert run(capsys, "simulate", "-n", "200", "-d", "3", "--out", tmp_path / "sim")[0] == 0
    for folder in ("w", "s", "sim"):
        code, _, err = run(capsys, "report", tmp_path / folder)
        assert code == 0, (folder, err)
        page = (tmp_path / folder / "index.html").read_text()
        for sid in ("data", "classification", "uncertainty", "density"):
            section = page.split(f'id="{sid}"')[1].split("</section>")[0]
            assert "Not available" not in section and "<img" in section, (folder, sid)
    page = (tmp_path / "w" / "index.html").read_text()
    assert "first 8 principal components of the standardised features" in page
    s_page = (tmp_path / "s" / "index.html").read_text()
    assert "Not available" not in s_page.split('id="selection"')[1].split("</section>")[0]
    # a 13-D posterior with a divergence: plots within ArviZ's limits, and a warning banner
    X = wine.drop(columns="target").to_numpy()
    names = list(wine.columns[:-1])
    res, post = _synthetic_posterior(X, names, 3, diverging=1)
    folder = tmp_path / "p13"
    folder.mkdir()
    post.to_netcdf(folder / "posterior.nc")
    em_to_datatree(res, X, names).to_netcdf(folder / "em_map.nc")
    code, _, err = run(capsys, "report", folder)
    assert code == 0, err
    page = (folder / "index.html").read_text()
    banner = page.split("<h1>")[1].split('<section id="data">')[0]
    assert 'class="banner"' in banner and "1 divergent transition" in banner
    for sid in ("rank", "trace", "forest", "diagnostics"):
        section = page.split(f'id="{sid}"')[1].split("</section>")[0]
        assert "Not available" not in section, sid
    assert "mu of the first" in page.split('id="rank"')[1].split("</section>")[0]
    assert "Sigma[2, proline]" in page     # the table lists every scalar


def test_a_failed_report_leaves_the_folder_as_it_was(tmp_path, capsys, monkeypatch):
    from reports import figures

    assert run(capsys, "fit", "faithful", "-k", "2", "--out", tmp_path / "f")[0] == 0
    before = sorted(p.name for p in (tmp_path / "f").iterdir())

    def broken(*args, **kwargs):
        raise ValueError("a figure failed")
    monkeypatch.setattr(figures, "mclust_plot", broken)
    code, _, err = run(capsys, "report", tmp_path / "f")
    assert code == 2 and "a figure failed" in err
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == before


def test_sample_warns_on_divergences_and_r_hat(tmp_path, capsys, monkeypatch):
    X, names = load_faithful()
    _, bad = _synthetic_posterior(X, names, 2, diverging=3)
    shifted = bad["posterior"].to_dataset()
    shifted["mu"] = shifted["mu"] + xr.DataArray([0.0, 0.5], dims="chain")  # chains disagree
    bad = with_groups(bad, posterior=shifted)
    monkeypatch.setattr(reports.joint, "sample", lambda *a, **k: bad)
    code, out, err = run(capsys, "sample", "faithful", "-k", "2", "--covariance-type", "diag",
                         "--out", tmp_path / "p")
    assert code == 0, err
    warning = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1
    assert "3 divergent transition(s)" in warning[0] and "r_hat" in warning[0]
    assert run(capsys, "report", tmp_path / "p")[0] == 0
    assert 'class="banner"' in (tmp_path / "p" / "index.html").read_text()


def _wine_csv(tmp_path):
    from sklearn.datasets import load_wine

    path = tmp_path / "wine.csv"
    load_wine(as_frame=True).data.to_csv(path, index=False)
    return path


def test_a_collapsed_fit_fails_and_is_never_sampled(tmp_path, capsys, monkeypatch):
    # wine, unscaled, VVI under mclust's prior: every EM restart empties two components
    # (pi = (5e-16, 1, 0)); mclust returns no fit (mclustBIC(X, G = 1:3, modelNames = "VVI",
    # prior = priorControl()): -15071.39, NA, NA)
    path = _wine_csv(tmp_path)
    code, out, err = run(capsys, "fit", path, "-k", "3", "--covariance-type", "VVI", "--map",
                         "--out", tmp_path / "f")
    assert code == 2 and "converged" not in out
    assert re.search(r"gmm: error: component \d is empty \(N_k = .* observations\): K = 3 "
                        r"is too many for VVI here, and the columns' variances differ by a "
                        r"factor of 6\.4e\+06: lower -k; or scale the columns before the fit "
                        r"\(as mclust's examples do\)\.\n$", err), err
    assert not (tmp_path / "f").exists()

    def sampled(*args, **kwargs):
        raise AssertionError("sampled from a collapsed fit")

    monkeypatch.setattr(reports.joint, "sample", sampled)
    code, _, err = run(capsys, "sample", path, "-k", "3", "--covariance-type", "VVI", "--out",
                       tmp_path / "p")
    assert code == 2 and "K = 3 is too many for VVI here" in err and "sampled" not in err
    code, out, err = run(capsys, "select", path, "--types", "VVI", "--kmin", "1", "--kmax", "3",
                         "--map", "--out", tmp_path / "s")
    assert code == 0, err
    rows = {int(r["K"]): r for r in read_rows(tmp_path / "s" / "select.csv")}
    assert float(rows[1]["bic"]) == pytest.approx(15071.39, abs=0.01)
    for K in (2, 3):
        assert rows[K]["bic"] == "nan" and rows[K]["converged"] == "False"
        assert rows[K]["error"].startswith("component ") and "is empty" in rows[K]["error"]
        assert f"failed: VVI (K={K}): component " in out
    # mclust's layout: failed cells, no BIC, and the top models are the fits that did not fail
    assert [line.split() for line in out.splitlines() if line[:3].strip() in ("2", "3")] == [
        ["2", "failed"], ["3", "failed"]]
    assert out.split("Top 3 models based on the BIC criterion:")[1].split()[:2] == [
        "VVI,1", "15071.39"]
    assert "NaN" not in out and "nan" not in out


@pytest.mark.slow(cpu_s=60)
def test_iris_modes_by_gibbs(tmp_path, capsys):
    # iris, K = 3 full, Prior.default: the configuration near (0.60, 0.33, 0.065) holds 85-99 %
    # of the draws and the three species at most 5 % (bayesm's 4 x 100,000 sweeps: 98.8 % nearer
    # the first, the species about 0.3 %; tests/data/bayesm). Needs the Gibbs route, run until
    # its label-invariant quantities converge (a fixed 4 x 2,000 draws gave 87 % at ESS 14).
    code, out, err = run(capsys, "sample", "iris", "-k", "3", "--sampler", "gibbs", "--out",
                         tmp_path / "g")
    assert code == 0, err
    rows = read_rows(tmp_path / "g" / "modes.csv")
    weights = [np.array([float(v) for v in r["pi"].split(", ")]) for r in rows]
    major = [r for r, w in zip(rows, weights)
             if np.all(np.abs(w - [0.60, 0.33, 0.065]) <= 0.05)]
    species = [r for r, w in zip(rows, weights) if np.all(np.abs(w - 1 / 3) <= 0.05)]
    assert len(major) == 1 and 0.85 <= float(major[0]["share"]) <= 0.99
    assert sum(float(r["share"]) for r in species) <= 0.05
    assert major[0]["em"] == "EM MAP" and "so it is the posterior mode" in out
    code, _, err = run(capsys, "report", tmp_path / "g")
    assert code == 0, err
    page = (tmp_path / "g" / "index.html").read_text()
    section = page.split('id="allocation"')[1].split("</section>")[0]
    assert "co-clustering" in section and "gives no co-clustering" not in section


def test_r_and_excel_files_are_read_right_through_the_command(tmp_path, capsys):
    data = Path(__file__).parents[1] / "data" / "csv"
    code, out, err = run(capsys, "fit", data / "write_csv.csv", "-k", "1", "--out", tmp_path / "a")
    assert code == 0, err
    assert "first column is R's row names (write.csv); dropped it" in err
    tree = xr.open_datatree(tmp_path / "a" / "em.nc")
    assert list(tree["observed_data"]["feature"].values) == ["a", "b", "c d"]
    code, out, err = run(capsys, "fit", data / "write_csv2.csv", "-k", "1", "--out", tmp_path / "b")
    assert code == 0, err
    assert "semicolon-separated with decimal commas" in err
    again = xr.open_datatree(tmp_path / "b" / "em.nc")
    np.testing.assert_array_equal(again["observed_data"]["x"].values,
                                  tree["observed_data"]["x"].values)
    headless = tmp_path / "headless.csv"
    headless.write_text("1.5,2\n2.5,3\n3.5,5\n")
    code, out, err = run(capsys, "fit", headless, "-k", "1", "--out", tmp_path / "c")
    assert code == 2 and "pass --no-header" in err
    code, out, err = run(capsys, "fit", headless, "-k", "1", "--no-header", "--out", tmp_path / "c")
    assert code == 0, err
    assert list(xr.open_datatree(tmp_path / "c" / "em.nc")["observed_data"]["feature"].values) == [
        "x0", "x1"]


def _faithful_with_holes(tmp_path):
    """Old Faithful with 15 % of its cells missing at random, written as R writes NA."""
    X, names = load_faithful()
    rng = np.random.default_rng(30)
    Xm = X.copy()
    Xm[rng.random(X.shape) < 0.15] = np.nan
    Xm[np.isnan(Xm).all(axis=1), 0] = X[np.isnan(Xm).all(axis=1), 0]
    path = tmp_path / "holes.csv"
    path.write_text(",".join(names) + "\n" + "\n".join(
        ",".join("NA" if np.isnan(v) else repr(v) for v in row) for row in Xm.tolist()) + "\n")
    return Xm, names, path


def test_fit_select_and_impute_with_missing_cells(tmp_path, capsys):
    from models.results import point_of

    Xm, names, path = _faithful_with_holes(tmp_path)
    before = path.read_bytes()
    absent = np.isnan(Xm)
    code, out, err = run(capsys, "fit", path, "-k", "2", "--out", tmp_path / "fit")
    assert code == 0, err
    assert f"{absent.sum()} cells missing in {absent.any(axis=1).sum()} of 272 rows" in err
    res = em.fit(Xm, 2)
    tree = xr.open_datatree(tmp_path / "fit" / "em.nc")
    assert tree.attrs["log_likelihood"] == pytest.approx(res.log_likelihood, rel=1e-10)
    assert tree.attrs["log_likelihood"] == pytest.approx(point_of(tree).log_pdf(Xm).sum(),
                                                         rel=1e-10)
    # --complete-rows: the fit of the complete rows
    code, out, err = run(capsys, "fit", path, "-k", "2", "--complete-rows", "--out",
                         tmp_path / "fit2")
    assert code == 0 and f"dropped {absent.any(axis=1).sum()} rows of 272" in err
    complete = em.fit(Xm[~absent.any(axis=1)], 2)
    assert xr.open_datatree(tmp_path / "fit2" / "em.nc").attrs["bic"] == pytest.approx(
        complete.bic, rel=1e-10)
    # impute from the fit: the conditional means, and the conditional sd of each cell
    code, out, err = run(capsys, "impute", tmp_path / "fit", path, "--out", tmp_path / "imp")
    assert code == 0, err
    assert path.read_bytes() == before
    params = point_of(tree)
    done = np.loadtxt(tmp_path / "imp" / "imputed.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(done, em.impute(Xm, params), rtol=1e-12)
    with open(tmp_path / "imp" / "missing_cells.csv") as fh:
        cells = list(csv.DictReader(fh))
    assert len(cells) == absent.sum() and list(cells[0]) == ["row", "column", "value", "sd"]
    c = cells[0]
    row = Xm[int(c["row"]) - 1]
    cond = params.condition(row, ~np.isnan(row))        # one feature missing: a 1-D mixture
    mean = cond.pi @ cond.mu[:, 0]
    var = cond.pi @ (cond.Sigma[:, 0, 0] + cond.mu[:, 0] ** 2) - mean**2
    assert float(c["value"]) == pytest.approx(mean, rel=1e-10)
    assert float(c["sd"]) == pytest.approx(np.sqrt(var), rel=1e-8)
    assert run(capsys, "report", tmp_path / "imp")[0] == 0
    # predict: each row's responsibilities from its observed cells
    code, out, err = run(capsys, "predict", tmp_path / "fit", path, "--out", tmp_path / "pred")
    assert code == 0, err
    with open(tmp_path / "pred" / "predict.csv") as fh:
        gamma = np.array([[float(r["gamma_0"]), float(r["gamma_1"])] for r in csv.DictReader(fh)])
    np.testing.assert_allclose(gamma, params.responsibilities(Xm), atol=1e-10)
    # from a posterior: each draw imputes once; the value is their mean, with their spread
    from models.results import posterior_imputations
    from models.seeds import seed_sequence

    _, post = _synthetic_posterior(Xm, names, 2)
    (tmp_path / "post").mkdir()
    post.to_netcdf(tmp_path / "post" / "posterior.nc")
    code, out, err = run(capsys, "impute", tmp_path / "post", path, "--out", tmp_path / "imp2")
    assert code == 0 and "the mean of 80 posterior draws' imputations" in out, err
    draws = posterior_imputations(xr.open_datatree(tmp_path / "post" / "posterior.nc"), Xm,
                                  seed_sequence(0, "--seed"))
    with open(tmp_path / "imp2" / "missing_cells.csv") as fh:
        cells = list(csv.DictReader(fh))
    values = draws[:, absent]
    np.testing.assert_allclose([float(c["value"]) for c in cells], values.mean(axis=0),
                               rtol=1e-12)
    np.testing.assert_allclose([float(c["sd"]) for c in cells], values.std(axis=0, ddof=1),
                               rtol=1e-10)
    assert all(float(c["q05"]) < float(c["value"]) < float(c["q95"]) for c in cells)
    # no missing cell: nothing to impute
    code, _, err = run(capsys, "impute", tmp_path / "fit", "faithful", "--out", tmp_path / "i3")
    assert code == 2 and "has no missing cell" in err
    # select on the data with holes
    code, out, err = run(capsys, "select", path, "--kmax", "2", "--types", "VVV,VII", "--out",
                         tmp_path / "sel")
    assert code == 0, err
    best = xr.open_datatree(tmp_path / "sel" / "em.nc")
    assert best.attrs["n_components"] == 2
    assert run(capsys, "report", tmp_path / "fit")[0] == 0


def test_sample_and_impute_from_the_posterior_with_missing_cells(tmp_path, capsys):
    # the default route (Gibbs) draws the missing cells as latent values; gmm impute from the
    # sample folder averages one imputation per posterior draw, whose spread covers the
    # parameters' uncertainty: each cell's sd at least the EM fit's conditional sd
    Xm, names, path = _faithful_with_holes(tmp_path)
    absent = np.isnan(Xm)
    code, out, err = run(capsys, "sample", path, "-k", "2", "--out", tmp_path / "s")
    assert code == 0, err
    assert f"{absent.sum()} cells missing" in err and "converged after" in out
    post = xr.open_datatree(tmp_path / "s" / "posterior.nc")
    assert np.isnan(post["observed_data"]["x"].values).sum() == absent.sum()
    assert np.isfinite(post["label_invariant"]["log_likelihood"].values).all()
    assert run(capsys, "fit", path, "-k", "2", "--out", tmp_path / "f")[0] == 0
    for folder in ("s", "f"):
        code, out, err = run(capsys, "impute", tmp_path / folder, path, "--out",
                             tmp_path / f"imp-{folder}")
        assert code == 0, err
    cells = {f: read_rows(tmp_path / f"imp-{f}" / "missing_cells.csv") for f in ("s", "f")}
    assert len(cells["s"]) == len(cells["f"]) == absent.sum()
    assert {"q05", "q95"} <= set(cells["s"][0]) and "q05" not in cells["f"][0]
    sd_post = np.array([float(c["sd"]) for c in cells["s"]])
    sd_em = np.array([float(c["sd"]) for c in cells["f"]])
    assert np.median(sd_post / sd_em) > 0.9
    values = np.array([[float(c["value"]) for c in cells[f]] for f in ("s", "f")])
    assert np.abs(values[0] - values[1]).max() < 3 * sd_em.max()
    assert run(capsys, "report", tmp_path / "s")[0] == 0

import base64
import csv
import io
import json
import os
import re

import numpy as np
import pytest
import xarray as xr
from PIL import Image

import em
from models import load_faithful
from reports.cli import main
from reports.html import SECTIONS

FAST = ["--draws", "150", "--tune", "150", "--chains", "2"]


def run(capsys, *argv):
    code = main(list(argv))
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
    assert len(rows) == 12
    best = min(rows, key=lambda r: float(r["bic"]))
    assert f"best by BIC: K={best['K']} {best['covariance_type']}" in out
    # mclust's published result for Old Faithful: EEE (tied), 3 components, BIC -2314.3
    assert (best["K"], best["covariance_type"]) == ("3", "tied")
    assert float(best["bic"]) == pytest.approx(2314.3, abs=0.1)
    Image.open(tmp_path / "s" / "select.png").verify()


def test_sample_compare_and_report(tmp_path, capsys):
    code, out, _ = run(capsys, "sample", "faithful", "-k", "2", *FAST, "--out",
                       str(tmp_path / "p"))
    assert code == 0 and "r_hat" in out
    dt = xr.open_datatree(tmp_path / "p" / "posterior.nc")
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data",
            "responsibilities", "posterior_predictive"} <= set(dt.children)
    assert dt["posterior"]["mu"].shape == (2, 150, 2, 2)

    code, out, _ = run(capsys, "compare", "faithful", "-k", "2", *FAST, "--out",
                       str(tmp_path / "c"))
    assert code == 0
    with open(tmp_path / "c" / "comparison.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 + 4 + 8
    assert {"em", "em_mle", "mean", "sd", "lower", "upper", "r_hat", "ess_bulk"} <= set(rows[0])
    for r in rows:
        assert float(r["lower"]) <= float(r["mean"]) <= float(r["upper"])
    assert "responsibilities: mean |EM - posterior|" in out

    code, out, _ = run(capsys, "report", str(tmp_path / "c"))
    assert code == 0
    page = (tmp_path / "c" / "index.html").read_text()
    for sid in ("data", "forest", "comparison", "rank", "trace", "energy", "responsibilities",
                "ppc", "diagnostics"):
        assert f'id="{sid}"' in page
        section = page.split(f'id="{sid}"')[1].split("</section>")[0]
        assert "Not available" not in section, sid


def test_demo_report_has_every_section(tmp_path, capsys):
    code, out, _ = run(capsys, "demo", "--kmax", "3", *FAST, "--out", str(tmp_path / "demo"))
    assert code == 0 and "report:" in out
    folder = tmp_path / "demo"
    page = (folder / "index.html").read_text()
    for sid, title, how in SECTIONS:
        section = page.split(f'id="{sid}"')[1].split("</section>")[0]
        assert "Not available" not in section, sid
        assert "How to read it" in section
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 9  # data, selection, rank, trace, energy, forest, ppc, gamma, loo
    for b64 in images:
        Image.open(io.BytesIO(base64.b64decode(b64))).verify()
    pngs = sorted(folder.glob("*.png"))
    assert len(pngs) == 9
    for p in pngs:
        Image.open(p).verify()
    record = json.loads((folder / "run.json").read_text())
    assert record["seed"] == 0 and "pymc=" in record["versions"] and "sample_s" in record["timings"]
    assert "K=3 tied" in record["model"]
    # K = 2 feeds the LOO table (K = 4 is above --kmax); with two cores it samples alongside
    assert "sample_K2_s" in record["timings"] and "sample_K4_s" not in record["timings"]
    assert (folder / "posterior_K2.nc").exists() and not (folder / "posterior_K4.nc").exists()
    assert xr.open_datatree(folder / "posterior_K2.nc")["posterior"]["pi"].shape == (2, 150, 2)
    if (os.cpu_count() or 1) >= 2:
        assert "alongside in a second process" in out
    dt = xr.open_datatree(folder / "posterior.nc")
    assert dt["posterior"]["pi"].shape == (2, 150, 3)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["fit", "no/such/file.csv"], "does not exist"),
        (["fit", "NONCSV", "--columns", "name"], "not numeric"),
        (["fit", "NANCSV"], "NaN"),
        (["fit", "faithful", "-k", "300"], "exceeds the number of observations"),
        (["fit", "faithful", "--covariance-type", "fullish"], "unknown covariance type"),
        (["fit", "faithful", "--out", "EXISTING"], "--force"),
        (["report", "no/such/folder"], "does not exist"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, capsys, argv, match):
    (tmp_path / "bad.csv").write_text("name,a\nx,1.0\ny,2.0\n")
    (tmp_path / "nan.csv").write_text("a,b\n1.0,2.0\nnan,3.0\n4.0,5.0\n")
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("user data")
    subst = {"NONCSV": str(tmp_path / "bad.csv"), "NANCSV": str(tmp_path / "nan.csv"),
             "EXISTING": str(existing)}
    argv = [subst.get(a, a) for a in argv]
    if "--out" not in argv and argv[0] != "report":
        argv += ["--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as info:
        code = main(argv)
        raise SystemExit(code)
    assert info.value.code == 2
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.search(match, lines[0]), lines[0]
    assert (existing / "keep.txt").read_text() == "user data"

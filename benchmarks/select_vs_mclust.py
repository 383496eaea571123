"""``gmm select`` against R mclust's ``Mclust(X, G = 1:9)``, whole process against whole process.

Both fit mclust's 14 models for K = 1..9 and choose one by BIC. For each data set the two
commands run in turn, ``--repeats`` times, alternating which goes first, so that both see the
same load; the wall seconds are the whole process's (start-up, imports and writing the results
included). Each row also holds the model each chose and the BIC each reached for mclust's choice
(mclust's sign: higher is better).

The data: mclust's ``banknote`` and ``diabetes`` (``tests/data/mclust``), scikit-learn's wine
(unscaled) and a simulated set of N = 100,000 rows, d = 5, K = 4 (seeded here).

Usage, from the repository root (``Rscript`` with mclust on the PATH)::

    python benchmarks/select_vs_mclust.py --json benchmarks/results_select_vs_mclust.json
    python benchmarks/docs_tables.py     # the table in docs/performance.md
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import GMMParams, simulate  # noqa: E402

DATA = ("banknote", "diabetes", "wine", "sim100k")
G_MAX = 9


def write_data(name, folder):
    """The data set ``name`` as a CSV file with a header; its path."""
    if name in ("banknote", "diabetes"):
        return ROOT / "tests/data/mclust" / f"{name}.csv"
    path = Path(folder) / f"{name}.csv"
    if name == "wine":
        from sklearn.datasets import load_wine

        bunch = load_wine()
        X, names = bunch.data, bunch.feature_names
    else:
        rng = np.random.default_rng(20261205)
        A = rng.normal(size=(4, 5, 5))
        truth = GMMParams(pi=[0.4, 0.3, 0.2, 0.1], mu=rng.normal(scale=3.0, size=(4, 5)),
                          Sigma=A @ A.transpose(0, 2, 1) / 5 + 0.5 * np.eye(5))
        X, _ = simulate(truth, 100_000, rng)
        names = [f"x{j + 1}" for j in range(5)]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        w.writerows(X.tolist())
    return path


def timed(cmd):
    """Run ``cmd``; its wall seconds and standard output (raises on a non-zero exit)."""
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "MPLBACKEND": "Agg"})
    return time.perf_counter() - t, out.stdout


def ours(folder):
    """``select.csv`` as {(model, K): BIC in mclust's sign}, and the chosen (model, K)."""
    with open(Path(folder) / "select.csv") as fh:
        rows = list(csv.DictReader(fh))
    bic = {(r["covariance_type"], int(r["K"])): -float(r["bic"]) for r in rows}
    finite = {k: v for k, v in bic.items() if np.isfinite(v)}
    return bic, max(finite, key=finite.get)


def target(mclust_s, name):
    """The target time: mclust's on the large set, else twice it or 3 s when it is below 1.5 s."""
    if name == "sim100k":
        return mclust_s
    return 3.0 if mclust_s < 1.5 else 2.0 * mclust_s


def bench(name, path, repeats, folder):
    gmm = Path(sys.executable).parent / "gmm"
    r_cmd = ["Rscript", str(ROOT / "benchmarks/mclust_select.R"), str(path), str(G_MAX)]
    out = Path(folder) / f"select-{name}"
    g_cmd = [str(gmm), "select", str(path), "--kmax", str(G_MAX), "--out", str(out), "--force"]
    r_s, g_s, mclust = [], [], None
    for i in range(repeats):
        for which in ((0, 1) if i % 2 == 0 else (1, 0)):
            if which == 0:
                s, text = timed(r_cmd)
                r_s.append(s)
                mclust = json.loads(text.strip().splitlines()[-1])
            else:
                g_s.append(timed(g_cmd)[0])
        print(f"{name}: mclust {r_s[-1]:.2f} s, gmm select {g_s[-1]:.2f} s", flush=True)
    bic, chosen = ours(out)
    key = (mclust["model"], mclust["G_chosen"])
    mclust_s, gmm_s = float(np.median(r_s)), float(np.median(g_s))
    return {"data": name, "n": mclust["n"], "d": mclust["d"], "mclust_s": r_s, "gmm_s": g_s,
            "mclust_median_s": mclust_s, "gmm_median_s": gmm_s, "target_s": target(mclust_s, name),
            "mclust_model": f"{key[0]},{key[1]}", "mclust_bic": mclust["bic"],
            "gmm_model": f"{chosen[0]},{chosen[1]}", "gmm_bic": bic[chosen],
            "gmm_bic_at_mclust_model": bic[key], "mclust_seconds_in_r": mclust["seconds_mclust"],
            "mclust": mclust["mclust"]}


def machine():
    """The CPU, and the BLAS each side calls (NumPy's kernel, R's library)."""
    from threadpoolctl import threadpool_info

    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), platform.processor())
    ours = sorted({(i["internal_api"], i.get("architecture"), i["num_threads"])
                   for i in threadpool_info() if i["user_api"] == "blas"})
    r_blas = subprocess.run(["Rscript", "-e", "cat(La_library(), extSoftVersion()[['BLAS']])"],
                            capture_output=True, text=True).stdout.strip()
    return f"{model}, {os.cpu_count()} cores; NumPy BLAS {ours}; R BLAS {r_blas or 'unknown'}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="runs of each command per data set")
    ap.add_argument("--only", help="comma-separated data sets (default: all)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    names = args.only.split(",") if args.only else DATA
    load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            rows.append(bench(name, write_data(name, folder), args.repeats, folder))
    result = {"date": datetime.date.today().isoformat(), "machine": machine(),
              "load_average_before": load[0], "load_average_after": os.getloadavg()[0],
              "repeats": args.repeats, "rows": rows}
    for r in rows:
        print(f"{r['data']}: mclust {r['mclust_median_s']:.2f} s ({r['mclust_model']}, BIC "
              f"{r['mclust_bic']:.3f}); gmm select {r['gmm_median_s']:.2f} s ({r['gmm_model']}, "
              f"BIC {r['gmm_bic']:.3f}; at mclust's model {r['gmm_bic_at_mclust_model']:.3f}); "
              f"target {r['target_s']:.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

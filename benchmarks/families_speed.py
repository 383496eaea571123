"""Seconds per EM iteration for every covariance family, beside scikit-learn and mclust.

``python benchmarks/families_speed.py [--n 100000] [--d 10] [--k 8] [--iters 5] [--json out.json]``

One run times, on the same simulated data: ``em.fit`` for each of mclust's 14 models, scikit-learn's
``GaussianMixture`` for the four it has (VII = spherical, VVI = diag, EEE = tied, VVV = full), and
mclust's ``em()`` for each model when ``Rscript`` with mclust is on the PATH. Every fit starts from
the same parameters and runs a fixed number of iterations (tolerance 0), so the figure is the cost
of one E-step plus one M-step. Prints the CPU, the BLAS kernel, and each family's ratio to the
fastest of its closest built-in relative (the family with the same storage among VII, VVI, EEE,
VVV) and to mclust. ``--json benchmarks/results_families_speed.json`` also writes the times, from
which ``benchmarks/docs_tables.py`` makes the table of ``docs/performance.md``.
"""

import argparse
import json
import platform
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_info

import em
from models import MCLUST_NAMES, GMMParams, family, simulate

RELATIVE = {"spherical": "VII", "diag": "VVI", "tied": "EEE", "full": "VVV"}

R_SCRIPT = r"""
suppressMessages(library(mclust))
X <- as.matrix(read.csv(commandArgs(TRUE)[1]))
z <- as.matrix(read.csv(commandArgs(TRUE)[2]))
iters <- as.integer(commandArgs(TRUE)[3])
out <- NULL
for (m in commandArgs(TRUE)[-(1:4)]) {
  start <- mstep(modelName = m, data = X, z = z)
  t <- system.time(em(modelName = m, data = X, parameters = start$parameters,
                      control = emControl(itmax = c(iters, iters), tol = c(0, 0))))[["elapsed"]]
  out <- rbind(out, data.frame(model = m, seconds = t / iters))
}
write.csv(out, commandArgs(TRUE)[4], row.names = FALSE)
"""


def random_mixture(rng, K, d):
    """K well-separated components with random full covariances."""
    A = rng.normal(size=(K, d, d))
    Sigma = A @ np.swapaxes(A, 1, 2) / d + 0.5 * np.eye(d)
    return GMMParams(rng.dirichlet(np.full(K, 5.0)), rng.normal(scale=2.0, size=(K, d)), Sigma)


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    flags = Path("/proc/cpuinfo").read_text()
    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    blas = "; ".join(f"{i['internal_api']} {i.get('architecture', '?')} {i['num_threads']} threads"
                     for i in threadpool_info() if i["user_api"] == "blas")
    return f"CPU: {cpu} ({simd}); BLAS: {blas}"


def ours(X, K, name, start_gamma, iters):
    start = em.m_step(X, start_gamma, name)
    em.fit(X, K, name, init=start, max_iter=1, tol=0.0)                   # compile, warm caches
    t = time.perf_counter()
    em.fit(X, K, name, init=start, max_iter=iters, tol=0.0)
    return (time.perf_counter() - t) / iters


def sklearn(X, K, ct, start_gamma, iters):
    p = em.m_step(X, start_gamma, ct)
    prec = np.linalg.inv(p.Sigma) if ct in ("full", "tied") else 1.0 / p.Sigma
    kw = dict(n_components=K, covariance_type=ct, weights_init=p.pi, means_init=p.mu,
              precisions_init=prec, tol=0.0, reg_covar=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GaussianMixture(max_iter=1, **kw).fit(X)
        t = time.perf_counter()
        GaussianMixture(max_iter=iters + 1, **kw).fit(X)
        t1 = time.perf_counter() - t
        t = time.perf_counter()
        GaussianMixture(max_iter=1, **kw).fit(X)
        t0 = time.perf_counter() - t
    return (t1 - t0) / iters


def mclust(X, gamma, iters, names):
    if shutil.which("Rscript") is None:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pd.DataFrame(X).to_csv(tmp / "X.csv", index=False)
        pd.DataFrame(gamma).to_csv(tmp / "z.csv", index=False)
        (tmp / "time.R").write_text(R_SCRIPT)
        run = subprocess.run(["Rscript", str(tmp / "time.R"), str(tmp / "X.csv"),
                              str(tmp / "z.csv"), str(iters), str(tmp / "out.csv"), *names],
                             capture_output=True, text=True)
        if run.returncode != 0:
            print("mclust failed:", run.stderr.strip().splitlines()[-1:])
            return {}
        out = pd.read_csv(tmp / "out.csv")
    return dict(zip(out["model"], out["seconds"]))


def main():
    warnings.simplefilter("ignore")                       # fixed iteration counts never converge
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=10)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--json", help="also write the times here (benchmarks/results_families_speed.json)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    X = simulate(random_mixture(rng, args.k, args.d), args.n, rng)[0]
    gamma = em.fit(X, args.k, "VVI", init="k-means++", n_init=1, max_iter=3,
                   tol=0.0).params.responsibilities(X)
    print(machine())
    print(f"N = {args.n}, d = {args.d}, K = {args.k}, {args.iters} iterations from one start")
    rows = []
    for name in MCLUST_NAMES:
        rows.append({"model": name, "ours_s": ours(X, args.k, name, gamma, args.iters)})
    table = pd.DataFrame(rows).set_index("model")
    for name, ct in (("VII", "spherical"), ("VVI", "diag"), ("EEE", "tied"), ("VVV", "full")):
        table.loc[name, "sklearn_s"] = sklearn(X, args.k, ct, gamma, args.iters)
    for name, s in mclust(X, gamma, args.iters, MCLUST_NAMES).items():
        table.loc[name, "mclust_s"] = s
    fastest = {}
    for name in RELATIVE.values():
        fastest[name] = np.nanmin(table.loc[name, ["ours_s", "sklearn_s"]].to_numpy(float))
    table["vs_relative"] = [table.loc[n, "ours_s"] / fastest[RELATIVE[family(n).storage.name]]
                            for n in table.index]
    if "mclust_s" in table:
        table["mclust_over_ours"] = table["mclust_s"] / table["ours_s"]
    print(table.to_string(float_format="{:.4f}".format))
    if args.json:
        def seconds(name, column):
            value = table.loc[name].get(column)
            return None if value is None or np.isnan(value) else float(value)

        rows = [{"model": name, **{c: seconds(name, c) for c in ("ours_s", "sklearn_s", "mclust_s")}}
                for name in table.index]
        Path(args.json).write_text(json.dumps(
            {"machine": machine(), "N": args.n, "d": args.d, "K": args.k, "iters": args.iters,
             "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()

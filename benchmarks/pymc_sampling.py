"""Time to first posterior per NUTS route, cold and warm, side by side in one run.

For each data set and each route of ``models.pymc.sample`` (``--sampler``: PyMC's NUTS on
PyTensor's numba or C backend, nutpie on its numba or its JAX backend, and blackjax (default) or
numpyro on JAX), a fresh process does what a user does: import, load the data, fit EM for the
start, sample 4 chains x 1000 draws (after 1000 tuning steps) and relabel. It runs twice: first
with empty PyTensor, numba and JAX caches (cold), then with the caches the first run left (warm).
Reported per run: the whole process's wall time (the time to first posterior), the sampling
call's own time, the bulk ESS of the slowest scalar of ``pi``, ``mu`` and ``Sigma`` per second of
sampling, and the largest r_hat; and whether the cold and warm draws are bit-identical.

Data: Old Faithful K = 2 (full), iris K = 3 (full) and a simulated N = 100,000, d = 5, K = 4 set.
The peer is PyMC's own example model (``pm.Mixture`` of ``MvNormal`` with LKJ priors, PyMC's
NUTS), sampled warm on Old Faithful in the same run.

Usage: python benchmarks/pymc_sampling.py [--sets faithful iris sim] [--routes numba ...]
[--draws N] [--iris-draws N] [--sim-draws N] [--timeout S] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROUTES = ("blackjax", "numpyro", "nutpie-jax", "numba", "nutpie", "c")
SETS = ("faithful", "iris", "sim")
LABELS = {"faithful": "Old Faithful K=2", "iris": "iris K=3", "sim": "simulated N=100,000 d=5 K=4"}


def machine():
    from threadpoolctl import threadpool_info

    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                if line.startswith("model name")), "unknown CPU")
    simd = "AVX-512" if "avx512f" in info else "AVX2" if "avx2" in info else "no AVX2"
    blas = [(i["internal_api"], i.get("architecture"), i["num_threads"]) for i in threadpool_info()]
    return f"CPU: {cpu} ({simd}), {os.cpu_count()} cores; BLAS: {blas}"


def data(name):
    """The benchmark's data sets: (X, K)."""
    from models import GMMParams, load_faithful, load_iris, simulate

    if name == "faithful":
        return load_faithful()[0], 2
    if name == "iris":
        return load_iris()[0], 3
    rng = np.random.default_rng(0)
    K, d = 4, 5
    truth = GMMParams(np.full(K, 0.25), rng.normal(scale=4.0, size=(K, d)),
                      np.stack([np.eye(d)] * K))
    return simulate(truth, 100_000, rng)[0], K


def worker(route, name, draws):
    """One user's first posterior; prints a JSON line."""
    warnings.simplefilter("ignore")
    import arviz as az

    from models import Prior
    from reports import joint

    X, K = data(name)
    t = time.perf_counter()
    dt = joint.sample(X, K, "full", prior=Prior.default(X, K), draws=draws, tune=draws,
                      chains=4, random_seed=0, sampler=route)
    call = time.perf_counter() - t
    summ = az.summary(dt, var_names=["pi", "mu", "Sigma"], round_to="none")
    ess = float(summ["ess_bulk"].min())
    draws_hash = hashlib.sha1(np.ascontiguousarray(dt["posterior"]["mu"].values).tobytes())
    sampling = float(dt.attrs["time_sampling_s"])
    print(json.dumps({"call_s": call, "sampling_s": sampling, "min_ess_bulk": ess,
                      "ess_per_s": ess / sampling, "max_r_hat": float(summ["r_hat"].max()),
                      "divergences": int(dt["sample_stats"]["diverging"].sum()),
                      "draws_sha1": draws_hash.hexdigest()}))


def first_posterior(route, name, draws, env, timeout=None):
    t = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-W", "ignore", __file__, "--worker", route, name,
                            "--draws", str(draws)], env=env, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"stopped after {timeout:g} s (--timeout)", "wall_s": None}
    wall = time.perf_counter() - t
    if r.returncode:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1][:200], "wall_s": wall}
    return {"wall_s": wall} | json.loads(r.stdout.strip().splitlines()[-1])


def cold_and_warm(route, name, draws, timeout=None):
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={cache}/pytensor",
                   NUMBA_CACHE_DIR=f"{cache}/numba", JAX_COMPILATION_CACHE_DIR=f"{cache}/jax",
                   XDG_CACHE_HOME=f"{cache}/xdg", PYTHONPATH=str(HERE.parent))
        cold = first_posterior(route, name, draws, env, timeout)
        warm = first_posterior(route, name, draws, env, timeout)
    return cold, warm


def lkj_peer(draws):
    """PyMC's example model on Old Faithful, warm: pm.Mixture of MvNormal with LKJ priors."""
    import arviz as az
    import pymc as pm

    X, K = data("faithful")
    d = X.shape[1]
    with pm.Model() as model:
        w = pm.Dirichlet("w", np.ones(K))
        comps = []
        for k in range(K):
            chol, _, _ = pm.LKJCholeskyCov(f"chol{k}", n=d, eta=2.0,
                                           sd_dist=pm.Exponential.dist(1.0 / X.std(0).mean()),
                                           compute_corr=True)
            mu = pm.Normal(f"mu{k}", X.mean(0), 10 * X.std(0), shape=d)
            comps.append(pm.MvNormal.dist(mu=mu, chol=chol))
        pm.Mixture("x", w=w, comp_dists=comps, observed=X)
    kw = dict(draws=draws, tune=draws, chains=4, random_seed=1, progressbar=False, model=model,
              compute_convergence_checks=False, nuts_sampler="pymc")
    pm.sample(**(kw | {"draws": 20, "tune": 20}))                  # compile: warm numbers
    t = time.perf_counter()
    dt = pm.sample(**kw)
    seconds = time.perf_counter() - t
    summ = az.summary(dt, var_names=["w", "mu0", "mu1"], round_to="none")
    return {"sampling_s": seconds, "min_ess_bulk": float(summ["ess_bulk"].min()),
            "ess_per_s": float(summ["ess_bulk"].min()) / seconds,
            "max_r_hat": float(summ["r_hat"].max())}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    ap.add_argument("--routes", nargs="+", choices=ROUTES, default=list(ROUTES))
    ap.add_argument("--draws", type=int, default=1000, help="draws and tuning steps per chain")
    ap.add_argument("--iris-draws", type=int, default=None,
                    help="draws on iris (default: --draws; K = 3 full mixes slowly, and the C "
                    "backend's gradient is the slowest)")
    ap.add_argument("--sim-draws", type=int, default=None,
                    help="draws on the N = 100,000 set (default: --draws)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds a process may run; a route past it gets a row that says so")
    ap.add_argument("--json")
    ap.add_argument("--worker", nargs=2, metavar=("ROUTE", "SET"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(*args.worker, args.draws)
        return
    print(machine(), flush=True)
    results, peer = [], None
    for name in args.sets:
        draws = {"iris": args.iris_draws, "sim": args.sim_draws}.get(name) or args.draws
        for route in args.routes:
            cold, warm = cold_and_warm(route, name, draws, args.timeout)
            row = {"data": LABELS[name], "route": route, "draws": f"4x{draws}",
                   "cold_s": cold["wall_s"], "warm_s": warm["wall_s"],
                   "sampling_s": warm.get("sampling_s"), "ess_per_s": warm.get("ess_per_s"),
                   "min_ess": warm.get("min_ess_bulk"), "r_hat": warm.get("max_r_hat"),
                   "divergences": warm.get("divergences"),
                   "same_draws": (cold["draws_sha1"] == warm["draws_sha1"]
                                  if "draws_sha1" in cold and "draws_sha1" in warm else None),
                   "error": cold.get("error") or warm.get("error")}
            results.append(row)
            print(json.dumps(row), flush=True)
    if "faithful" in args.sets:
        peer = lkj_peer(args.draws)
        print(f"peer, Old Faithful K=2, pm.Mixture + LKJ (PyMC NUTS, warm): {json.dumps(peer)}")
        for row in results:
            if row["data"] == LABELS["faithful"] and row["ess_per_s"]:
                row["ess_per_s_vs_peer"] = row["ess_per_s"] / peer["ess_per_s"]
    import pandas as pd

    table = pd.DataFrame(results).drop(columns=["error"])
    print(table.to_string(index=False, float_format="{:.3g}".format))
    if args.json:                 # written whole, then renamed: Ctrl-C leaves no half a file
        out = Path(args.json)
        part = out.with_name(out.name + ".part")
        part.write_text(json.dumps({"machine": machine(), "rows": results, "peer": peer},
                                   indent=2))
        part.replace(out)


if __name__ == "__main__":
    main()

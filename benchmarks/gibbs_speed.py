"""The Gibbs route beside blackjax's NUTS and bayesm's rnmixGibbs, side by side in one run.

Four parts, each run here in one process (the N = 100,000 call in a child process, for its peak
memory), on a machine the numbers are only comparable within:

* **routes**: ESS per second of sampling of the Gibbs route and of blackjax's NUTS (the default
  before it), warm (each route called once first), both with fixed draws (Gibbs: 4 x 1000 on
  Old Faithful and the large set, 4 x 5000 on iris, after its burn-in), on Old Faithful K = 2,
  iris K = 3 and a
  simulated N = 100,000, d = 5, K = 4 set (all full). ESS is the smallest bulk ESS of the
  label-invariant quantities (log-likelihood, log posterior, sorted weights: what both routes'
  results share whatever their labels). The route with more ESS per second is the default.
* **iris**: the default call (``joint.sample(X, 3, "full", prior=Prior.default(X, 3))``) for
  seeds 0-4: how long, whether converged, and each label-invariant mean against bayesm's long run
  (``tests/data/bayesm``) in combined Monte Carlo SE.
* **targets**: Old Faithful K = 2, 4 x 1000 draws (sampling seconds); N = 100,000, 4 x 1000 draws
  after the default 500 burn-in sweeps (the whole call's seconds and peak resident memory, in a
  fresh process).
* **bayesm**: ESS per second per core on iris and on the N = 100,000 set: ``Rscript
  benchmarks/bayesm_gibbs.R`` (one chain) against the Gibbs route's sweeps with one BLAS thread,
  one chain and four chains in one process, the same ESS estimator (Geyer's initial monotone
  sequence on the second half of each chain's log-likelihood and largest weight). Skipped when
  ``Rscript`` is not on the PATH.

Usage: python benchmarks/gibbs_speed.py [--parts routes iris targets bayesm] [--json out.json]
(the docs' tables: ``--json benchmarks/results_gibbs_speed.json``, then
``python benchmarks/docs_tables.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from pymc_sampling import data  # the same data sets as the NUTS routes' benchmark

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PARTS = ("routes", "iris", "targets", "bayesm")


def machine():
    from threadpoolctl import threadpool_info

    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                if line.startswith("model name")), "unknown CPU")
    blas = sorted({(i["internal_api"], i.get("architecture"), i["num_threads"])
                   for i in threadpool_info()})
    return f"CPU: {cpu}, {os.cpu_count()} cores (shared); BLAS: {blas}"


LABELS = {"faithful": "Old Faithful K=2", "iris": "iris K=3", "big": "simulated N=100,000 d=5 K=4"}


def _invariant_ess(dt):
    from models.results import invariant_diagnostics

    diag = invariant_diagnostics(dt)
    return float(diag["ess_bulk"].min()), float(diag["r_hat"].max())


def sample(name, sampler, draws=None, tune=None, seed=0, **kw):
    from models import Prior
    from reports import joint

    X, K = data(name)
    prior = Prior.default(X, K)
    start = joint.em_start(X, K, "full", prior)
    t = time.perf_counter()
    dt = joint.sample(X, K, "full", prior=prior, init=start, draws=draws, tune=tune,
                      random_seed=seed, sampler=sampler, **kw)
    return dt, time.perf_counter() - t


def routes(big_nuts_draws):
    rows = []
    # fixed draws on both routes: sampling efficiency, whatever the default call's stopping
    # rule asks of a small problem (gibbs.MIN_WORK makes it run long on purpose). On iris the
    # Gibbs chains must be long enough to visit its rare states (about once per 10,000 sweeps):
    # shorter runs look unconverged and their ESS says nothing
    plan = [("faithful", "gibbs", 1000, None), ("faithful", "blackjax", 1000, 1000),
            ("iris", "gibbs", 32000, None), ("iris", "blackjax", 250, 250),
            ("big", "gibbs", 1000, None), ("big", "blackjax", big_nuts_draws, big_nuts_draws)]
    warm = set()
    for name, sampler, draws, tune in plan:
        if sampler not in warm:                    # imports, numba loads, JAX compiles
            sample("faithful", sampler, 50, 50)
            warm.add(sampler)
        dt, call = sample(name, sampler, draws, tune)
        ess, r_hat = _invariant_ess(dt)
        seconds = float(dt.attrs["time_sampling_s"])
        C, D = dt["posterior"]["pi"].shape[:2]
        row = {"data": LABELS[name], "route": sampler, "draws": f"{C}x{D}",
               "sweeps_or_steps": int(dt.attrs.get("sweeps", (draws or 0) + (tune or 0))),
               "sampling_s": seconds, "call_s": call, "min_invariant_ess": ess,
               "ess_per_s": ess / seconds, "max_invariant_r_hat": r_hat,
               "convergence": dt.attrs["convergence"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    for name in LABELS:
        pair = {r["route"]: r["ess_per_s"] for r in rows if r["data"] == LABELS[name]}
        best = max(pair, key=pair.get)
        for r in rows:
            if r["data"] == LABELS[name]:
                r["faster"] = r["route"] == best
    return rows


def iris_seeds(seeds=range(5)):
    import pandas as pd
    from arviz_stats import mcse

    ref = pd.read_csv(ROOT / "tests/data/bayesm/iris_summary.csv").set_index("quantity")
    sample("iris", "gibbs", 50, 50)                # warm
    rows = []
    for seed in seeds:
        dt, call = sample("iris", "gibbs", seed=seed)
        group = dt["label_invariant"].to_dataset()
        se = mcse(group, sample_dims=["chain", "draw"])
        z = {"loglik": (group["log_likelihood"].values.mean() - ref.loc["loglik", "mean"])
             / np.hypot(float(se["log_likelihood"]), ref.loc["loglik", "mcse"])}
        for k in range(3):
            z[f"pi{k + 1}"] = ((group["pi_sorted"].values[..., k].mean() - ref.loc[f"pi{k + 1}", "mean"])
                               / np.hypot(float(se["pi_sorted"][k]), ref.loc[f"pi{k + 1}", "mcse"]))
        ess, r_hat = _invariant_ess(dt)
        row = {"seed": seed, "call_s": call, "sampling_s": float(dt.attrs["time_sampling_s"]),
               "sweeps": int(dt.attrs["sweeps"]), "converged": bool(dt.attrs["converged"]),
               "max_invariant_r_hat": r_hat, "min_invariant_ess": ess,
               "z_vs_bayesm": {k: float(v) for k, v in z.items()},
               "convergence": dt.attrs["convergence"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


_BIG_CALL = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[1] + "/benchmarks")
from pymc_sampling import data
from models import Prior
from reports import joint
X, K = data("big")
prior = Prior.default(X, K)
t = time.perf_counter()
dt = joint.sample(X, K, "full", prior=prior, draws=1000, random_seed=0)
call = time.perf_counter() - t
print(json.dumps({"call_s": call, "sampling_s": dt.attrs["time_sampling_s"],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "left_out": dt.attrs.get("left_out", ""), "convergence": dt.attrs["convergence"]}))
"""


def targets():
    dt, _ = sample("faithful", "gibbs", 1000)
    ess, r_hat = _invariant_ess(dt)
    faithful = {"sampling_s": float(dt.attrs["time_sampling_s"]), "min_invariant_ess": ess,
                "max_invariant_r_hat": r_hat}
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", _BIG_CALL, str(ROOT)],
                         capture_output=True, text=True, cwd=ROOT)
    big = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {
        "error": out.stderr[-500:]}
    res = {"faithful_4x1000": faithful, "big_4x1000": big}
    print(json.dumps(res), flush=True)
    return res


def geyer_ess(x):
    """Geyer's initial monotone sequence ESS of one chain, as benchmarks/bayesm_gibbs.R has it."""
    n = len(x)
    if n < 4 or np.var(x) == 0:
        return float("nan")
    x = x - x.mean()
    f = np.fft.fft(np.concatenate([x, np.zeros(n)]))
    acov = np.real(np.fft.ifft(np.abs(f) ** 2))[:n] / n
    rho = acov / acov[0]
    m = n // 2
    G = rho[0:2 * m:2] + rho[1:2 * m:2]
    neg = np.flatnonzero(G <= 0)
    G = np.minimum.accumulate(G[:neg[0]] if neg.size else G)
    tau = -1 + 2 * G.sum()
    return n / max(tau, 1 / np.log10(n))


def ours_per_core(name, chains, sweeps):
    """The Gibbs route's sweeps from EM's start, one BLAS thread: seconds and ESS like bayesm's."""
    from threadpoolctl import threadpool_limits

    from models import Prior
    from models.pymc import gibbs
    from models.pymc.inputs import check_inputs, jittered_starts
    from reports import joint

    X, K = data(name)
    prior = Prior.default(X, K)
    start = joint.em_start(X, K, "full", prior)
    with threadpool_limits(1):
        cj = gibbs.conjugate(check_inputs(X, K, "full", prior, allow_flat=False), chains)
        ch = gibbs.Chains(cj, jittered_starts(start, chains, np.random.default_rng(0)),
                          np.random.default_rng(1))
        ch.sweep()                                   # numba's cached loops loaded
        ll, pmax = np.empty((chains, sweeps)), np.empty((chains, sweeps))
        t = time.perf_counter()
        for i in range(sweeps):
            ll[:, i] = ch.sweep()
            pmax[:, i] = ch.pi.max(axis=1)
        seconds = time.perf_counter() - t
    half = sweeps // 2
    ess_ll = sum(geyer_ess(ll[c, half:]) for c in range(chains))
    ess_pi = sum(geyer_ess(pmax[c, half:]) for c in range(chains))
    return {"sampler": f"gmm-suite gibbs, {chains} chain{'s' * (chains > 1)} in one process",
            "data": LABELS[name], "chains": chains, "sweeps": sweeps, "seconds": seconds,
            "mean_loglik": float(ll[:, half:].mean()), "mean_pi_max": float(pmax[:, half:].mean()),
            "ms_per_chain_sweep": 1e3 * seconds / (sweeps * chains), "ess_loglik": ess_ll,
            "ess_pi_max": ess_pi, "ess_per_s_loglik": ess_ll / seconds,
            "ess_per_s_pi_max": ess_pi / seconds, "cores": 1}


def bayesm(name, sweeps, keep=1):
    X, K = data(name)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.csv"
        np.savetxt(path, X, delimiter=",", header=",".join(f"x{j}" for j in range(X.shape[1])),
                   comments="")
        out = subprocess.run(["Rscript", str(HERE / "bayesm_gibbs.R"), str(path), str(K),
                              str(sweeps), str(keep)], capture_output=True, text=True)
    if out.returncode:
        return {"data": LABELS[name], "error": out.stderr[-300:]}
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return {"sampler": "bayesm rnmixGibbs, 1 chain", "data": LABELS[name], "chains": 1,
            "sweeps": sweeps, "seconds": r["seconds"], "mean_loglik": r["mean_loglik"],
            "mean_pi_max": r["mean_pi_max"],
            "ms_per_chain_sweep": 1e3 * r["seconds_per_sweep"], "ess_loglik": r["ess_loglik"],
            "ess_pi_max": r["ess_pi_max"], "ess_per_s_loglik": r["ess_per_second_loglik"],
            "ess_per_s_pi_max": r["ess_per_second_pi_max"], "cores": 1}


def per_core(iris_sweeps, big_sweeps):
    rows = []
    for name, sweeps in (("iris", iris_sweeps), ("big", big_sweeps)):
        if shutil.which("Rscript"):
            rows.append(bayesm(name, sweeps))
            print(json.dumps(rows[-1]), flush=True)
        for chains in (1, 4):
            rows.append(ours_per_core(name, chains, sweeps))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--big-nuts-draws", type=int, default=100,
                    help="blackjax's draws and tuning steps on the N = 100,000 set")
    ap.add_argument("--iris-sweeps", type=int, default=100_000,
                    help="sweeps per chain on iris in the bayesm part: long enough that every "
                    "chain visits iris's rare low-likelihood states (about one visit per 10,000 "
                    "sweeps), without which one chain's ESS says little")
    ap.add_argument("--big-sweeps", type=int, default=300)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    os.chdir(ROOT)
    print(machine(), flush=True)
    result = {"machine": machine(), "load_before": os.getloadavg()[0],
              "command": "python benchmarks/gibbs_speed.py " + " ".join(argv or sys.argv[1:])}
    if args.json and Path(args.json).exists() and set(args.parts) != set(PARTS):
        # a rerun of some parts keeps the others, and says which parts ran when
        kept = json.loads(Path(args.json).read_text())
        result = {**kept, **{k: v for k, v in result.items() if k != "command"},
                  "command": kept.get("command", "") + "; then " + result["command"]}
    t0 = time.perf_counter()
    if "routes" in args.parts:
        result["routes"] = routes(args.big_nuts_draws)
    if "iris" in args.parts:
        result["iris"] = iris_seeds()
    if "targets" in args.parts:
        result["targets"] = targets()
    if "bayesm" in args.parts:
        result["bayesm"] = per_core(args.iris_sweeps, args.big_sweeps)
    result["load_after"] = os.getloadavg()[0]
    result["seconds"] = result.get("seconds", 0.0) * (set(args.parts) != set(PARTS)) + \
        time.perf_counter() - t0
    result["self_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        out = Path(args.json)
        part = out.with_name(out.name + ".part")
        part.write_text(json.dumps(result, indent=1) + "\n")
        part.replace(out)


if __name__ == "__main__":
    main()

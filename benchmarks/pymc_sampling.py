"""The Bayesian pipeline: compile time, sampling time and ESS per second, side by side.

Compares, on the same data in the same run:

* this project's marginal model (``models.pymc``) with PyMC's NUTS on the numba backend (the
  default), on the C backend, and nutpie when installed;
* the ``pm.Mixture`` of ``MvNormal`` components with LKJ priors that PyMC's examples use.

Data: Old Faithful with K = 2 (full), and a simulated N = 10,000, d = 5, K = 4 set (its first
2,000 rows with ``--quick``, where the baseline's sampling fits in minutes; the full set's
sampling by this model and one gradient of each model are measured in both modes). Compile
times, on Old Faithful and on the N = 10,000 set, are measured in a subprocess with empty
PyTensor and numba caches (cold) and again with the caches it left (warm); they include the
first logp-and-gradient call, where the numba backend and nutpie compile.

Usage: python benchmarks/pymc_sampling.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import arviz as az
import numpy as np

SCALARS = ["pi", "mu", "Sigma"]


def simulated(N=10_000):
    """The issue's simulated set: d = 5, K = 4 (``N`` first rows of the N = 10,000 draw)."""
    from models import GMMParams, simulate

    rng = np.random.default_rng(0)
    K, d = 4, 5
    mu = rng.normal(scale=4.0, size=(K, d))
    truth = GMMParams(np.full(K, 0.25), mu, np.stack([np.eye(d)] * K))
    Xs, _ = simulate(truth, 10_000, rng)
    return Xs[:N]


def datasets(quick):
    from models import load_faithful

    X, _ = load_faithful()
    Xs = simulated(2_000 if quick else 10_000)
    return {"faithful K=2": (X, 2), f"simulated N={len(Xs)} d=5 K=4": (Xs, 4)}


def gradient_cost(model, reps=20):
    """Milliseconds per logp gradient of a PyMC model (numba backend), at its initial point."""
    dlogp = model.compile_dlogp(mode="NUMBA")
    point = model.initial_point()
    dlogp(point)
    t = time.perf_counter()
    for _ in range(reps):
        dlogp(point)
    return (time.perf_counter() - t) / reps * 1e3


def ours(X, K, sampler, draws, chains):
    from models import Prior
    from reports import joint

    t = time.perf_counter()
    dt = joint.sample(X, K, "full", prior=Prior.default(X, K), draws=draws, tune=draws,
                      chains=chains, random_seed=1, sampler=sampler)
    total = time.perf_counter() - t
    return dt, total, SCALARS


def lkj_model(X, K):
    """PyMC's example model: pm.Mixture over MvNormal components with LKJ Cholesky priors."""
    import pymc as pm

    d = X.shape[1]
    with pm.Model() as model:
        w = pm.Dirichlet("w", np.ones(K))
        mus, comps = [], []
        for k in range(K):
            chol, _, _ = pm.LKJCholeskyCov(f"chol{k}", n=d, eta=2.0,
                                           sd_dist=pm.Exponential.dist(1.0 / X.std(0).mean()),
                                           compute_corr=True)
            mu = pm.Normal(f"mu{k}", X.mean(0), 10 * X.std(0), shape=d)
            mus.append(mu)
            comps.append(pm.MvNormal.dist(mu=mu, chol=chol))
        pm.Mixture("x", w=w, comp_dists=comps, observed=X)
    return model


def lkj_baseline(X, K, draws, chains):
    """Sample :func:`lkj_model` with PyMC's own NUTS and its default settings.

    Pinned to ``nuts_sampler="pymc"``: PyMC 6 switches to nutpie whenever it is installed, and
    the baseline should not change with the extras.
    """
    import pymc as pm

    model = lkj_model(X, K)
    t = time.perf_counter()
    dt = pm.sample(draws=draws, tune=draws, chains=chains, random_seed=1, progressbar=False,
                   model=model, cores=1, compute_convergence_checks=False, nuts_sampler="pymc")
    return dt, time.perf_counter() - t, ["w"] + [f"mu{k}" for k in range(K)]


def diagnostics(dt, var_names, seconds):
    summ = az.summary(dt, var_names=var_names, round_to="none")
    ess = float(summ["ess_bulk"].min())
    return {"seconds": seconds, "min_ess_bulk": ess, "ess_per_s": ess / seconds,
            "max_r_hat": float(summ["r_hat"].max()),
            "divergences": int(dt["sample_stats"]["diverging"].sum())}


# the backends compile lazily: the first logp-and-gradient call is part of the compile
_FIRST_CALL = ("from pymc.blocking import DictToArrayBijection; "
               "s._logp_dlogp_func(DictToArrayBijection.map(m.initial_point()), extra_vars={})")
COMPILE = {mode: f"s = pm.NUTS(model=m, compile_kwargs={{'mode': '{mode}'}}); {_FIRST_CALL}"
           for mode in ("NUMBA", "CVM")}
COMPILE["nutpie"] = ("import nutpie; c = nutpie.compile_pymc_model(m); "
                     "nutpie.sample(c, draws=1, tune=1, chains=1, progress_bar=False)")


LOAD = {"faithful K=2": "from models import load_faithful; X, _ = load_faithful(); K = 2",
        "simulated N=10000 d=5 K=4": "from pymc_sampling import simulated; X = simulated(); K = 4"}


def compile_times(kind, data):
    """Cold and warm compile of the sampler's logp and gradient, each in a fresh process.

    ``kind``: "NUMBA" or "CVM" (PyMC's NUTS step on that backend, and its first logp and gradient
    evaluation, where the backend compiles) or "nutpie" (``nutpie.compile_pymc_model`` and a
    one-draw run). ``data``: a key of :data:`LOAD`. Cold: empty PyTensor and numba caches.
    """
    code = (
        "import sys, time, numpy as np, pymc as pm\n"
        f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
        "from models import Prior\n"
        "from models import pymc as g\n"
        f"{LOAD[data]}\n"
        "m = g.build_model(X, K, 'full', Prior.default(X, K))\n"
        "t = time.perf_counter()\n"
        f"{COMPILE[kind]}\n"
        "print(time.perf_counter() - t)\n")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={cache}",
                   NUMBA_CACHE_DIR=os.path.join(cache, "numba"))
        out = []
        for _ in range(2):
            r = subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env,
                               capture_output=True, text=True, check=True)
            out.append(float(r.stdout.strip().splitlines()[-1]))
    return {"cold_s": out[0], "warm_s": out[1]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    try:
        import nutpie  # noqa: F401

        samplers = ["numba", "c", "nutpie"]
    except ImportError:
        samplers = ["numba", "c"]
        print("nutpie not installed: pip install 'gmm-suite[nutpie]' to include it")
    kinds = ("NUMBA", "CVM") + (("nutpie",) if "nutpie" in samplers else ())
    results = {"compile": {}}
    for data in LOAD:
        results["compile"][data] = {k: compile_times(k, data) for k in kinds}
        print(f"compile (logp and gradient), {data}:", results["compile"][data], flush=True)
    # this model always runs 4 chains x 1000 draws (r_hat is too noisy with fewer); --quick
    # shortens the baseline's runs and drops the slow C backend
    draws, chains = 1000, 4
    if args.quick:
        samplers.remove("c")
    base = (500, 2) if args.quick else (draws, chains)
    for name, (X, K) in datasets(args.quick).items():
        for sampler in samplers:
            ours(X, K, sampler, 50, 1)  # compile first: the warm numbers are the steady state
            dt, seconds, var_names = ours(X, K, sampler, draws, chains)
            row = diagnostics(dt, var_names, seconds)
            results[f"{name} | ours ({sampler})"] = row
            print(f"{name} | ours ({sampler}): {row}", flush=True)
        # pm.Mixture costs ~30 ms per gradient at N = 1000 (FACTS.md): on the large set a short
        # single chain is all that fits; ESS per second is still its rate.
        base_draws = base[0] if name.startswith("faithful") else 60
        base_chains = base[1] if name.startswith("faithful") else 1
        dt, seconds, var_names = lkj_baseline(X, K, base_draws, base_chains)
        row = diagnostics(dt, var_names, seconds)
        results[f"{name} | pm.Mixture + LKJ"] = row
        print(f"{name} | pm.Mixture + LKJ ({base_chains}x{base_draws}): {row}", flush=True)
        key = f"{name} | ours ({samplers[0]})"
        print(f"  ESS/s ratio ours/baseline: "
              f"{results[key]['ess_per_s'] / max(row['ess_per_s'], 1e-12):.1f}", flush=True)
    # the N = 10,000 set: this model's sampling, and the cost of one gradient of each
    # model on the same data (the baseline's sampling there takes hours)
    from models import Prior
    from models.pymc import build_model
    Xs, K = simulated(), 4
    for sampler in samplers:
        ours(Xs, K, sampler, 50, 1)
        dt, seconds, var_names = ours(Xs, K, sampler, draws, chains)
        row = diagnostics(dt, var_names, seconds)
        results[f"simulated N=10000 d=5 K=4 | ours ({sampler})"] = row
        print(f"simulated N=10000 d=5 K=4 | ours ({sampler}): {row}", flush=True)
    grads = {"ours_ms": gradient_cost(build_model(Xs, K, "full", Prior.default(Xs, K))),
             "pm_mixture_lkj_ms": gradient_cost(lkj_model(Xs, K))}
    results["simulated N=10000 d=5 K=4 | gradient"] = grads
    print(f"simulated N=10000 d=5 K=4 | ms per gradient: {grads} "
          f"(ratio {grads['pm_mixture_lkj_ms'] / grads['ours_ms']:.0f})", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()

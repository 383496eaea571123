"""NUTS with missing cells: the observed-cells density's two factorisations, side by side.

The marginal model's density of a row with missing cells is its observed cells' Gaussian, so
every gradient factors one masked covariance per row and component
(``models.pymc.distributions``). Up to ``UNROLL_MAX`` features the factorisation is written out
entry by entry over the (K, N) batch; above, one batched Cholesky. This runs blackjax's NUTS
(the default JAX route) on the same data, start and seed with each, in one process: the
compile-including first call and the whole sampling call after it, and checks that both give
the same posterior means to Monte Carlo error.

    python benchmarks/nuts_missing.py [--json benchmarks/results_nuts_missing.json]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
from cli_startup import cpu, write_json


def run(X, K, draws, tune, unroll_max):
    from models import Prior
    from models.pymc import distributions
    from reports import joint

    distributions.UNROLL_MAX = unroll_max
    prior = Prior.default(X, K, "full")          # a new prior object: the model is built afresh
    init = joint.em_start(X, K, "full", prior)
    kwargs = dict(prior=prior, init=init, random_seed=2, sampler="blackjax")
    start = time.perf_counter()
    joint.sample(X, K, "full", draws=100, tune=100, **kwargs)
    first = time.perf_counter() - start
    start = time.perf_counter()
    dt = joint.sample(X, K, "full", draws=draws, tune=tune, **kwargs)
    return first, time.perf_counter() - start, dt


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    import arviz as az

    from models import load_faithful
    from models.pymc.distributions import UNROLL_MAX

    X, _ = load_faithful()
    absent = np.random.default_rng(1).random(X.shape) < 0.2
    absent[absent.all(axis=1), 0] = False
    X = np.where(absent, np.nan, X)
    K, draws, tune = 2, 1000, 1000
    rows = {}
    for name, unroll_max in (("written out", UNROLL_MAX), ("batched", 0)):
        first, whole, dt = run(X, K, draws, tune, unroll_max)
        s = az.summary(dt, var_names=["mu"], round_to="none")
        rows[name] = {"first_call_s": first, "sampling_s": whole,
                      "mu_mean": s["mean"].tolist(), "mu_sd": s["sd"].tolist()}
        print(f"{name:12s} first call (compiles) {first:6.1f} s, "
              f"4 x ({tune} + {draws}) steps {whole:6.1f} s")
    a, b = rows["written out"], rows["batched"]
    z = np.max(np.abs(np.subtract(a["mu_mean"], b["mu_mean"])) / np.asarray(b["mu_sd"]))
    name, blas = cpu()
    result = {"data": "Old Faithful, 20 % of cells missing at random", "N": int(X.shape[0]),
              "d": int(X.shape[1]), "K": K, "chains": 4, "draws": draws, "tune": tune,
              "rows": rows, "speedup": b["sampling_s"] / a["sampling_s"],
              "max_mean_difference_in_sd": float(z), "machine": f"{name}, {os.cpu_count()} "
              f"cores, {blas}", "date": time.strftime("%Y-%m-%d")}
    print(f"speed-up {result['speedup']:.1f}x; posterior means of mu differ by at most "
          f"{z:.3f} posterior sd; {result['machine']}")
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()

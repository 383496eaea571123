"""Online EM over a stream: one pass of ``partial_fit`` against the batch fit, time and memory.

The stream: ``--rows`` simulated rows (d = 10, K = 8, full, well separated), float32, in blocks
of ``--block`` rows, made block by block from a seed (never held whole). ``em.GaussianMixture``'s
``partial_fit`` sees each block once; the batch fit is :func:`em.fit` over the same source (one
pass per iteration) from the true parameters, which converges to the maximum-likelihood fit
beside them. Reported: the mean log-likelihood per row of each, their gap, the seconds spent
inside ``partial_fit`` and per batch iteration (the simulation's own time left out: it is
measured on a pass that only simulates), and the most memory ``partial_fit`` took beyond its
block (``tracemalloc``).

Usage: python benchmarks/online_em.py [--rows 10000000] [--block 10000] [--threads 1]
           [--json benchmarks/results_online_em.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import em
from models import GMMParams, simulate

OUT = Path(__file__).with_name("results_online_em.json")
D, K = 10, 8


def truth(seed=0):
    """The same mixture as tests/em/test_online.py's."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(K, D, D)) / np.sqrt(D)
    return GMMParams(rng.dirichlet(np.full(K, 5.0)), rng.normal(scale=3.0, size=(K, D)),
                     A @ np.swapaxes(A, 1, 2) + 0.3 * np.eye(D))


def source(params, rows, block):
    """A callable that returns a fresh iterator over the same simulated float32 blocks."""
    def blocks():
        for b in range(rows // block):
            yield simulate(params, block, rng=1000 + b)[0].astype(np.float32)
    return blocks


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--block", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    params = truth()
    blocks = source(params, args.rows, args.block)
    with threadpool_limits(args.threads):
        t = time.perf_counter()
        for _ in blocks():
            pass
        simulate_s = time.perf_counter() - t
        print(f"simulating one pass: {simulate_s:.1f} s")

        gm = em.GaussianMixture(K, n_init=3, random_state=0, max_iter=200)
        stream = blocks()
        first = next(stream)
        t = time.perf_counter()
        gm.partial_fit(first)
        first_s = time.perf_counter() - t
        inside, peak = 0.0, 0
        tracemalloc.start()
        for Xb in stream:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            t = time.perf_counter()
            gm.partial_fit(Xb)
            inside += time.perf_counter() - t
            peak = max(peak, tracemalloc.get_traced_memory()[1] - before)
        tracemalloc.stop()
        print(f"partial_fit: first block {first_s:.2f} s, the other blocks {inside:.1f} s, "
              f"{peak / 1e6:.2f} MB beyond the block at the peak")

        passes = []
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            batch = em.fit(blocks, K, "full", init=params, tol=1e-6, tol_per_sample=True,
                           callback=lambda *a: passes.append(time.perf_counter()))
        batch_s = time.perf_counter() - t0
        # the time between two iterations' callbacks is one pass: simulating and EM
        em_s_per_pass = float(np.mean(np.diff(passes))) - simulate_s
        print(f"batch fit: {batch.n_iter} iterations, {batch_s:.0f} s in all (with the passes "
              f"that check the source and take its column moments); {em_s_per_pass:.2f} s of EM "
              "per pass")

        total, n = 0.0, 0
        for Xb in blocks():
            total += em.score_samples(Xb, gm.params_).sum()
            n += Xb.shape[0]
        online_ll = total / n
    batch_ll = batch.log_likelihood / batch.n_samples
    result = {
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "threads": args.threads, "load_average": list(os.getloadavg()),
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "rows": args.rows, "block": args.block, "d": D, "K": K, "covariance_type": "full",
        "dtype": "float32", "block_bytes": args.block * D * 4, "data_bytes": args.rows * D * 4,
        "partial_fit_first_block_s": first_s, "partial_fit_rest_s": inside,
        "partial_fit_peak_bytes_beyond_block": peak, "simulate_pass_s": simulate_s,
        "batch_iterations": batch.n_iter, "batch_em_s_per_pass": em_s_per_pass,
        "batch_mean_log_lik": batch_ll, "online_mean_log_lik": online_ll,
        "gap": batch_ll - online_ll,
    }
    print(f"mean log-likelihood: batch {batch_ll:.6f}, one pass of partial_fit {online_ll:.6f} "
          f"(gap {batch_ll - online_ll:.2e})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

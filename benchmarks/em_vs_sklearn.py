"""EM per-iteration time against scikit-learn, side by side in one run.

Both start from the same parameters and run a fixed number of iterations (tol = 0,
reg_covar = 0). The time per iteration is the difference between a run of ``T2`` and a run of
``T1`` iterations divided by ``T2 - T1``, so set-up costs (input checks, scikit-learn's
initialisation pass) cancel. Peak memory is traced with ``tracemalloc`` (NumPy's allocations) in a
separate run.
The floating-point lower bound is ``N K (4 d^2 + 5 d + 11)`` flops at the peak matrix-multiply
rate measured here (a 2000 x 2000 product), in this run, at the same thread count.

Usage: python benchmarks/em_vs_sklearn.py [--quick] [--threads 1] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_info, threadpool_limits

import em
from models import GMMParams, simulate

CASES = [
    (100_000, 2, 3, "full"),
    (1_000_000, 10, 8, "full"),
    (1_000_000, 10, 8, "tied"),
    (1_000_000, 10, 8, "diag"),
    (1_000_000, 10, 8, "spherical"),
    (200_000, 50, 16, "full"),
]


def gemm_rate(threads):
    """Measured float64 matrix-multiply rate (flop/s): a 2000 x 2000 product, best of five.

    This is the machine's peak rate for BLAS, the yardstick of the floating-point bound.
    """
    rng = np.random.default_rng(0)
    A = rng.normal(size=(2000, 2000))
    with threadpool_limits(threads):
        A @ A
        best = np.inf
        for _ in range(5):
            t = time.perf_counter()
            A @ A
            best = min(best, time.perf_counter() - t)
    return 2 * A.shape[0] ** 3 / best


def problem(N, d, K, covariance_type, seed=0):
    rng = np.random.default_rng(seed)
    mu = rng.normal(scale=3.0 * np.sqrt(2.0 / d), size=(K, d))  # overlapping enough that EM keeps moving
    A = rng.normal(size=(K, d, d)) / np.sqrt(d)
    full = A @ np.swapaxes(A, 1, 2) + np.eye(d)
    Sigma = {"full": full, "tied": full[0], "diag": np.diagonal(full, axis1=1, axis2=2).copy(),
             "spherical": np.diagonal(full, axis1=1, axis2=2).mean(1)}[covariance_type]
    truth = GMMParams(rng.dirichlet(np.full(K, 5.0)), mu, Sigma, covariance_type)
    X, _ = simulate(truth, N, rng)
    start = GMMParams(np.full(K, 1.0 / K), truth.mu + 1.0 * rng.normal(size=mu.shape), Sigma,
                      covariance_type)
    return X, start


def precisions(p):
    S = np.asarray(p.Sigma)
    return np.linalg.inv(S) if p.covariance_type in ("full", "tied") else 1.0 / S


def run_sklearn(X, start, T):
    gm = GaussianMixture(start.K, covariance_type=start.covariance_type, tol=0.0, reg_covar=0.0,
                         max_iter=T, weights_init=start.pi, means_init=start.mu,
                         precisions_init=precisions(start), init_params="random_from_data")
    gm.fit(X)
    return GMMParams(gm.weights_, gm.means_, gm.covariances_, start.covariance_type), gm.n_iter_


def run_ours(X, start, T, dtype=None):
    res = em.fit(X, start.K, start.covariance_type, init=start, max_iter=T, tol=0.0, dtype=dtype)
    return res.params, res.n_iter


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def peak_memory(fn, *args):
    """Peak bytes NumPy allocates during ``fn(*args)``, traced by ``tracemalloc``.

    A separate run: tracing every allocation slows the code it traces.
    """
    tracemalloc.start()
    fn(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def per_iteration(fn, X, start, T1, T2, repeats, **kw):
    """Seconds per iteration, peak bytes, final params.

    The time per iteration is ``(min t(T2) - min t(T1)) / (T2 - T1)`` over ``repeats`` runs of
    each length: the minimum drops the noise of a shared machine, the difference drops the
    set-up costs. The iteration counts are the ones actually run (EM stops early at an exact
    fixed point).
    """
    t1s, t2s = [], []
    for _ in range(repeats):
        (_, n1), t1 = timed(lambda: fn(X, start, T1, **kw))
        (out, n2), t2 = timed(lambda: fn(X, start, T2, **kw))
        t1s.append(t1)
        t2s.append(t2)
    if n2 <= n1:
        raise RuntimeError(f"{fn.__name__} ran {n1} and {n2} iterations; start farther away")
    peak = peak_memory(lambda: fn(X, start, T1, **kw))
    return (min(t2s) - min(t1s)) / (n2 - n1), peak, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N / 10 for a fast look")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each length; the fastest counts")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    blas = [(i["internal_api"], i.get("architecture"), i["num_threads"]) for i in threadpool_info()]
    rate = gemm_rate(args.threads)
    print(f"BLAS: {blas}; threads: {args.threads}; measured GEMM rate {rate / 1e9:.1f} GFLOP/s")
    header = (f"{'case':<34}{'sklearn s/it':>13}{'ours s/it':>11}{'ratio':>7}{'f32 s/it':>10}"
              f"{'f32 gain':>9}{'x bound':>8}{'mem ours/skl':>13}{'rel dLL':>10}{'f32 dLL':>9}")
    print(header)
    results = []
    with threadpool_limits(args.threads):
        for N, d, K, ct in CASES:
            N = N // 10 if args.quick else N
            X, start = problem(N, d, K, ct)
            T1, T2 = 2, 7
            for dtype in (np.float64, np.float32):  # compile (or load) the numba kernels first
                run_ours(X[:1000].astype(dtype), start, 1)
            t_sk, m_sk, p_sk = per_iteration(run_sklearn, X, start, T1, T2, args.repeats)
            t_us, m_us, p_us = per_iteration(run_ours, X, start, T1, T2, args.repeats)
            X32 = X.astype(np.float32)
            t_32, _, p_32 = per_iteration(run_ours, X32, start, T1, T2, args.repeats)
            ll_sk, ll_us, ll_32 = (p.log_pdf(X).sum() for p in (p_sk, p_us, p_32))
            bound = N * K * (4 * d * d + 5 * d + 11) / rate
            row = {"N": N, "d": d, "K": K, "covariance_type": ct, "sklearn_s_per_iter": t_sk,
                   "ours_s_per_iter": t_us, "ratio": t_sk / t_us, "float32_s_per_iter": t_32,
                   "float32_gain": t_us / t_32, "times_bound": t_us / bound,
                   "peak_mem_ours_over_sklearn": m_us / m_sk,
                   "rel_loglik_diff": abs(ll_us - ll_sk) / abs(ll_sk),
                   "rel_loglik_diff_float32": abs(ll_32 - ll_us) / abs(ll_us)}
            results.append(row)
            print(f"{f'N={N:.0e} d={d} K={K} {ct}':<34}{t_sk:>13.4f}{t_us:>11.4f}"
                  f"{row['ratio']:>7.2f}{t_32:>10.4f}{row['float32_gain']:>9.2f}"
                  f"{row['times_bound']:>8.2f}{row['peak_mem_ours_over_sklearn']:>13.2f}"
                  f"{row['rel_loglik_diff']:>10.1e}{row['rel_loglik_diff_float32']:>9.1e}",
                  flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"gemm_rate_flops": rate, "threads": args.threads, "blas": blas,
                       "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()

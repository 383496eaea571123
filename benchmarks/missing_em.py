"""EM with values missing at random against the complete-data fit, in one run.

N = 1e5, d = 10, K = 8, full covariance; 10 % of the cells deleted completely at random. Times,
best of ``--repeats`` (each an EM iteration averaged over ``--iters``, a fit's set-up subtracted),
interleaved so that both see the same machine:

* a complete-data iteration, and one with the missing cells (:mod:`em.missing`): their ratio;
* a plain per-row implementation of the same iteration (per row: the observed block's
  Cholesky factor for every component, the conditional means and covariances, the expected
  statistics), timed on ``--per-row`` rows and scaled to N;
* no NaN costs nothing: one pass of the complete-data data path as it was before missing values
  (``em/fit.py`` at ``--base``, read from git) against the pass now, and the input check it
  replaced (``check_X``'s scan for non-finite rows) against the scan that finds the missing
  cells.

Times are CPU seconds of this process with one BLAS thread (``time.process_time``), which a
machine shared with other work disturbs far less than wall time.

Usage: python benchmarks/missing_em.py [--json benchmarks/results_missing_em.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

ROOT = Path(__file__).resolve().parents[1]


def cpu(fn):
    t = time.process_time()
    fn()
    return time.process_time() - t


def per_iteration(X, start, iters):
    """CPU seconds per EM iteration: (iters + 1 passes) less (1 pass), over ``iters``."""
    import em

    one = cpu(lambda: em.fit(X, start.K, init=start, max_iter=1, tol=0.0))
    many = cpu(lambda: em.fit(X, start.K, init=start, max_iter=1 + iters, tol=0.0))
    return (many - one) / iters


def per_row_iteration(X, p):
    """One E-step and the expected statistics, row by row: the plain implementation."""
    K, d = p.K, p.d
    log_pi = np.log(p.pi)
    N_k, s, M = np.zeros(K), np.zeros((K, d)), np.zeros((K, d, d))
    ll = 0.0
    for x in X:
        o = ~np.isnan(x)
        m = ~o
        S_oo = p.Sigma[:, o][:, :, o]
        L = np.linalg.cholesky(S_oo)
        diff = x[o] - p.mu[:, o]
        y = np.linalg.solve(L, diff[:, :, None])[:, :, 0]
        lj = log_pi - 0.5 * (o.sum() * np.log(2 * np.pi) + (y**2).sum(1)
                             + 2 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(1))
        top = lj.max()
        g = np.exp(lj - top)
        ll += top + np.log(g.sum())
        g /= g.sum()
        xhat = np.repeat(x[None], K, axis=0)
        C = np.zeros((K, d, d))
        if m.any():
            A = np.linalg.solve(S_oo, p.Sigma[:, o][:, :, m])          # (K, o, m)
            xhat[:, m] = p.mu[:, m] + np.einsum("ko,kom->km", diff, A)
            C[np.ix_(range(K), m, m)] = p.Sigma[:, m][:, :, m] - np.einsum(
                "kmo,kon->kmn", p.Sigma[:, m][:, :, o], A)
        N_k += g
        s += g[:, None] * xhat
        M += g[:, None, None] * (xhat[:, :, None] * xhat[:, None, :] + C)
    return ll, N_k, s, M


def base_fit_module(base):
    """``em/fit.py`` as it was at ``base`` (before missing values), importable beside today's."""
    source = subprocess.run(["git", "show", f"{base}:em/fit.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType("em_fit_base")
    sys.modules["em_fit_base"] = module
    exec(compile(source, "em_fit_base", "exec"), module.__dict__)
    return module


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--N", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=10)
    ap.add_argument("--K", type=int, default=8)
    ap.add_argument("--rate", type=float, default=0.1)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--per-row", type=int, default=5000)
    ap.add_argument("--base", default="1604ee5", help="the commit before missing values")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    threadpool_limits(1)
    warnings.simplefilter("ignore")        # the timed fits stop at max_iter on purpose

    from em.missing import Missing
    from models import GMMParams, simulate
    from models.features import default_chunk
    from models.missing import scan
    from models.validation import check_X

    em_fit = importlib.import_module("em.fit")     # the module: em.fit is also the function

    rng = np.random.default_rng(0)
    N, d, K = args.N, args.d, args.K
    A = rng.normal(size=(K, d, d))
    truth = GMMParams(rng.dirichlet(np.full(K, 5.0)), rng.normal(scale=2.0, size=(K, d)),
                      A @ np.swapaxes(A, 1, 2) / d + 0.5 * np.eye(d))
    X, _ = simulate(truth, N, rng)
    Xm = X.copy()
    Xm[rng.random(X.shape) < args.rate] = np.nan
    Xm[np.isnan(Xm).all(axis=1), 0] = X[np.isnan(Xm).all(axis=1), 0]
    miss = scan(Xm)
    start = GMMParams(truth.pi, truth.mu + 0.3, truth.Sigma * 1.2)

    # warm-up: numba's compiled loops, the caches
    per_iteration(X, start, 1)
    per_iteration(Xm, start, 1)
    complete, missing = [], []
    for _ in range(args.repeats):
        complete.append(per_iteration(X, start, args.iters))
        missing.append(per_iteration(Xm, start, args.iters))
    t_complete, t_missing = min(complete), min(missing)

    sub = Xm[:args.per_row]
    per_row_iteration(sub[:50], start)
    t_row = min(cpu(lambda: per_row_iteration(sub, start)) for _ in range(2)) * N / len(sub)

    # no NaN costs nothing: the pass before missing values against the pass now, complete data
    base = base_fit_module(args.base)
    chunk = default_chunk(K, d, start.family.storage)
    shift = X.mean(axis=0)
    passes = {"before": [], "now": []}
    for _ in range(args.repeats):
        passes["before"].append(cpu(lambda: base.em_pass(X, None, shift, start, np.float64, chunk)))
        passes["now"].append(cpu(lambda: em_fit.em_pass(X, None, shift, start, np.float64, chunk)))
    checks = {"check_X": [], "scan": []}
    for _ in range(args.repeats):
        checks["check_X"].append(cpu(lambda: check_X(X)))
        checks["scan"].append(cpu(lambda: scan(check_X(X, finite=False))))
    ref_ll = per_row_iteration(sub, start)[0]
    fast_ll = em_fit.em_pass(sub, None, np.nanmean(sub, axis=0), start, np.float64, chunk,
                             missing=Missing(scan(sub)))[1]
    out = {
        "N": N, "d": d, "K": K, "covariance_type": "full", "missing_rate": args.rate,
        "missing_cells": miss.n_cells, "incomplete_rows": miss.n_incomplete,
        "patterns": miss.n_patterns,
        "complete_s_per_iter": t_complete, "missing_s_per_iter": t_missing,
        "missing_over_complete": t_missing / t_complete,
        "per_row_s_per_iter": t_row, "per_row_rows_timed": len(sub),
        "speedup_over_per_row": t_row / t_missing,
        "loglik_rel_diff_vs_per_row": abs(fast_ll - ref_ll) / abs(ref_ll),
        "pass_before_s": min(passes["before"]), "pass_now_s": min(passes["now"]),
        "pass_now_over_before": min(passes["now"]) / min(passes["before"]),
        "check_X_s": min(checks["check_X"]), "scan_s": min(checks["scan"]),
        "base_commit": args.base, "repeats": args.repeats, "iters": args.iters,
        "timer": "CPU seconds of the process (time.process_time), best of the repeats",
        "threads": 1,
        "blas": sorted({f"{i['internal_api']} {i.get('architecture') or ''}".strip()
                        for i in threadpool_info()}),
        "machine": "2 cores shared with 4 other sessions' work",
        "python": sys.version.split()[0],
    }
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

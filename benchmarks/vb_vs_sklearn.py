"""Variational Bayes per-iteration time against scikit-learn's BayesianGaussianMixture, side by side.

Both estimators fit the same data from the same ``random_state`` (``init_params =
"random_from_data"``, so the initialisation is one cheap pass) with ``tol = 0`` for ``T1`` and
for ``T2`` iterations; the time per iteration is ``(min t(T2) - min t(T1)) / (T2 - T1)`` over
``--repeats`` runs of each, so set-up costs cancel. The two libraries alternate within each
repeat, so a load on the (shared) machine falls on both. Both take the same path (their lower
bounds agree to about 1e-13), which the script checks.

Usage: python benchmarks/vb_vs_sklearn.py [--quick] [--threads 1] [--repeats 3]
           [--json benchmarks/results_vb_vs_sklearn.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture
from threadpoolctl import threadpool_info, threadpool_limits

import em
from models import GMMParams, simulate

CASES = [(300_000, 10, 8, "full"), (300_000, 10, 8, "diag")]
T1, T2 = 2, 6
OUT = Path(__file__).with_name("results_vb_vs_sklearn.json")


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def problem(N, d, K, covariance_type, seed=0):
    """Overlapping components (VB keeps moving for T2 iterations), of the fitted type."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(K, d, d)) / np.sqrt(d)
    full = A @ np.swapaxes(A, 1, 2) + np.eye(d)
    Sigma = {"full": full, "diag": np.diagonal(full, axis1=1, axis2=2).copy()}[covariance_type]
    truth = GMMParams(rng.dirichlet(np.full(K, 5.0)),
                      rng.normal(scale=3.0 * np.sqrt(2.0 / d), size=(K, d)), Sigma,
                      covariance_type)
    return simulate(truth, N, rng)[0]


def fit_time(cls, X, K, covariance_type, T):
    est = cls(n_components=K, covariance_type=covariance_type, tol=0.0, max_iter=T,
              init_params="random_from_data", random_state=0)
    t = time.perf_counter()
    est.fit(X)
    return time.perf_counter() - t, float(np.squeeze(est.lower_bound_)), est.n_iter_


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N / 10 for a fast look")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each length; the fastest counts")
    ap.add_argument("--json", default=str(OUT), help="write the results here")
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    blas = [{k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for info in threadpool_info()]
    print(f"CPU: {cpu_model()}; {os.cpu_count()} cores; load average {os.getloadavg()}")
    print(f"threadpools: {blas}; threads used: {args.threads}")
    libs = {"sklearn": SkBayesianGaussianMixture, "ours": em.BayesianGaussianMixture}
    results = []
    load_before = os.getloadavg()
    with threadpool_limits(args.threads):
        em.BayesianGaussianMixture(n_components=2).fit(np.random.default_rng(0).normal(size=(50, 3)))
        for N, d, K, ct in CASES:
            N = N // 10 if args.quick else N
            X = problem(N, d, K, ct)
            times = {(lib, T): [] for lib in libs for T in (T1, T2)}
            bounds = {}
            for _ in range(args.repeats):
                for lib, cls in libs.items():
                    for T in (T1, T2):
                        t, bound, n_iter = fit_time(cls, X, K, ct, T)
                        if n_iter != T:
                            raise RuntimeError(f"{lib} ran {n_iter} iterations, not {T}")
                        times[lib, T].append(t)
                        bounds[lib] = bound
            per_iter = {lib: (min(times[lib, T2]) - min(times[lib, T1])) / (T2 - T1) for lib in libs}
            rel = abs(bounds["ours"] - bounds["sklearn"]) / abs(bounds["sklearn"])
            row = {"N": N, "d": d, "K": K, "covariance_type": ct,
                   "sklearn_s_per_iter": per_iter["sklearn"], "ours_s_per_iter": per_iter["ours"],
                   "ratio": per_iter["sklearn"] / per_iter["ours"],
                   "rel_lower_bound_diff": rel}
            results.append(row)
            print(f"N={N} d={d} K={K} {ct:<5}  sklearn {per_iter['sklearn'] * 1e3:8.1f} ms/it  "
                  f"ours {per_iter['ours'] * 1e3:7.1f} ms/it  ratio {row['ratio']:5.1f}  "
                  f"lower bounds differ by {rel:.1e} (relative)")
    report = {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": args.threads,
              "threadpools": blas, "load_average_before": load_before,
              "load_average_after": os.getloadavg(), "T1": T1, "T2": T2,
              "repeats": args.repeats, "quick": args.quick,
              "versions": {"numpy": np.__version__, "scikit-learn": sklearn.__version__,
                           "python": platform.python_version()},
              "command": " ".join(["python benchmarks/vb_vs_sklearn.py", *argv]),
              "results": results}
    out = Path(args.json)
    with tempfile.NamedTemporaryFile("w", dir=out.parent, suffix=".tmp", delete=False) as f:
        json.dump(report, f, indent=2)
    os.replace(f.name, out)            # readers never see a half-written file
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

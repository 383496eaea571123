"""Where one EM iteration's time goes, in float64 and float32, for one benchmark case.

Prints, best of ``--repeats``: one streaming pass (``em.fit.em_pass``: features, E-step,
normalisation, statistics), the per-iteration M-step (``params_from_stats``) and kernel set-up
(``log_joint_of``), and NumPy's ``exp`` on 8e6 values in each dtype, the floor of the
normalisation. Then the steps of one block (features, log joint, normalisation, float64 sums,
moments) scaled to a whole pass, beside NumPy's versions of the sums and of tied's centring.
One BLAS thread, as in ``em_vs_sklearn.py``.

Usage: python benchmarks/em_pass_profile.py [--N 100000] [--d 2] [--K 3] [--type full]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from em_vs_sklearn import problem
from threadpoolctl import threadpool_limits

from em.mstep import params_from_stats
from models.families import family
from models.features import (
    LINEAR,
    default_chunk,
    design_moments,
    features,
    float64_sums,
    log_joint_of,
    n_features,
    normalise,
)

em_fit = sys.modules["em.fit"]  # the module (``em.fit`` the attribute is the function)


def best(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--N", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=2)
    ap.add_argument("--K", type=int, default=3)
    ap.add_argument("--type", default="full")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    X, start = problem(args.N, args.d, args.K, args.type)
    values = -np.abs(np.random.default_rng(0).normal(size=(8, 4096))) * 5
    with threadpool_limits(1):
        for dtype in (np.float64, np.float32):
            Xd = X.astype(dtype)
            shift = Xd.mean(axis=0, dtype=np.float64).astype(dtype).astype(np.float64)
            chunk = default_chunk(args.K, args.d, family(args.type).storage, dtype)
            stats, _, _ = em_fit.em_pass(Xd, None, shift, start, dtype, chunk)
            XX = stats.M if args.type == "tied" else None
            t_pass = best(lambda: em_fit.em_pass(Xd, None, shift, start, dtype, chunk, XX=XX),
                          args.repeats)
            t_m = best(lambda: params_from_stats(stats, family(args.type), None, 0.0, shift, None,
                                                 validate=False),  # as EM's loop calls it
                       args.repeats)
            t_k = best(lambda: log_joint_of(start, shift, dtype), args.repeats)
            v = values.astype(dtype)
            out = np.empty_like(v)
            t_exp = best(lambda: [np.exp(v, out=out) for _ in range(244)], args.repeats)
            print(f"{np.dtype(dtype).name}: pass {t_pass * 1e3:.2f} ms, M-step {t_m * 1e6:.0f} us, "
                  f"kernel set-up {t_k * 1e6:.0f} us (chunk {chunk}); np.exp on 8e6 values "
                  f"{t_exp * 1e3:.2f} ms", flush=True)
            steps(Xd, shift, start, dtype, chunk, args.type, args.N, args.repeats)


def steps(Xd, shift, params, dtype, chunk, covariance_type, N, repeats):
    """One block's steps, scaled to the whole pass, and NumPy's alternatives to two of them."""
    kernel = log_joint_of(params, shift, dtype)
    Xb = np.ascontiguousarray(Xd[:chunk])
    n, K = Xb.shape[0], params.K
    Z_buf = np.empty(n_features(params.d, kernel.kind) * n, dtype)
    L_buf = np.empty(K * n, dtype)
    Z = features(Xb, shift, kernel.kind, dtype, Z_buf)
    L0 = kernel(Z, L_buf, shared=False)[0].copy()
    G = np.empty_like(L0)

    def fused():
        G[...] = L0
        return normalise(G)

    m, log_t = fused()
    t = {
        "features": best(lambda: features(Xb, shift, kernel.kind, dtype, Z_buf), repeats),
        "log joint": best(lambda: kernel(Z, L_buf, shared=False), repeats),
        "normalise": best(fused, repeats) - best(lambda: G.__setitem__(Ellipsis, L0), repeats),
        "float64 sums": best(lambda: float64_sums(m, log_t), repeats),
        "moments": best(lambda: design_moments(G, Z, family(covariance_type).storage, False), repeats),
        "(NumPy: sum(dtype=float64) of m and log t)":
            best(lambda: (m.sum(dtype=np.float64), log_t.sum(dtype=np.float64)), repeats),
    }
    if kernel.kind == LINEAR:
        out = np.empty_like(Xb)
        t["(NumPy: broadcast subtract for the centring)"] = best(
            lambda: np.subtract(Xb, shift.astype(dtype), out=out), repeats)
    scale = N / n * 1e3
    print("  per pass: " + ", ".join(f"{k} {v * scale:.3f} ms" for k, v in t.items()), flush=True)


if __name__ == "__main__":
    main()

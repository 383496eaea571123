"""EM on data larger than we want in memory: N = 2e7, d = 10, K = 8 (1.6 GB float64) from a memmap.

Reports the peak resident memory of the fitting process (VmHWM, which counts the memmap's pages
too) against the data size, and seconds per iteration against an in-memory fit on a subsample,
scaled linearly in N. Both fits run in fresh subprocesses so their peaks are their own.

Usage: python benchmarks/em_scale.py [--n 20000000] [--iters 3] [--dir /tmp] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, sys, time, warnings
import numpy as np
import em
from models import GMMParams
warnings.simplefilter("ignore")
path, n_sub, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
X = np.load(path, mmap_mode="r")
if n_sub:
    X = np.array(X[:n_sub])
start = GMMParams(**{k: np.array(v) for k, v in json.loads(sys.argv[4]).items()})
t = time.perf_counter(); em.fit(X, 8, init=start, max_iter=1, tol=0.0); t1 = time.perf_counter() - t
t = time.perf_counter(); em.fit(X, 8, init=start, max_iter=1 + iters, tol=0.0); t2 = time.perf_counter() - t
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"s_per_iter": (t2 - t1) / iters, "peak_rss_bytes": int(hwm) * 1024}))
"""


def write_memmap(path, N, d, K, rng):
    mu = rng.normal(scale=4.0, size=(K, d))
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(N, d))
    block = 1_000_000
    for s in range(0, N, block):
        n = min(block, N - s)
        z = rng.integers(0, K, size=n)
        X[s:s + n] = mu[z] + rng.normal(size=(n, d))
    X.flush()
    del X
    return mu


def child(path, n_sub, iters, start):
    r = subprocess.run([sys.executable, "-c", CHILD, str(path), str(n_sub), str(iters),
                        json.dumps(start)], capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000_000)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--json", help="also write the results here (benchmarks/results_em_scale.json)")
    args = ap.parse_args(argv)
    N, d, K = args.n, 10, 8
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "X.npy"
        t = time.perf_counter()
        mu = write_memmap(path, N, d, K, np.random.default_rng(0))
        print(f"wrote {path.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - t:.0f} s")
        start = {"pi": np.full(K, 1 / K).tolist(), "mu": (mu + 0.5).tolist(),
                 "Sigma": np.stack([np.eye(d)] * K).tolist()}
        data_bytes = N * d * 8
        big = child(path, 0, args.iters, start)
        n_sub = N // 20
        small = child(path, n_sub, args.iters, start)
    scaled = small["s_per_iter"] * N / n_sub
    out = {"N": N, "data_bytes": data_bytes, "memmap_s_per_iter": big["s_per_iter"],
           "memmap_peak_rss_bytes": big["peak_rss_bytes"],
           "peak_rss_fraction_of_data": big["peak_rss_bytes"] / data_bytes,
           "in_memory_subsample_s_per_iter_scaled": scaled,
           "memmap_over_in_memory": big["s_per_iter"] / scaled}
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""Cost of one logp gradient of the marginal model, by N and K (full covariance, d = 2).

Usage: python benchmarks/gradient_cost.py
"""

import time

import numpy as np

from models import GMMParams, Prior, simulate
from models import pymc as gmm_pymc


def main():
    truth = GMMParams([0.3, 0.3, 0.4], [[0.0, 0.0], [2.5, 0.0], [1.2, 2.2]],
                      np.stack([np.eye(2)] * 3))
    for N, K in ((272, 2), (272, 3), (1500, 2), (1500, 3), (10_000, 3)):
        X, _ = simulate(truth, N, np.random.default_rng(1))
        model = gmm_pymc.build_model(X, K, "full", Prior.default(X, K, "full"))
        dlogp = model.compile_dlogp()
        point = model.initial_point()
        dlogp(point)
        t = time.perf_counter()
        for _ in range(50):
            dlogp(point)
        print(f"N={N:>6} K={K}: {(time.perf_counter() - t) / 50 * 1e3:.3f} ms per gradient")


if __name__ == "__main__":
    main()

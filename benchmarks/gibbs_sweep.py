"""The Gibbs route's cost per sweep, this tree against another commit's, side by side.

A small problem's default run is tens of thousands of sweeps (``gibbs.MIN_WORK``), each a few
dozen small array operations on every chain at once, so the calls' overhead is its cost. This
times ``Chains.sweep`` (4 chains, 2,000 sweeps after 20) on every family of the PyMC model at
N = 300, d = 2, K = 2, on iris K = 3 (full), and with a fifth of the cells missing (full, tied),
in this working tree and in ``--rev``'s (a temporary worktree), each in its own process,
alternating, best of ``--repeats``; and hashes 500 sweeps' draws in each, to say whether the two
trees draw the same numbers.

    python benchmarks/gibbs_sweep.py --rev 1e0d2c5 [--json benchmarks/results_gibbs_sweep.json]
"""

from __future__ import annotations

import hashlib
import json
import time

SWEEPS = 2000


def _cases():
    import numpy as np

    from models import GMMParams, load_iris, simulate

    truth = GMMParams([0.4, 0.6], [[0.0, 0.0], [4.0, 2.0]],
                      np.stack([np.eye(2), [[1.0, 0.3], [0.3, 0.7]]]))
    X, _ = simulate(truth, 300, np.random.default_rng(8))
    holes = np.random.default_rng(1).random(X.shape) < 0.2
    holes[holes.all(axis=1), 0] = False
    missing = np.where(holes, np.nan, X)
    cases = [(f"{ct} N=300 d=2 K=2", ct, X, 2)
             for ct in ("full", "tied", "diag", "spherical", "EII", "EEI")]
    cases.append(("full iris N=150 d=4 K=3", "full", load_iris()[0], 3))
    cases += [(f"{ct} N=300 d=2 K=2, 20 % missing", ct, missing, 2) for ct in ("full", "tied")]
    return cases


def measure():
    """Print one JSON line per case: microseconds per sweep and the draws' hash."""
    import warnings

    import numpy as np

    warnings.simplefilter("ignore")
    from models import Prior
    from models.pymc import gibbs
    from models.pymc.inputs import check_inputs
    from reports import joint

    for name, covariance_type, X, K in _cases():
        prior = Prior.default(X, K, covariance_type)
        start = joint.em_start(X, K, covariance_type, prior)
        cj = gibbs.conjugate(check_inputs(X, K, covariance_type, prior, allow_flat=False), 4)
        chains = gibbs.Chains(cj, [start] * 4, np.random.default_rng(1))
        digest = hashlib.sha1()
        for _ in range(500):
            digest.update(chains.sweep().tobytes())
            for a in (chains.pi, chains.mu, chains.Sigma, chains.z):
                digest.update(np.ascontiguousarray(a).tobytes())
        for _ in range(20):
            chains.sweep()
        t = time.perf_counter()
        for _ in range(SWEEPS):
            chains.sweep()
        us = (time.perf_counter() - t) / SWEEPS * 1e6
        print(json.dumps({"case": [name], "us": us, "sha1": digest.hexdigest()}), flush=True)


def main(argv=None):
    from cli_startup import compare_main, write_result

    compared = compare_main(__doc__, __file__, measure, 3, argv)
    if compared is None:
        return
    args, rev, cases = compared
    rows = []
    print(f"{'case':34s} {rev + ' us':>12s} {'now us':>8s} {'ratio':>6s} same draws")
    for case, (before, after) in cases.items():
        then, now = min(r["us"] for r in before), min(r["us"] for r in after)
        same = before[0]["sha1"] == after[0]["sha1"]
        rows.append({"case": case[0], "before_us": then, "now_us": now, "speedup": then / now,
                     "same_draws": same})
        print(f"{case[0]:34s} {then:12.0f} {now:8.0f} {then / now:5.2f}x {same}")
    write_result({"before": rev, "chains": 4, "sweeps": SWEEPS, "repeats": args.repeats,
                  "rows": rows}, args.json)


if __name__ == "__main__":
    main()

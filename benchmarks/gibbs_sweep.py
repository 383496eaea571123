"""The Gibbs route's cost per sweep, this tree against another commit's, side by side.

A small problem's default run is tens of thousands of sweeps (``gibbs.MIN_WORK``), each a few
dozen small array operations on every chain at once, so the calls' overhead is its cost. This
times ``Chains.advance`` over 2,000 sweeps after 20 (4 chains; a run's sweeps as the route runs
them, compiled or one ``Chains.sweep`` at a time) on every family of the PyMC model at N = 300,
d = 2, K = 2, on iris K = 3 (full), and with a fifth of the cells missing (full, tied), in this
working tree and in ``--rev``'s (a temporary worktree), each in its own process, alternating,
best of ``--repeats``. From 500 sweeps kept in each it says whether the two trees draw the same
allocations (their hash) and how far apart the draws of pi, mu and Sigma are (the largest
difference over the last 20 draws, relative to the largest value).

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
    """Print one JSON line per case: microseconds per sweep, the allocations' hash, the last draws."""
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
        kept = gibbs.Record(chains, 500, True)
        chains.advance(500, kept, 1)
        values = np.concatenate([a[:, -20:].ravel() for a in (kept.pi, kept.mu, kept.Sigma)])
        chains.advance(20, gibbs.Record(chains, 1, False), 20)
        t = time.perf_counter()
        chains.advance(SWEEPS, gibbs.Record(chains, 1, False), SWEEPS)
        us = (time.perf_counter() - t) / SWEEPS * 1e6
        print(json.dumps({"case": [name], "us": us,
                          "z_sha1": hashlib.sha1(kept.z.tobytes()).hexdigest(),
                          "values": values.tolist()}), flush=True)


def main(argv=None):
    import numpy as np
    from cli_startup import compare_main, write_result

    compared = compare_main(__doc__, __file__, measure, 3, argv)
    if compared is None:
        return
    args, rev, cases = compared
    rows = []
    print(f"{'case':34s} {rev + ' us':>12s} {'now us':>8s} {'ratio':>6s} same z  values apart")
    for case, (before, after) in cases.items():
        then, now = min(r["us"] for r in before), min(r["us"] for r in after)
        same = before[0]["z_sha1"] == after[0]["z_sha1"]
        a, b = np.array(before[0]["values"]), np.array(after[0]["values"])
        apart = float(np.abs(a - b).max() / np.abs(a).max())
        rows.append({"case": case[0], "before_us": then, "now_us": now, "speedup": then / now,
                     "same_allocations": same, "values_apart": apart})
        print(f"{case[0]:34s} {then:12.0f} {now:8.0f} {then / now:5.2f}x {same!s:6s}  {apart:.1e}")
    write_result({"before": rev, "chains": 4, "sweeps": SWEEPS, "repeats": args.repeats,
                  "rows": rows}, args.json)


if __name__ == "__main__":
    main()

"""The JAX routes' cost per log-density gradient, this tree against another commit's, side by side.

NUTS spends its time in the gradient of the marginal model's log density, which the JAX routes
(blackjax, numpyro, nutpie on JAX) compile from the PyMC model. This times ``value_and_grad``
of that compiled density, 20,000 calls in one compiled loop, for the full and tied layouts at
several d and N (K = 2, the SBC tests' prior), in this working tree and in ``--rev``'s (checked
out into a temporary worktree), each in its own process, alternating, best of ``--repeats``.
It also counts the LAPACK calls left in the compiled program.

    python benchmarks/jax_gradient.py --rev 2d25f48 [--json benchmarks/results_jax_gradient.json]
"""

from __future__ import annotations

import json
import re
import time

#: (layout, d, N)
CASES = [(c, d, N) for c in ("full", "tied") for d in (1, 2, 3, 5, 6, 8) for N in (40,)] + \
    [("full", 2, 272)]
CALLS = 20_000


def measure():
    """Print one JSON line per case: microseconds per value_and_grad and LAPACK calls."""
    import warnings

    import jax
    import jax.numpy as jnp
    import numpy as np

    warnings.simplefilter("ignore")
    jax.config.update("jax_enable_x64", True)
    from models import Prior, sample_params, simulate
    from models import pymc as gmm_pymc
    from models.pymc.jax_routes import _padded, jax_model

    for covariance_type, d, N in CASES:
        prior = Prior(alpha=[2.0, 2.0], m0=np.zeros(d), kappa0=0.05, nu0=d + 3.0,
                      Psi0=np.eye(d) * 2.0 + 0.3)
        rng = np.random.default_rng(d)
        X, _ = simulate(sample_params(prior, 2, d, covariance_type, rng), N, rng)
        model = gmm_pymc.build_model(X, 2, covariance_type, prior, latent="marginal")
        jm = jax_model(model)
        data = _padded(X)
        u0 = [jnp.asarray(model.initial_point()[n]) for n in jm.names]
        value_and_grad = jax.value_and_grad(lambda u: jm.logp(*data, *u))

        def body(i, u):
            _, g = value_and_grad(u)
            return [a + 1e-12 * b for a, b in zip(u, g)]

        loop = jax.jit(lambda u: jax.lax.fori_loop(0, CALLS, body, u))
        jax.block_until_ready(loop(u0))
        start = time.perf_counter()
        jax.block_until_ready(loop(u0))
        us = (time.perf_counter() - start) / CALLS * 1e6
        hlo = jax.jit(value_and_grad).lower(u0).compile().as_text()
        lapack = len(re.findall(r'custom_call_target="lapack_', hlo))
        print(json.dumps({"case": [covariance_type, d, N], "us": us, "lapack_calls": lapack}),
              flush=True)


def main(argv=None):
    from cli_startup import compare_main, write_result

    compared = compare_main(__doc__, __file__, measure, 2, argv)
    if compared is None:
        return
    args, rev, cases = compared
    rows = []
    print(f"{'layout':6s} {'d':>2s} {'N':>4s} {rev + ' us':>12s} {'now us':>8s} {'ratio':>6s} "
          "LAPACK calls then/now")
    for case, (before, after) in cases.items():
        then, now = min(r["us"] for r in before), min(r["us"] for r in after)
        lapack = (before[0]["lapack_calls"], after[0]["lapack_calls"])
        rows.append({"layout": case[0], "d": case[1], "N": case[2], "before_us": then,
                     "now_us": now, "speedup": then / now, "lapack_before": lapack[0],
                     "lapack_now": lapack[1]})
        print(f"{case[0]:6s} {case[1]:2d} {case[2]:4d} {then:12.2f} {now:8.2f} "
              f"{then / now:5.1f}x {lapack[0]:3d} / {lapack[1]}")
    write_result({"before": rev, "K": 2, "calls": CALLS, "repeats": args.repeats, "rows": rows},
                 args.json)


if __name__ == "__main__":
    main()

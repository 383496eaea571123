"""Setosa's posterior covariance on iris K = 3 full: the long run the relabelling is checked against.

Iris K = 3 full under ``Prior.default`` puts most of its mass on setosa plus one large and one
small non-setosa component; the small one is at times empty, and then its mean wanders over the
prior (kappa0 = 0.01). Relabelling that matched such a component to setosa's label inflated
setosa's posterior sd (one covariance entry 4.5-fold). This script runs the Gibbs route long
(4 chains x ``--sweeps`` sweeps after 2,000 burn-in, every ``--thin``-th kept), relabels the
draws onto the EM start as every run does (occupied components matched first, distances weighted
by the components' weights), leaves out each draw's empty components
(``models.results.occupied_posterior``), and writes setosa's posterior sd of every covariance
entry; and, for comparison, the same after relabelling as it was before issue 28
(:func:`sd_before`: unweighted distances, every component at once, nothing left out).

    python benchmarks/gibbs_iris_setosa.py --json tests/data/gibbs/iris_setosa.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np


def setosa_sd(tree, X):
    """Setosa's label and the posterior sd of its covariance's lower triangle.

    Setosa's label is the component whose mean is nearest setosa's sample mean, on average; the
    draws where it is empty (NaN) are left out.
    """
    from models.results import occupied_posterior

    post = occupied_posterior(tree)
    mu = np.nanmean(post["mu"].values, axis=(0, 1))
    k = int(np.argmin(((mu - X[:50].mean(0)) ** 2).sum(-1)))
    S = post["Sigma"].values[:, :, k].reshape(-1, 4, 4)
    i, j = np.tril_indices(4)
    return k, np.nanstd(S[:, i, j], axis=0)


def sd_before(tree, reference, X):
    """Setosa's sd after relabelling as before issue 28, from a relabelled tree's draws.

    Hungarian matching of every component at once on the unweighted cost (squared Mahalanobis
    distance of the means under the reference covariance plus the squared log-weight
    difference), and every draw kept.
    """
    from scipy.optimize import linear_sum_assignment

    post = tree["posterior"]
    pi = post["pi"].values.reshape(-1, 3)
    mu = post["mu"].values.reshape(-1, 3, 4)
    Sigma = post["Sigma"].values.reshape(-1, 3, 4, 4)
    y = np.einsum("kab,sjkb->sjka", np.linalg.inv(reference.cholesky),
                  mu[:, :, None, :] - reference.mu)
    cost = (y**2).sum(-1) + (np.log(pi)[:, :, None] - np.log(reference.pi)) ** 2
    k = int(np.argmin(((reference.mu - X[:50].mean(0)) ** 2).sum(-1)))
    S = np.empty((len(pi), 4, 4))
    for s, c in enumerate(cost):
        rows, cols = linear_sum_assignment(c)
        S[s] = Sigma[s, rows[np.argsort(cols)][k]]
    i, j = np.tril_indices(4)
    return np.std(S[:, i, j], axis=0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweeps", type=int, default=200_000)
    ap.add_argument("--thin", type=int, default=50)
    ap.add_argument("--seed", type=int, default=28)
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    from models import Prior, load_iris
    from models.pymc.inputs import check_inputs
    from models.pymc.routes import route
    from models.pymc.sampling import run, settings_for
    from models.seeds import seed_sequence
    from reports import joint

    X = load_iris()[0]
    prior = Prior.default(X, 3, "full")
    inputs = check_inputs(X, 3, "full", prior, allow_flat=False)
    reference = joint.em_start(X, 3, "full", prior)
    settings = settings_for(route("gibbs"), args.sweeps // args.thin, 2000, 4, None,
                            seed_sequence(args.seed))
    settings = settings.__class__(**{**settings.__dict__, "thin": args.thin})
    t = time.perf_counter()
    tree = run(inputs, reference, route("gibbs"), settings, pointwise=False)
    seconds = time.perf_counter() - t
    k, sd = setosa_sd(tree, X)
    i, j = np.tril_indices(4)
    out = {
        "what": "iris K=3 full, Prior.default: setosa's posterior sd of each covariance entry "
                "(lower triangle, row-major), empty components left out",
        "command": "python benchmarks/gibbs_iris_setosa.py" + (
            f" --sweeps {args.sweeps} --thin {args.thin} --seed {args.seed}"),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip(),
        "chains": 4, "burn_in": 2000, "sweeps": args.sweeps, "thin": args.thin,
        "seconds": seconds, "setosa_label": k,
        "entries": [f"{a},{b}" for a, b in zip(i, j)],
        "sd": sd.tolist(),
        "sd_as_before_issue_28": sd_before(tree, reference, X).tolist(),
        "empty_share": float(1 - tree["sample_stats"]["occupied"].values.mean()),
    }
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()

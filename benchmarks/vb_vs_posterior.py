"""Three estimators of one model under one prior, against the posterior: EM (MLE, MAP), VB, MCMC.

Old Faithful, K = 2, full, ``Prior.default``: EM's MLE and MAP, variational Bayes
(``em.fit(..., method="vb")``) and NUTS from the MAP (``gmm compare``'s pipeline), scalar by
scalar: each estimate, the posterior's mean and sd, VB's sd, and the share of the posterior's
draws inside VB's 89% interval. Iris, K = 3, full: the reference posterior is bayesm's Gibbs
sampler under the same prior (``tests/data/bayesm``, 4 x 100,000 sweeps), compared on the sorted
weights (label-invariant), for the suite's VB (best ELBO of its restarts) and for scikit-learn's
variational model under the same prior started from k-means (``em.BayesianGaussianMixture``).

Usage: python benchmarks/vb_vs_posterior.py [--draws 1000] [--json benchmarks/results_vb_vs_posterior.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import em
from models import Prior, load_faithful, load_iris
from models.results import versions
from reports import joint
from reports.compare import compare, compare_vb

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).with_name("results_vb_vs_posterior.json")


def faithful(draws, seed):
    X, names = load_faithful()
    prior = Prior.default(X, 2, "full")
    mle = em.fit(X, 2, random_state=seed)
    map_ = em.fit(X, 2, prior=prior, random_state=seed)
    mle = joint.align(mle, map_.params)
    vb = joint.align(em.fit(X, 2, prior=prior, method="vb", random_state=seed), map_.params)
    post = joint.sample(X, 2, prior=prior, init=map_.params, draws=draws, tune=draws, chains=4,
                        random_seed=seed, feature_names=names)
    rows, _ = compare(joint.em_to_datatree(map_, X, names), post,
                      em_mle_dt=joint.em_to_datatree(mle, X, names))
    rows = compare_vb(rows, joint.vb_to_datatree(vb, X, names, draws=4 * draws,
                                                 random_seed=seed + 1), post)
    keep = ["parameter", "em_mle", "em", "vb", "mean", "vb_sd", "sd", "vb_sd_ratio", "vb_z",
            "vb_coverage", "r_hat"]
    return [{k: r[k] for k in keep} for r in rows], vb.elbo


def near(w, centre, tol=0.05):
    return float(np.mean(np.all(np.abs(w - centre) < tol, axis=1)))


def iris(seed):
    X, _, _ = load_iris()
    prior = Prior.default(X, 3, "full")
    reference = pd.read_csv(ROOT / "tests/data/bayesm/iris_draws.csv")
    w_post = reference[["pi1", "pi2", "pi3"]].to_numpy()
    vb = em.fit(X, 3, "full", prior=prior, method="vb", random_state=seed)
    drop_in = em.BayesianGaussianMixture(
        n_components=3, weight_concentration_prior_type="dirichlet_distribution",
        weight_concentration_prior=1.0, mean_prior=prior.m0, mean_precision_prior=prior.kappa0,
        degrees_of_freedom_prior=prior.nu0, covariance_prior=prior.Psi0, max_iter=1000,
        random_state=seed).fit(X)
    w_vb = -np.sort(-vb.posterior.draw(20000, np.random.default_rng(seed))["pi"], axis=1)
    rows = []
    for j, name in enumerate(["largest", "middle", "smallest"]):
        lo, hi = np.quantile(w_vb[:, j], [0.055, 0.945])
        rows.append({"weight": name, "vb": float(w_vb[:, j].mean()),
                     "mean": float(w_post[:, j].mean()), "vb_sd": float(w_vb[:, j].std()),
                     "sd": float(w_post[:, j].std()),
                     "vb_coverage": float(np.mean((w_post[:, j] >= lo) & (w_post[:, j] <= hi))),
                     "drop_in": float(np.sort(drop_in.weights_)[::-1][j])})
    w_species = np.sort(drop_in.weights_)[::-1]
    return {"weights": rows, "elbo_restarts": sorted(set(np.round(vb.restarts, 3).tolist())),
            "posterior_near_drop_in": near(w_post, w_species),
            "posterior_near_major": near(w_post, np.array([0.60, 0.33, 0.065])),
            "vb_near_major": near(w_vb, np.array([0.60, 0.33, 0.065]))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    rows, elbo = faithful(args.draws, args.seed)
    for r in rows:
        print(f"{r['parameter']:32s} MLE {r['em_mle']:9.4f} MAP {r['em']:9.4f} VB {r['vb']:9.4f} "
              f"post {r['mean']:9.4f}  sd VB/post {r['vb_sd_ratio']:.2f}  "
              f"coverage {r['vb_coverage']:.2f}")
    result = {"command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
              "versions": versions(), "draws": args.draws, "chains": 4, "seed": args.seed,
              "faithful": {"K": 2, "covariance_type": "full", "elbo": elbo, "rows": rows},
              "iris": {"K": 3, "covariance_type": "full", **iris(args.seed)}}
    print(json.dumps(result["iris"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

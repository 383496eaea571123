"""em.fit against mclust's fits: maximum likelihood and MAP.

``python benchmarks/mclust_agreement.py [--map]``.

Maximum likelihood: for every (data set, model, G) in ``tests/data/mclust/golden.csv``, fit with
``em.fit``'s defaults, count the fits that reach mclust's log-likelihood within 0.01 (higher
allowed) and list the largest shortfalls.

``--map``: for every MAP fit in ``tests/data/mclust/map_params.csv`` (mclust's
``Mclust(..., prior = priorControl())`` parameters, from ``make_map_params.R``), under
``Prior.default(..., mclust=True)`` (mclust's own EII and EEI updates):

1. mclust's mode (run to a relative change of 1e-8) is a fixed point of gmm-suite's MAP EM:
   started there, EM ends within 0.01 of mclust's log-likelihood;
2. the default fit's log posterior is at least that mode's (minus 0.01): it finds mclust's mode
   or a higher one (two fits from different starts can end at different local modes).

Not a speed benchmark.
"""

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import em
from models import GMMParams, Prior, family

ROOT = Path(__file__).resolve().parents[1]
DATA = {"faithful": ROOT / "models/data/faithful.csv", "iris": ROOT / "tests/data/mclust/iris.csv",
        "sim3": ROOT / "tests/data/mclust/sim3.csv", "sim2": ROOT / "tests/data/mclust/sim2.csv"}
DATA |= {name: ROOT / f"tests/data/mclust/{name}.csv"
         for name in ("diabetes", "thyroid", "banknote", "wreath")}


def _numbers(text):
    return np.array(text.split(), dtype=float)


def mclust_params(row, d):
    """The parameters mclust fitted, as GMMParams in the family's storage."""
    K, fam = int(row.G), family(row.model)
    pi = _numbers(row.pro)
    mu = _numbers(row.mean).reshape(K, d)                       # column-major d x G = row-major G x d
    full = _numbers(row.sigma).reshape(K, d, d)                 # column-major d x d x G
    Sigma = fam.storage.from_full(full)
    return GMMParams(pi / pi.sum(), mu, Sigma, row.model)


def log_posterior(X, params, prior):
    return float(params.log_pdf(X).sum() + prior.log_density(params))


def compare_map(data, version):
    rows = pd.read_csv(ROOT / "tests/data/mclust/map_params.csv")
    out = []
    for r in rows.itertuples():
        X = data[r.data]
        K, d = int(r.G), X.shape[1]
        prior = Prior.default(X, K, r.model, mclust=True)
        theirs = mclust_params(r, d)
        at_theirs = em.fit(X, K, r.model, prior=prior, init=theirs, tol=1e-10, max_iter=10_000)
        ours = em.fit(X, K, r.model, prior=prior)
        out.append({"data": r.data, "model": r.model, "G": K, "mclust": r.loglik,
                    "from_mclust": at_theirs.log_likelihood, "ours": ours.log_likelihood,
                    "post_mclust": log_posterior(X, at_theirs.params, prior),
                    "post_ours": log_posterior(X, ours.params, prior)})
    t = pd.DataFrame(out)
    fixed = (t["from_mclust"] - t["mclust"]).abs() <= 0.01
    higher = t["post_ours"] >= t["post_mclust"] - 0.01
    same = (t["ours"] - t["from_mclust"]).abs() <= 0.01
    print(f"MAP ({version}), {len(t)} fits:")
    print(f"  mclust's mode is a fixed point of our EM (log-likelihood within 0.01): {fixed.sum()}")
    print(f"  our default fit's log posterior >= mclust's mode's - 0.01: {higher.sum()} "
          f"({(same & higher).sum()} the same mode, {(~same & higher).sum()} a higher one)")
    print(f"  median |mclust - from mclust's mode| log-likelihood: "
          f"{(t['from_mclust'] - t['mclust']).abs().median():.2g}")
    for what, rows in (("not a fixed point", t[~fixed]), ("lower log posterior", t[~higher]),
                       ("a different mode", t[~same & higher])):
        if len(rows):
            print(f"{what}:")
            print(rows.to_string(index=False, float_format="{:.3f}".format))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--map", action="store_true", help="MAP under the default priors")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    golden = pd.read_csv(ROOT / "tests/data/mclust/golden.csv")
    version = f"mclust {golden['mclust'].iloc[0]}, hcUse = {golden['hcUse'].iloc[0]}"
    data = {name: pd.read_csv(path).to_numpy(dtype=float) for name, path in DATA.items()}
    if args.map:
        compare_map(data, version)
        return
    rows = golden[(golden["prior"] == "none") & golden["loglik"].notna()]
    out = []
    for r in rows.itertuples():
        X, K, ct = data[r.data], int(r.G), r.model
        ours = em.fit(X, K, ct).log_likelihood
        out.append({"data": r.data, "model": r.model, "G": r.G, "mclust": r.loglik, "ours": ours,
                    "short": r.loglik - ours})
    table = pd.DataFrame(out)
    reached = (table["short"] <= 0.01).sum()
    print(f"{reached} of {len(table)} fits reach mclust's log-likelihood within 0.01 ({version})")
    print(table[table["short"] > 0.01].sort_values("short", ascending=False).to_string(
        index=False, float_format="{:.3f}".format))


if __name__ == "__main__":
    main()

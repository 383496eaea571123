"""em.fit against mclust's golden log-likelihoods.

``python benchmarks/mclust_agreement.py [--map]``.

For every (data set, model, G) in ``tests/data/mclust/golden.csv``, fit by maximum likelihood
with ``em.fit``'s defaults. Count the fits that reach mclust's log-likelihood within 0.01 (higher
allowed), and list the largest shortfalls. With ``--map``,
compare the MAP fits under ``Prior.default`` with mclust's under ``priorControl()`` (both report
the log-likelihood at the MAP estimate), in both directions. Not a speed benchmark: issue 15's
acceptance is every fit within 0.01.
"""

import argparse
import warnings
from pathlib import Path

import pandas as pd

import em
from models import Prior

ROOT = Path(__file__).resolve().parents[1]
DATA = {"faithful": ROOT / "models/data/faithful.csv", "iris": ROOT / "tests/data/mclust/iris.csv",
        "sim3": ROOT / "tests/data/mclust/sim3.csv", "sim2": ROOT / "tests/data/mclust/sim2.csv"}
DATA |= {name: ROOT / f"tests/data/mclust/{name}.csv"
         for name in ("diabetes", "thyroid", "banknote", "wreath")}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--map", action="store_true", help="MAP under the default priors")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    golden = pd.read_csv(ROOT / "tests/data/mclust/golden.csv")
    rows = golden[(golden["prior"] == ("default" if args.map else "none"))
                  & golden["loglik"].notna()]
    data = {name: pd.read_csv(path).to_numpy(dtype=float) for name, path in DATA.items()}
    out = []
    for r in rows.itertuples():
        X, K, ct = data[r.data], int(r.G), r.model
        try:
            prior = Prior.default(X, K, ct) if args.map else None
            ours = em.fit(X, K, ct, prior=prior).log_likelihood
        except ValueError as exc:
            ours = float("nan")
            print(f"{r.data} {r.model} G={r.G}: {str(exc).splitlines()[0]}")
        out.append({"data": r.data, "model": r.model, "G": r.G, "mclust": r.loglik, "ours": ours,
                    "short": r.loglik - ours})
    table = pd.DataFrame(out)
    if args.map:
        print(f"MAP: |ours - mclust| log-likelihood at the MAP: median "
              f"{table['short'].abs().median():.3g}, max {table['short'].abs().max():.3g}")
    reached = (table["short"] <= 0.01).sum()
    print(f"{reached} of {len(table)} fits reach mclust's log-likelihood within 0.01 "
          f"(mclust {golden['mclust'].iloc[0]}, hcUse = {golden['hcUse'].iloc[0]})")
    print(table[table["short"] > 0.01].sort_values("short", ascending=False).to_string(
        index=False, float_format="{:.3f}".format))


if __name__ == "__main__":
    main()

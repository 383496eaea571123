"""Write ``sim.csv`` and ``sim_params.json`` (``.venv/bin/python tests/data/bayesm/make_sim.py``).

Three moderately overlapping full-covariance components in 2-D, N = 400, drawn with the suite's
own :func:`models.simulate` from a fixed seed. ``make_bayesm.R`` reads ``sim.csv``.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from models import GMMParams, simulate

HERE = Path(__file__).parent
SEED = 20261228
N = 400


def main():
    truth = GMMParams(pi=[0.5, 0.3, 0.2], mu=[[0.0, 0.0], [3.0, 0.5], [1.0, 3.0]],
                      Sigma=[[[1.0, 0.3], [0.3, 0.8]],
                             [[0.7, -0.2], [-0.2, 1.2]],
                             [[1.0, 0.5], [0.5, 1.0]]])
    X, z = simulate(truth, N, rng=SEED)
    pd.DataFrame(X, columns=["x1", "x2"]).to_csv(HERE / "sim.csv", index=False)
    meta = {"seed": SEED, "n": N, "call": "models.simulate(truth, 400, rng=seed)",
            "pi": truth.pi.tolist(), "mu": truth.mu.tolist(), "Sigma": truth.Sigma.tolist(),
            "counts": np.bincount(z, minlength=3).tolist()}
    lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in meta.items()]
    (HERE / "sim_params.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")


if __name__ == "__main__":
    main()

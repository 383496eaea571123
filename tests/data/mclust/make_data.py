"""Write the data sets mclust's golden values are computed on (``python tests/data/mclust/make_data.py``).

R reads these files, so the goldens and the Python tests see the same numbers. Old Faithful is
read from ``models/data/faithful.csv``. Iris is scikit-learn's copy: R's ``iris`` differs from it
in two rows. Two simulated sets come from fixed seeds.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from models import GMMParams, load_iris, simulate

HERE = Path(__file__).parent


def main():
    X, names, _ = load_iris()
    pd.DataFrame(X, columns=names).to_csv(HERE / "iris.csv", index=False)
    # three well separated full-covariance components in 3-D
    sim3 = GMMParams(pi=[0.3, 0.3, 0.4], mu=[[0, 0, 0], [4, 4, 0], [0, 4, 4]],
                     Sigma=[[[1, 0.5, 0], [0.5, 1, 0.3], [0, 0.3, 1]],
                            [[0.5, 0, 0], [0, 2, 0.4], [0, 0.4, 1]],
                            [[1.5, -0.4, 0], [-0.4, 1, 0], [0, 0, 0.6]]])
    X, _ = simulate(sim3, 400, rng=20261125)
    pd.DataFrame(X, columns=["x1", "x2", "x3"]).to_csv(HERE / "sim3.csv", index=False)
    # four overlapping spherical components of different volumes in 2-D
    sim2 = GMMParams(pi=[0.25, 0.25, 0.25, 0.25], mu=[[0, 0], [3, 0], [0, 3], [3, 3]],
                     Sigma=np.array([0.5, 1.0, 1.5, 0.8]), covariance_type="spherical")
    X, _ = simulate(sim2, 300, rng=20261126)
    pd.DataFrame(X, columns=["x1", "x2"]).to_csv(HERE / "sim2.csv", index=False)


if __name__ == "__main__":
    main()

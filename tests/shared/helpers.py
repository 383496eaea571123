import numpy as np
from scipy.optimize import linear_sum_assignment


def match(est, ref):
    """Permute ``est``'s components onto ``ref``'s (Hungarian algorithm on mean distances)."""
    cost = ((est.mu[:, None, :] - ref.mu[None]) ** 2 / np.var(ref.mu, axis=0).clip(1e-12)).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    return est.permute(rows[np.argsort(cols)])


def assert_params_close(a, b, rtol):
    for x, y in ((a.pi, b.pi), (a.mu, b.mu), (a.Sigma, b.Sigma)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * np.abs(y).max())

#: the families the PyMC model has: scikit-learn's four (VVV, EEE, VVI, VII) and EII, EEI
PYMC_TYPES = ("full", "tied", "diag", "spherical", "EII", "EEI")

#: compile arguments for a few evaluations of a PyTensor graph in a test: PyTensor's Python
#: linker compiles nothing, where the default numba linker spends 5-30 s per graph on a fresh
#: machine (the samplers' own compiled routes are tested in tests/models/test_pymc.py)
EVAL = {"mode": "FAST_COMPILE"}

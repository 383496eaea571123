"""Datasets shipped with, or reached through, the suite."""

from __future__ import annotations

from importlib import resources

import numpy as np

#: the embedded data sets, by the name the command line takes
DATASET_NAMES = ("faithful", "iris")


def load_faithful():
    """R's Old Faithful data: 272 eruptions of the geyser.

    Returns
    -------
    X : ndarray of shape (272, 2)
        Columns ``eruptions`` (minutes) and ``waiting`` (minutes to the next eruption).
    columns : list of str
        ``["eruptions", "waiting"]``.
    """
    import pandas as pd  # the command line's start-up needs DATASET_NAMES alone

    path = resources.files("models") / "data" / "faithful.csv"
    with path.open() as fh:
        frame = pd.read_csv(fh)
    return np.ascontiguousarray(frame.to_numpy(dtype=np.float64)), list(frame.columns)


def load_iris():
    """Fisher's iris measurements, from scikit-learn.

    Returns
    -------
    X : ndarray of shape (150, 4)
    columns : list of str
    species : ndarray of int, shape (150,)
        The species label (0, 1, 2), for checking a clustering, never for fitting.
    """
    from sklearn.datasets import load_iris as _load

    bunch = _load()
    return bunch.data.astype(np.float64), list(bunch.feature_names), bunch.target


DATASETS = dict(zip(DATASET_NAMES, (load_faithful, load_iris)))


def load(name):
    """Load an embedded dataset by name.

    Parameters
    ----------
    name : {"faithful", "iris"}

    Returns
    -------
    X : ndarray of shape (N, d)
    columns : list of str
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; the embedded ones are {sorted(DATASETS)}.")
    X, columns, *_ = DATASETS[name]()
    return X, columns

"""Reading data for the command line, and writing results folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from models.datasets import DATASETS, load


class UserError(ValueError):
    """Bad input from the command line: reported as one line, exit status 2."""


def load_data(source, columns=None):
    """Load a data matrix from a CSV (with header), a ``.npy`` file, or an embedded dataset.

    Parameters
    ----------
    source : str
        ``"faithful"``, ``"iris"``, a path to a ``.csv`` file with a header row, or a ``.npy`` file.
    columns : list of str or None
        CSV columns to use (default: all).

    Returns
    -------
    X : ndarray of shape (N, d)
    names : list of str
    """
    if source in DATASETS:
        X, names = load(source)
    else:
        path = Path(source)
        if not path.exists():
            raise UserError(f"data file {source!r} does not exist (or name an embedded dataset: "
                            f"{', '.join(sorted(DATASETS))}).")
        if path.suffix == ".npy":
            X = np.load(path, allow_pickle=False)
            if X.ndim == 1:
                X = X[:, None]
            names = [f"x{j}" for j in range(X.shape[1])] if X.ndim == 2 else []
        else:
            X, names = _read_csv(path, columns)
    if columns is not None and source in DATASETS:
        X, names = _select(X, names, columns, source)
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise UserError(f"data in {source!r} are not numeric (dtype {X.dtype}).")
    if X.ndim != 2 or X.shape[0] < 2:
        raise UserError(f"data in {source!r} must be a table of at least 2 rows, got shape {X.shape}.")
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise UserError(f"data in {source!r} contain NaN or inf in {int(bad.sum())} row(s), the "
                        f"first at data row {int(np.flatnonzero(bad)[0]) + 1}; drop or impute them.")
    return X.astype(np.float64), list(names)


def _select(X, names, columns, source):
    missing = [c for c in columns if c not in names]
    if missing:
        raise UserError(f"column(s) {missing} not in {source!r}; its columns are {names}.")
    idx = [names.index(c) for c in columns]
    return X[:, idx], list(columns)


def _read_csv(path, columns):
    import csv

    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise UserError(f"{path} is empty.")
    header, body = rows[0], rows[1:]
    use = header if columns is None else columns
    missing = [c for c in use if c not in header]
    if missing:
        raise UserError(f"column(s) {missing} not in {path}; its columns are {header}.")
    idx = [header.index(c) for c in use]
    X = np.empty((len(body), len(idx)))
    for i, row in enumerate(body):
        for j, c in enumerate(idx):
            try:
                X[i, j] = float(row[c])
            except (ValueError, IndexError):
                value = row[c] if c < len(row) else ""
                raise UserError(
                    f"column {header[c]!r} of {path} is not numeric: row {i + 1} holds {value!r}; "
                    "choose numeric columns with --columns.") from None
    return X, list(use)


def prepare_out(out, force):
    """Create the results folder; refuse to overwrite a non-empty one unless ``force``.

    Parameters
    ----------
    out : str or Path
    force : bool

    Returns
    -------
    Path
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise UserError(f"results folder {str(out)!r} already exists and is not empty; pass "
                            "--force to overwrite it or choose another --out.")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_json(path, obj):
    """Write ``obj`` as indented JSON."""
    Path(path).write_text(json.dumps(obj, indent=2, default=_default))


def _default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)

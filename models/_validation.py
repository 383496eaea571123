"""Input checks at the edge of :mod:`em`; inner functions trust their inputs."""

from __future__ import annotations

import mmap
import numbers

import numpy as np

#: elements per block when streaming over rows
BLOCK_ELEMENTS = 1 << 20


def iter_blocks(X, rows):
    """Yield ``(start, block)`` over row blocks of ``X`` (array, memmap, zarr...).

    For a NumPy memmap, the pages of each block are released after use (``MADV_DONTNEED``), so
    resident memory stays bounded by the block, not by the file.
    """
    release = getattr(X, "_mmap", None) if isinstance(X, np.memmap) else None
    for start in range(0, X.shape[0], rows):
        yield start, np.asarray(X[start:start + rows])
        if release is not None and hasattr(release, "madvise"):
            release.madvise(mmap.MADV_DONTNEED)


def check_X(X, name="X", min_rows=1):
    """Validate a data matrix and return it as a float32 or float64 array.

    Parameters
    ----------
    X : array-like of shape (N, d)
    name : str
        Name used in error messages.
    min_rows : int
        Smallest allowed N.

    Returns
    -------
    ndarray of shape (N, d), dtype float32 (if given float32) or float64
    """
    if isinstance(X, np.ndarray | np.memmap) and X.dtype.kind in "biuf":
        arr = X
    else:
        try:
            arr = np.asarray(X)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name} must be a numeric array; could not convert it: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold numbers, got dtype {arr.dtype} (e.g. strings or objects); "
            "select the numeric columns or convert them with X.astype(float)."
        )
    if arr.ndim != 2:
        hint = " Reshape 1-D data with X.reshape(-1, 1)." if arr.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D of shape (N, d), got shape {arr.shape}.{hint}")
    if arr.shape[0] < min_rows or arr.shape[1] < 1:
        raise ValueError(f"{name} needs at least {min_rows} row(s) and 1 column, got shape {arr.shape}.")
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64, copy=False)
    bad = [start + np.flatnonzero(~np.isfinite(b).all(axis=1))
           for start, b in iter_blocks(arr, max(1, BLOCK_ELEMENTS // arr.shape[1]))]
    rows = np.concatenate(bad)
    if rows.size:
        more = f" (and {rows.size - 1} more rows)" if rows.size > 1 else ""
        raise ValueError(
            f"{name} contains NaN or inf at row {rows[0]}{more}; drop or impute those rows first."
        )
    return arr


def check_n_components(n_components, N):
    """Validate the number of components against the number of rows.

    Parameters
    ----------
    n_components : int
    N : int
        Number of observations.

    Returns
    -------
    int
    """
    if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral):
        raise TypeError(f"n_components must be an integer, got {n_components!r}.")
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}.")
    if n_components > N:
        raise ValueError(
            f"n_components={n_components} exceeds the number of observations N={N}; lower K."
        )
    return int(n_components)


def check_sample_weight(sample_weight, N):
    """Validate observation weights.

    Parameters
    ----------
    sample_weight : array-like of shape (N,) or None
    N : int

    Returns
    -------
    ndarray of shape (N,) or None
        ``None`` when no weights were given (all ones).
    """
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be numeric, got dtype {w.dtype}.")
    w = w.astype(np.float64)
    if w.shape != (N,):
        raise ValueError(f"sample_weight must have shape (N,) = ({N},), got {w.shape}.")
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or inf.")
    if np.any(w < 0):
        i = int(np.flatnonzero(w < 0)[0])
        raise ValueError(f"sample_weight must be non-negative; sample_weight[{i}] = {w[i]!r}.")
    if w.sum() <= 0:
        raise ValueError("sample_weight sums to zero; at least one observation needs weight > 0.")
    return w


def check_positive(value, name, allow_zero=False, integer=False):
    """Validate a positive (or non-negative) scalar setting.

    Parameters
    ----------
    value : number
    name : str
    allow_zero : bool
    integer : bool

    Returns
    -------
    int or float
    """
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}.")
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}.")
    return int(value) if integer else float(value)

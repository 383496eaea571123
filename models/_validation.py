"""Input checks at the edge of :mod:`em` and :mod:`models`; inner functions trust their inputs.

scikit-learn's ``check_array`` and ``check_scalar`` do the checking; the messages say how to fix
the input.
"""

from __future__ import annotations

import mmap
import numbers

import numpy as np
from sklearn.utils import check_array, check_scalar

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

    scikit-learn's ``check_array`` checks the type, the dimensions and the size; the rows that are
    not finite are then found block by block (memmaps stay memmaps) and named in the message.

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
    try:
        arr = check_array(X, dtype=(np.float64, np.float32), ensure_all_finite=False,
                          ensure_min_samples=min_rows, input_name=name)
    except ValueError as exc:
        if "could not convert" in str(exc) or "dtype" in str(exc):
            raise TypeError(
                f"{name} must hold numbers ({exc}); select the numeric columns or convert them "
                "with X.astype(float).") from None
        raise ValueError(f"{name} must be 2-D of shape (N, d) with N >= {min_rows}: {exc}") from None
    if isinstance(X, np.memmap) and X.dtype == arr.dtype:
        arr = X                         # stream it below without loading it
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
    K = check_positive(n_components, "n_components", integer=True)
    if K > N:
        raise ValueError(
            f"n_components={n_components} exceeds the number of observations N={N}; lower K."
        )
    return K


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
    try:
        w = check_array(sample_weight, ensure_2d=False, dtype=np.float64,
                        input_name="sample_weight")
    except ValueError as exc:
        if "could not convert" in str(exc):
            raise TypeError(f"sample_weight must hold numbers: {exc}") from None
        raise ValueError(f"sample_weight must be finite numbers ({exc}); drop or impute those "
                         "observations.") from None
    if w.shape != (N,):
        raise ValueError(f"sample_weight must have shape (N,) = ({N},), got {w.shape}.")
    if np.any(w < 0):
        i = int(np.flatnonzero(w < 0)[0])
        raise ValueError(f"sample_weight must be non-negative; sample_weight[{i}] = {w[i]!r}.")
    if w.sum() <= 0:
        raise ValueError("sample_weight sums to zero; at least one observation needs weight > 0.")
    return w


def check_positive(value, name, allow_zero=False, integer=False):
    """Validate a positive (or non-negative) scalar setting with scikit-learn's ``check_scalar``.

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
    if isinstance(value, bool):           # check_scalar takes True for 1
        raise TypeError(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}.")
    if not integer and isinstance(value, numbers.Real) and not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    check_scalar(value, name, kind, min_val=0, include_boundaries="left" if allow_zero else "neither")
    return int(value) if integer else float(value)

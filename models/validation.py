"""Input checks at the edge of :mod:`em` and :mod:`models`; inner functions trust their inputs.

Every public function checks what it is given once, here, and passes checked values inward. The
messages name the value and say how to fix it. NumPy only: these checks run on every path, the
command line's included, so they do not load scikit-learn.
"""

from __future__ import annotations

import mmap
import numbers

import numpy as np

#: elements per block when streaming over rows
BLOCK_ELEMENTS = 1 << 20


def iter_blocks(X, rows):
    """Yield ``(start, block)`` over row blocks of ``X`` (array, memmap, zarr, :class:`BlockSource`).

    For a NumPy memmap, the pages of each block are released after use (``MADV_DONTNEED``), so
    resident memory stays bounded by the block, not by the file. A block source's blocks are
    cut to at most ``rows`` rows.
    """
    if isinstance(X, BlockSource):
        start = 0
        for B in X.blocks():
            for i in range(0, B.shape[0], rows):
                yield start + i, B[i:i + rows]
            start += B.shape[0]
        return
    release = getattr(X, "_mmap", None) if isinstance(X, np.memmap) else None
    for start in range(0, X.shape[0], rows):
        yield start, np.asarray(X[start:start + rows])
        if release is not None and hasattr(release, "madvise"):
            release.madvise(mmap.MADV_DONTNEED)


def is_block_source(X):
    """Whether ``X`` is a source of row blocks: a callable, or a sequence of 2-D arrays."""
    if isinstance(X, BlockSource) or (callable(X) and not hasattr(X, "shape")):
        return True
    return (isinstance(X, list | tuple) and len(X) > 0
            and all(hasattr(B, "shape") and len(B.shape) == 2 for B in X))


class BlockSource:
    """A re-iterable source of row blocks, read once per pass; checked on the first pass.

    Parameters
    ----------
    source : sequence of array-like of shape (n_i, d), or callable
        The blocks, or a function of no arguments that returns a fresh iterator over them
        (a generator function, say, that reads a file block by block). Every pass calls it
        again; it must yield the same rows in the same order each time.
    name : str
        Name used in error messages.

    Attributes
    ----------
    shape : (int, int)
        Total rows and the number of columns.
    dtype : numpy dtype
        float32 when every block is float32, else float64 (the blocks are cast as they are read).
    """

    def __init__(self, source, name="X"):
        if isinstance(source, BlockSource):
            source = source.source
        self.source, self.name = source, name
        n, d, dtypes = 0, None, set()
        for i, B in enumerate(self._raw()):
            B = _as_array(B, f"block {i} of {name}")
            if B.ndim != 2 or (d is not None and B.shape[1] != d) or B.shape[1] < 1:
                raise ValueError(
                    f"block {i} of {name} has shape {B.shape}; every block must be 2-D with the "
                    f"first block's {d if d is not None else 'd >= 1'} columns.")
            bad = np.flatnonzero(~np.isfinite(B).all(axis=1))
            if bad.size:
                raise ValueError(f"{name} contains NaN or inf at row {n + bad[0]} (block {i}, row "
                                 f"{bad[0]}); drop or impute those rows first.")
            n, d = n + B.shape[0], B.shape[1]
            dtypes.add(B.dtype)
        if d is None or n == 0:
            raise ValueError(f"{name} yielded no rows; pass a non-empty sequence of 2-D blocks, "
                             "or a callable that returns an iterator over them.")
        self.shape = (n, d)
        self.dtype = np.dtype(np.float32 if dtypes == {np.dtype(np.float32)} else np.float64)
        self.ndim = 2

    def _raw(self):
        return iter(self.source()) if callable(self.source) else iter(self.source)

    def blocks(self):
        """Iterate over the blocks, as C-contiguous arrays of :attr:`dtype`."""
        for B in self._raw():
            yield np.ascontiguousarray(_as_array(B, self.name), dtype=self.dtype)

    def __getitem__(self, index):
        """The rows at ``index`` (sorted integers), gathered in one pass."""
        index = np.asarray(index)
        if index.dtype.kind not in "iu" or index.ndim != 1:
            raise TypeError("a BlockSource gives rows by an array of sorted row numbers only.")
        out, start = [], 0
        for B in self.blocks():
            lo, hi = np.searchsorted(index, [start, start + B.shape[0]])
            if hi > lo:
                out.append(B[index[lo:hi] - start])
            start += B.shape[0]
        return np.vstack(out) if out else np.empty((0, self.shape[1]), self.dtype)

    def __array__(self, dtype=None, copy=None):
        """Every row in memory (for sources small enough to hold)."""
        X = np.vstack(list(self.blocks()))
        return X if dtype is None else X.astype(dtype, copy=False)

    def __len__(self):
        return self.shape[0]


def check_source(X, name="X", min_rows=1):
    """A :class:`BlockSource` of ``X``, checked (block shapes, finite values, at least ``min_rows``).

    Parameters
    ----------
    X : BlockSource, sequence of 2-D arrays, or callable
    name : str
    min_rows : int

    Returns
    -------
    BlockSource
    """
    source = BlockSource(X, name)
    if source.shape[0] < min_rows:
        raise ValueError(f"{name} has {source.shape[0]} rows; at least {min_rows} are needed.")
    return source


def _as_array(X, name):
    """``X`` as a float32 (kept) or float64 array, without copying a float array or memmap."""
    if hasattr(X, "to_numpy") and not isinstance(X, np.ndarray):   # pandas
        X = X.to_numpy()
    try:
        arr = X if isinstance(X, np.ndarray) else np.asarray(X)
    except Exception as exc:                                         # ragged nested lists
        raise TypeError(f"{name} must be a numeric array, got {type(X).__name__} ({exc}).") from None
    if arr.dtype.kind in "fiub":
        return arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must hold real numbers, got complex dtype {arr.dtype}.")
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must hold numbers ({str(exc).splitlines()[0]}); select the numeric columns "
            "or convert them with X.astype(float).") from None


def check_X(X, name="X", min_rows=1, d=None, finite=True):
    """Validate a data matrix and return it as a float32 or float64 array.

    The rows that are not finite are found block by block (memmaps stay memmaps) and named in
    the message.

    Parameters
    ----------
    X : array-like of shape (N, d)
    name : str
        Name used in error messages.
    min_rows : int
        Smallest allowed N.
    d : int or None
        The number of columns required (a fitted model's), if any.
    finite : bool
        Refuse NaN and inf.

    Returns
    -------
    ndarray of shape (N, d), dtype float32 (if given float32) or float64
    """
    arr = _as_array(X, name)
    if arr.ndim == 1:
        raise ValueError(
            f"{name} must be 2-D of shape (N, d), got a 1-D array of shape {arr.shape}; reshape "
            f"it with {name}.reshape(-1, 1) for one feature, or {name}.reshape(1, -1) for one "
            "observation.")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D of shape (N, d), got shape {arr.shape}.")
    if arr.shape[0] < min_rows or arr.shape[1] < 1:
        raise ValueError(f"{name} must be 2-D of shape (N, d) with N >= {min_rows} and d >= 1, "
                         f"got shape {arr.shape}.")
    if d is not None and arr.shape[1] != d:
        raise ValueError(f"{name} must have shape (N, {d}) to match the model's d = {d} "
                         f"features, got shape {arr.shape}.")
    if finite:
        bad = [start + np.flatnonzero(~np.isfinite(b).all(axis=1))
               for start, b in iter_blocks(arr, max(1, BLOCK_ELEMENTS // arr.shape[1]))]
        rows = np.concatenate(bad)
        if rows.size:
            more = f" (and {rows.size - 1} more rows)" if rows.size > 1 else ""
            raise ValueError(f"{name} contains NaN or inf at row {rows[0]}{more}; drop or impute "
                             "those rows first.")
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
    w = _as_array(sample_weight, "sample_weight").astype(np.float64, copy=False)
    if w.shape != (N,):
        raise ValueError(f"sample_weight must have shape (N,) = ({N},), got {w.shape}.")
    if not np.all(np.isfinite(w)):
        i = int(np.flatnonzero(~np.isfinite(w))[0])
        raise ValueError(f"sample_weight must be finite numbers; sample_weight[{i}] = {w[i]!r}. "
                         "Drop or impute those observations.")
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
        raise TypeError(f"{name} must be an instance of {'int' if integer else 'float'}, not "
                        f"{type(value).__name__} ({value!r}).")
    if not integer and not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} == {value}, must be {'>=' if allow_zero else '>'} 0.")
    return int(value) if integer else float(value)


def feature_names_of(X, feature_names=None):
    """The features' names: those given, else a DataFrame's columns, else None (0..d-1).

    Parameters
    ----------
    X : array-like of shape (N, d)
    feature_names : sequence of str or None

    Returns
    -------
    list of str or None
    """
    if feature_names is None and hasattr(X, "columns"):
        return [str(c) for c in X.columns]
    return None if feature_names is None else [str(n) for n in feature_names]

"""Reading data for the command line, and writing results folders without losing anything.

A command never writes into its results folder directly. It writes into a fresh temporary folder
beside it, and :class:`ResultsFolder` moves the files into place at the end, so an interrupted
or failed run leaves nothing behind. A manifest (``.gmm-manifest.json``) lists every file gmm
wrote there with its SHA-256. ``--force`` replaces only those, and only while they are unchanged.
A folder that holds files gmm did not write, or that holds the current working folder, is
refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from models.datasets import DATASETS, load
from reports.options import UserError, split_names

__all__ = ["MANIFEST", "ResultsFolder", "UserError", "columns_present", "dataset_name",
           "load_data", "read_manifest", "split_names", "write_json"]

MANIFEST = ".gmm-manifest.json"


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
def load_data(source, columns=None, exclude=None):
    """Load a data matrix from a CSV (with header), a ``.npy`` file, or an embedded dataset.

    Parameters
    ----------
    source : str
        ``"faithful"``, ``"iris"``, a path to a ``.csv`` file with a header row, or a ``.npy`` file.
    columns : list of str or None
        Columns to use, in this order (default: all).
    exclude : list of str or None
        Columns to leave out (applied after ``columns``).

    Returns
    -------
    X : ndarray of shape (N, d)
    names : list of str
    """
    if source in DATASETS:
        X, names = load(source)
        frame = pd.DataFrame(X, columns=names)
    else:
        path = Path(source)
        if not path.is_file():
            what = "is a folder, not a data file" if path.is_dir() else "does not exist"
            raise UserError(f"data file {source!r} {what} (or name an embedded dataset: "
                            f"{', '.join(sorted(DATASETS))}).")
        if path.suffix == ".npy":
            X = np.load(path, allow_pickle=False)
            if X.ndim == 1:
                X = X[:, None]
            if X.ndim != 2:
                raise UserError(f"{source!r} holds an array of shape {X.shape}; gmm needs a table "
                                "(N, d).")
            frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
        else:
            try:
                frame = pd.read_csv(path, skipinitialspace=True)
            except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
                raise UserError(f"{source!r} is not a readable CSV file with a header row "
                                f"({str(exc).splitlines()[0]}).") from None
    frame.columns = [str(c) for c in frame.columns]
    use = list(frame.columns) if columns is None else list(columns)
    unknown = [c for c in use + list(exclude or []) if c not in frame.columns]
    if unknown:
        raise UserError(f"column(s) {unknown} not in {source!r}; its columns are "
                        f"{list(frame.columns)}.")
    use = [c for c in use if c not in set(exclude or [])]
    if not use:
        raise UserError(f"no columns left to use in {source!r} after --exclude.")
    frame = frame[use]
    values = np.empty(frame.shape)
    for j, c in enumerate(use):
        col = frame[c]
        num = pd.to_numeric(col, errors="coerce")
        missing = col.isna().to_numpy()
        bad = num.isna().to_numpy() & ~missing
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise UserError(f"column {c!r} of {source!r} is not numeric: row {i + 1} holds "
                            f"{col.iloc[i]!r}; leave it out with --exclude {c!r} or choose "
                            "columns with --columns.")
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise UserError(f"missing value at row {i + 1}, column {c!r} of {source!r} "
                            f"({int(missing.sum())} missing in that column); drop or impute "
                            "those rows first.")
        values[:, j] = num.to_numpy(dtype=np.float64)
    if values.shape[0] < 2:
        raise UserError(f"data in {source!r} must be a table of at least 2 rows, got "
                        f"{values.shape[0]}.")
    bad = ~np.isfinite(values)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise UserError(f"data in {source!r} hold {values[i, j]} at row {i + 1}, column "
                        f"{use[j]!r}; drop or fix that row.")
    return values, use


def columns_present(source, names):
    """``names`` if the data source has every one of them as a column, else None.

    Parameters
    ----------
    source : str
        As for :func:`load_data`.
    names : list of str

    Returns
    -------
    list of str or None
    """
    if source in DATASETS:
        header = load(source)[1]
    elif Path(source).is_file() and Path(source).suffix != ".npy":
        try:
            header = [str(c) for c in pd.read_csv(source, nrows=0).columns]
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
            return None                      # load_data reports what is wrong with the file
    else:
        return None
    return list(names) if all(n in header for n in names) else None


def dataset_name(source):
    """Short name of a data source for default folder names (``iris``, ``mydata``)."""
    return source if source in DATASETS else Path(source).stem


# ---------------------------------------------------------------------------------------------
# Results folders
# ---------------------------------------------------------------------------------------------
def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(folder):
    """The files gmm wrote in ``folder``: ``{name: {"sha256": ..., "command": ...}}`` (empty if none)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text())["files"])
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{str(path)!r} is not a gmm manifest; move it away or choose another "
                        "--out.") from None


def _holds_cwd(target):
    cwd = Path.cwd().resolve()
    return target == cwd or target in cwd.parents


class ResultsFolder:
    """A command's results folder, written in a temporary folder and moved into place at the end.

    Use as a context manager: the body writes into :attr:`path`. On success the files move into
    :attr:`target`, and its manifest records them. On an exception or Ctrl-C the temporary folder
    is removed, so nothing is written.

    Parameters
    ----------
    target : str or Path
        The results folder.
    force : bool
        Replace the files an earlier gmm run wrote there.
    command : str
        Name recorded in the manifest for each file (``fit``, ``report``...).
    update : bool
        Add to an existing folder (``gmm report``): replace only the files this ``command``
        wrote there before, and keep every other file. No ``--force`` needed.

    Raises
    ------
    UserError
        The target is a file, holds the current working folder, holds files gmm did not write
        (which a new file would overwrite), or (without ``force``) holds an earlier run's results.
    """

    def __init__(self, target, force=False, command="gmm", update=False):
        self.target = Path(target)
        self.force, self.command, self.update = force, command, update
        self.path = None
        self.check()

    def check(self, names=()):
        """Refuse a target that would lose anything (see the class docstring).

        Parameters
        ----------
        names : iterable of str
            The files about to be written (checked against files gmm did not write).
        """
        t = self.target
        if t.exists() and not t.is_dir():
            raise UserError(f"--out {str(t)!r} names an existing file, not a folder; choose a "
                            "folder name.")
        if not self.update and _holds_cwd(t.resolve()):
            raise UserError(f"--out {str(t)!r} is the current working folder or holds it; gmm "
                            "writes results into a folder of their own: choose e.g. --out "
                            "results/.")
        if not t.is_dir():
            return
        manifest = read_manifest(t)
        theirs = sorted(p.name for p in t.iterdir() if p.name != MANIFEST and p.name not in manifest)
        if manifest and not (self.force or self.update):
            raise UserError(f"results folder {str(t)!r} holds an earlier gmm run's results; pass "
                            "--force to replace them (files gmm did not write are kept) or choose "
                            "another --out.")
        if theirs and not manifest and not self.update:
            raise UserError(f"results folder {str(t)!r} holds files gmm did not write "
                            f"({', '.join(theirs[:3])}{', ...' if len(theirs) > 3 else ''}); "
                            "gmm never replaces them: choose another --out.")
        clash = sorted(set(names) & set(theirs))
        if clash:
            raise UserError(f"writing {clash[0]!r} would replace a file in {str(t)!r} that gmm did "
                            "not write; move it away or choose another --out.")
        mine = self._replaceable(manifest)
        changed = [n for n in mine if (t / n).exists() and not (
            (t / n).is_file() and _sha256(t / n) == manifest[n]["sha256"])]
        if changed:
            raise UserError(f"{str(t / changed[0])!r} changed since gmm wrote it, so gmm will not "
                            "replace it; move it away or choose another --out.")

    def _replaceable(self, manifest):
        """The manifest's files this run may replace or remove."""
        return [n for n, e in manifest.items() if not self.update or e.get("command") == self.command]

    def __enter__(self):
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.gmm-tmp-",
                                          dir=self.target.parent))
        umask = os.umask(0)
        os.umask(umask)
        self.path.chmod(0o777 & ~umask)      # mkdtemp's 0700 would stay on the results folder
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                with _no_interrupt():
                    self._commit()
        finally:
            if self.path.exists():
                shutil.rmtree(self.path)     # our own temporary folder, nothing else
        return False

    def _commit(self):
        names = sorted(p.name for p in self.path.iterdir())
        self.check(names)
        entries = {n: {"sha256": _sha256(self.path / n), "command": self.command} for n in names}
        if not self.target.exists():
            _write_manifest(self.path, entries)
            os.rename(self.path, self.target)
            return
        manifest = read_manifest(self.target)
        for n in names:
            os.replace(self.path / n, self.target / n)
        stale = [n for n in self._replaceable(manifest) if n not in entries]
        for n in stale:
            with contextlib.suppress(FileNotFoundError):
                (self.target / n).unlink()
            manifest.pop(n)
        if not self.update:
            manifest = {}
        _write_manifest(self.target, {**manifest, **entries})


def _write_manifest(folder, files):
    tmp = Path(folder) / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"written_by": "gmm", "files": files}, indent=1, sort_keys=True))
    os.replace(tmp, Path(folder) / MANIFEST)


@contextlib.contextmanager
def _no_interrupt():
    """Hold Ctrl-C off while files move into place (a few renames): all or nothing moves."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:                       # not the main thread: nothing to hold off
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def write_json(path, obj):
    """Write ``obj`` as indented JSON."""
    Path(path).write_text(json.dumps(obj, indent=2, default=_default))


def _default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)

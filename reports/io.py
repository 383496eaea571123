"""Reading data for the command line, and writing results folders without losing anything.

A command never writes into its results folder directly. It writes into a fresh temporary folder
beside it, and :class:`ResultsFolder` moves the files into place at the end, so an interrupted
or failed run leaves nothing behind. A manifest (``.gmm-manifest.json``) lists every file gmm
wrote there with its SHA-256. ``--force`` replaces only those, and only while they are unchanged.
A folder that holds files gmm did not write, or that holds the current working folder, is
refused.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from models.datasets import DATASETS, load
from reports import interrupt
from reports.options import UserError, split_names

__all__ = ["MANIFEST", "ResultsFolder", "UserError", "columns_present", "dataset_name",
           "load_data", "read_manifest", "split_names", "write_json"]

MANIFEST = ".gmm-manifest.json"


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
#: The cells ``pandas.read_csv`` reads as missing by default (its ``na_values``): R's ``NA``,
#: Excel's ``#N/A``, an empty cell...
NA_CELLS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                      "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
                      "nan", "null"})
#: What ``load_data`` does with missing cells (``missing=``).
MISSING = ("refuse", "drop", "allow")
WHITESPACE = r"\s+"
#: The separators tried, in this order, when none is given; whitespace comes last, alone.
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "bar"}
SEPARATOR_NAMES = {"tab": "\t", "\\t": "\t", " ": WHITESPACE, "space": WHITESPACE,
                   "whitespace": WHITESPACE}
SAMPLE_ROWS = 1000                           # lines read to detect how a file is written
NUMBER_LIKE = r"[+-]?[\d.,]*\d[\d.,]*(?:[eE][+-]?\d+)?"


def to_stderr(message):
    """Print a one-line note on standard error (the default ``say`` of :func:`load_data`)."""
    print(message, file=sys.stderr)


def load_data(source, columns=None, exclude=None, *, sep=None, decimal=None, header=True,
              index_col=None, missing="refuse", say=to_stderr):
    """Load a data matrix from a CSV file, a ``.npy`` file, or an embedded dataset.

    A CSV file is read right or refused with one line: its encoding (UTF-8, with or without a
    byte-order mark, UTF-16 with one, else Windows-1252), separator, decimal mark and thousands
    separator are detected when not given, and so are R's row names (``write.csv``'s first
    column with an empty name, or ``write.table``'s header one name short) and Excel's empty
    trailing columns and rows, which are dropped. Each detection that changes how the file is
    read is said in one line; a file that could be read two ways is refused.

    Parameters
    ----------
    source : str
        ``"faithful"``, ``"iris"``, a path to a text table (``.csv``, ``.tsv``, ``.txt``...),
        or a ``.npy`` file.
    columns : list of str or None
        Columns to use, in this order (default: all).
    exclude : list of str or None
        Columns to leave out (applied after ``columns``).
    sep : str or None
        Column separator (``--sep``): one character, ``"tab"`` or ``"space"`` (any run of
        whitespace); None detects it among comma, semicolon, tab, bar and whitespace.
    decimal : {".", ",", None}
        Decimal mark (``--decimal``); None detects it (a point unless the numbers need commas).
    header : bool
        Whether the first line names the columns (``--no-header`` is False: the columns are then
        named ``x0``, ``x1``, ... and the first line is data).
    index_col : str, int or None
        A column of row labels to drop (``--index-col``), by name or by position (0 is the
        first column of the file). None drops R's row names when it finds them.
    missing : {"refuse", "drop", "allow"}
        What a missing cell (one pandas reads as missing: empty, ``NA``, ``NaN``, ...) does:
        refuse the file (naming the first one), drop the incomplete rows (``--complete-rows``),
        or become NaN in ``X``.
    say : callable
        Receives each one-line note (default: print it on standard error).

    Returns
    -------
    X : ndarray of shape (N, d)
        The data, NaN where a cell is missing (only with ``missing="allow"``).
    names : list of str
        The column names, ``d`` of them.

    Raises
    ------
    UserError
        One line naming the file, what is wrong, and the option to pass.
    """
    if missing not in MISSING:
        raise ValueError(f"missing={missing!r}; choose one of {', '.join(MISSING)}.")
    numbers = None
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
            frame, numbers = _read_table(path, source, sep=sep, decimal=decimal, header=header,
                                         index_col=index_col, say=say)
    frame.columns = [str(c) for c in frame.columns]
    use = list(frame.columns) if columns is None else list(columns)
    unknown = [c for c in use + list(exclude or []) if c not in frame.columns]
    if unknown:
        raise UserError(f"column(s) {unknown} not in {source!r}; its columns are "
                        f"{list(frame.columns)}.")
    use = [c for c in use if c not in set(exclude or [])]
    if not use:
        raise UserError(f"no columns left to use in {source!r} after --exclude.")
    values = np.empty((len(frame), len(use)))
    for j, c in enumerate(use):
        if numbers is None or _numeric(frame[c]):
            values[:, j] = frame[c].to_numpy(dtype=np.float64)
            continue
        values[:, j], bad = numbers.convert(frame[c])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise UserError(f"column {c!r} of {source!r} is not numeric: row {i + 1} holds "
                            f"{frame[c].iloc[i]!r}; "
                            f"{numbers.hint(frame[c], i, c, header)}")
    if values.shape[0] < 2:
        raise UserError(f"data in {source!r} must be a table of at least 2 rows, got "
                        f"{values.shape[0]}.")
    infinite = np.isinf(values)
    if infinite.any():
        i, j = (int(v) for v in np.argwhere(infinite)[0])
        raise UserError(f"data in {source!r} hold {values[i, j]} at row {i + 1}, column "
                        f"{use[j]!r}; drop or fix that row.")
    return _missing_cells(values, use, source, missing, say), use


def _missing_cells(values, use, source, missing, say):
    """Apply the ``missing`` policy of :func:`load_data` to ``values`` (N, d), NaN where missing."""
    absent = np.isnan(values)
    if not absent.any():
        return values
    empty = absent.all(axis=0)
    if empty.any():
        c = use[int(np.flatnonzero(empty)[0])]
        raise UserError(f"column {c!r} of {source!r} has no observed value; leave it out with "
                        f"--exclude {c!r}.")
    rows = absent.any(axis=1)
    N, n_rows, n_cells = len(values), int(rows.sum()), int(absent.sum())
    if missing == "refuse":
        i, j = (int(v) for v in np.argwhere(absent)[0])
        raise UserError(f"missing value at row {i + 1}, column {use[j]!r} of {source!r} "
                        f"({int(absent[:, j].sum())} missing in that column); pass "
                        "--complete-rows to drop incomplete rows.")
    if missing == "drop":
        if n_rows == N:
            raise UserError(f"every row of {source!r} has a missing value, so --complete-rows "
                            "leaves nothing; choose fewer columns with --columns or --exclude.")
        say(f"note: {source}: dropped {_count(n_rows, 'row')} of {N} with missing values")
        return values[~rows]
    nothing = absent.all(axis=1)
    if nothing.any():
        i = int(np.flatnonzero(nothing)[0])
        raise UserError(f"row {i + 1} of {source!r} has no observed value "
                        f"({_count(int(nothing.sum()), 'such row')}); delete it or pass "
                        "--complete-rows to drop incomplete rows.")
    say(f"note: {source}: {_count(n_cells, 'cell')} missing in {n_rows} of {N} rows")
    return values


def _count(n, what):
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


class _Numbers:
    """How a file writes its numbers: a decimal mark and a thousands separator (or None).

    Parameters
    ----------
    decimal : {".", ","}
    thousands : {".", ",", None}
    """

    def __init__(self, decimal=".", thousands=None):
        self.decimal, self.thousands = decimal, thousands
        mark = re.escape(decimal)
        whole = (r"\d+" if thousands is None
                 else rf"(?:\d+|[1-9]\d{{0,2}}(?:{re.escape(thousands)}\d{{3}})+)")
        self.pattern = (rf"[+-]?(?:{whole}(?:{mark}\d*)?|{mark}\d+)(?:[eE][+-]?\d+)?"
                        r"|[+-]?(?i:inf|infinity)")

    def is_number(self, cell):
        """Whether the (stripped) ``cell`` is a number written this way."""
        return re.fullmatch(self.pattern, cell) is not None

    def numbers(self, cells):
        """``cells`` (stripped strings, each a number written this way) as float64."""
        if self.thousands:
            cells = cells.str.replace(self.thousands, "", regex=False)
        if self.decimal != ".":
            cells = cells.str.replace(self.decimal, ".", regex=False)
        # float() rounds correctly, so "0.1" reads as the double nearest 0.1, as R reads it
        return np.asarray(cells.to_numpy(dtype=object), dtype=np.float64)

    def convert(self, cells):
        """``cells`` as numbers: (values (N,), NaN where missing; bad (N,), not a number)."""
        missing = cells.isin(NA_CELLS).to_numpy()
        ok = cells.str.fullmatch(self.pattern).to_numpy(dtype=bool)
        return self.numbers(cells.where(ok, "nan")), ~ok & ~missing

    def hint(self, cells, i, name, header):
        """How to fix the non-number at row ``i`` of column ``name``: one clause."""
        other = {".": ",", ",": "."}[self.decimal]
        if any(_Numbers(other, t).is_number(cells.iloc[i]) for t in (None, self.decimal)):
            return (f"pass --decimal {other!r} if {other!r} is its decimal mark, or leave it out "
                    f"with --exclude {name!r}.")
        cell = cells.iloc[i]
        for mark in sorted(set(re.findall(r"[^\w\s.,+-]", cell))):
            if all(self.is_number(part.strip()) for part in cell.split(mark)):
                return f"pass --sep {mark!r} if {mark!r} separates its columns."
        if i == 0 and not header and self.convert(cells.iloc[1:])[1].sum() == 0:
            return "its first row looks like column names: leave out --no-header."
        return f"leave it out with --exclude {name!r} or choose columns with --columns."


#: The ways of writing numbers tried, in this order; the first fits unless a number needs another.
READINGS = (_Numbers(".", None), _Numbers(",", None), _Numbers(".", ","), _Numbers(",", "."))


def _decode(path, source, say):
    """The text of the file at ``path``, every line ending in a line feed."""
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16")
    elif b"\x00" in data[:65536]:
        raise UserError(f"{source!r} is not a text file (it holds NUL bytes); gmm reads tables "
                        "as CSV text (from a spreadsheet: save as CSV) or .npy files.")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
            say(f"note: {source}: not UTF-8; read it as Windows-1252 text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _records(text, sep):
    """Non-empty records of ``text`` split at ``sep`` by the csv module: (line, fields) pairs."""
    if sep == WHITESPACE:
        lines = (line.replace("\t", " ").strip() for line in text.split("\n"))
        reader = csv.reader(lines, delimiter=" ", skipinitialspace=True)
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, skipinitialspace=True)
    return ((reader.line_num, fields) for fields in reader
            if len(fields) > 1 or fields and fields[0].strip())


def _head(text, size=1 << 20):
    """The first lines of ``text``, about ``size`` characters (all of it if shorter)."""
    return text if len(text) <= size else text[:text.rfind("\n", 0, size) + 1 or size]


def _shape(records, header):
    """("even" or "short", n) if every record has n fields (the header n - 1 if "short")."""
    counts = [len(fields) for _, fields in records]
    if not counts:
        return None
    body = counts[1:] if header and len(counts) > 1 else counts
    n = body[0]
    if any(c != n for c in body):
        return None
    if counts[0] == n:
        return "even", n
    return ("short", n) if header and counts[0] == n - 1 else None


def _sep_word(sep):
    return SEPARATORS.get(sep, "whitespace" if sep == WHITESPACE else repr(sep))


def _separator(text, source, decimal, header):
    """Detect the separator of ``text``: the one that gives every line as many fields."""
    candidates = [s for s in SEPARATORS if s != decimal]
    text = _head(text)
    sample = {s: list(itertools.islice(_records(text, s), SAMPLE_ROWS)) for s in candidates}
    shapes = {s: _shape(sample[s], header) for s in candidates}
    for kind in ("even", "short"):
        fit = [s for s in candidates if shapes[s] and shapes[s][0] == kind and shapes[s][1] >= 2]
        if len(fit) > 1:
            raise UserError(f"cannot tell the column separator of {source!r}: "
                            f"{' and '.join(_sep_word(s) for s in fit)} each give every line "
                            f"{'as many fields' if kind == 'even' else 'one field more than the header'}; "
                            "pass --sep.")
        if fit:
            s = fit[0]
            body = [fields for _, fields in sample[s][1:]]
            if (s == "," and kind == "short" and shapes[s][1] == 2 and decimal is None
                    and all(a.isdigit() and b.isdigit() for a, b in body)):
                raise UserError(f"cannot tell whether ',' separates the columns of {source!r} or "
                                f"marks decimals (line 2: {','.join(body[0])}); pass --decimal "
                                "',' or --sep ','.")
            return s
    spaces = _shape(list(itertools.islice(_records(text, WHITESPACE), SAMPLE_ROWS)), header)
    if spaces and spaces[1] >= 2:
        return WHITESPACE
    if all(shapes[s] == ("even", 1) for s in candidates):
        return candidates[0]                 # one column
    ragged = [s for s in candidates if shapes[s] is None]
    s = max(ragged, key=lambda s: _modal_share(sample[s], header))
    raise _ragged(sample[s], header, source, s, decimal)


def _modal_share(records, header):
    counts = np.array([len(f) for _, f in records[1 if header else 0:]] or [0])
    values, times = np.unique(counts, return_counts=True)
    return (values[times.argmax()] >= 2, times.max() / len(counts))


def _ragged(records, header, source, sep, decimal):
    """The UserError for lines with different numbers of fields."""
    body = records[1 if header and len(records) > 1 else 0:]
    counts = np.array([len(f) for _, f in body])
    values, times = np.unique(counts, return_counts=True)
    n = values[times.argmax()]
    hint = " (or --decimal ',' if commas mark decimals)" if sep == "," and decimal is None else ""
    if (counts == n).all():
        return UserError(f"{source!r}: its header has {len(records[0][1])} fields but its rows "
                         f"have {n} (read as {_sep_word(sep)}-separated); fix the header or pass "
                         f"--sep{hint}.")
    line0 = next(line for line, f in body if len(f) == n)
    line, fields = next((line, f) for line, f in body if len(f) != n)
    return UserError(f"{source!r}: line {line} has {_count(len(fields), 'field')} where line {line0} has "
                     f"{n} (read as {_sep_word(sep)}-separated); fix that line or pass --sep"
                     f"{hint}.")


def _sep_given(sep):
    """The separator ``--sep`` names: one character, "tab" or "space"."""
    sep = SEPARATOR_NAMES.get(sep, sep)
    if sep != WHITESPACE and (len(sep) != 1 or sep in "\"\n\r"):
        raise UserError(f"--sep {sep!r}: pass one character (e.g. ';'), 'tab' or 'space'.")
    return sep


def _layout(path, source, sep, decimal, header, say):
    """Decode the file and find its separator: (text, sep, whether sep was detected)."""
    if decimal not in (None, ".", ","):
        raise UserError(f"--decimal {decimal!r}: pass '.' or ','.")
    text = _decode(path, source, say)
    detected = sep is None
    try:
        sep = _separator(text, source, decimal, header) if detected else _sep_given(sep)
    except csv.Error as exc:
        raise UserError(f"{source!r} is not a readable CSV file ({exc}).") from None
    if sep == decimal:
        raise UserError(f"--sep and --decimal are both {sep!r}; choose another --sep.")
    return text, sep, detected


def _read_table(path, source, *, sep, decimal, header, index_col, say):
    """Read a text table: (frame, named, each column numbers or stripped strings; :class:`_Numbers`)."""
    text, sep, detected = _layout(path, source, sep, decimal, header, say)
    lines = text.split("\n")
    counts = _field_counts(text, lines, sep, source)
    nonblank = np.flatnonzero(counts)
    if not len(nonblank):
        raise UserError(f"{source!r} is empty; gmm needs a table with a header row.")
    body = nonblank[1:] if header else nonblank
    n = int(np.bincount(counts[body]).argmax()) if len(body) else int(counts[nonblank[0]])
    if (counts[body] != n).any():
        line, line0 = (int(body[np.flatnonzero(test)[0]]) + 1
                       for test in (counts[body] != n, counts[body] == n))
        raise UserError(f"{source!r}: line {line} has {_count(int(counts[line - 1]), 'field')} where "
                        f"line {line0} has {n} (read as {_sep_word(sep)}-separated); fix that line "
                        "or pass --sep.")
    first = next(_records(text, sep)) if header else None
    if first is not None and len(first[1]) not in (n, n - 1):
        raise UserError(f"{source!r}: its header has {len(first[1])} fields but its rows have {n} "
                        f"(read as {_sep_word(sep)}-separated); fix the header or pass --sep.")
    data = text[sum(len(line) + 1 for line in lines[:nonblank[0] + 1]):] if header else text
    sample = _pandas(data, sep, len(body), n, source, nrows=SAMPLE_ROWS, dtype=str, na_filter=False)
    names = _names(first, sample, n)
    numbers = _numbers(sample, decimal, source, names)
    _say_reading(source, sep if detected and n > 1 else ",", numbers, decimal, say)
    if numbers.thousands is None:            # pandas reads the numbers; text columns as they are
        frame = _pandas(data, sep, len(body), n, source, decimal=numbers.decimal)
        text_columns = [j for j in frame.columns if not _numeric(frame[j])]
        if text_columns:
            raw = _pandas(data, sep, len(body), len(text_columns), source, usecols=text_columns,
                          dtype=str, na_filter=False)
            frame[text_columns] = raw.set_axis(text_columns, axis=1)
    else:                                    # pandas would take 12,34 for 1234: read the cells
        frame = _pandas(data, sep, len(body), n, source, dtype=str, na_filter=False)
    empty, blank = 0, ' \t"' + ("" if sep == WHITESPACE else sep)
    while empty < len(body) and not lines[body[-1 - empty]].strip(blank):
        empty += 1
    if empty:
        frame = frame.iloc[:len(frame) - empty]
        say(f"note: {source}: dropped {_count(empty, 'line')} of separators only at the end")
    return _named(frame, sample, names, source, numbers, header, index_col, say), numbers


def _field_counts(text, lines, sep, source):
    """The number of fields of the record ending on each line of ``text`` (N lines,), 0 if none."""
    if sep != WHITESPACE and '"' not in text:
        return np.array([line.count(sep) + 1 if line.strip() else 0 for line in lines])
    counts = np.zeros(len(lines), dtype=int)
    try:
        for line, fields in _records(text, sep):
            counts[line - 1] = len(fields)
    except csv.Error as exc:
        raise UserError(f"{source!r} is not a readable CSV file ({exc}).") from None
    return counts


def _pandas(data, sep, rows, n, source, **options):
    """``pandas.read_csv`` on the data lines: a frame of (at most) ``rows`` rows and ``n`` columns."""
    if not rows:
        return pd.DataFrame({j: pd.Series([], dtype=str) for j in range(n)})
    try:
        frame = pd.read_csv(io.StringIO(data), sep=sep, header=None, skipinitialspace=True,
                            engine="c", **options)
    except pd.errors.ParserError as exc:
        raise UserError(f"{source!r} is not a readable table ({str(exc).splitlines()[0]}); "
                        "pass --sep.") from None
    if frame.shape != (min(rows, options.get("nrows", rows)), n):
        raise UserError(f"{source!r}: pandas reads {frame.shape[0]} rows of {frame.shape[1]} fields "
                        f"where the csv module reads {rows} of {n}; pass --sep.")
    return frame.apply(lambda cells: cells.str.strip()) if options.get("dtype") is str else frame


def _numeric(cells):
    return pd.api.types.is_numeric_dtype(cells) and not pd.api.types.is_bool_dtype(cells)


def _absent(cells):
    """Which ``cells`` (numbers, or stripped strings) are missing."""
    return (cells.isna() if _numeric(cells) else cells.isin(NA_CELLS)).to_numpy()


def _names(first, sample, n):
    """Each field's name: the header's, "" for none, None for R's row names (header a name short)."""
    if first is None:
        return [f"x{j}" for j in range(n)]
    names = [name.strip() for name in first[1]]
    if len(names) == n - 1:                  # lines end with a separator, or R's row names
        names = names + [""] if (sample[n - 1] == "").all() else [None, *names]
    return names


def _label(names, j):
    return f"column {names[j]!r}" if names[j] else f"column {j}"


def _numbers(frame, decimal, source, names):
    """Detect how ``frame`` writes numbers: the first of :data:`READINGS` every column fits.

    A column fits a reading when each of its number-like cells (in its first
    :data:`SAMPLE_ROWS` rows) is a number written that way; columns that fit none are text, for
    :func:`load_data` to refuse if they are used. Decimal points win when they fit; otherwise
    two readings that give different numbers (``1,234``: 1234 or 1.234?) are refused.
    """
    readings = [r for r in READINGS if decimal in (None, r.decimal)]
    marked = {}
    for j in frame.columns:
        cells = frame[j].iloc[:SAMPLE_ROWS]
        cells = cells[cells.str.contains("[.,]") & cells.str.fullmatch(NUMBER_LIKE)].drop_duplicates()
        fit = [r for r in readings if cells.str.fullmatch(r.pattern).all()]
        if len(cells) and fit:
            marked[j] = (cells, fit)
    common = [r for r in readings if all(r in fit for _, fit in marked.values())]
    if decimal is not None:
        return common[0] if common else readings[0]
    if not common:
        a, b = next((a, b) for a in marked for b in marked if not set(marked[a][1]) & set(marked[b][1]))
        one, other = (marked[a][0][~marked[a][0].str.fullmatch(marked[b][1][0].pattern)].iloc[0],
                      marked[b][0][~marked[b][0].str.fullmatch(marked[a][1][0].pattern)].iloc[0])
        raise UserError(f"{source!r}: {_label(names, a)} holds {one!r} but {_label(names, b)} holds "
                        f"{other!r}: numbers written with different decimal marks; pass --decimal "
                        "to choose one.")
    chosen = common[0]
    if chosen is READINGS[0]:                # points: the usual way, and no thousands needed
        return chosen
    for r in common[1:]:
        for j, (cells, _) in marked.items():
            differ = chosen.numbers(cells) != r.numbers(cells)
            if differ.any():
                cell = cells[differ].iloc[0]
                a, b = chosen.numbers(cells[differ].iloc[:1])[0], r.numbers(cells[differ].iloc[:1])[0]
                raise UserError(f"{source!r}: {cell!r} in {_label(names, j)} could be {a:g} or {b:g}; "
                                "pass --decimal ',' if commas mark decimals, or --decimal '.' if "
                                "they separate thousands.")
    return chosen


def _say_reading(source, sep, numbers, decimal, say):
    """Say, in one line, a separator or a way of writing numbers that is not the usual one."""
    marks = []
    if numbers.decimal == "," and decimal is None:
        marks.append("decimal commas")
    if numbers.thousands:
        marks.append(f"{numbers.thousands!r} separating thousands")
    if sep == "," and not marks:
        return
    how = "" if sep == "," else f" as {_sep_word(sep)}-separated"
    say(f"note: {source}: read{how}{' with ' if marks else ''}{' and '.join(marks)}")


def _named(frame, sample, names, source, numbers, header, index_col, say):
    """``frame`` with its columns named, row names and empty columns dropped, or a UserError.

    ``sample`` holds the first rows as stripped strings, to tell names from numbers.
    """
    keep = list(range(len(names)))
    empty = [j for j in keep if names[j] == "" and _absent(frame[j]).all()]
    if empty:
        say(f"note: {source}: dropped {_count(len(empty), 'empty column')} (no name, no values)")
    keep = [j for j in keep if j not in empty]
    if None in names:
        say(f"note: {source}: first column is row names (the header is one name short, as R's "
            "write.table writes); dropped it")
        keep.remove(0)
    if index_col is not None:
        keep.remove(_index_column(index_col, names, keep, source))
    elif keep and names[keep[0]] == "" and _row_names(frame[keep[0]], numbers):
        say(f"note: {source}: first column is R's row names (write.csv); dropped it (pass "
            "--index-col to choose another)")
        keep = keep[1:]
    if header:
        numeric = [j for j in keep if names[j] and not numbers.convert(sample[j])[1].any()
                   and not _absent(sample[j]).all()]
        if numeric and all(numbers.is_number(names[j]) for j in numeric):
            line = ", ".join(names[j] for j in keep[:3]) + (", ..." if len(keep) > 3 else "")
            raise UserError(f"{source!r}: its first line ({line}) holds numbers like the lines "
                            "below it, not column names; pass --no-header if it is data.")
    for j in keep:
        if not names[j]:
            raise UserError(f"column {j} of {source!r} has no name in its header; name it, or "
                            f"pass --index-col {j} if it holds row labels.")
    seen = {}
    for j in keep:
        if names[j] in seen:
            raise UserError(f"columns {seen[names[j]]} and {j} of {source!r} are both named "
                            f"{names[j]!r}; rename one.")
        seen[names[j]] = j
    frame = frame[keep]
    frame.columns = [names[j] for j in keep]
    return frame


def _index_column(index_col, names, keep, source):
    """The position of the ``--index-col`` column, by name or by number."""
    if str(index_col) in names and names.index(str(index_col)) in keep:
        return names.index(str(index_col))
    if str(index_col).isdigit() and int(index_col) in keep:
        return int(index_col)
    raise UserError(f"--index-col {index_col!r} is neither a column name nor a column number of "
                    f"{source!r}; its columns are {[names[j] for j in keep]} (numbered from 0).")


def _row_names(cells, numbers):
    """Whether ``cells`` are row names: distinct, none missing, whole numbers or not numbers."""
    if _absent(cells).any() or cells.duplicated().any():
        return False
    if _numeric(cells):
        return pd.api.types.is_integer_dtype(cells)
    return not (cells.str.fullmatch(numbers.pattern) & ~cells.str.fullmatch(r"[+-]?\d+")).any()


def columns_present(source, names, *, sep=None, decimal=None, header=True):
    """``names`` if the data source has every one of them as a column, else None.

    The header is read with :func:`load_data`'s detection (encoding, separator).

    Parameters
    ----------
    source : str
        As for :func:`load_data`.
    names : list of str
    sep, decimal, header
        As for :func:`load_data`.

    Returns
    -------
    list of str or None
    """
    if source in DATASETS:
        present = load(source)[1]
    elif header and Path(source).is_file() and Path(source).suffix != ".npy":
        try:
            text, sep, _ = _layout(Path(source), source, sep, decimal, header, lambda message: None)
            first = next(_records(text, sep), (0, []))
        except (UserError, csv.Error):
            return None                      # load_data reports what is wrong with the file
        present = [name.strip() for name in first[1]]
    else:
        return None
    return list(names) if all(n in present for n in names) else None


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
        interrupt.keep_clean(self.path)      # removed even if Ctrl-C must end the process at once
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                with _no_interrupt(), interrupt.COMMITTING:
                    self._commit()
        finally:
            if self.path.exists():
                shutil.rmtree(self.path)     # our own temporary folder, nothing else
            interrupt.forget(self.path)
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

"""Rows of dicts as tables: pandas frames, plain-text tables for the terminal."""

from __future__ import annotations

import pandas as pd


def as_frame(rows, columns=None):
    """Dict rows as a DataFrame, with ``columns`` (default: the first row's keys) in order."""
    return pd.DataFrame(rows, columns=columns or (list(rows[0]) if rows else None))


def format_table(rows, columns=None, floatfmt="{:.4g}"):
    """Plain-text table of dict rows (for the terminal).

    Parameters
    ----------
    rows : list of dict
    columns : list of str or None
    floatfmt : str

    Returns
    -------
    str
    """
    if not rows:
        return ""
    return as_frame(rows, columns).to_string(index=False, float_format=floatfmt.format)

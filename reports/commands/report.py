"""``gmm report``: render a results folder as one HTML page."""

from __future__ import annotations

NAME = "report"
SUMMARY = "Render index.html from a results folder"
DESCRIPTION = ("Works on every folder gmm writes (fit, select, sample, compare, predict, "
               "simulate, demo) and data of any dimension. Writes index.html and its PNGs into "
               "the folder. It replaces only an earlier report's files.")


def add_arguments(p):
    """``report``'s options."""
    p.add_argument("folder", help="results folder")


def run(args):
    """Run ``gmm report``."""
    from pathlib import Path

    from reports.html import render
    from reports.io import ResultsFolder
    from reports.options import UserError

    folder = Path(args.folder)
    if not folder.is_dir():
        raise UserError(f"results folder {args.folder!r} does not exist or is not a folder.")
    with ResultsFolder(folder, command="report", update=True) as out:
        render(folder, out.path)
    print(f"report: {folder / 'index.html'}")

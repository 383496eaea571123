"""The command line's conventions and the option groups its commands share.

Light on purpose: ``gmm --help`` builds every command's parser from these, so this module loads
NumPy and the two tables it lists (covariance types, sampler routes), nothing heavier.
"""

from __future__ import annotations

import argparse

from models.datasets import DATASET_NAMES
from models.families import COVARIANCE_TYPES, MCLUST_NAMES, family

__all__ = ["COVARIANCE_TYPES", "MCLUST_NAMES", "Formatter", "Parser", "UserError", "covariance_types",
           "data", "model", "out", "positive_float", "positive_int", "read_options", "sampler",
           "seed", "split_names"]
from models.pymc.routes import DEFAULT_SAMPLER, ROUTES


class UserError(ValueError):
    """Bad input from the command line: reported as one line, exit status 2."""


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Help with each option's default (unless it states its own), descriptions kept as written."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or any(action.default is v for v in (None, False, argparse.SUPPRESS))
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse's parser, with errors as one line and exit status 2."""

    def error(self, message):
        """Print one line and exit with status 2 (argparse's default prints the usage too)."""
        self.exit(2, f"gmm: error: {message} (see {self.prog} -h)\n")


def positive_int(value):
    """An integer >= 1, as argparse's ``type``."""
    try:
        v = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be >= 1")
    return v


def positive_float(value):
    """A number > 0, as argparse's ``type``."""
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be > 0")
    return v


def split_names(names):
    """``"a, b"`` -> ``["a", "b"]``; None or "" -> None."""
    return None if not names else [c.strip() for c in names.split(",") if c.strip()]


def covariance_types(value):
    """A comma-separated list of covariance types, as argparse's ``type``."""
    types = split_names(value) or []
    unknown = [t for t in types if t not in COVARIANCE_TYPES]
    if unknown or not types:
        raise argparse.ArgumentTypeError(
            f"unknown covariance type(s) {unknown or value!r}; use a comma-separated list of "
            f"{', '.join(COVARIANCE_TYPES)}")
    return types


def data(p):
    """The data a command reads: a file or an embedded data set, and its columns."""
    p.add_argument("data", help="CSV file with a header row, a .npy file, or an embedded "
                   f"dataset: {' or '.join(repr(n) for n in DATASET_NAMES)}")
    p.add_argument("--columns", help="comma-separated columns to use, in this order "
                   "(default: all)")
    p.add_argument("--exclude", help="comma-separated columns to leave out, e.g. a label "
                   "column (default: none)")
    p.add_argument("--sep", help="the file's separator, e.g. ';' or tab (default: detected)")
    p.add_argument("--decimal", choices=(".", ","),
                   help="the decimal mark (default: detected)")
    p.add_argument("--no-header", action="store_true",
                   help="the file has no header row: every line is data (columns x0, x1, ...)")
    p.add_argument("--index-col", help="a column of row labels to drop, by name or position "
                   "counted from 0 (default: R's unnamed first column of row names, detected)")
    holes = p.add_mutually_exclusive_group()
    holes.add_argument("--complete-rows", action="store_true",
                       help="drop the rows with a missing cell (default: keep them; a missing "
                       "cell, one pandas reads as missing such as an empty cell, NA or NaN, is "
                       "a value missing at random that EM and the posterior integrate out)")
    holes.add_argument("--no-missing", action="store_true",
                       help="refuse data with a missing cell, naming the first one")


def read_options(args):
    """The data options of ``args`` as :func:`reports.io.load_data`'s keyword arguments."""
    missing = ("drop" if args.complete_rows else
               "refuse" if getattr(args, "no_missing", False) else "allow")
    return {"sep": args.sep, "decimal": args.decimal, "header": not args.no_header,
            "index_col": args.index_col, "missing": missing}


def out(p, default):
    """Where the results go, and whether an earlier run's may be replaced."""
    p.add_argument("--out", help=f"results folder (default: {default})")
    p.add_argument("--force", action="store_true", help="replace the files an earlier gmm "
                   "run wrote in --out; other files there are kept")


def seed(p):
    """The one seed of a run: every random step gets its own stream from it."""
    p.add_argument("--seed", type=int, default=0, help="random seed (one for the whole run; "
                   "each random step draws from its own stream of it)")


def model(p, k_required=True, posterior=False):
    """K and the covariance type; ``posterior``: only the types the PyMC model has."""
    if k_required:
        p.add_argument("-k", "--components", type=positive_int, required=True,
                       help="number of components K (required; 'gmm select' chooses one)")
    if posterior:
        types = [t for t in COVARIANCE_TYPES if family(t).pymc]
        p.add_argument("--covariance-type", choices=types, default="full",
                       help="covariance structure (tied = one shared covariance): the types with "
                            "a conjugate prior the posterior is sampled under; 'gmm fit' fits "
                            "all 14")
        return
    p.add_argument("--covariance-type", choices=COVARIANCE_TYPES, default="full",
                   help="covariance structure (tied = one shared covariance)")


def sampler(p):
    """How the posterior is drawn: the route table's choices, draws, tuning, chains, cores, time."""
    p.add_argument("--draws", type=positive_int, default=None,
                   help="draws per chain (default: the gibbs route runs until every "
                   "label-invariant quantity has r_hat <= 1.01 and bulk ESS >= 400, keeping "
                   "1000 draws per chain; the NUTS routes draw 1000)")
    p.add_argument("--tune", type=positive_int, default=None,
                   help="tuning steps (NUTS) or burn-in sweeps (gibbs with --draws) per chain "
                   "(default: as many as --draws; gibbs: at most 500)")
    p.add_argument("--max-seconds", type=positive_float, default=60.0,
                   help="time budget of a run whose length convergence decides (gibbs without "
                   "--draws); the run stops there and says it did not converge")
    p.add_argument("--chains", type=positive_int, default=4, help="chains")
    p.add_argument("--sampler", choices=list(ROUTES), default=DEFAULT_SAMPLER,
                   help="; ".join(f"{r.name}: {r.summary}"
                                  + (f" (pip install 'gmm-suite[{r.extra}]')" if r.extra else "")
                                  for r in ROUTES.values())
                   + f" (default: {DEFAULT_SAMPLER})")
    p.add_argument("--cores", type=positive_int, default=None,
                   help="processes for the routes that run a process per chain (default: every "
                   "available core, at most one per chain; the vectorised routes run every "
                   "chain in one program); the draws do not depend on it")


def at_least_50(value):
    """An integer >= 50, as argparse's ``type`` (EM restarts that map the posterior's modes)."""
    v = positive_int(value)
    if v < 50:
        raise argparse.ArgumentTypeError(f"{value!r} restarts cannot map the modes; use at least 50")
    return v


def modes(p):
    """How the posterior's modes are mapped: EM's restarts."""
    p.add_argument("--mode-restarts", type=at_least_50, default=50,
                   help="EM restarts (k-means++, besides two agglomerations) whose local modes "
                   "the modes table shows, each with its share of the draws (at least 50)")

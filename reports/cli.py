"""The ``gmm`` command line: its parser, made from the table of commands, and ``main``.

Light: building the parser loads only the commands' argument definitions (:mod:`reports.options`),
so ``gmm --help`` and ``gmm --version`` answer at once. A command loads what it needs when it runs.
"""

from __future__ import annotations

import importlib.metadata
import sys
import warnings

from reports import interrupt, options
from reports.commands import COMMANDS
from reports.options import UserError


def version():
    """The installed gmm-suite's version, or "unknown" when running from a bare checkout."""
    try:
        return importlib.metadata.version("gmm-suite")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
        return "unknown"


def build_parser():
    """The argument parser of ``gmm``: one sub-parser per entry of the command table."""
    p = options.Parser(
        prog="gmm", formatter_class=options.Formatter,
        description="Gaussian mixtures by EM and by PyMC, with ArviZ reports.\n\n"
        "Results go to a folder of their own (default reports/out/<command>-<data>-K<k>-"
        "<type>). It is written in full or not at all. --force replaces only files an "
        "earlier gmm run wrote there; gmm never replaces or deletes anything else.")
    p.add_argument("--version", action="version", version=f"gmm {version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=options.Parser,
                           metavar="COMMAND")
    p.commands = {}                       # each command's parser, for its errors
    for name, command in COMMANDS.items():
        sp = p.commands[name] = sub.add_parser(
            name, help=command.SUMMARY, description=f"{command.SUMMARY}.\n\n{command.DESCRIPTION}",
            formatter_class=options.Formatter)
        command.add_arguments(sp)
    return p


def main(argv=None):
    """Run ``gmm`` with ``argv``: the console script's body.

    Parameters
    ----------
    argv : list of str or None

    Returns
    -------
    int
        Exit status: 0 on success, 2 on bad input, 130 after Ctrl-C.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:   # said by the command's parser, which names its own help
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    previous = interrupt.install_handler()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
            COMMANDS[args.command].run(args)
    except BaseException as exc:
        if interrupt.interrupted(exc):
            return interrupt.report()
        if not isinstance(exc, UserError | ValueError | TypeError | FileNotFoundError):
            raise
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, ValueError) and hasattr(exc, "fixes"):
            from reports.runs import fix_advice  # the API's fixes, said as this command's options

            msg = fix_advice(exc, args)
        print(f"gmm: error: {msg}", file=sys.stderr)
        return 2
    finally:
        interrupt.restore_handler(previous)
    return 0

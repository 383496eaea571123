"""The ``gmm`` console script: the Ctrl-C handler first, then the command line.

The handler is installed before :mod:`reports.cli` loads, so Ctrl-C during that import (or any
import a command makes when it runs) also ends with one line and exit status 130.
"""

from __future__ import annotations

import sys

from reports import interrupt

#: Packages the command line never computes with, that a library it uses would import on its
#: own when they are installed: xarray imports dask and dask.distributed (0.4 s) on its first
#: array and again to write a file, only to ask whether that array is a dask array. The console
#: script marks them absent (``sys.modules[name] = None``, Python's own "not importable"), so
#: xarray answers "no" without loading them. The API (``import em``, notebooks) is untouched.
NOT_USED = ("dask",)


def main(argv=None):
    """Run ``gmm``; return its exit status.

    Parameters
    ----------
    argv : list of str or None

    Returns
    -------
    int
        0 on success, 2 on bad input, 130 after Ctrl-C.
    """
    interrupt.install_handler(watch=True)
    for name in NOT_USED:
        sys.modules.setdefault(name, None)
    try:
        from reports import cli  # after the handler is in place
    except BaseException as exc:
        if not interrupt.interrupted(exc):
            raise
        return interrupt.report()
    return cli.main(argv)


def run():
    """Exit with :func:`main`'s status; after Ctrl-C at once (:func:`reports.interrupt.exit_now`)."""
    status = main()
    if status == interrupt.EXIT_STATUS and interrupt.was_interrupted():
        interrupt.exit_now(status)
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    run()

"""The ``gmm`` console script: Ctrl-C anywhere ends with one line and exit status 130.

This module imports nothing heavy, so the handler is in place before PyMC loads.
"""

from __future__ import annotations

import signal
import sys

INTERRUPTED = "interrupted; nothing written"


class Interrupted(BaseException):
    """Ctrl-C. Not a KeyboardInterrupt: PyMC's sequential sampler swallows those and samples on."""


_STATE = {"interrupted": False}


def _raise_interrupted(signum, frame):
    _STATE["interrupted"] = True
    raise Interrupted


def interrupted(exc):
    """Whether ``exc`` ends the run because of Ctrl-C.

    The handler's exception can come back in another type: raised inside a numba-compiled call
    it returns as a ``SystemError``. So any exception after Ctrl-C counts.

    Parameters
    ----------
    exc : BaseException

    Returns
    -------
    bool
    """
    return _STATE["interrupted"] or isinstance(exc, Interrupted | KeyboardInterrupt)


def install_handler():
    """Make Ctrl-C raise :class:`Interrupted` (in the main thread; elsewhere nothing changes).

    Returns
    -------
    handler or None
        The handler it replaced (for :func:`restore_handler`), None outside the main thread.
    """
    _STATE["interrupted"] = False
    try:
        return signal.signal(signal.SIGINT, _raise_interrupted)
    except ValueError:                       # not the main thread
        return None


def restore_handler(previous):
    """Put back the Ctrl-C handler :func:`install_handler` replaced."""
    if previous is not None:
        signal.signal(signal.SIGINT, previous)


def main(argv=None):
    """Run ``gmm``; return its exit status (130 after Ctrl-C).

    Parameters
    ----------
    argv : list of str or None

    Returns
    -------
    int
    """
    install_handler()
    try:
        from reports.cli import main as cli_main

        return cli_main(argv)
    except BaseException as exc:
        if not interrupted(exc):
            raise
        print(f"gmm: {INTERRUPTED}", file=sys.stderr)
        return 130


def run():
    """Exit with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()

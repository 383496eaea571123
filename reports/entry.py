"""The ``gmm`` console script: Ctrl-C anywhere ends with one line and exit status 130.

This module imports nothing heavy, so the handler is in place before PyMC loads.
"""

from __future__ import annotations

import signal
import sys

INTERRUPTED = "interrupted; nothing written"


class Interrupted(BaseException):
    """Ctrl-C. Not a KeyboardInterrupt: PyMC's sequential sampler swallows those and samples on."""


def _raise_interrupted(signum, frame):
    raise Interrupted


def install_handler():
    """Make Ctrl-C raise :class:`Interrupted` (in the main thread; elsewhere nothing changes)."""
    try:
        signal.signal(signal.SIGINT, _raise_interrupted)
    except ValueError:                       # not the main thread
        pass


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
    except (Interrupted, KeyboardInterrupt):
        print(f"gmm: {INTERRUPTED}", file=sys.stderr)
        return 130


def run():
    """Exit with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()

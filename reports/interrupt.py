"""Ctrl-C for the ``gmm`` command: one line, exit status 130, whatever was running.

Imports nothing heavy, so :mod:`reports.entry` can install the handler before PyMC loads.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

INTERRUPTED = "interrupted; nothing written"
EXIT_STATUS = 130

_STATE = {"interrupted": False}


class Interrupted(BaseException):
    """Ctrl-C. Not a KeyboardInterrupt: PyMC's sequential sampler swallows those and samples on."""


def _raise_interrupted(signum, frame):
    _STATE["interrupted"] = True
    raise Interrupted


def _deliver_again(hook):
    """An ``unraisablehook`` that sends Ctrl-C again when it was raised inside a callback.

    Python prints (and drops) an exception raised in a garbage-collector callback or a
    ``__del__``, such as JAX's. The signal is sent again from a helper thread a moment later, so
    that it lands in ordinary code (raising it here would only raise inside the hook, where it
    is dropped again, with a traceback); if it lands in a callback again, this repeats.
    """
    def handle(unraisable):
        if isinstance(unraisable.exc_value, Interrupted):
            again = threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGINT))
            again.daemon = True
            again.start()
            return
        hook(unraisable)

    handle.previous = hook
    return handle


def install_handler():
    """Make Ctrl-C raise :class:`Interrupted` (in the main thread; elsewhere nothing changes).

    Returns
    -------
    handler or None
        The handler it replaced (for :func:`restore_handler`), None outside the main thread.
    """
    _STATE["interrupted"] = False
    try:
        previous = signal.signal(signal.SIGINT, _raise_interrupted)
    except ValueError:                       # not the main thread
        return None
    if not hasattr(sys.unraisablehook, "previous"):
        sys.unraisablehook = _deliver_again(sys.unraisablehook)
    return previous


def restore_handler(previous):
    """Put back the Ctrl-C handler :func:`install_handler` replaced."""
    if previous is not None:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = getattr(sys.unraisablehook, "previous", sys.unraisablehook)


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


def report():
    """Print the one line and return the exit status.

    Returns
    -------
    int
        130.
    """
    print(f"gmm: {INTERRUPTED}", file=sys.stderr)
    return EXIT_STATUS

"""Ctrl-C for the ``gmm`` command: one line, exit status 130, nothing written, within 2 s.

Imports nothing heavy, so :mod:`reports.entry` can install the handler before PyMC loads.

Ctrl-C raises :class:`Interrupted` in the main thread, which unwinds the command: each results
folder removes its temporary folder (:class:`reports.io.ResultsFolder`), the command line prints
its one line, and the console script then ends the process at once (:func:`exit_now`), without
the interpreter's shutdown, which waits for whatever libraries still run: JAX finishes the
compiled program in flight, for minutes on large data.

Python runs a signal handler only between bytecodes of the main thread, so Ctrl-C that lands
while the main thread waits in compiled code (a JAX program, a compiler), or that a library
catches and drops, would wait or be lost. A watcher thread hears every Ctrl-C at once, through
the descriptor the interpreter writes each signal's number to (``signal.set_wakeup_fd``), and
if the process is still running :data:`GRACE_S` seconds later it removes the temporary folders,
stops the child processes, prints the line and ends the process itself.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import socket
import sys
import threading

INTERRUPTED = "interrupted; nothing written"
EXIT_STATUS = 130
#: seconds the main thread has to unwind after Ctrl-C before the watcher ends the process
GRACE_S = 1.0

_STATE = {"interrupted": False, "reported": False}
_WATCH: dict = {}                  # the armed watcher: its socket pair and stop event
#: temporary folders to remove when the process ends at once (results folders being written)
_TEMPORARY: set = set()
#: held while a results folder moves into place, so the watcher never removes half of it
COMMITTING = threading.Lock()


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


def install_handler(watch=False):
    """Make Ctrl-C raise :class:`Interrupted` (in the main thread; elsewhere nothing changes).

    Parameters
    ----------
    watch : bool
        Also arm the watcher thread (see the module's docstring), which ends the process: the
        console script's choice, not that of a program calling the command line in-process.

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
    if watch:
        _arm()
    return previous


def restore_handler(previous):
    """Put back the Ctrl-C handler :func:`install_handler` replaced, and disarm the watcher."""
    if previous is not None:
        if previous is not _raise_interrupted:   # the outermost install armed it
            _disarm()
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = getattr(sys.unraisablehook, "previous", sys.unraisablehook)


def _arm():
    if _WATCH:
        return
    receive, send = socket.socketpair()
    send.setblocking(False)
    try:
        signal.set_wakeup_fd(send.fileno(), warn_on_full_buffer=False)
    except ValueError:                       # not the main thread
        receive.close()
        send.close()
        return
    stop = threading.Event()
    threading.Thread(target=_watch, args=(receive, stop), daemon=True,
                     name="gmm-ctrl-c").start()
    _WATCH.update(send=send, stop=stop)


def _disarm():
    if not _WATCH:
        return
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    _WATCH["stop"].set()
    _WATCH.pop("send").close()               # the watcher's receive ends
    _WATCH.clear()


def _watch(receive, stop):
    """The watcher: on Ctrl-C, give the main thread :data:`GRACE_S`, then end the process."""
    with receive:
        while True:
            try:
                data = receive.recv(64)
            except OSError:
                return
            if not data or stop.is_set():
                return
            if int(signal.SIGINT) in data:
                if not stop.wait(GRACE_S):
                    end_now()
                return


def _after_fork_in_child():
    # a forked child has no watcher thread; its Ctrl-C must not write to the parent's socket
    _WATCH.clear()
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass


os.register_at_fork(after_in_child=_after_fork_in_child)


def keep_clean(path):
    """Remove ``path`` (a temporary folder) if the process has to end at once."""
    _TEMPORARY.add(str(path))


def forget(path):
    """``path`` needs no removal any more."""
    _TEMPORARY.discard(str(path))


def stop_children():
    """Stop the child processes that ``multiprocessing`` started (samplers, the demo's helper)."""
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return
    for child in mp.active_children():
        child.kill()


def end_now():
    """Remove the temporary folders, stop the children, print the line, exit 130 at once."""
    with COMMITTING:                         # a folder moving into place finishes first
        for path in list(_TEMPORARY):
            shutil.rmtree(path, ignore_errors=True)
    _STATE["interrupted"] = True
    if not _STATE["reported"]:
        report()
    exit_now(EXIT_STATUS)


def exit_now(status):
    """End the process now, after flushing its output: no interpreter shutdown to wait for.

    Parameters
    ----------
    status : int
    """
    stop_children()
    # what is unreachable now goes, with its finalizers: a process pool's semaphores are
    # unlinked, so that the resource tracker has none to report as leaked
    gc.collect()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


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


def was_interrupted():
    """Whether Ctrl-C came since the handler was installed."""
    return _STATE["interrupted"]


def report():
    """Print the one line and return the exit status.

    Returns
    -------
    int
        130.
    """
    _STATE["reported"] = True
    print(f"gmm: {INTERRUPTED}", file=sys.stderr)
    return EXIT_STATUS

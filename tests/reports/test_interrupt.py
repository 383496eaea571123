"""Ctrl-C that lands where Python cannot raise it (a ``__del__`` or a GC callback) still ends the run."""

import gc
import signal
import sys
import time

import pytest

from reports import interrupt


class _SignalOnDelete:
    """Sends SIGINT from ``__del__``: the handler's exception is then unraisable."""

    def __del__(self):
        signal.raise_signal(signal.SIGINT)


def test_ctrl_c_inside_a_destructor_is_delivered_again_without_a_traceback(capsys):
    previous = interrupt.install_handler()
    try:
        with pytest.raises(interrupt.Interrupted):
            obj = _SignalOnDelete()
            del obj                                   # Interrupted raised in __del__: dropped
            gc.collect()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:       # ordinary code: the re-sent signal lands
                sum(range(1000))
        assert interrupt.interrupted(interrupt.Interrupted())
    finally:
        interrupt.restore_handler(previous)
    assert "Traceback" not in capsys.readouterr().err
    assert sys.unraisablehook is sys.__unraisablehook__ or not hasattr(sys.unraisablehook,
                                                                       "previous")

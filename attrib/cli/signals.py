"""SIGTERM handled as Ctrl-C is: what is finished is kept, and the exit status says which signal came.

:func:`sigterm_unwinds` turns SIGTERM into :class:`Terminated` (a ``KeyboardInterrupt``)
inside a block, so every command's own Ctrl-C handling (finished items kept, one line
on stderr) serves a ``kill`` too; :func:`interrupted_status` gives 143 for it, 130 for Ctrl-C.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["Terminated", "interrupted_status", "sigterm_unwinds"]


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: raised where the program is, so it unwinds as Ctrl-C does (exit status 143)."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` inside the block (main thread only; the handler is restored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted_status(error: KeyboardInterrupt) -> int:
    """The exit status of an interrupted command: 143 for SIGTERM, 130 for Ctrl-C (128 + the signal)."""
    return 128 + (signal.SIGTERM if isinstance(error, Terminated) else signal.SIGINT)

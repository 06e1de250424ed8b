"""A one-line progress display on stderr for long attribution runs.

Drawn only when the stream is a terminal (so logs and CI output stay clean), at
most ten times a second, and erased when the run ends.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Progress of a run: a phase label, a call count against an optional total, elapsed time.

    Args:
        enabled: draw at all; ``None`` draws only when ``stream`` is a terminal.
        stream: where to draw (default ``sys.stderr``).
    """

    _WIDTH = 24

    def __init__(self, *, enabled: bool | None = None, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.phase = ""
        self.done = 0
        self.total: int | None = None
        self._started = time.perf_counter()
        self._last_draw = 0.0
        self._drawn = False

    def set_phase(self, phase: str, *, total: int | None = None) -> None:
        """Start a phase (``"generating"``, ``"hipe depth 2"``); ``total`` is the calls it ends at."""
        self.phase = phase
        self.total = total
        self._draw(force=True)

    def update(self, done: int) -> None:
        """Record that ``done`` calls have completed in the whole run."""
        self.done = done
        self._draw()

    def close(self) -> None:
        """Erase the line."""
        if self.enabled and self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._drawn = False

    def _draw(self, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        elapsed = now - self._started
        if self.total:
            filled = min(self._WIDTH, int(self._WIDTH * self.done / self.total))
            bar = "#" * filled + "." * (self._WIDTH - filled)
            count = f"[{bar}] {self.done}/{self.total} calls"
        else:
            count = f"{self.done} calls"
        self.stream.write(f"\r\033[K{self.phase}  {count}  {elapsed:6.1f} s")
        self.stream.flush()
        self._drawn = True

"""The one-line progress display of a single attribution run, on stderr, drawn by tqdm.

The line shows the phase (``"generating"``, ``"hipe depth 2"``), the scoring calls
done in the whole run against the call count the phase ends at (a bar when that
count is known), the elapsed time, the rate and the time left. It is drawn only
when the stream is a terminal (so logs and CI output stay clean), at most ten
times a second, and erased when the run ends. tqdm is imported only when the
line is drawn.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

__all__ = ["Progress"]

#: The line with a known call count: phase, bar, calls done / calls the phase ends at, time, rate, time left.
_WITH_TOTAL = "{desc}  {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} calls  [{elapsed}<{remaining}, {rate_fmt}]"
#: The line without one (generating): phase, calls done, time, rate.
_WITHOUT_TOTAL = "{desc}  {n_fmt} calls  [{elapsed}, {rate_fmt}]"


class Progress:
    """Progress of a run: a phase label, a call count against an optional total, elapsed time and time left.

    Args:
        enabled: draw at all; ``None`` draws only when ``stream`` is a terminal.
        stream: where to draw (default ``sys.stderr``).

    Attributes:
        phase: the current phase's label.
        done: scoring calls completed in the whole run.
        total: the call count the current phase ends at, or ``None`` if unknown.
    """

    def __init__(self, *, enabled: bool | None = None, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.phase = ""
        self.done = 0
        self.total: int | None = None
        self._bar: Any = None  # a tqdm bar once drawn

    def set_phase(self, phase: str, *, total: int | None = None) -> None:
        """Start a phase (``"generating"``, ``"hipe depth 2"``); ``total`` is the calls it ends at."""
        self.phase = phase
        self.total = total
        bar = self._line()
        if bar is None:
            return
        bar.set_description_str(phase, refresh=False)
        bar.total = total
        bar.bar_format = _WITH_TOTAL if total else _WITHOUT_TOTAL
        bar.refresh()

    def update(self, done: int) -> None:
        """Record that ``done`` calls have completed in the whole run."""
        self.done = done
        bar = self._line()
        if bar is not None and done != bar.n:
            bar.update(done - bar.n)

    def close(self) -> None:
        """Erase the line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _line(self) -> Any:
        """The tqdm bar, opened on first use; ``None`` when not drawing."""
        if not self.enabled:
            return None
        if self._bar is None:
            from tqdm import tqdm  # imported on use: ``import attrib`` stays light

            self._bar = tqdm(
                desc=self.phase,
                total=self.total,
                initial=self.done,
                unit=" calls",
                file=self.stream,
                leave=False,
                mininterval=0.1,
                dynamic_ncols=True,
                disable=False,
                bar_format=_WITH_TOTAL if self.total else _WITHOUT_TOTAL,
            )
        return self._bar

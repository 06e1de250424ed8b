"""The progress line (tqdm): drawn on a terminal with phase, calls, bar, time and time left;
silent in logs, erased at the end."""

from __future__ import annotations

import io
import subprocess
import sys

import attrib
from attrib.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def frames(text: str) -> list[str]:
    """The line as drawn, frame by frame (each redraw starts with a carriage return)."""
    return [frame for frame in text.split("\r") if frame]


def test_progress_draws_on_a_terminal_and_erases_itself(toy):
    stream = Terminal()
    prompt = "The capital of France is Paris. " * 20
    result = attrib.attribute(prompt, backend=toy, method="itp", progress=Progress(stream=stream))
    drawn = frames(stream.getvalue())
    scoring = [f for f in drawn if f.startswith("itp token")]
    assert scoring, drawn
    last = scoring[-1]
    # calls done of the phase's total, a bar with a percentage, elapsed<left, a rate in calls/s
    assert f"/{result.stats.calls} calls" in last and "%|" in last
    assert "<" in last and "calls/s" in last
    assert drawn[-1].strip() == ""  # the last frame blanks the line: nothing is left on the terminal


def test_progress_shows_the_run_s_calls_across_phases():
    stream = Terminal()
    progress = Progress(stream=stream)
    progress.set_phase("generating")
    progress.update(1)
    progress.set_phase("hipe depth 0", total=4)
    progress.update(4)
    progress.close()
    drawn = frames(stream.getvalue())
    assert any(f.startswith("generating") and "calls" in f and "%" not in f for f in drawn)
    # a new phase is drawn at once, with the run's calls so far against the phase's end
    assert any(f.startswith("hipe depth 0") and "1/4 calls" in f and " 25%|" in f for f in drawn)
    assert drawn[-1].strip() == ""


def test_progress_is_silent_when_stderr_is_not_a_terminal(toy):
    stream = io.StringIO()
    attrib.attribute("The capital of France is Paris.", backend=toy, progress=Progress(stream=stream))
    assert stream.getvalue() == ""
    assert Progress(enabled=False, stream=Terminal())._line() is None


def test_a_silent_progress_imports_no_tqdm():
    code = (
        "import sys, attrib; from attrib.backends.toy import ToyBackend; "
        "attrib.attribute('The sky is blue.', backend=ToyBackend(), progress=None); print('tqdm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

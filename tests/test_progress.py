"""The progress line: drawn on a terminal, silent in logs, erased at the end."""

from __future__ import annotations

import io

import attrib
from attrib.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_a_terminal_and_erases_itself(toy):
    stream = Terminal()
    prompt = "The capital of France is Paris. " * 20
    attrib.attribute(prompt, backend=toy, method="itp", progress=Progress(stream=stream))
    text = stream.getvalue()
    assert "itp token" in text and "calls" in text
    assert text.endswith("\r\033[K")


def test_progress_is_silent_when_stderr_is_not_a_terminal(toy):
    stream = io.StringIO()
    attrib.attribute("The capital of France is Paris.", backend=toy, progress=Progress(stream=stream))
    assert stream.getvalue() == ""

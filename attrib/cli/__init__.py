"""The ``attrib`` command line: ``explain``, ``audit``, ``cite``, ``report``, ``batch`` and ``summarize``.

User errors print one line, ``attrib: error: ...``, and exit with status 1
(2 for a malformed command line); there is no traceback for them. SIGTERM is
handled as Ctrl-C is (:class:`Terminated`): what is finished is kept, and the
exit status is 143 (130 for Ctrl-C).

* :mod:`attrib.cli.parser`: commands, flags and help (choices from the registry);
* :mod:`attrib.cli.inputs`: reading prompts and files, writing outputs;
* :mod:`attrib.cli.commands`: what each command does;
* :mod:`attrib.cli.summarize`: the ``summarize`` command (parser section and handler);
* :mod:`attrib.cli.cite`: the ``cite`` command (parser section and handler).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

from attrib.errors import AttribError

__all__ = ["main", "Terminated"]


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: raised where the program is, so it unwinds as Ctrl-C does (exit status 143)."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
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


def main(argv: list[str] | None = None) -> int:
    """Run the ``attrib`` command; return the exit status."""
    from attrib.cli import cite, commands, summarize
    from attrib.cli.batch import batch
    from attrib.cli.parser import build_parser

    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {
        "explain": commands.explain,
        "audit": commands.audit,
        "report": commands.report,
        "batch": batch,
        "cite": cite.cite,
        "summarize": summarize.run,
    }
    try:
        with _sigterm_unwinds():
            return handlers[args.command](args)
    except AttribError as error:
        print(f"attrib: error: {_one_line(str(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as error:
        print("attrib: interrupted; no result was written", file=sys.stderr)
        return interrupted_status(error)
    except BrokenPipeError:
        # The reader went away (``attrib explain ... | head``): not an error of ours, and
        # nothing more can be shown. Point stdout at /dev/null so the interpreter's own
        # flush at exit does not raise again, and exit as a process killed by SIGPIPE would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + 13


def _one_line(message: str) -> str:
    """The message on one line, with control characters (terminal escapes from an endpoint) shown escaped."""
    flat = " ".join(message.split())
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in flat)


if __name__ == "__main__":
    sys.exit(main())

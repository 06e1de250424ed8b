"""``python -m attrib.testing.proxy``: run the proxy from the command line until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from attrib.testing.proxy.faults import FAULTS, checked_schedule
from attrib.testing.proxy.server import Proxy

__all__ = ["main"]

PROG = "python -m attrib.testing.proxy"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _fault_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    try:
        checked_schedule(names, 1)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return names


def _parser() -> _Parser:
    width = max(len(name) for name in FAULTS)
    faults = "\n".join(f"  {name:<{width}}  {what}" for name, what in FAULTS.items())
    parser = _Parser(
        prog=PROG,
        description=(
            "OpenAI-compatible proxy on loopback: forwards every request to UPSTREAM, injecting\n"
            "scheduled faults and, optionally, a hidden system prompt. Serves until Ctrl-C."
        ),
        epilog=(
            f"faults (POSTs to /v1/completions and /v1/chat/completions):\n{faults}\n\n"
            "schedule: those requests are numbered k = 0, 1, 2, ...; request k is faulted iff\n"
            "k % N == 0 (N = --fault-every) and gets fault number (k // N) % len(LIST) of LIST;\n"
            "the others are forwarded normally. Other paths are always forwarded.\n\n"
            "example: python -m attrib.testing.proxy --upstream http://127.0.0.1:8080 --faults 429,ok"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--upstream",
        required=True,
        metavar="URL",
        help="the upstream server's root URL, e.g. http://127.0.0.1:8080 (without /v1)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default: 0)")
    parser.add_argument(
        "--faults",
        type=_fault_list,
        default=(),
        metavar="LIST",
        help=f"comma-separated faults used in turn: {','.join(FAULTS)} (default: none)",
    )
    parser.add_argument(
        "--fault-every", type=int, default=1, metavar="N", help="fault one request in N (default: 1, every request)"
    )
    parser.add_argument(
        "--retry-after", type=float, default=1.0, metavar="SECONDS", help="Retry-After of fault 429 (default: 1)"
    )
    parser.add_argument(
        "--slow-seconds", type=float, default=2.0, metavar="SECONDS", help="delay of fault slow (default: 2)"
    )
    hidden = parser.add_mutually_exclusive_group()
    hidden.add_argument(
        "--inject-system", metavar="TEXT", help="hidden system prompt: first chat message, prefix of completion prompts"
    )
    hidden.add_argument(
        "--inject-system-file",
        metavar="FILE",
        help="read the hidden system prompt from FILE (UTF-8; trailing newlines dropped)",
    )
    return parser


def _interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the proxy until Ctrl-C (or SIGTERM); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    inject = args.inject_system
    if args.inject_system_file is not None:
        try:
            with open(args.inject_system_file, encoding="utf-8") as handle:
                inject = handle.read().rstrip("\n")
        except OSError as error:
            parser.error(f"cannot read {args.inject_system_file}: {error.strerror}")
        except UnicodeDecodeError:
            parser.error(f"{args.inject_system_file} is not UTF-8 text")
    try:
        proxy = Proxy(
            args.upstream,
            faults=args.faults,
            fault_every=args.fault_every,
            inject_system=inject,
            retry_after=args.retry_after,
            slow_seconds=args.slow_seconds,
            host=args.host,
            port=args.port,
        )
    except ValueError as error:
        parser.error(str(error))
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        proxy.start()
    except OSError as error:
        print(f"{parser.prog}: error: cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 1
    try:
        print(f"proxy listening on {proxy.url} -> {proxy.upstream}", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
    return 0

"""The proxy's faults: their names, the deterministic schedule, the record of each request, the error answers.

See :mod:`attrib.testing.proxy` for the schedule and what each fault does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

__all__ = ["FAULTS", "JSON", "Answer", "Record", "checked_schedule", "error_answer", "format_seconds", "rate_limited"]

FAULTS: dict[str, str] = {
    "ok": "forward normally",
    "429": "answer 429 with Retry-After and a rate_limit_error body; the upstream is not called",
    "500": "answer 500 with a server_error body; the upstream is not called",
    "drop": "close the connection without any answer (client: transport error); the upstream is not called",
    "slow": "wait --slow-seconds, then forward (a client with a shorter timeout times out)",
    "malformed": "forward, then answer 200 with the first half of the upstream's body (invalid JSON)",
}

#: The Content-Type of every answer the proxy makes itself.
JSON = "application/json"


@dataclasses.dataclass(frozen=True)
class Record:
    """One POST on a fault path, as the proxy handled it.

    Attributes:
        path: the request path, without the query.
        body_sha256: hex SHA-256 of the request body as the client sent it (before injection).
        fault: the fault applied, one of ``FAULTS`` ("ok" when none).
        status: the HTTP status the client was answered with; None when it got no answer
            (fault "drop", or it had gone away, e.g. timed out, before the answer was ready).
        upstream_called: whether the request was sent on to the upstream.
    """

    path: str
    body_sha256: str
    fault: str
    status: int | None
    upstream_called: bool


@dataclasses.dataclass(frozen=True)
class Answer:
    """An HTTP answer for the client: status, body and headers (Content-Length is added when sent)."""

    status: int
    body: bytes
    headers: dict[str, str]


def error_answer(status: int, message: str, kind: str, code: str, headers: dict[str, str] | None = None) -> Answer:
    """An OpenAI-style error answer: ``{"error": {"message", "type", "code"}}`` with ``status``."""
    body = json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode()
    return Answer(status, body, {"Content-Type": JSON, **(headers or {})})


def rate_limited(retry_after: float) -> Answer:
    """Fault "429": a ``rate_limit_error`` answer with ``Retry-After: retry_after`` (seconds)."""
    seconds = format_seconds(retry_after)
    return error_answer(
        429,
        f"proxy: injected rate limit; retry after {seconds} s",
        "rate_limit_error",
        "rate_limited",
        {"Retry-After": seconds},
    )


def checked_schedule(faults: Sequence[str], fault_every: int) -> tuple[tuple[str, ...], int]:
    """``(faults, fault_every)`` checked.

    Raises:
        TypeError: ``faults`` is a string.
        ValueError: an unknown fault name, or ``fault_every`` not an integer >= 1.
    """
    if isinstance(faults, str):
        raise TypeError(f"faults must be a sequence of names, not the string {faults!r}")
    unknown = [name for name in faults if name not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault {unknown[0]!r}; valid faults: {', '.join(FAULTS)}")
    if isinstance(fault_every, bool) or not isinstance(fault_every, int) or fault_every < 1:
        raise ValueError(f"fault_every must be an integer >= 1, got {fault_every!r}")
    return tuple(faults), fault_every


def format_seconds(seconds: float) -> str:
    """Seconds as a Retry-After value: ``1`` for 1.0, ``0.5`` for 0.5."""
    return str(int(seconds)) if float(seconds).is_integer() else str(float(seconds))

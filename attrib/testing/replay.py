"""A loopback HTTP server that replays a recorded exchange with an API, for tests without the network.

A recording is a JSON file::

    {"source": "where the shapes come from",
     "exchanges": [{"method": "POST", "path": "/generate",
                    "match": {"logprob_start_len": 0},
                    "request": {...}, "status": 200, "response": {...}}]}

Each request is answered by the first exchange with its method and path (query
dropped) whose ``match`` keys, if any, equal the request body's (``"*"``: the key is
present, whatever its value); a request that no
exchange matches gets 404 ``{"detail": "Not Found"}``, as a server without the route
answers. Every request received is kept in :attr:`Replay.received` (method, path,
body), so a test can compare what the client sent with the recorded ``request``.
The server is a :class:`~attrib.testing.loopback.Loopback`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attrib.testing.loopback import Loopback, Reply, Request

__all__ = ["Exchange", "Replay", "load_exchanges"]


@dataclass(frozen=True)
class Exchange:
    """One recorded request and its answer."""

    method: str
    path: str
    request: Any
    status: int
    response: Any
    match: dict[str, Any]

    def fits(self, method: str, path: str, body: Any) -> bool:
        if method != self.method or path != self.path:
            return False
        if not isinstance(body, dict):
            return not self.match
        return all((k in body) if v == "*" else body.get(k) == v for k, v in self.match.items())


def load_exchanges(path: str | Path) -> list[Exchange]:
    """The exchanges of a recording file (see the module docstring)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return [
        Exchange(
            method=e["method"],
            path=e["path"],
            request=e.get("request"),
            status=int(e.get("status", 200)),
            response=e.get("response", {}),
            match=dict(e.get("match", {})),
        )
        for e in data["exchanges"]
    ]


class Replay(Loopback):
    """Serves ``exchanges`` on a free port of 127.0.0.1 inside a ``with`` block.

    Attributes:
        url: the ``/v1`` base URL; :attr:`root` is the server root.
        received: every request as ``(method, path, body)`` in arrival order.
    """

    def __init__(self, exchanges: list[Exchange]) -> None:
        self.exchanges = exchanges
        super().__init__(self._answer)

    def _answer(self, request: Request) -> Reply:
        found = next((e for e in self.exchanges if e.fits(request.method, request.route, request.body)), None)
        return Reply(found.status, found.response) if found else Reply(404, {"detail": "Not Found"})

    @property
    def received(self) -> list[tuple[str, str, Any]]:
        """Every request as ``(method, path without query, body)``, in arrival order."""
        return [(r.method, r.route, r.body) for r in self.requests]

    def bodies(self, method: str, path: str) -> list[Any]:
        """The bodies of the requests received on ``method`` ``path``."""
        return [body for m, p, body in self.received if (m, p) == (method, path)]

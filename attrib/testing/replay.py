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
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

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


class Replay:
    """Serves ``exchanges`` on a free port of 127.0.0.1 inside a ``with`` block.

    Attributes:
        url: the ``/v1`` base URL; :attr:`root` is the server root.
        received: every request as ``(method, path, body)`` in arrival order.
    """

    def __init__(self, exchanges: list[Exchange]) -> None:
        self.exchanges = exchanges
        self.received: list[tuple[str, str, Any]] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                path = self.path.split("?", 1)[0]
                replay.received.append((self.command, path, body))
                found = next((e for e in replay.exchanges if e.fits(self.command, path, body)), None)
                status, answer = (found.status, found.response) if found else (404, {"detail": "Not Found"})
                content = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.root = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.url = self.root + "/v1"

    def bodies(self, method: str, path: str) -> list[Any]:
        """The bodies of the requests received on ``method`` ``path``."""
        return [body for m, p, body in self.received if (m, p) == (method, path)]

    def __enter__(self) -> Self:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

"""A JSON HTTP server on a free loopback port, answering each request with a function of it.

The one server behind attrib's test doubles (:mod:`attrib.testing.replay`, the scripted
and echoing servers of the tests)::

    def answer(request: Request) -> Reply:
        return Reply(200, {"echo": request.body})

    with Loopback(answer) as server:
        ...  # talk to server.root or server.url
    server.requests  # every Request received, in arrival order

Standard library only (:class:`http.server.ThreadingHTTPServer`, one thread per
connection); it serves until the ``with`` block ends.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["DROP", "Loopback", "Reply", "Request"]


@dataclass(frozen=True)
class Request:
    """One request received.

    Attributes:
        method: ``"GET"``, ``"POST"``, ...
        path: the path as sent, query included (:attr:`route` drops the query).
        headers: the request headers, names in lower case.
        body: the body parsed as JSON; ``None`` when empty, the raw bytes when not JSON.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any

    @property
    def route(self) -> str:
        """:attr:`path` without its query."""
        return self.path.split("?", 1)[0]


@dataclass(frozen=True)
class Reply:
    """What the server sends: ``status``, ``body`` (JSON-encoded unless bytes) and ``headers``.

    ``Content-Type`` is ``application/json`` unless ``headers`` names one.
    """

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


DROP = None
"""What an answering function returns to close the connection without any answer."""

Answer = Callable[[Request], Reply | None]


class Loopback:
    """Serves ``answer`` on a free port of 127.0.0.1 inside a ``with`` block.

    ``answer(request)`` returns a :class:`Reply`, or :data:`DROP` (``None``) to close the
    connection unanswered; it runs on the connection's own thread (so it may sleep to
    stall a reply without holding up other connections).

    Attributes:
        root: ``http://127.0.0.1:PORT``; :attr:`url` is ``root + "/v1"``.
        requests: every :class:`Request` received, in arrival order.
    """

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[Request] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.root = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.url = self.root + "/v1"

    def __enter__(self) -> Self:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _handler_for(server: Loopback) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                method=self.command,
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=_parse(self.rfile.read(length) if length else b""),
            )
            server.requests.append(request)
            reply = server.answer(request)
            if reply is None:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            content = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            headers = dict(reply.headers)
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"
            try:
                self.send_response(reply.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
            except OSError:  # the client went away
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    return Handler

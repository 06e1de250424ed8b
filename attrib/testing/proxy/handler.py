"""The proxy's HTTP side: the threading server and the request handler that applies each request's fault."""

from __future__ import annotations

import contextlib
import hashlib
import select
import socket
import socketserver
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from attrib.testing.proxy.faults import JSON, Answer, Record, error_answer, rate_limited

if TYPE_CHECKING:
    from attrib.testing.proxy.server import Proxy

__all__ = ["ProxyServer", "ProxyHandler"]

_REQUEST_HEADERS = ("Content-Type", "Authorization", "Accept")


class ProxyServer(ThreadingHTTPServer):
    """A threading HTTP server that serves one :class:`~attrib.testing.proxy.Proxy` and tracks its open connections."""

    daemon_threads = True

    def __init__(self, proxy: Proxy, address: tuple[str, int]) -> None:
        self.proxy = proxy
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, ProxyHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall on a machine without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError) or self.proxy.stopped.is_set():
            return  # a client that went away, or a request cut short by stop(): nothing to report
        super().handle_error(request, client_address)


class ProxyHandler(BaseHTTPRequestHandler):
    """One client connection: forward, fault or answer each request (HTTP/1.1 keep-alive)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid the 40 ms delayed-ACK stall
    server: ProxyServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        if body is None:
            return
        parts = urlsplit(self.path)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {name: self.headers[name] for name in _REQUEST_HEADERS if name in self.headers}
        if self.command != "POST" or parts.path not in proxy.fault_paths:
            answer, _ = proxy.forward(self.command, target, headers, body)
            self._send(answer)
            return
        fault = proxy.next_fault()
        digest = hashlib.sha256(body).hexdigest()
        recorded = False
        called = False

        def record(status: int | None) -> None:
            # Recorded before the answer's bytes go out, so a client that has its answer
            # always finds the record; a write that then fails corrects it to None.
            nonlocal recorded
            if recorded:
                proxy.mark_undelivered(digest, parts.path)
            else:
                proxy.add_record(Record(parts.path, digest, fault, status, called))
                recorded = True

        try:
            if fault == "drop":
                self._drop()
            elif fault == "429":
                self._send(rate_limited(proxy.retry_after), record)
            elif fault == "500":
                self._send(error_answer(500, "proxy: injected server error", "server_error", "injected_fault"), record)
            elif fault == "slow" and proxy.stopped.wait(proxy.slow_seconds):
                self._drop()
            else:
                answer, called = proxy.forward(self.command, target, headers, body)
                if fault == "malformed":
                    answer = Answer(200, answer.body[: len(answer.body) // 2], {"Content-Type": JSON})
                self._send(answer, record)
        finally:
            if not recorded:
                proxy.add_record(Record(parts.path, digest, fault, None, called))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked); None after answering 400 to a bad one."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                line = self.rfile.readline()
                try:
                    size = int(line.split(b";")[0], 16)
                except ValueError:
                    self.send_error(400, "bad chunk size")
                    return None
                if size == 0:
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            self.send_error(400, "bad Content-Length")
            return None
        return self.rfile.read(length)

    def _client_gone(self) -> bool:
        """Whether the client has closed its end (a timed-out client does)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _send(self, answer: Answer, record: Callable[[int | None], None] | None = None) -> int | None:
        """Write the answer; returns its status, or None if the client had gone away.

        ``record(status)`` is called just before the answer is written, and called
        again if writing then fails (the record is then corrected to no status).
        """
        if self._client_gone():
            self.close_connection = True
            return None
        if record is not None:
            record(answer.status)
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)
        except ConnectionError:
            self.close_connection = True
            if record is not None:
                record(None)
            return None
        return answer.status

    def _drop(self) -> None:
        """Close the connection without writing anything."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

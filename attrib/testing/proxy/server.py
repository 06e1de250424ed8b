"""The :class:`Proxy`: its configuration, lifecycle, fault schedule, records and forwarding.

The HTTP side (reading requests, writing answers, dropping connections) is
:mod:`attrib.testing.proxy.handler`; the module docstring of
:mod:`attrib.testing.proxy` documents the behaviour.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import httpx

from attrib.testing.proxy.faults import Answer, Record, checked_schedule, error_answer
from attrib.testing.proxy.handler import ProxyServer
from attrib.testing.proxy.hidden import hide_prefix, inject_chat, inject_completion

__all__ = ["Proxy", "CHAT", "COMPLETIONS"]

#: The OpenAI paths whose POSTs are faulted and recorded by default.
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
_RESPONSE_HEADERS = ("Content-Type", "Retry-After")


class Proxy:
    """An OpenAI-compatible loopback proxy with scheduled faults and an optional hidden system prompt.

    Args:
        upstream: the upstream server's root URL, e.g. ``http://127.0.0.1:8080``.
        faults: fault names (keys of ``FAULTS``) used in turn on faulted requests.
        fault_every: fault one request in this many (see the module docstring), >= 1.
        inject_system: hidden system prompt; None injects nothing.
        retry_after: value of the Retry-After header of fault "429", seconds.
        slow_seconds: delay of fault "slow", seconds.
        fault_paths: paths whose POST requests are numbered, faulted and recorded.
        host, port: where to listen; port 0 picks a free port.

    Raises:
        ValueError: an unknown fault name, ``fault_every < 1``, a negative delay, or an
            upstream that is not an http(s) URL.
        TypeError: ``faults`` is a string (``"429"`` rather than ``("429",)``).
    """

    def __init__(
        self,
        upstream: str,
        *,
        faults: Sequence[str] = (),
        fault_every: int = 1,
        inject_system: str | None = None,
        retry_after: float = 1.0,
        slow_seconds: float = 2.0,
        fault_paths: Sequence[str] = (COMPLETIONS, CHAT),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        try:
            parsed = httpx.URL(upstream)
        except httpx.InvalidURL as error:
            raise ValueError(f"upstream {upstream!r} is not a URL ({error})") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"upstream {upstream!r} is not an http(s) URL such as http://127.0.0.1:8080")
        if retry_after < 0 or slow_seconds < 0:
            raise ValueError("retry_after and slow_seconds must be >= 0 seconds")
        self.upstream = upstream.rstrip("/")
        self.faults, self.fault_every = checked_schedule(faults, fault_every)
        self.inject_system = inject_system
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.fault_paths = frozenset(fault_paths)
        self.host = host
        self.port = port
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self._count = 0
        #: Set while the proxy stops: a "slow" request waiting on it gives up.
        self.stopped = threading.Event()
        self._server: ProxyServer | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None
        self._root: str | None = None

    @property
    def root(self) -> str:
        """The proxy's root URL, ``http://127.0.0.1:PORT``; known once started."""
        if self._root is None:
            raise RuntimeError("the proxy has not been started; call start() or use it in a with block")
        return self._root

    @property
    def url(self) -> str:
        """The OpenAI base URL through the proxy, ``http://127.0.0.1:PORT/v1``."""
        return self.root + "/v1"

    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns self. Raises OSError if the address is taken."""
        if self._server is not None:
            raise RuntimeError("the proxy is already running")
        self.stopped.clear()
        server = ProxyServer(self, (self.host, self.port))
        host, port = str(server.server_address[0]), int(server.server_address[1])
        self._root = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._client = httpx.Client(timeout=600.0, trust_env=False)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"proxy:{port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close open client connections; requests in flight get no answer."""
        if self._server is None:
            return
        self.stopped.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        if self._thread is not None:
            self._thread.join()
        if self._client is not None:
            self._client.close()
        self._server = self._thread = self._client = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def set_faults(self, faults: Sequence[str], fault_every: int = 1) -> None:
        """Replace the fault schedule and restart the request numbering at 0; raises like __init__."""
        checked = checked_schedule(faults, fault_every)
        with self._lock:
            self.faults, self.fault_every = checked
            self._count = 0

    def forwarded_bodies(self) -> collections.Counter[str]:
        """Request body SHA-256 → times the upstream answered it with 2xx and the client got that answer.

        Counts recorded requests only (POSTs on fault paths) with fault "ok" or "slow".
        """
        with self._lock:
            records = list(self.records)
        return collections.Counter(
            record.body_sha256
            for record in records
            if record.fault in ("ok", "slow") and record.status is not None and 200 <= record.status < 300
        )

    # The request handler (attrib.testing.proxy.handler) calls the four methods below.

    def next_fault(self) -> str:
        """Number the next faultable request and return its fault from the schedule ("ok" when none)."""
        with self._lock:
            k = self._count
            self._count += 1
            if self.faults and k % self.fault_every == 0:
                return self.faults[(k // self.fault_every) % len(self.faults)]
            return "ok"

    def mark_undelivered(self, digest: str, path: str) -> None:
        """Mark the newest record of this body as not delivered (its write failed)."""
        with self._lock:
            for index in range(len(self.records) - 1, -1, -1):
                if self.records[index].body_sha256 == digest and self.records[index].path == path:
                    self.records[index] = dataclasses.replace(self.records[index], status=None)
                    return

    def add_record(self, record: Record) -> None:
        """Append one request's record (thread-safe)."""
        with self._lock:
            self.records.append(record)

    def forward(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[Answer, bool]:
        """Send one request upstream, with the hidden system prompt if any.

        Returns the answer for the client and whether the upstream was called.
        """
        path = urlsplit(target).path
        prefix, echo = None, False
        if self.inject_system is not None and method == "POST":
            if path == CHAT:
                body = inject_chat(body, self.inject_system)
            elif path == COMPLETIONS:
                prefix = self.inject_system + "\n\n"
                body, injected, echo = inject_completion(body, prefix)
                prefix = prefix if injected else None
        client = self._client
        if client is None:
            raise ConnectionAbortedError("the proxy has been stopped")
        try:
            response = client.request(method, self.upstream + target, headers=headers, content=body or None)
        except httpx.HTTPError as error:
            called = not isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout))
            message = f"proxy: upstream {self.upstream} failed: {type(error).__name__}: {error}"
            return error_answer(502, message, "proxy_error", "upstream_failed"), called
        content = response.content
        if prefix is not None and response.status_code == 200:
            content = hide_prefix(content, prefix, echo)
        kept = {name: response.headers[name] for name in _RESPONSE_HEADERS if name in response.headers}
        return Answer(response.status_code, content, kept), True

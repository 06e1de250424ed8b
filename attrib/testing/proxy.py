"""An OpenAI-compatible HTTP proxy on loopback that injects faults and hidden system prompts.

It sits between a client (attrib's HTTP backend, the openai SDK, curl) and an
OpenAI-compatible server such as llama-cpp-python's, and is for two jobs:

- Fault injection, to test retries and caching without a flaky server: rate
  limits, server errors, dropped connections, slow and malformed answers, on a
  deterministic schedule; ``records`` and ``forwarded_bodies()`` tell a test
  what reached the upstream and what the client actually got.
- Hidden-system-prompt emulation, for auditing: the proxy steers every chat or
  completion request with a system prompt the caller cannot see, the way a
  hosted endpoint may, so an attribution run can be checked for its traces.

Forwarding: any method, path, query and body goes to ``upstream + path`` (the
upstream is the server root, ``http://127.0.0.1:8080``, not ``.../v1``). The
request headers Content-Type, Authorization and Accept are passed on; the
answer's status, body, Content-Type and Retry-After come back, always with a
Content-Length (HTTP/1.1 keep-alive). Bodies are buffered, so a streamed (SSE)
answer arrives in one piece. An unreachable upstream gives 502.

Fault schedule (no randomness): POST requests on ``fault_paths`` are numbered
k = 0, 1, 2, ... in arrival order. Request k is faulted iff ``faults`` is not
empty and ``k % fault_every == 0``; it then gets ``faults[(k // fault_every) %
len(faults)]``, every other request gets "ok". So ``faults=("429",)`` fails
every request, ``faults=("429", "ok")`` every second one, and ``faults=("500",),
fault_every=3`` requests 0, 3, 6, ... Each numbered request adds a ``Record``
to ``records`` just before its answer is written (concurrent ones in any order). Other
paths and methods (``GET /v1/models``, ``/extras/tokenize``) are never faulted
and not recorded. The faults:

- ``ok``: forward normally.
- ``429``: answer 429 with ``Retry-After: <retry_after>`` and an OpenAI-style
  ``rate_limit_error`` body, without calling the upstream.
- ``500``: answer 500 with an OpenAI-style ``server_error`` body, without
  calling the upstream.
- ``drop``: close the connection without any answer (the client sees a
  transport error such as httpx.RemoteProtocolError); the upstream is not called.
- ``slow``: wait ``slow_seconds``, then forward normally (a client with a
  shorter timeout times out; the upstream is still called).
- ``malformed``: forward, then answer 200, ``application/json``, with the
  first half of the upstream's body (not valid JSON).

Hidden system prompt (``inject_system``), applied whatever the fault schedule:

- POST /v1/chat/completions: ``{"role": "system", "content": inject_system}``
  is inserted as the first message, before any system message of the caller's.
  The answer is passed through.
- POST /v1/completions: the prompt (a string, or each string of a list) becomes
  ``inject_system + "\\n\\n" + prompt``; a prompt of token ids is left as is.
  The answer is rewritten so the prefix does not show: with echo, the prefix is
  cut from each choice's text, and its tokens from the logprobs lists, whose
  text offsets then start at 0 on the caller's prompt; without echo, offsets
  that count the prompt move back by the prefix length. The log-probabilities
  kept are the real ones, conditioned on the hidden prefix: that is what an
  audit looks for. ``usage`` is unchanged (it counts the prefix's tokens).

Run as a script (Ctrl-C stops it)::

    python -m attrib.testing.proxy --upstream http://127.0.0.1:8080 --faults 429,ok
    proxy listening on http://127.0.0.1:PORT/v1 -> http://127.0.0.1:8080

In a test::

    with Proxy("http://127.0.0.1:8080", faults=("drop", "ok")) as proxy:
        client = openai.OpenAI(base_url=proxy.url, api_key="none")
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import json
import select
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NoReturn, Self
from urllib.parse import urlsplit

import httpx

__all__ = ["FAULTS", "Proxy", "Record", "main"]

FAULTS: dict[str, str] = {
    "ok": "forward normally",
    "429": "answer 429 with Retry-After and a rate_limit_error body; the upstream is not called",
    "500": "answer 500 with a server_error body; the upstream is not called",
    "drop": "close the connection without any answer (client: transport error); the upstream is not called",
    "slow": "wait --slow-seconds, then forward (a client with a shorter timeout times out)",
    "malformed": "forward, then answer 200 with the first half of the upstream's body (invalid JSON)",
}

_CHAT = "/v1/chat/completions"
_COMPLETIONS = "/v1/completions"
_REQUEST_HEADERS = ("Content-Type", "Authorization", "Accept")
_RESPONSE_HEADERS = ("Content-Type", "Retry-After")
_ALIGNED = ("tokens", "token_logprobs", "top_logprobs", "text_offset")
_JSON = "application/json"


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
class _Answer:
    status: int
    body: bytes
    headers: dict[str, str]


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
        fault_paths: Sequence[str] = (_COMPLETIONS, _CHAT),
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
        self.faults, self.fault_every = _checked_schedule(faults, fault_every)
        self.inject_system = inject_system
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.fault_paths = frozenset(fault_paths)
        self.host = host
        self.port = port
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self._count = 0
        self._stopped = threading.Event()
        self._server: _Server | None = None
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

    def start(self) -> Proxy:
        """Bind and serve in a daemon thread; returns self. Raises OSError if the address is taken."""
        if self._server is not None:
            raise RuntimeError("the proxy is already running")
        self._stopped.clear()
        server = _Server(self, (self.host, self.port))
        host, port = server.server_address[:2]
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
        self._stopped.set()
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
        checked = _checked_schedule(faults, fault_every)
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

    def _next_fault(self) -> str:
        with self._lock:
            k = self._count
            self._count += 1
            if self.faults and k % self.fault_every == 0:
                return self.faults[(k // self.fault_every) % len(self.faults)]
            return "ok"

    def _correct(self, digest: str, path: str) -> None:
        """Mark the newest record of this body as not delivered (its write failed)."""
        with self._lock:
            for index in range(len(self.records) - 1, -1, -1):
                if self.records[index].body_sha256 == digest and self.records[index].path == path:
                    self.records[index] = dataclasses.replace(self.records[index], status=None)
                    return

    def _record(self, record: Record) -> None:
        with self._lock:
            self.records.append(record)

    def _error(self, status: int, message: str, kind: str, code: str, headers: dict[str, str] | None = None) -> _Answer:
        body = json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode()
        return _Answer(status, body, {"Content-Type": _JSON, **(headers or {})})

    def _rate_limited(self) -> _Answer:
        seconds = _format_seconds(self.retry_after)
        return self._error(
            429, f"proxy: injected rate limit; retry after {seconds} s", "rate_limit_error", "rate_limited",
            {"Retry-After": seconds},
        )

    def _forward(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[_Answer, bool]:
        """Send one request upstream, with the hidden system prompt if any.

        Returns the answer for the client and whether the upstream was called.
        """
        path = urlsplit(target).path
        prefix, echo = None, False
        if self.inject_system is not None and method == "POST":
            if path == _CHAT:
                body = _inject_chat(body, self.inject_system)
            elif path == _COMPLETIONS:
                prefix = self.inject_system + "\n\n"
                body, injected, echo = _inject_completion(body, prefix)
                prefix = prefix if injected else None
        client = self._client
        if client is None:
            raise ConnectionAbortedError("the proxy has been stopped")
        try:
            response = client.request(method, self.upstream + target, headers=headers, content=body or None)
        except httpx.HTTPError as error:
            called = not isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout))
            message = f"proxy: upstream {self.upstream} failed: {type(error).__name__}: {error}"
            return self._error(502, message, "proxy_error", "upstream_failed"), called
        content = response.content
        if prefix is not None and response.status_code == 200:
            content = _hide_prefix(content, prefix, echo)
        kept = {name: response.headers[name] for name in _RESPONSE_HEADERS if name in response.headers}
        return _Answer(response.status_code, content, kept), True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, proxy: Proxy, address: tuple[str, int]) -> None:
        self.proxy = proxy
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

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
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError) or self.proxy._stopped.is_set():
            return  # a client that went away, or a request cut short by stop(): nothing to report
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid the 40 ms delayed-ACK stall
    server: _Server

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
            answer, _ = proxy._forward(self.command, target, headers, body)
            self._send(answer)
            return
        fault = proxy._next_fault()
        digest = hashlib.sha256(body).hexdigest()
        recorded = False
        called = False

        def record(status: int | None) -> None:
            # Recorded before the answer's bytes go out, so a client that has its answer
            # always finds the record; a write that then fails corrects it to None.
            nonlocal recorded
            if recorded:
                proxy._correct(digest, parts.path)
            else:
                proxy._record(Record(parts.path, digest, fault, status, called))
                recorded = True

        try:
            if fault == "drop":
                self._drop()
            elif fault == "429":
                self._send(proxy._rate_limited(), record)
            elif fault == "500":
                self._send(proxy._error(500, "proxy: injected server error", "server_error", "injected_fault"), record)
            elif fault == "slow" and proxy._stopped.wait(proxy.slow_seconds):
                self._drop()
            else:
                answer, called = proxy._forward(self.command, target, headers, body)
                if fault == "malformed":
                    answer = _Answer(200, answer.body[: len(answer.body) // 2], {"Content-Type": _JSON})
                self._send(answer, record)
        finally:
            if not recorded:
                proxy._record(Record(parts.path, digest, fault, None, called))

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

    def _send(self, answer: _Answer, record: Callable[[int | None], None] | None = None) -> int | None:
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
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _checked_schedule(faults: Sequence[str], fault_every: int) -> tuple[tuple[str, ...], int]:
    if isinstance(faults, str):
        raise TypeError(f"faults must be a sequence of names, not the string {faults!r}")
    unknown = [name for name in faults if name not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault {unknown[0]!r}; valid faults: {', '.join(FAULTS)}")
    if isinstance(fault_every, bool) or not isinstance(fault_every, int) or fault_every < 1:
        raise ValueError(f"fault_every must be an integer >= 1, got {fault_every!r}")
    return tuple(faults), fault_every


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(float(seconds))


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _inject_chat(body: bytes, system: str) -> bytes:
    """Insert the hidden system message first; a body without a messages list is left as is."""
    request = _json_object(body)
    if request is None or not isinstance(request.get("messages"), list):
        return body
    request["messages"] = [{"role": "system", "content": system}, *request["messages"]]
    return _dump(request)


def _inject_completion(body: bytes, prefix: str) -> tuple[bytes, bool, bool]:
    """Prefix the prompt (or each prompt of a list); returns (body, whether injected, whether echo was asked)."""
    request = _json_object(body)
    if request is None:
        return body, False, False
    prompt = request.get("prompt")
    if isinstance(prompt, str):
        request["prompt"] = prefix + prompt
    elif isinstance(prompt, list) and prompt and all(isinstance(item, str) for item in prompt):
        request["prompt"] = [prefix + item for item in prompt]
    else:
        return body, False, False
    return _dump(request), True, bool(request.get("echo"))


def _hide_prefix(body: bytes, prefix: str, echo: bool) -> bytes:
    """Rewrite a completion answer so the injected prefix does not show.

    With echo, each choice's ``text`` loses the prefix, and in ``logprobs`` the tokens
    whose ``text_offset`` (characters) is inside the prefix are dropped from the four
    aligned lists (tokens, token_logprobs, top_logprobs, text_offset); the remaining
    offsets move back by ``len(prefix)``, so they start at 0 on the caller's prompt. The
    kept log-probabilities are the real ones, conditioned on the hidden prefix, which is
    what an audit wants to see (the caller's first token then has a value, not None).
    A token straddling the boundary is dropped with the prefix, and an echo that does
    not reproduce the prefix exactly keeps its text.

    Without echo the text is generated text only; offsets that count the prompt (as
    llama-cpp-python's server does) move back by ``len(prefix)``, offsets that do not are
    left alone. ``usage`` is not changed: its token counts include the prefix.
    """
    response = _json_object(body)
    if response is None or not isinstance(response.get("choices"), list):
        return body
    cut = len(prefix)
    for choice in response["choices"]:
        if not isinstance(choice, dict):
            continue
        text = choice.get("text")
        if echo and isinstance(text, str) and text.startswith(prefix):
            choice["text"] = text[cut:]
        logprobs = choice.get("logprobs")
        if not isinstance(logprobs, dict):
            continue
        offsets = logprobs.get("text_offset")
        if not isinstance(offsets, list) or not all(isinstance(offset, int) for offset in offsets):
            continue
        if echo:
            keep = [i for i, offset in enumerate(offsets) if offset >= cut]
            for key in _ALIGNED:
                column = logprobs.get(key)
                if isinstance(column, list) and len(column) == len(offsets):
                    logprobs[key] = [column[i] for i in keep]
            logprobs["text_offset"] = [offset - cut for offset in logprobs["text_offset"]]
        elif offsets and min(offsets) >= cut:
            logprobs["text_offset"] = [offset - cut for offset in offsets]
    return _dump(response)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _fault_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    try:
        _checked_schedule(names, 1)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return names


def _parser() -> _Parser:
    width = max(len(name) for name in FAULTS)
    faults = "\n".join(f"  {name:<{width}}  {what}" for name, what in FAULTS.items())
    parser = _Parser(
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
    parser.add_argument("--upstream", required=True, metavar="URL",
                        help="the upstream server's root URL, e.g. http://127.0.0.1:8080 (without /v1)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default: 0)")
    parser.add_argument("--faults", type=_fault_list, default=(), metavar="LIST",
                        help=f"comma-separated faults used in turn: {','.join(FAULTS)} (default: none)")
    parser.add_argument("--fault-every", type=int, default=1, metavar="N",
                        help="fault one request in N (default: 1, every request)")
    parser.add_argument("--retry-after", type=float, default=1.0, metavar="SECONDS",
                        help="Retry-After of fault 429 (default: 1)")
    parser.add_argument("--slow-seconds", type=float, default=2.0, metavar="SECONDS",
                        help="delay of fault slow (default: 2)")
    hidden = parser.add_mutually_exclusive_group()
    hidden.add_argument("--inject-system", metavar="TEXT",
                        help="hidden system prompt: first chat message, prefix of completion prompts")
    hidden.add_argument("--inject-system-file", metavar="FILE",
                        help="read the hidden system prompt from FILE (UTF-8; trailing newlines dropped)")
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
            args.upstream, faults=args.faults, fault_every=args.fault_every, inject_system=inject,
            retry_after=args.retry_after, slow_seconds=args.slow_seconds, host=args.host, port=args.port,
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


if __name__ == "__main__":
    sys.exit(main())

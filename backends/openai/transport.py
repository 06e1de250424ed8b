"""HTTP transport of the OpenAI-compatible backend: one client, one status table, retries, redaction.

Every request goes through the official ``openai`` SDK's async client with the
SDK's own retries off; this module decides what to retry, how long to wait and
what to tell the user, all from one table.

The status table
----------------
:data:`STATUS_RULES` maps each failure of an attempt, an HTTP status or a
transport kind, to a :class:`Rule`: whether it is retried, and which
:class:`~attrib.errors.EndpointError` it becomes once it is not (the pattern of
httpx's ``HTTPCORE_EXC_MAP`` and openai-python's status-typed errors). The retry
policy and the error messages both read it, so they cannot disagree::

    failure          retried  error raised               meaning
    400 413 415 422  no       RequestRejectedError       the request itself was refused
    401 403          no       AuthenticationError        the API key was refused
    404 405 501      no       RequestRejectedError       no such route or model, or not implemented
    408 409 425      yes      EndpointUnavailableError   timed out / conflict / too early
    429              yes      EndpointUnavailableError   rate-limited (Retry-After is honoured)
    500 502 503 504  yes      EndpointUnavailableError   server error
    timeout          yes      EndpointUnavailableError   no answer within the timeout
    connection       yes      EndpointUnavailableError   refused or dropped connection
    malformed        yes      EndpointUnavailableError   2xx JSON that is cut off or lacks ``choices``
    not-json         no       NotAnAPIError              2xx that is not JSON: a web page at the URL

Other 4xx statuses are refusals and other 5xx statuses are retried. Which
exception class is which transport kind is a table too (:data:`EXCEPTION_KINDS`).

Retries wait what a ``Retry-After`` header asks (capped at ``max_wait``), otherwise
exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff
and Jitter", 2015; tenacity's ``wait_random_exponential``).

Secrets and server text
-----------------------
The API key is removed from every message, key-like strings (``sk-...``) too,
and the base URL is shown without credentials or query (:func:`redact_url`).
Anything a server says is data: its error text loses escape sequences and
control characters before it reaches a message (:func:`clean`), so an endpoint
cannot retitle or clear the user's terminal.

The SQLite :class:`~attrib.cache.ResponseCache` here holds endpoint metadata only
(probe verdicts, tokenizer-route answers, the discovered model); completions and
chat answers are cached by :class:`~attrib.caching.CachingBackend` around the backend.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import openai
import tenacity

from attrib.cache import ResponseCache, request_key
from attrib.errors import AuthenticationError, EndpointError, EndpointUnavailableError, RequestRejectedError

__all__ = [
    "EXCEPTION_KINDS",
    "STATUS_RULES",
    "NotAnAPIError",
    "Rule",
    "Transport",
    "Usage",
    "clean",
    "redact_url",
    "retry_after",
    "rule_for",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


class NotAnAPIError(EndpointError):
    """A 2xx answer that is not JSON at all (a web UI or captive portal at the URL). Not retried."""


@dataclass(frozen=True)
class Rule:
    """What one failed attempt means.

    Attributes:
        retryable: whether the attempt is sent again (within ``max_retries``).
        error: the exception raised once it is not retried.
        meaning: what happened, for the message.
        fix: what the user can do, for the message.
    """

    retryable: bool
    error: type[EndpointError]
    meaning: str
    fix: str = ""


_KEY_FIX = "set OPENAI_API_KEY (or --api-key-env) to a key the endpoint accepts"
_RETRY_FIX = "check the server or raise --max-retries"
_URL_FIX = "check --base-url (the API root, usually ending in /v1) and --model"

#: Transport kinds of failure that are not HTTP statuses.
TIMEOUT, CONNECTION, MALFORMED, NOT_JSON = "timeout", "connection", "malformed", "not-json"

#: Failure (HTTP status or transport kind) -> what it means. Read by the retry policy and the messages.
STATUS_RULES: Mapping[int | str, Rule] = MappingProxyType(
    {
        400: Rule(False, RequestRejectedError, "rejected the request"),
        401: Rule(False, AuthenticationError, "refused the API key", _KEY_FIX),
        403: Rule(False, AuthenticationError, "refused the API key", _KEY_FIX),
        404: Rule(False, RequestRejectedError, "does not exist", _URL_FIX),
        405: Rule(False, RequestRejectedError, "does not allow this request", _URL_FIX),
        408: Rule(True, EndpointUnavailableError, "timed out", _RETRY_FIX),
        409: Rule(True, EndpointUnavailableError, "reported a conflict", _RETRY_FIX),
        413: Rule(False, RequestRejectedError, "found the request too large"),
        415: Rule(False, RequestRejectedError, "rejected the request's media type"),
        422: Rule(False, RequestRejectedError, "rejected the request"),
        425: Rule(True, EndpointUnavailableError, "found the request too early", _RETRY_FIX),
        429: Rule(True, EndpointUnavailableError, "rate-limited the request", _RETRY_FIX),
        500: Rule(True, EndpointUnavailableError, "had a server error", _RETRY_FIX),
        501: Rule(False, RequestRejectedError, "does not implement this request", _URL_FIX),
        502: Rule(True, EndpointUnavailableError, "had a gateway error", _RETRY_FIX),
        503: Rule(True, EndpointUnavailableError, "was unavailable", _RETRY_FIX),
        504: Rule(True, EndpointUnavailableError, "had a gateway timeout", _RETRY_FIX),
        TIMEOUT: Rule(True, EndpointUnavailableError, "did not answer in time", _RETRY_FIX + " or --timeout"),
        CONNECTION: Rule(True, EndpointUnavailableError, "refused or dropped the connection", _RETRY_FIX),
        MALFORMED: Rule(True, EndpointUnavailableError, "answered with malformed JSON", _RETRY_FIX),
        NOT_JSON: Rule(False, NotAnAPIError, "answered with a page that is not the API's JSON", _URL_FIX),
    }
)

_OTHER_CLIENT = Rule(False, RequestRejectedError, "rejected the request")
_OTHER_SERVER = Rule(True, EndpointUnavailableError, "had a server error", _RETRY_FIX)
_OTHER = Rule(False, EndpointError, "answered with an unexpected status", _URL_FIX)

#: SDK exception -> transport kind, most specific first (a timeout is also a connection error).
EXCEPTION_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (openai.APITimeoutError, TIMEOUT),
    (openai.APIConnectionError, CONNECTION),
)


def rule_for(failure: int | str) -> Rule:
    """The :class:`Rule` of an HTTP status or transport kind (see :data:`STATUS_RULES`).

    Raises:
        KeyError: for a transport kind that is not in the table.
    """
    known = STATUS_RULES.get(failure)
    if known is not None:
        return known
    if isinstance(failure, int):
        if 400 <= failure < 500:
            return _OTHER_CLIENT
        if failure >= 500:
            return _OTHER_SERVER
        return _OTHER
    raise KeyError(failure)


def says_unsupported(failure: int | str, detail: str, names: Sequence[str]) -> bool:
    """Whether a refusal is an answer that a probed feature is not offered.

    A missing route (404, 405, 501) says so unless its text names the model (then the
    model is what is missing); a refused request (400, 422) says so only if its text
    names one of the probed parameters ``names``. Nothing else does: rate limits,
    server errors and transport failures say nothing about support.
    """
    text = detail.lower()
    if failure in (404, 405, 501):
        return "model" not in text
    if failure in (400, 422):
        return any(name.lower() in text for name in names)
    return False


# CSI, OSC, DCS/PM/APC/SOS strings and two-byte escapes, 7-bit and C1 forms.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|(?:\x1b[P^_X]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"
    r"|\x1b[@-Z\\-_]?"
)
_KEY_LIKE = re.compile(r"\b(sk|key|tok)-[A-Za-z0-9_\-*.]{4,}")


def clean(text: str, limit: int = 300) -> str:
    """Server text made safe for one line on a terminal: escape sequences removed, control and
    format characters (C0, C1, bidirectional overrides) dropped, whitespace collapsed, at most
    ``limit`` characters."""
    text = _ESCAPES.sub("", text)
    text = "".join(" " if c in "\t\n\r\f\v" else c for c in text)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redact_url(url: str) -> str:
    """``url`` without user name, password, query or fragment (safe to record and log)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number or an HTTP date), or ``None``."""
    value = None if headers is None else headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Fault(Exception):
    """One failed attempt: ``failure`` is an HTTP status or a transport kind."""

    def __init__(self, failure: int | str, detail: str, wait: float | None = None) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail
        self.wait = wait
        self.rule = rule_for(failure)


def _retryable(error: BaseException) -> bool:
    return isinstance(error, _Fault) and error.rule.retryable


class _RetryAfterOrBackoff(tenacity.wait.wait_base):
    """Wait what the server's ``Retry-After`` asks (capped), else exponential backoff with full jitter."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.backoff = tenacity.wait_random_exponential(multiplier=initial, max=maximum)
        self.maximum = maximum

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, _Fault) and error.wait is not None:
            return min(error.wait, self.maximum)
        return float(self.backoff(retry_state))


@dataclass
class Usage:
    """Counters of one backend: model requests answered, retries, tokens the endpoint reported."""

    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    bounded_tokens: int = 0

    def snapshot(self) -> dict[str, int]:
        return dict(vars(self))


class _Response(Protocol):
    """What is read of an HTTP answer (httpx's and httpx2's ``Response`` both fit)."""

    @property
    def text(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def json(self) -> Any: ...


def _error_detail(response: _Response) -> str:
    """The error text of a refusal: ``error.message`` of an OpenAI-style body, else the body."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return response.text
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error is not None:
            return error if isinstance(error, str) else json.dumps(error, ensure_ascii=False)
    return response.text


def _json_object(response: _Response) -> dict[str, Any]:
    """The 2xx body as a JSON object, or a :class:`_Fault` saying what it is instead."""
    text = response.text
    kind = response.headers.get("content-type", "").split(";")[0].strip() or "no content type"
    if text.lstrip().startswith("<"):
        raise _Fault(NOT_JSON, f"{kind}, starting {text.lstrip()[:60]!r}")
    try:
        data = json.loads(text)
    except ValueError:
        if "json" in kind:
            raise _Fault(MALFORMED, f"invalid JSON of {len(text)} characters") from None
        raise _Fault(NOT_JSON, f"{kind}, starting {text[:60]!r}") from None
    if not isinstance(data, dict):
        raise _Fault(MALFORMED, f"JSON {type(data).__name__}, not an object")
    return data


class _Unsupported(Exception):
    """A probe's answer said the probed feature is not offered."""


class Transport:
    """The HTTP side of one endpoint: client, retries, concurrency cap, metadata cache, counters.

    Args:
        base_url: the API root including ``/v1``.
        api_key: the key, or ``""`` (sent as ``"none"``: local servers accept any).
        timeout: seconds per attempt.
        max_retries: retries after the first attempt.
        max_wait: longest single wait between attempts, seconds (caps ``Retry-After``).
        concurrency: requests in flight at once.
        cache: where endpoint metadata is kept, or ``None``.

    Attributes:
        endpoint: the base URL without credentials or query, safe to record.
        usage: the counters so far.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 120.0,
        max_retries: int = 8,
        max_wait: float = 60.0,
        concurrency: int = 4,
        cache: ResponseCache | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.concurrency = concurrency
        self.cache = cache
        self.usage = Usage()
        self.endpoint = redact_url(self.base_url)
        self.root = re.sub(r"/v1$", "", self.base_url)
        self._runner = asyncio.Runner()
        self._lock = threading.Lock()
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=api_key or "none", max_retries=0, timeout=timeout
        )
        self._slots: asyncio.Semaphore | None = None

    # ---------------------------------------------------------------- running

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on this transport's event loop, from synchronous code."""
        with self._lock:
            return self._runner.run(coroutine)

    def close(self) -> None:
        """Close the client, the event loop and the metadata cache."""
        try:
            self.run(self._client.close())
        finally:
            self._runner.close()
            if self.cache is not None:
                self.cache.close()

    # ---------------------------------------------------------------- messages

    def scrub(self, text: str) -> str:
        """``text`` without the key, key-like strings or credentials of the base URL."""
        if self.api_key:
            text = text.replace(self.api_key, "[redacted]")
        text = _KEY_LIKE.sub("[redacted]", text)
        return text.replace(self.base_url, self.endpoint)

    def _error(self, fault: _Fault, where: str, what: str | None, attempts: int) -> EndpointError:
        rule = fault.rule
        status = fault.failure if isinstance(fault.failure, int) else None
        kind = f"HTTP {status}" if status is not None else fault.failure
        detail = self.scrub(clean(fault.detail))
        said = f"{kind}: {detail}" if detail else kind
        subject = f"{where} ({what})" if what else where
        if rule.retryable and attempts > 1:
            message = f"{subject} kept failing after {attempts} attempts; it {rule.meaning} ({said})"
        else:
            message = f"{subject} {rule.meaning} ({said})"
        return rule.error(message + (f"; {rule.fix}" if rule.fix else ""), status=status)

    # ---------------------------------------------------------------- requests

    def url(self, path: str, *, root: bool = False) -> str:
        """The full URL of ``path`` under the API root (``/v1``) or, with ``root``, the server root."""
        return (self.root if root else self.base_url) + path

    async def _attempt(self, method: str, url: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        try:
            if method == "GET":
                response: _Response = await self._client.get(url, cast_to=httpx.Response)
            else:
                response = await self._client.post(url, cast_to=httpx.Response, body=body)
        except openai.APIStatusError as error:
            raise _Fault(
                error.status_code, _error_detail(error.response), retry_after(error.response.headers)
            ) from None
        except openai.APIError as error:
            kind = next((k for cls, k in EXCEPTION_KINDS if isinstance(error, cls)), None)
            if kind is None:
                raise
            cause = error.__cause__ or error
            raise _Fault(kind, f"{type(cause).__name__}: {cause}".rstrip(": ")) from None
        return _json_object(response)

    async def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        root: bool,
        what: str | None,
        retries: int | None,
        model_call: bool,
        unsupported: Sequence[str] | None,
    ) -> dict[str, Any]:
        url = self.url(path, root=root)
        where = f"{method} {redact_url(url)}"

        def count(state: tenacity.RetryCallState) -> None:
            self.usage.retries += 1
            log.info("retrying %s (attempt %d failed)", where, state.attempt_number)

        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(_retryable),
            wait=_RetryAfterOrBackoff(initial=0.5, maximum=self.max_wait),
            stop=tenacity.stop_after_attempt((self.max_retries if retries is None else retries) + 1),
            before_sleep=count,
            reraise=True,
        )
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        attempts = 0
        data: dict[str, Any] = {}
        try:
            async with self._slots:
                async for attempt in retrying:
                    with attempt:
                        attempts = attempt.retry_state.attempt_number
                        data = await self._attempt(method, url, body)
                        if model_call and not (isinstance(data.get("choices"), list) and data["choices"]):
                            raise _Fault(MALFORMED, "an answer without choices")
        except _Fault as fault:
            if unsupported is not None and says_unsupported(fault.failure, fault.detail, unsupported):
                log.info("%s says it does not support this (%s)", where, fault.failure)
                raise _Unsupported(where) from None
            raise self._error(fault, where, what, attempts) from None
        if model_call:
            self.usage.requests += 1
            reported = data.get("usage")
            usage: Mapping[str, Any] = reported if isinstance(reported, dict) else {}
            self.usage.prompt_tokens += _count(usage, "prompt_tokens")
            self.usage.completion_tokens += _count(usage, "completion_tokens")
        return data

    async def model_call(self, path: str, body: Mapping[str, Any], *, what: str | None = None) -> dict[str, Any]:
        """POST a completions or chat request (``path`` under ``/v1``); the answer must hold ``choices``.

        Returns:
            The answer as a JSON object.

        Raises:
            EndpointError: the subclass :data:`STATUS_RULES` names, once an attempt's failure
                is not retryable or ``max_retries`` retries have failed.
        """
        return await self._send(
            "POST", path, body, root=False, what=what, retries=None, model_call=True, unsupported=None
        )

    async def probe_call(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        names: Sequence[str],
        what: str,
        root: bool = False,
        retries: int | None = None,
    ) -> dict[str, Any] | None:
        """POST a probe: the answer, or ``None`` when the endpoint answers that it does not offer this.

        ``None`` only for a refusal that says so (:func:`says_unsupported`: a missing route,
        or a 400/422 naming one of ``names``); every other failure raises once retries are
        spent, so a flaky endpoint never looks like a less capable one.

        Raises:
            EndpointError: as :meth:`model_call`.
        """
        try:
            return await self._send(
                "POST", path, body, root=root, what=what, retries=retries, model_call=not root, unsupported=names
            )
        except _Unsupported:
            return None

    async def call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        root: bool = False,
        retries: int | None = None,
    ) -> dict[str, Any]:
        """Any other request (model listing, tokenizer routes): the answer as a JSON object.

        Raises:
            EndpointError: as :meth:`model_call`.
        """
        return await self._send(
            method, path, body, root=root, what=None, retries=retries, model_call=False, unsupported=None
        )

    # ---------------------------------------------------------------- metadata

    def _key(self, kind: str, parts: Mapping[str, Any]) -> str:
        return request_key(kind="openai-metadata", what=kind, endpoint=self.endpoint, **parts)

    def recall(self, kind: str, **parts: Any) -> Any | None:
        """Endpoint metadata stored earlier under ``kind`` and ``parts``, or ``None``."""
        return None if self.cache is None else self.cache.get(self._key(kind, parts))

    def remember(self, value: Any, kind: str, **parts: Any) -> None:
        """Store endpoint metadata (never a value that contains the API key)."""
        if self.cache is None:
            return
        if len(self.api_key) >= 8 and self.api_key in json.dumps(value):
            log.warning("not caching an answer that contains the API key")
            return
        self.cache.put(self._key(kind, parts), value)


def _count(usage: Mapping[str, Any], name: str) -> int:
    value = usage.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0

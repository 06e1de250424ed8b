"""HTTP transport of the OpenAI-compatible backend: one client, one status table, retries, redaction.

Every request goes through the official ``openai`` SDK's async client with the
SDK's own retries off; this module decides what to retry, how long to wait and
what to tell the user, all from one table.

The status table
----------------
:data:`~.statuses.STATUS_RULES` (in :mod:`.statuses`) maps each failure of an
attempt, an HTTP status or a transport kind, to whether it is retried and which
:class:`~attrib.errors.EndpointError` it becomes; the retry policy here and the
error messages both read it, so they cannot disagree.

Retries wait what a ``Retry-After`` header asks (capped at ``max_wait``), otherwise
exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff
and Jitter", 2015; tenacity's ``wait_random_exponential``).

Secrets and server text
-----------------------
The base URL arrives parsed (:class:`attrib.urls.BaseURL`): requests are joined to
its root and carry its query; only its shown form (no query values) is kept in
:attr:`Transport.endpoint`. Every answer is decoded and then loses the API key and
the query's values, with their encoded forms (:class:`.redaction.Secrets`), before
anything reads it, so no reflected secret reaches outputs, records, caches or
messages; messages also lose key-like strings, escape sequences and control characters.

Replicas
--------
Several base URLs are replicas of one model (:mod:`.replicas`): each attempt goes to
the replica with the fewest attempts in flight; a retried failure marks its replica
down for a while and the retry goes to another one at once. The attempts of one
request count against ``max_retries`` whichever replicas they went to.

The SQLite :class:`~attrib.cache.store.ResponseCache` here holds endpoint metadata only
(probe verdicts, tokenizer-route answers); completions and
chat answers are cached by :class:`~attrib.cache.wrapper.CachingBackend` around the backend.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
import openai
import tenacity

from attrib.cache.store import ResponseCache, request_key
from attrib.errors import EndpointError
from attrib.urls import BaseURL

from .redaction import Secrets, clean, scrub
from .replicas import Replica, Replicas
from .statuses import EXCEPTION_KINDS, MALFORMED, NOT_JSON, rule_for, says_unsupported

__all__ = ["Transport", "Usage", "retry_after"]

log = logging.getLogger(__name__)

T = TypeVar("T")


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
        self.replica: Replica | None = None  # where the attempt went


def _retryable(error: BaseException) -> bool:
    return isinstance(error, _Fault) and error.rule.retryable


class _RetryAfterOrBackoff(tenacity.wait.wait_base):
    """Wait what the server's ``Retry-After`` asks (capped), else exponential backoff with full jitter;
    no wait when the failed attempt's replica has another one up (the retry goes there)."""

    def __init__(self, initial: float, maximum: float, replicas: Replicas) -> None:
        self.backoff = tenacity.wait_random_exponential(multiplier=initial, max=maximum)
        self.maximum = maximum
        self.replicas = replicas

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, _Fault) and error.replica is not None and self.replicas.another_up(error.replica):
            return 0.0
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


def _json_object(response: _Response, secrets: Secrets) -> dict[str, Any]:
    """The 2xx body as a JSON object without ``secrets``, or a :class:`_Fault` saying what it is
    instead (quoting the body only after the secrets are out, so no cut leaves part of one)."""
    text = response.text
    quoted = secrets.scrub(text.lstrip()[:1000])[:60]
    kind = response.headers.get("content-type", "").split(";")[0].strip() or "no content type"
    if text.lstrip().startswith("<"):
        raise _Fault(NOT_JSON, f"{kind}, starting {quoted!r}")
    try:
        data = json.loads(text)
    except ValueError:
        if "json" in kind:
            raise _Fault(MALFORMED, f"invalid JSON of {len(text)} characters") from None
        raise _Fault(NOT_JSON, f"{kind}, starting {quoted!r}") from None
    if not isinstance(data, dict):
        raise _Fault(MALFORMED, f"JSON {type(data).__name__}, not an object")
    return secrets.scrub_json(data) if secrets else data


#: Loggers of the HTTP client and the SDK that write request URLs (with the base URL's query).
_CLIENT_LOGGERS = ("httpx", "httpx2", "openai", "openai._base_client")


class _LogScrubber(logging.Filter):
    """Removes one transport's secrets from the HTTP client's and the SDK's log records
    (they log each request's URL, query included). Runs only for records that are emitted."""

    def __init__(self, secrets: Secrets) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self.secrets.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


class _Unsupported(Exception):
    """A probe's answer said the probed feature is not offered."""


class Transport:
    """The HTTP side of one endpoint: client, retries, concurrency cap, metadata cache, counters.

    Args:
        base_url: the API root including ``/v1`` (a string is parsed by :meth:`BaseURL.parse
            <attrib.urls.BaseURL.parse>`, which refuses user-info), or several: replicas of
            one model (:mod:`.replicas`).
        api_key: the key, or ``""`` (sent as ``"none"``: local servers accept any).
        timeout: seconds per attempt.
        max_retries: retries after the first attempt (on any replicas).
        max_wait: longest single wait between attempts, seconds (caps ``Retry-After``);
            also the longest a replica is marked down.
        concurrency: requests in flight at once, per replica.
        cache: where endpoint metadata is kept, or ``None``.
        routing: how attempts are spread over replicas (:data:`.replicas.ROUTINGS`).

    The defaults of the limits are the backend's (:class:`~attrib.backends.openai.OpenAIBackend`),
    which always passes them.

    Attributes:
        endpoint: the base URL's shown form (no query values), safe to record; with several
            replicas, all of theirs, sorted and comma-separated.
        replicas: the replicas and their state.
        usage: the counters so far.
    """

    def __init__(
        self,
        base_url: BaseURL | str | Sequence[BaseURL | str],
        api_key: str,
        *,
        timeout: float,
        max_retries: int,
        max_wait: float,
        concurrency: int,
        cache: ResponseCache | None = None,
        routing: str = "least_outstanding",
    ) -> None:
        given = [base_url] if isinstance(base_url, BaseURL | str) else list(base_url)
        bases = [b if isinstance(b, BaseURL) else BaseURL.parse(b) for b in given]
        self.replicas = Replicas(bases, routing=routing, max_down=max(max_wait, 1.0))
        base = bases[0]
        self.base_url = base.root
        self.api_key = api_key
        self.secrets = Secrets((api_key, *(secret for b in bases for secret in b.secrets)))
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.concurrency = concurrency
        self.cache = cache
        self.usage = Usage()
        self.endpoint = self.replicas.shown
        self.root = re.sub(r"/v1$", "", self.base_url)
        self._runner = asyncio.Runner()
        self._lock = threading.Lock()
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=api_key or "none", max_retries=0, timeout=timeout
        )
        self._slots: asyncio.Semaphore | None = None
        self._log_scrubber = _LogScrubber(self.secrets)
        if self.secrets:
            for name in _CLIENT_LOGGERS:
                logging.getLogger(name).addFilter(self._log_scrubber)

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
            for name in _CLIENT_LOGGERS:
                logging.getLogger(name).removeFilter(self._log_scrubber)
            if self.cache is not None:
                self.cache.close()

    # ---------------------------------------------------------------- messages

    def scrub(self, text: str) -> str:
        """``text`` without the key, the base URL's query values (and their encodings) or key-like strings."""
        return scrub(text, secrets=self.secrets)

    def _error(self, fault: _Fault, where: str, what: str | None, attempts: int) -> EndpointError:
        rule = fault.rule
        status = fault.failure if isinstance(fault.failure, int) else None
        kind = f"HTTP {status}" if status is not None else fault.failure
        detail = self.scrub(clean(self.scrub(fault.detail)))  # before the cut to one line, and after
        said = f"{kind}: {detail}" if detail else kind
        subject = f"{where} ({what})" if what else where
        if rule.retryable and attempts > 1:
            message = f"{subject} kept failing after {attempts} attempts; it {rule.meaning} ({said})"
        else:
            message = f"{subject} {rule.meaning} ({said})"
        return rule.error(message + (f"; {rule.fix}" if rule.fix else ""), status=status)

    # ---------------------------------------------------------------- requests

    def url(self, path: str, *, root: bool = False, replica: Replica | None = None) -> str:
        """The full URL of ``path`` under the API root (``/v1``) or, with ``root``, the server root,
        of ``replica`` (default: the first), without the base URL's query (safe to show)."""
        if replica is None:
            return (self.root if root else self.base_url) + path
        return (replica.root if root else replica.base.root) + path

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
        return _json_object(response, self.secrets)

    async def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        root: bool,
        what: str | None,
        retries: int | None,
        model_call: str | None,
        unsupported: Sequence[str] | None,
    ) -> dict[str, Any]:
        where = f"{method} {self.url(path, root=root)}"  # no user-info, no query

        def count(state: tenacity.RetryCallState) -> None:
            self.usage.retries += 1
            log.info("retrying %s (attempt %d failed)", where, state.attempt_number)

        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(_retryable),
            wait=_RetryAfterOrBackoff(initial=0.5, maximum=self.max_wait, replicas=self.replicas),
            stop=tenacity.stop_after_attempt((self.max_retries if retries is None else retries) + 1),
            before_sleep=count,
            reraise=True,
        )
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency * len(self.replicas))
        attempts = 0
        data: dict[str, Any] = {}
        try:
            async with self._slots:
                async for attempt in retrying:
                    with attempt:
                        attempts = attempt.retry_state.attempt_number
                        replica = self.replicas.pick()
                        where = f"{method} {self.url(path, root=root, replica=replica)}"
                        data = await self._on(replica, method, path, body, root=root, model_call=model_call)
        except _Fault as fault:
            if unsupported is not None and says_unsupported(fault.failure, fault.detail, unsupported):
                log.info("%s says it does not support this (%s)", where, fault.failure)
                raise _Unsupported(where) from None
            raise self._error(fault, where, what, attempts) from None
        if model_call:
            self.usage.requests += 1
            reported = data.get("usage", data.get("meta_info"))  # OpenAI's usage, SGLang's meta_info
            usage: Mapping[str, Any] = reported if isinstance(reported, dict) else {}
            self.usage.prompt_tokens += _count(usage, "prompt_tokens")
            self.usage.completion_tokens += _count(usage, "completion_tokens")
        return data

    async def _on(
        self,
        replica: Replica,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        root: bool,
        model_call: str | None,
    ) -> dict[str, Any]:
        """One attempt on ``replica``, counted in its outstanding requests; a retried failure marks it down.
        A model call's answer must hold the field ``model_call`` names (a non-empty list of ``choices``)."""
        url = replica.base.join(path, root=replica.root if root else None)
        replica.outstanding += 1
        try:
            data = await self._attempt(method, url, body)
            if model_call == "choices" and not (isinstance(data.get("choices"), list) and data["choices"]):
                raise _Fault(MALFORMED, "an answer without choices")
            if model_call is not None and not data.get(model_call):
                raise _Fault(MALFORMED, f"an answer without {model_call}")
        except _Fault as fault:
            fault.replica = replica
            if fault.rule.retryable:
                down = self.replicas.failed(replica, wait=fault.wait)
                if len(self.replicas) > 1:
                    log.warning("replica %s failed (%s); not used for %.0f s", replica.shown, fault.failure, down)
            else:
                self.replicas.succeeded(replica)  # it answered: a refusal is the request's fault
            raise
        finally:
            replica.outstanding -= 1
        self.replicas.succeeded(replica)
        return data

    async def each(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any] | EndpointError]:
        """The same request sent to every replica (in the order given), e.g. to compare their model listings:
        each replica's answer, or the :class:`~attrib.errors.EndpointError` it ended with (as :meth:`call`'s)."""

        async def one(replica: Replica) -> dict[str, Any]:
            where = f"{method} {self.url(path, replica=replica)}"
            attempts = 0
            retrying = tenacity.AsyncRetrying(
                retry=tenacity.retry_if_exception(_retryable),
                wait=_RetryAfterOrBackoff(initial=0.5, maximum=self.max_wait, replicas=Replicas([replica.base])),
                stop=tenacity.stop_after_attempt(self.max_retries + 1),
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        attempts = attempt.retry_state.attempt_number
                        url = replica.base.join(path)
                        return await self._attempt(method, url, body)
            except _Fault as fault:
                raise self._error(fault, where, None, attempts) from None
            raise AssertionError("unreachable")  # pragma: no cover - tenacity returns or raises

        async def caught(replica: Replica) -> dict[str, Any] | EndpointError:
            try:
                return await one(replica)
            except EndpointError as error:
                return error

        return list(await asyncio.gather(*(caught(r) for r in self.replicas.all)))

    async def model_call(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        what: str | None = None,
        root: bool = False,
        holding: str = "choices",
    ) -> dict[str, Any]:
        """POST a model request (``path`` under ``/v1``, or the server root with ``root``); the answer
        must hold ``holding`` (completions and chat: ``choices``; SGLang's ``/generate``: ``meta_info``).

        Returns:
            The answer as a JSON object.

        Raises:
            EndpointError: the subclass :data:`STATUS_RULES` names, once an attempt's failure
                is not retryable or ``max_retries`` retries have failed.
        """
        return await self._send(
            "POST", path, body, root=root, what=what, retries=None, model_call=holding, unsupported=None
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
        holding: str | None = "choices",
    ) -> dict[str, Any] | None:
        """POST a probe: the answer, or ``None`` when the endpoint answers that it does not offer this.

        ``None`` only for a refusal that says so (:func:`says_unsupported`: a missing route,
        or a 400/422 naming one of ``names``); every other failure raises once retries are
        spent, so a flaky endpoint never looks like a less capable one. A 2xx answer must hold
        ``holding`` (``None``: anything; routes at the server root are never checked).

        Raises:
            EndpointError: as :meth:`model_call`.
        """
        try:
            return await self._send(
                "POST",
                path,
                body,
                root=root,
                what=what,
                retries=retries,
                model_call=None if root else holding,
                unsupported=names,
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
            method, path, body, root=root, what=None, retries=retries, model_call=None, unsupported=None
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

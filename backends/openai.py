"""OpenAI-compatible HTTP endpoints: OpenAI, vLLM, llama.cpp's server, llama-cpp-python's server, Ollama.

Everything goes through the official ``openai`` SDK (async client, its own
retries off) with tenacity retrying what is worth retrying, a concurrency cap,
and a persistent SQLite cache of responses (:mod:`attrib.cache`).

The scoring ladder
------------------
How a fixed output can be scored depends on what the endpoint offers. The backend
probes once, from the most exact rung down, and records the rung in every result
(``backend["scoring"]``):

``forced``
    ``/v1/completions`` with ``echo=True, logprobs=0, max_tokens=1`` returns the
    log-probability of every prompt token, so sending ``prompt + output`` scores
    the output by forced decoding, exactly as the local backend does (nats, per
    output token). llama-cpp-python's server and vLLM offer it. The echoed tokens
    that fall inside the output are checked against the output's own tokens, and
    any difference in number or text raises :class:`ResponseMismatchError`
    (servers have shipped off-by-one bugs here).
``top_logprobs``
    Chat completions with ``logprobs``/``top_logprobs`` (OpenAI). The output is
    regenerated greedily under each perturbed prompt and the original tokens are
    read from the returned distributions after aligning the two outputs; see
    :mod:`attrib.regeneration` for the bounds used when a token is absent.
``text``
    No log-probabilities at all: the regenerated text is compared with the
    original and each output token scores the share of it that was lost. Results
    say ``score_kind = "text-similarity"``; these are not nats.

Tokenization
------------
Units must come from the model's own tokenizer or from words, never from a
mismatched tokenizer. llama-cpp-python's server exposes ``/extras/tokenize`` and
``/extras/detokenize``, used when present (``backend["tokenizer"] = "server"``).
Otherwise the prompt is split into words (``"words"``) and the finest level is
the word. Token ids in this backend are local indices of token texts; only the
texts are ever sent.

Retries, errors and secrets
---------------------------
429, 5xx, timeouts, dropped connections and malformed JSON are retried with
exponential backoff and full jitter (AWS Architecture Blog, "Exponential Backoff
and Jitter", 2015), waiting what a ``Retry-After`` header asks when there is one.
401/403 raise :class:`AuthenticationError` and 400/404/422
:class:`RequestRejectedError` at once. The API key is read from the argument or
``OPENAI_API_KEY``, is removed from every error message, and never enters the
cache, results, logs or reports; credentials in the URL are stripped too.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import openai
import tenacity

from attrib.backend import Backend, Capabilities, Generation, Messages, ScoreRequest, ScoreResult, prefix_sharing_order
from attrib.cache import ResponseCache, request_key
from attrib.errors import (
    AuthenticationError,
    EndpointUnavailableError,
    InputError,
    ModelNotFoundError,
    RequestRejectedError,
    ResponseMismatchError,
    TokenizationError,
    UnknownNameError,
)
from attrib.regeneration import GeneratedToken, score_from_top_logprobs, text_retention
from attrib.segmentation import Tokenization

__all__ = ["OpenAIBackend", "SCORING_MODES", "redact_url"]

log = logging.getLogger(__name__)

#: The rungs of the scoring ladder, most exact first.
SCORING_MODES: tuple[str, ...] = ("forced", "top_logprobs", "text")

_PROBE_TEXT = "The capital of France is Paris"
_WORD = re.compile(r"\s*\S+|\s+$")
_KEY_LIKE = re.compile(r"\b(sk|key|tok)-[A-Za-z0-9_\-*.]{4,}")


def redact_url(url: str) -> str:
    """``url`` without user name, password, query or fragment (safe to record and log)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


class _MalformedResponse(Exception):
    """The endpoint answered 2xx with a body that is not the JSON we asked for."""


@dataclass
class _Usage:
    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    bounded_tokens: int = 0


class _RetryAfterOrBackoff(tenacity.wait.wait_base):
    """Wait what the server's ``Retry-After`` asks (capped), else exponential backoff with jitter."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.backoff = tenacity.wait_random_exponential(multiplier=initial, max=maximum)
        self.maximum = maximum

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        asked = _retry_after(error)
        if asked is not None:
            return min(asked, self.maximum)
        return float(self.backoff(retry_state))


def _retry_after(error: BaseException | None) -> float | None:
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after")
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


def _retryable(error: BaseException) -> bool:
    if isinstance(error, (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError)):
        return True  # APITimeoutError is an APIConnectionError
    if isinstance(error, openai.APIStatusError):
        return error.status_code in (408, 409, 425, 429) or error.status_code >= 500
    return isinstance(error, _MalformedResponse)


class OpenAIBackend(Backend):
    """A model behind an OpenAI-compatible HTTP API.

    Args:
        model: the model name the endpoint serves; ``None`` takes the only one
            ``/v1/models`` lists.
        base_url: the API root including ``/v1`` (default ``$OPENAI_BASE_URL`` or OpenAI's).
        api_key: the key (default ``$OPENAI_API_KEY``; local servers accept any).
        scoring: ``"auto"`` (probe the ladder), or force ``"forced"``,
            ``"top_logprobs"`` or ``"text"``.
        concurrency: requests in flight at once.
        top_logprobs: alternatives requested per position in ``top_logprobs`` mode (<= 20).
        timeout: seconds per request attempt.
        max_retries: retries per request after the first attempt.
        max_wait: longest single wait between attempts, seconds (caps ``Retry-After``).
        cache: ``True`` for the default cache directory, ``False``/``None`` for no
            cache, a directory path, or a :class:`~attrib.cache.ResponseCache`.
        tokenizer: ``"auto"`` (the server's if it has one, else words), ``"server"``
            (fail if there is none) or ``"words"``.
        context_length: the model's context in tokens if known (used for the
            up-front check); the server enforces its own limit anyway.

    Raises:
        UnknownNameError: for an unknown ``scoring`` or ``tokenizer`` value.
        InputError: for a bad ``concurrency``, ``top_logprobs`` or ``max_retries``.
    """

    name = "openai"
    exposes_token_ids = False

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        scoring: str = "auto",
        concurrency: int = 4,
        top_logprobs: int = 20,
        timeout: float = 120.0,
        max_retries: int = 8,
        max_wait: float = 60.0,
        cache: bool | str | os.PathLike[str] | ResponseCache | None = True,
        tokenizer: str = "auto",
        context_length: int | None = None,
    ) -> None:
        if scoring != "auto" and scoring not in SCORING_MODES:
            raise UnknownNameError.for_choice("scoring mode", scoring, ("auto", *SCORING_MODES))
        if tokenizer not in ("auto", "server", "words"):
            raise UnknownNameError.for_choice("tokenizer", tokenizer, ("auto", "server", "words"))
        if concurrency < 1:
            raise InputError(f"concurrency must be at least 1, got {concurrency}")
        if not 1 <= top_logprobs <= 20:
            raise InputError(f"top_logprobs must be between 1 and 20, got {top_logprobs}")
        if max_retries < 0:
            raise InputError(f"max_retries must be 0 or more, got {max_retries}")
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        self.endpoint = redact_url(self.base_url)
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self._secret = key or ""
        self._requested_model = model
        self.concurrency = concurrency
        self.top_logprobs = top_logprobs
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_wait = max_wait
        self._tokenizer_option = tokenizer
        self._context_length = context_length

        if isinstance(cache, ResponseCache):
            self.cache: ResponseCache | None = cache
        elif cache is True:
            self.cache = ResponseCache()
        elif cache in (False, None):
            self.cache = None
        else:
            self.cache = ResponseCache(cache)  # type: ignore[arg-type]

        self.usage = _Usage()
        self._runner = asyncio.Runner()
        self._lock = threading.Lock()
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=key or "none", max_retries=0, timeout=timeout
        )
        self._semaphore: asyncio.Semaphore | None = None
        self._model_name: str | None = model
        self._scoring: str | None = None if scoring == "auto" else scoring
        self._tokenizer: str | None = None if tokenizer == "auto" else tokenizer
        self._strings: list[str] = []
        self._ids: dict[str, int] = {}
        self._server_pieces: dict[int, str] = {}
        self._bos: tuple[int, ...] = ()

    # ------------------------------------------------------------------ identity

    @property
    def model(self) -> str:
        """The served model's name (asked from ``/v1/models`` if not given)."""
        if self._model_name is None:
            self._model_name = self._run(self._discover_model())
        return self._model_name

    def _ready(self) -> str:
        """Resolve, outside the event loop, everything the async code reads: model, tokenizer, rung."""
        self._tokenizer_in_use()
        return self.scoring

    @property
    def context_length(self) -> int:
        """The context given at construction, or a large number (the server checks its own)."""
        return self._context_length or 1_000_000

    @property
    def scoring(self) -> str:
        """The scoring rung in use: ``"forced"``, ``"top_logprobs"`` or ``"text"`` (probed once)."""
        if self._scoring is None:
            self._tokenizer_in_use()
            self._scoring = self._run(self._probe_scoring())
        return self._scoring

    @property
    def score_kind(self) -> str:
        return "text-similarity" if self.scoring == "text" else "logprob"

    @property
    def has_tokenizer(self) -> bool:
        """True when units come from the model's own tokenizer (the server's endpoint)."""
        return self._tokenizer_in_use() == "server"

    @property
    def supports_target(self) -> bool:
        """Only forced scoring can score an output the model did not generate itself."""
        return self.scoring == "forced"

    def capabilities(self) -> Capabilities:
        return Capabilities(
            score_kind="text-similarity" if self.scoring == "text" else "logprob",
            supports_target=self.supports_target,
            exposes_token_ids=False,
            has_tokenizer=self.has_tokenizer,
        )

    def ids_of_pieces(self, pieces: Sequence[str]) -> tuple[int, ...]:
        return tuple(self._intern(str(p)) for p in pieces)

    def describe(self) -> dict[str, object]:
        info: dict[str, object] = {
            "name": self.name,
            "model": self.model,
            "endpoint": self.endpoint,
            "scoring": self.scoring,
            "score_kind": self.score_kind,
            "tokenizer": self._tokenizer_in_use(),
            "concurrency": self.concurrency,
            "context_length": self._context_length,
        }
        if self.scoring == "top_logprobs":
            info["top_logprobs"] = self.top_logprobs
        return info

    def usage_snapshot(self) -> dict[str, int]:
        """Counters so far: requests sent, cache hits, retries, prompt/completion tokens, bounded tokens."""
        return dict(vars(self.usage))

    # ------------------------------------------------------------------ tokens

    def _intern(self, text: str) -> int:
        index = self._ids.get(text)
        if index is None:
            index = len(self._strings)
            self._strings.append(text)
            self._ids[text] = index
        return index

    def detokenize(self, ids: Sequence[int]) -> str:
        return "".join(self._strings[int(i)] for i in ids)

    def token_text(self, ids: Sequence[int]) -> list[str]:
        return [self._strings[int(i)] for i in ids]

    def tokenize(self, text: str) -> Tokenization:
        """Split ``text`` by the server's tokenizer, or into words when there is none.

        Raises:
            TokenizationError: if the server's tokens do not reproduce the text.
        """
        if self._tokenizer_in_use() == "server" and text:
            try:
                pieces = self._run(self._server_tokenize(text))
            except (TokenizationError, EndpointUnavailableError) as error:
                if self._tokenizer_option == "server":
                    raise
                warnings.warn(f"{error}; units of this text are words instead of tokens", stacklevel=2)
                pieces = _WORD.findall(text)
        else:
            pieces = _WORD.findall(text)
        ids = [self._intern(piece) for piece in pieces]
        return Tokenization.from_pieces(text, ids, [piece.encode("utf-8") for piece in pieces])

    def tokenize_markup(self, text: str) -> tuple[int, ...]:
        """Chat-template text as local ids (never sent: chat rungs send messages, and the
        ``forced`` rung sends the rendered text, which the server tokenizes itself)."""
        return tuple(self._intern(piece) for piece in _WORD.findall(text))

    def _tokenizer_in_use(self) -> str:
        if self._tokenizer is None:
            self.model  # noqa: B018 - resolve the model name before entering the loop
            self._tokenizer = self._run(self._probe_tokenizer())
        return self._tokenizer

    @property
    def _root(self) -> str:
        return re.sub(r"/v1$", "", self.base_url)

    async def _probe_tokenizer(self) -> str:
        if self._tokenizer_option == "words":
            return "words"
        try:
            reply = await self._post_root("/extras/tokenize", {"input": "a b", "model": self._requested_model})
        except (RequestRejectedError, EndpointUnavailableError, ModelNotFoundError):
            reply = None
        if not isinstance(reply, dict) or not isinstance(reply.get("tokens"), list):
            if self._tokenizer_option == "server":
                raise RequestRejectedError(
                    f"{self.endpoint} has no tokenizer endpoint (/extras/tokenize); use tokenizer='words'"
                )
            return "words"
        empty = await self._post_root("/extras/tokenize", {"input": "", "model": self._requested_model})
        self._bos = tuple(int(t) for t in empty.get("tokens", []))
        return "server"

    async def _server_tokenize(self, text: str) -> list[str]:
        reply = await self._post_root("/extras/tokenize", {"input": text, "model": self._requested_model})
        ids = [int(t) for t in reply["tokens"]]
        if self._bos and tuple(ids[: len(self._bos)]) == self._bos:
            ids = ids[len(self._bos) :]
        missing = sorted(set(ids) - set(self._server_pieces))

        async def piece(token: int) -> None:
            answer = await self._post_root("/extras/detokenize", {"tokens": [token], "model": self._requested_model})
            self._server_pieces[token] = str(answer["text"])

        try:
            await asyncio.gather(*(piece(t) for t in missing))
        except EndpointUnavailableError as error:
            raise TokenizationError(f"the server could not detokenize a token on its own ({error})") from None
        pieces = [self._server_pieces[t] for t in ids]
        if "".join(pieces) != text:
            raise TokenizationError(
                "the server's tokens do not reproduce the text (a token holds part of a character, "
                "or the text contains special-token syntax)"
            )
        return pieces

    # ------------------------------------------------------------------ transport

    def _run(self, coroutine: Any) -> Any:
        with self._lock:
            return self._runner.run(coroutine)

    def _scrub(self, message: str) -> str:
        if self._secret:
            message = message.replace(self._secret, "[redacted]")
        message = _KEY_LIKE.sub("[redacted]", message)
        return message.replace(self.base_url, self.endpoint)

    def _fail(self, error: BaseException, what: str, attempts: int) -> Exception:
        """The typed, scrubbed, one-line error for a request that will not be retried further."""
        status = getattr(error, "status_code", None)
        detail = self._scrub(" ".join(str(getattr(error, "message", None) or error).split()))[:300]
        where = f"{what} at {self.endpoint}"
        if status in (401, 403):
            return AuthenticationError(
                f"{where} refused the API key (HTTP {status}); set OPENAI_API_KEY or pass api_key", status=status
            )
        if status == 404:
            if "model" in detail.lower():
                return ModelNotFoundError(f"{where}: model {self._requested_model!r} not found ({detail})")
            return RequestRejectedError(f"{where} does not exist (HTTP 404): {detail}", status=status)
        if status in (400, 405, 413, 415, 422):
            return RequestRejectedError(f"{where} rejected the request (HTTP {status}): {detail}", status=status)
        kind = f"HTTP {status}" if status else type(error).__name__
        if attempts == 1:
            return EndpointUnavailableError(f"{where} failed ({kind}: {detail})", status=status)
        return EndpointUnavailableError(
            f"{where} kept failing after {attempts} attempts ({kind}: {detail}); "
            "check the server or raise --max-retries",
            status=status,
        )

    async def _with_retries(self, what: str, send: Callable[[], Any], *, retries: int | None = None) -> Any:
        def count(_: tenacity.RetryCallState) -> None:
            self.usage.retries += 1
            log.info("retrying %s at %s", what, self.endpoint)

        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(_retryable),
            wait=_RetryAfterOrBackoff(initial=0.5, maximum=self.max_wait),
            stop=tenacity.stop_after_attempt((self.max_retries if retries is None else retries) + 1),
            before_sleep=count,
            reraise=True,
        )
        attempts = 0
        try:
            async for attempt in retrying:
                attempts = attempt.retry_state.attempt_number
                with attempt:
                    return await send()
        except (openai.APIError, _MalformedResponse) as error:
            raise self._fail(error, what, attempts) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post_root(self, path: str, body: dict[str, Any]) -> Any:
        """POST to a route under the server root (the tokenizer endpoints), cached, with retries."""
        body = {k: v for k, v in body.items() if v is not None}
        key = request_key(kind=self.name, endpoint=self.endpoint, route=path, body=body)
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            return cached

        async def send() -> Any:
            try:
                return await self._client.post(self._root + path, body=body, cast_to=object)
            except ValueError as error:
                raise _MalformedResponse(f"{path} answered with invalid JSON") from error

        # Tokenizer routes fail deterministically (e.g. a token that is not valid UTF-8
        # on its own), so they get only two retries.
        reply = await self._with_retries(path, send, retries=min(2, self.max_retries))
        self._store(key, reply)
        return reply

    async def _model_request(
        self,
        route: str,
        params: dict[str, Any],
        *,
        sample: int = 0,
        check: Callable[[dict[str, Any]], object] | None = None,
    ) -> dict[str, Any]:
        """One completions (``route="completions"``) or chat (``"chat"``) request.

        Answered from the cache when possible; otherwise sent under the concurrency
        cap with retries, checked with ``check`` (which raises on a bad answer) and
        only then stored, so a bad answer is never cached.

        Returns:
            The response body as a dict.
        """
        params = {"model": self._model_name, **params}
        key = request_key(kind=self.name, endpoint=self.endpoint, route=route, body=params, sample=sample)
        if self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                self.usage.cache_hits += 1
                return cached
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        api = self._client.completions if route == "completions" else self._client.chat.completions
        path = "/v1/completions" if route == "completions" else "/v1/chat/completions"

        async def send() -> dict[str, Any]:
            raw = await api.with_raw_response.create(**params)
            try:
                data = json.loads(raw.text)
            except ValueError as error:
                raise _MalformedResponse(f"{path} answered with invalid JSON") from error
            if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
                raise _MalformedResponse(f"{path} answered without choices")
            return data

        async with self._semaphore:
            data = await self._with_retries(path, send)
        self.usage.requests += 1
        usage = data.get("usage") or {}
        self.usage.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.usage.completion_tokens += int(usage.get("completion_tokens") or 0)
        if check is not None:
            check(data)
        self._store(key, data)
        return data

    def _store(self, key: str, value: Any) -> None:
        if self.cache is None:
            return
        if self._secret and len(self._secret) >= 8 and self._secret in json.dumps(value):
            log.warning("not caching a response that contains the API key")
            return
        self.cache.put(key, value)

    async def _discover_model(self) -> str:
        async def send() -> Any:
            return await self._client.models.list()

        page = await self._with_retries("/v1/models", send)
        names = [m.id for m in page.data]
        if len(names) == 1:
            return names[0]
        listed = ", ".join(names[:10]) or "none"
        raise InputError(f"the endpoint serves {len(names)} models ({listed}); choose one with --model")

    # ------------------------------------------------------------------ probing

    async def _probe_scoring(self) -> str:
        """The most exact rung the endpoint supports, probed once per endpoint and model.

        The verdict is cached with the responses, so later runs (and later processes)
        send no probe at all, not even the failing ones.
        """
        key = request_key(kind=self.name, endpoint=self.endpoint, route="probe", body={"model": self._model_name})
        known = self.cache.get(key) if self.cache is not None else None
        if isinstance(known, dict) and known.get("scoring") in SCORING_MODES:
            return str(known["scoring"])
        mode = await self._probe_ladder()
        self._store(key, {"scoring": mode})
        return mode

    async def _probe_ladder(self) -> str:
        try:
            data = await self._model_request("completions", self._forced_params(_PROBE_TEXT))
            logprobs = data["choices"][0].get("logprobs") or {}
            values = [v for v in logprobs.get("token_logprobs") or [] if v is not None]
            if len(values) >= 2 and len(logprobs.get("text_offset") or []) == len(logprobs["token_logprobs"]):
                return "forced"
        except (RequestRejectedError, EndpointUnavailableError, ModelNotFoundError, KeyError, TypeError):
            pass
        data = await self._model_request("chat", self._chat_params(_PROBE_TEXT, 2, logprobs=True))
        content = (data["choices"][0].get("logprobs") or {}).get("content")
        if content:
            return "top_logprobs"
        return "text"

    def _forced_params(self, text: str) -> dict[str, Any]:
        return {"prompt": text, "max_tokens": 1, "temperature": 0.0, "logprobs": 0, "echo": True}

    def _chat_params(
        self, text: str, max_tokens: int, *, logprobs: bool, messages: Messages | None = None
    ) -> dict[str, Any]:
        """Chat parameters: ``messages`` as given, or the plain prompt as one user message.

        A coalition with no message at all is sent as one empty user message (the API
        needs at least one)."""
        if messages is None:
            chat = [{"role": "user", "content": text}]
        else:
            chat = [{"role": role, "content": content} for role, content in messages] or [
                {"role": "user", "content": ""}
            ]
        params: dict[str, Any] = {
            "messages": chat,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "seed": 0,
        }
        if logprobs:
            params.update(logprobs=True, top_logprobs=self.top_logprobs)
        return params

    # ------------------------------------------------------------------ generation

    def generate(
        self, prompt_ids: Sequence[int], *, max_new_tokens: int, messages: Messages | None = None
    ) -> Generation:
        """Greedy output for the prompt: completions in ``forced`` mode, chat otherwise."""
        text = self.detokenize(prompt_ids)
        self._ready()
        tokens, evaluated = self._run(self._generate(text, max_new_tokens, messages))
        return Generation(ids=tuple(self._intern(t) for t in tokens), tokens_evaluated=evaluated)

    async def _generate(self, text: str, max_new_tokens: int, messages: Messages | None) -> tuple[list[str], int]:
        mode = self._scoring
        if mode == "forced":
            params = {"prompt": text, "max_tokens": max_new_tokens, "temperature": 0.0, "logprobs": 0, "seed": 0}
            data = await self._model_request("completions", params)
            choice = data["choices"][0]
            output = str(choice.get("text") or "")
            tokens = list((choice.get("logprobs") or {}).get("tokens") or [])
        else:
            params = self._chat_params(text, max_new_tokens, logprobs=mode == "top_logprobs", messages=messages)
            data = await self._model_request("chat", params)
            choice = data["choices"][0]
            output = str((choice.get("message") or {}).get("content") or "")
            tokens = [str(t["token"]) for t in (choice.get("logprobs") or {}).get("content") or []]
        if "".join(tokens) != output:
            tokens = await self._split(output)
        usage = data.get("usage") or {}
        evaluated = int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
        return tokens, evaluated

    async def _split(self, text: str) -> list[str]:
        if not text:
            return []
        if self._tokenizer == "server":
            return await self._server_tokenize(text)
        return _WORD.findall(text)

    # ------------------------------------------------------------------ scoring

    def score(
        self,
        requests: Sequence[ScoreRequest],
        *,
        on_result: Callable[[int, ScoreResult], None] | None = None,
    ) -> list[ScoreResult]:
        """Score each request's continuation by the endpoint's rung of the ladder.

        Returns:
            One :class:`ScoreResult` per request, in order. Log-probabilities are nats
            (``forced``: exact forced decoding; ``top_logprobs``: estimates, see
            :mod:`attrib.regeneration`); in ``text`` mode they are retention scores in [-1, 0].

        Raises:
            ResponseMismatchError: if echoed tokens do not match the continuation.
            EndpointError: if a request is refused, or keeps failing after all retries.
        """
        mode = self._ready()
        texts = [r.prompt_text if r.prompt_text is not None else self.detokenize(r.prompt_ids) for r in requests]
        order = prefix_sharing_order([t.encode("utf-8") for t in texts])
        results: list[ScoreResult | None] = [None] * len(requests)

        async def one(index: int) -> None:
            request = requests[index]
            continuation = self.token_text(request.continuation_ids)
            if mode == "forced":
                result = await self._score_forced(texts[index], continuation, request.sample)
            elif mode == "top_logprobs":
                result = await self._score_regenerated(texts[index], continuation, request.sample, request.messages)
            else:
                result = await self._score_text(texts[index], continuation, request.sample, request.messages)
            results[index] = result
            if on_result is not None:
                on_result(index, result)

        async def run_all() -> None:
            tasks = [asyncio.ensure_future(one(i)) for i in order]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

        self._run(run_all())
        return [r for r in results if r is not None]

    async def _score_forced(self, prompt: str, continuation: list[str], sample: int) -> ScoreResult:
        params = self._forced_params(prompt + "".join(continuation))
        data = await self._model_request(
            "completions", params, sample=sample, check=lambda d: _echoed_continuation(d, prompt, continuation)
        )
        logprobs = _echoed_continuation(data, prompt, continuation)
        usage = data.get("usage") or {}
        return ScoreResult(logprobs=logprobs, tokens_evaluated=int(usage.get("prompt_tokens") or 0))

    async def _score_regenerated(
        self, prompt: str, continuation: list[str], sample: int, messages: Messages | None
    ) -> ScoreResult:
        params = self._chat_params(prompt, _regeneration_length(len(continuation)), logprobs=True, messages=messages)
        data = await self._model_request("chat", params, sample=sample, check=self._check_chat_logprobs)
        content = data["choices"][0]["logprobs"]["content"]
        regenerated = [
            GeneratedToken(
                text=str(t["token"]),
                logprob=float(t["logprob"]),
                top={str(a["token"]): float(a["logprob"]) for a in t.get("top_logprobs") or []},
            )
            for t in content
        ]
        estimate = score_from_top_logprobs(continuation, regenerated)
        self.usage.bounded_tokens += int(estimate.bounded.sum())
        usage = data.get("usage") or {}
        return ScoreResult(logprobs=estimate.logprobs, tokens_evaluated=int(usage.get("prompt_tokens") or 0))

    async def _score_text(
        self, prompt: str, continuation: list[str], sample: int, messages: Messages | None
    ) -> ScoreResult:
        params = self._chat_params(prompt, _regeneration_length(len(continuation)), logprobs=False, messages=messages)
        data = await self._model_request("chat", params, sample=sample)
        output = str((data["choices"][0].get("message") or {}).get("content") or "")
        usage = data.get("usage") or {}
        return ScoreResult(
            logprobs=text_retention(continuation, output), tokens_evaluated=int(usage.get("prompt_tokens") or 0)
        )

    def _check_chat_logprobs(self, data: dict[str, Any]) -> None:
        content = (data["choices"][0].get("logprobs") or {}).get("content")
        if not isinstance(content, list):
            raise ResponseMismatchError(f"{self.endpoint} returned no logprobs for a chat request that asked for them")

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        async def shut() -> None:
            await self._client.close()

        try:
            self._run(shut())
        finally:
            self._runner.close()
            if self.cache is not None:
                self.cache.close()


def _regeneration_length(m: int) -> int:
    """Tokens to regenerate for an m-token output: room for a shift or a short rewording."""
    return m + max(4, m // 2)


def _echoed_continuation(data: dict[str, Any], prompt: str, continuation: list[str]) -> np.ndarray:
    """The continuation's log-probabilities from an echo response, checked token by token.

    The echo lists every prompt token, then the continuation's, then the one token the
    server generated (none if it stopped at once; ``usage.completion_tokens`` says
    which). The continuation is read from that tail, not located by ``text_offset``:
    servers compute offsets from detokenized text, in which special tokens of a chat
    template count as empty, so offsets do not index the prompt string.

    Raises:
        ResponseMismatchError: if the response lacks echo log-probabilities, or the
            tokens before the generated one are not the continuation's tokens.
    """
    choice = data["choices"][0]
    logprobs = choice.get("logprobs") or {}
    tokens = logprobs.get("tokens")
    values = logprobs.get("token_logprobs")
    if not (isinstance(tokens, list) and isinstance(values, list)):
        raise ResponseMismatchError("the endpoint returned no echoed log-probabilities (tokens, token_logprobs)")
    offsets = logprobs.get("text_offset")
    if len(tokens) != len(values) or (isinstance(offsets, list) and len(offsets) != len(tokens)):
        raise ResponseMismatchError(
            f"echoed lists differ in length: {len(tokens)} tokens, {len(values)} log-probabilities"
            + (f", {len(offsets)} offsets" if isinstance(offsets, list) else "")
        )
    m = len(continuation)
    generated = (data.get("usage") or {}).get("completion_tokens")
    candidates = [int(generated)] if isinstance(generated, int) else [1, 0]
    for n_generated in candidates:
        end = len(tokens) - n_generated
        if end - m < 0:
            continue
        if [str(t) for t in tokens[end - m : end]] == list(continuation):
            scores = values[end - m : end]
            if any(v is None for v in scores):
                raise ResponseMismatchError(
                    "the endpoint returned no log-probability for an output token (servers give none for the "
                    "first token of the text, so the prompt must not be empty)"
                )
            return np.asarray(scores, dtype=np.float64)
    n_generated = candidates[0]
    seen = [str(t) for t in tokens[max(0, len(tokens) - n_generated - m) : len(tokens) - n_generated]]
    raise ResponseMismatchError(
        f"the endpoint's echo ends with {seen[:8]!r} where the output's {m} tokens {list(continuation)[:8]!r} "
        "were expected; the prompt's end and the output merge into different tokens, or the echo is shifted"
    )

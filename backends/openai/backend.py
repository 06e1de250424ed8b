"""``OpenAIBackend``: a model behind an OpenAI-compatible HTTP API, composed of transport, tokenizer and rung.

The backend owns no HTTP, tokenization or scoring logic of its own: the
:class:`~.transport.Transport` sends and retries, the
:class:`~.tokenizer.EndpointTokenizer` splits text, and the
:class:`~.rungs.base.Rung` chosen by :mod:`.probe` (or named by ``scoring=``)
scores and generates. Everything that needs the endpoint is resolved once, by
:meth:`OpenAIBackend.capabilities` (model name, unit source, rung); no property
does network I/O.
"""

from __future__ import annotations

import asyncio
import math
import os
import warnings
from collections.abc import Callable, Sequence

from attrib import registry
from attrib.backend import Backend, Capabilities, Generation, Messages, ScoreRequest, ScoreResult, prefix_sharing_order
from attrib.cache.wrapper import CacheSpec, open_cache
from attrib.errors import EndpointUnavailableError, InputError, TokenizationError, UnknownNameError
from attrib.segmentation import Tokenization
from attrib.urls import BaseURL

from .probe import choose_rung, create_rung
from .redaction import clean
from .rungs.base import Rung
from .tokenizer import SOURCES, EndpointTokenizer, Vocabulary, words
from .transport import Transport

__all__ = ["OpenAIBackend"]


class OpenAIBackend(Backend):
    """A model behind an OpenAI-compatible HTTP API (OpenAI, vLLM, llama.cpp's and llama-cpp-python's servers, Ollama).

    Args:
        model: the model name the endpoint serves; ``None`` takes the only one
            ``/v1/models`` lists.
        base_url: the API root including ``/v1`` (default ``$OPENAI_BASE_URL`` or OpenAI's).
            A query (``?api-version=...``) is sent with every request and never shown or
            stored (:mod:`attrib.urls`); user-info (``user:password@``) is refused.
            A list gives replicas of one model: requests are spread over them (least
            outstanding requests), a failing one is marked down and its requests retried
            on another (:mod:`.replicas`); every one must serve the same model.
        api_key: the key (default ``$OPENAI_API_KEY``; local servers accept any).
        scoring: ``"auto"`` (probe the ladder), or a rung's name: ``"forced"``,
            ``"top_logprobs"``, ``"text"`` (or any registered rung).
        concurrency: requests in flight at once, per replica.
        top_logprobs: alternatives requested per position by the ``top_logprobs`` rung (1-20).
        timeout: seconds per request attempt.
        max_retries: retries per request after the first attempt.
        max_wait: longest single wait between attempts, seconds (caps ``Retry-After``).
        cache: where endpoint metadata (probe verdicts, tokenizer-route answers) is kept: ``True`` for the default directory, ``False``/``None`` for
            none, a directory, or a :class:`~attrib.cache.store.ResponseCache`. Scores and
            generations are cached by wrapping the backend in
            :class:`~attrib.cache.wrapper.CachingBackend`.
        tokenizer: ``"auto"`` (the server's if it has one, else words), ``"server"``
            (fail if there is none) or ``"words"``.
        context_length: the model's context in tokens if known (for the up-front
            check); the server enforces its own limit anyway.
        routing: how requests are spread over replicas: ``"least_outstanding"``, or
            ``"in_order"`` (the first replica that is up takes them all; the others are
            fallbacks).
        chat_template: a chat template (jinja2) for chats: the server's chat route applies
            it instead of the model's (sent as ``chat_template`` in each chat request, which
            vLLM and SGLang accept), and chats sent as text are rendered with it
            (:attr:`chat_template`); ``None``: the server's own.

    Raises:
        UnknownNameError: for an unknown ``scoring`` or ``tokenizer`` value.
        InputError: for a bad ``concurrency``, ``top_logprobs``, ``max_retries``,
            ``timeout``, ``max_wait`` or ``routing``, a base URL with user-info or without an
            ``http(s)://`` scheme and host, no base URL, or the same one twice.
    """

    name = "openai"

    #: The environment variable the API key is read from when ``api_key`` is not given.
    key_variable = "OPENAI_API_KEY"

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | Sequence[str] | None = None,
        api_key: str | None = None,
        scoring: str = "auto",
        concurrency: int = 4,
        top_logprobs: int = 20,
        timeout: float = 120.0,
        max_retries: int = 8,
        max_wait: float = 60.0,
        cache: CacheSpec = True,
        tokenizer: str = "auto",
        context_length: int | None = None,
        routing: str = "least_outstanding",
        chat_template: str | None = None,
    ) -> None:
        if scoring != "auto" and scoring not in registry.rungs:
            raise UnknownNameError.for_choice("scoring rung", scoring, ("auto", *registry.rungs.names()))
        if tokenizer not in SOURCES:
            raise UnknownNameError.for_choice("tokenizer", tokenizer, SOURCES)
        if concurrency < 1:
            raise InputError(f"concurrency must be at least 1, got {concurrency}")
        if not 1 <= top_logprobs <= 20:
            raise InputError(f"top_logprobs must be between 1 and 20, got {top_logprobs}")
        if max_retries < 0:
            raise InputError(f"max_retries must be 0 or more, got {max_retries}")
        if not (math.isfinite(timeout) and timeout > 0):
            raise InputError(f"timeout must be a positive number of seconds, got {timeout}")
        if not (math.isfinite(max_wait) and max_wait >= 0):
            raise InputError(f"max_wait must be 0 or more seconds, got {max_wait}")
        given = [base_url] if isinstance(base_url, str) or base_url is None else list(base_url)
        bases = [
            BaseURL.parse(url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1") for url in given
        ] or [BaseURL.parse(os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1")]
        key = api_key if api_key is not None else os.environ.get(self.key_variable)
        self.transport = Transport(
            bases,
            key or "",
            timeout=timeout,
            max_retries=max_retries,
            max_wait=max_wait,
            concurrency=concurrency,
            cache=open_cache(cache),
            routing=routing,
        )
        self.endpoint = self.transport.endpoint
        self.concurrency = concurrency
        self.top_logprobs = top_logprobs
        self._scoring_option = scoring
        self._model_name = model
        self._context_length = context_length
        self._chat_template = chat_template
        self._tokenizer = EndpointTokenizer(self.transport, option=tokenizer, model=model)
        self._vocabulary = Vocabulary()
        self._rung: Rung | None = None
        self._capabilities: Capabilities | None = None
        self._replicas_checked = False

    # ---------------------------------------------------------------- resolution

    def capabilities(self) -> Capabilities:
        """What this endpoint can do, resolved once: the model name, the unit source and the rung.

        The first call may send a few requests (``/v1/models`` without a model name, the
        tokenizer routes, the ladder's probes unless a verdict is cached); later calls none.

        Raises:
            EndpointError: if the endpoint keeps failing, refuses the key, is not the API,
                or offers no rung (see :mod:`.probe`); nothing is recorded then.
            InputError: if no model is given and the endpoint serves several.
        """
        if self._capabilities is None:
            self._capabilities = self.transport.run(self._resolve())
        return self._capabilities

    async def _resolve(self) -> Capabilities:
        model, source = await self._resolve_units()
        if self._scoring_option == "auto":
            rung = await choose_rung(self.transport, model=model, top_logprobs=self.top_logprobs)
        else:
            rung = create_rung(
                self._scoring_option, transport=self.transport, model=model, top_logprobs=self.top_logprobs
            )
        rung.chat_template = self._chat_template
        self._rung = rung
        return rung.capabilities(has_tokenizer=source == "server")

    async def _resolve_units(self) -> tuple[str, str]:
        """The model name and the unit source (``"server"`` or ``"words"``), asking the endpoint once."""
        if len(self.transport.replicas) > 1 and not self._replicas_checked:
            self._model_name = await self._check_replicas()
            self._replicas_checked = True
        if self._model_name is None:
            self._model_name = await self._discover_model()
        self._tokenizer.served = self._model_name
        return self._model_name, await self._tokenizer.resolve()

    async def _check_replicas(self) -> str:
        """The model every replica serves: the one given, or the one they all list alone.

        A replica that does not answer (after every retry) is excluded with a warning.

        Raises:
            InputError: if a replica does not list the model given, or, with none given,
                the replicas list different models or several each.
            EndpointError: if no replica answers, or one refuses the request.
        """
        replicas = self.transport.replicas
        answers = await self.transport.each("GET", "/models")
        pages: list[dict[str, object]] = []
        for replica, answer in zip(list(replicas.all), answers, strict=True):
            if isinstance(answer, EndpointUnavailableError) and len(replicas.usable()) > 1:
                replicas.exclude(replica)
                warnings.warn(f"{answer}; the replica is left out of this run", stacklevel=2)
            elif isinstance(answer, BaseException):
                raise answer
            else:
                pages.append(answer)
        listed = [_model_names(page) for page in pages]
        shown = [r.shown for r in replicas.usable()]
        if self._model_name is not None:
            for url, names in zip(shown, listed, strict=True):
                if names and self._model_name not in names:
                    served = clean(", ".join(names[:10]))
                    raise InputError(
                        f"the replica {url} serves {served}, not {self._model_name!r}; "
                        "every --base-url must serve the same model"
                    )
            return self._model_name
        if all(len(names) == 1 for names in listed) and len({names[0] for names in listed}) == 1:
            return listed[0][0]
        served = "; ".join(
            f"{url} serves {clean(', '.join(names[:10]) or 'none')}" for url, names in zip(shown, listed, strict=True)
        )
        raise InputError(
            f"the replicas do not serve one model alone ({served}); give --model and replicas of one model"
        )

    async def _discover_model(self) -> str:
        """The only model ``/v1/models`` lists. Asked on every run, never cached: a name from
        an earlier run could be another model's, and the name is part of every cache key."""
        names = _model_names(await self.transport.call("GET", "/models"))
        if len(names) == 1:
            return names[0]
        listed = clean(", ".join(names[:10]) or "none")
        raise InputError(f"the endpoint serves {len(names)} models ({listed}); choose one with --model")

    def _scoring_rung(self) -> Rung:
        self.capabilities()
        if self._rung is None:  # pragma: no cover - capabilities() always sets it
            raise RuntimeError("the scoring rung was not resolved")
        return self._rung

    # ---------------------------------------------------------------- description

    @property
    def model(self) -> str:
        """The served model's name: the one given, or the one ``/v1/models`` listed once
        :meth:`capabilities` has run (``""`` before that when none was given)."""
        return self._model_name or ""

    @property
    def chat_template(self) -> str | None:
        """The chat template given at construction (``None``: the server applies its own)."""
        return self._chat_template

    @property
    def context_length(self) -> int:
        """The context given at construction, or a large number (the server checks its own)."""
        return self._context_length or 1_000_000

    def describe(self) -> dict[str, object]:
        """The endpoint, model, rung, unit source and the tokenizer route used (``None`` for
        words), recorded in results (never the key)."""
        rung = self._scoring_rung()
        return {
            "name": self.name,
            "model": self.model,
            "endpoint": self.endpoint,
            **({"replicas": len(self.transport.replicas)} if len(self.transport.replicas) > 1 else {}),
            **rung.identity(),
            "score_kind": rung.score_kind,
            "tokenizer": self._tokenizer.source,
            "tokenizer_route": self._tokenizer.route,
            **({"chat_template": self._chat_template} if self._chat_template is not None else {}),
            "concurrency": self.concurrency,
            "context_length": self._context_length,
        }

    def identity(self) -> dict[str, object]:
        """What determines the scores: kind, model, endpoint (no credentials), rung and its
        settings, unit source; not concurrency, not the key."""
        rung = self._scoring_rung()
        return {
            "name": self.name,
            "model": self.model,
            "endpoint": self.endpoint,
            **rung.identity(),
            "tokenizer": self._tokenizer.source,
            **({"chat_template": self._chat_template} if self._chat_template is not None else {}),
        }

    def usage_snapshot(self) -> dict[str, int]:
        """Counters so far: model requests answered, retries, prompt/completion tokens the
        endpoint reported, token scores only bounded by the top-k (``bounded_tokens``)."""
        return self.transport.usage.snapshot()

    # ---------------------------------------------------------------- tokens

    def tokenize(self, text: str) -> Tokenization:
        """Split ``text`` by the server's tokenizer, or into words when there is none.

        Raises:
            TokenizationError: if the server's tokens do not reproduce the text and
                ``tokenizer="server"`` was asked for (with ``"auto"`` the text's units
                become words, with a warning).
            EndpointError: if the endpoint keeps failing.
        """

        async def split() -> list[str]:
            await self._resolve_units()
            return await self._tokenizer.split(text)

        try:
            pieces = self.transport.run(split())
        except TokenizationError as error:
            if self._tokenizer.option == "server":
                raise
            warnings.warn(f"{error}; units of this text are words instead of tokens", stacklevel=2)
            pieces = words(text)
        ids = self._vocabulary.ids(pieces)
        return Tokenization.from_pieces(text, list(ids), [piece.encode("utf-8") for piece in pieces])

    def tokenize_markup(self, text: str) -> tuple[int, ...]:
        """Chat-template text as local ids: the server's tokens (special-token syntax parsed,
        as its tokenizer route does) when it takes prompts as token ids, so a chat can be sent
        as ids too; otherwise words (chat rungs send messages, and the ``forced`` rung sends
        the rendered text, which the server tokenizes itself)."""

        async def split() -> list[str] | None:
            await self._resolve_units()
            if self._tokenizer.server_ids([]) is None:
                return None
            return await self._tokenizer.split(text)

        try:
            pieces = self.transport.run(split()) if text else None
        except TokenizationError:
            pieces = None
        return self._vocabulary.ids(words(text) if pieces is None else pieces)

    def detokenize(self, ids: Sequence[int]) -> str:
        return "".join(self._vocabulary.texts(ids))

    def token_text(self, ids: Sequence[int]) -> list[str]:
        return self._vocabulary.texts(ids)

    def ids_of_pieces(self, pieces: Sequence[str]) -> tuple[int, ...]:
        """Local ids of token texts (a cached generation is stored as texts)."""
        return self._vocabulary.ids(pieces)

    # ---------------------------------------------------------------- model calls

    def generate(
        self, prompt_ids: Sequence[int], *, max_new_tokens: int, messages: Messages | None = None
    ) -> Generation:
        """The greedy output by the rung's generation route (completions or chat).

        Raises:
            EndpointError: if the endpoint refuses or keeps failing.
        """
        rung = self._scoring_rung()
        text = self.detokenize(prompt_ids)

        async def run() -> tuple[list[str], int]:
            generated = await rung.generate(text, max_new_tokens=max_new_tokens, messages=messages)
            tokens = list(generated.tokens)
            if "".join(tokens) != generated.text:
                tokens = await self._tokenizer.split(generated.text)
            return tokens, generated.tokens_evaluated

        tokens, evaluated = self.transport.run(run())
        return Generation(ids=self._vocabulary.ids(tokens), tokens_evaluated=evaluated)

    def score(
        self,
        requests: Sequence[ScoreRequest],
        *,
        on_result: Callable[[int, ScoreResult], None] | None = None,
    ) -> list[ScoreResult]:
        """Score each request's continuation by the endpoint's rung, up to ``concurrency`` at once.

        Every request is sent (``sample`` repeats are independent requests; caching is
        :class:`~attrib.cache.wrapper.CachingBackend`'s job).

        Returns:
            One :class:`~attrib.backend.ScoreResult` per request, in order: nats (``forced``:
            exact forced decoding; ``top_logprobs``: estimates, see :mod:`.rungs.regeneration`),
            or retention scores in [-1, 0] for the ``text`` rung.

        Raises:
            ResponseMismatchError: if an answer does not hold the continuation's scores.
            EndpointError: if a request is refused, or keeps failing after all retries.
        """
        rung = self._scoring_rung()
        texts = [r.prompt_text if r.prompt_text is not None else self.detokenize(r.prompt_ids) for r in requests]
        order = prefix_sharing_order([t.encode("utf-8") for t in texts])
        results: list[ScoreResult | None] = [None] * len(requests)

        async def one(index: int) -> None:
            request = requests[index]
            continuation = self.token_text(request.continuation_ids)
            ids = self._server_ids(request, continuation) if rung.takes_token_ids else None
            if ids is None:
                result = await rung.score(texts[index], continuation, messages=request.messages)
            else:
                result = await rung.score(texts[index], continuation, messages=request.messages, ids=ids)  # type: ignore[call-arg]
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

        self.transport.run(run_all())
        return [r for r in results if r is not None]

    def _server_ids(self, request: ScoreRequest, continuation: Sequence[str]) -> tuple[int, ...] | None:
        """The request's prompt and continuation as the server's token ids (BOS first), when
        its units are the server's tokens and the server takes ids; else ``None`` (text is sent).
        A chat's markup is the server's tokens too (:meth:`tokenize_markup`)."""
        if request.prompt_text is not None and request.prompt_text != self.detokenize(request.prompt_ids):
            return None
        return self._tokenizer.server_ids([*self.token_text(request.prompt_ids), *continuation])

    def close(self) -> None:
        """Close the connections and the metadata cache; the backend is unusable afterwards."""
        self.transport.close()


def _model_names(page: dict[str, object]) -> list[str]:
    """The model ids of a ``/v1/models`` answer."""
    data = page.get("data")
    return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m] if isinstance(data, list) else []

"""The cache's backend wrapper: any backend's scored variants and generations, kept in the store.

:class:`CachingBackend` wraps a :class:`~attrib.backend.Backend` and answers
``score`` and ``generate`` from the store (:class:`~attrib.cache.store.ResponseCache`,
SQLite) when it has seen the same request from the same model before, so an interrupted run resumes
where it stopped and a re-run is free, for local models and endpoints alike
(EleutherAI lm-evaluation-harness's ``CachingLM`` is the pattern: the cache is a
wrapper, not a feature of one backend).

A key is the SHA-256 of the backend's :meth:`~attrib.backend.Backend.identity`
(kind, model, scoring rung and every setting that changes a score) and of the
request: token ids when the backend exposes the model's ids, otherwise the prompt
text and the continuation's token texts; the chat messages; and the sample
number (repeats for the noise floor are distinct requests). Each result is stored
as soon as it arrives. Nothing secret is ever part of a key or a value:
``identity()`` never holds credentials.

Everything else (tokenization, templates, description) goes straight to the
wrapped backend.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from attrib.backend import Backend, Capabilities, Generation, Messages, ScoreRequest, ScoreResult
from attrib.cache.store import ResponseCache, request_key
from attrib.segmentation import Tokenization

__all__ = ["CachingBackend", "CacheSpec", "open_cache"]

#: How a caller asks for a cache: ``True`` (the default directory), ``False``/``None``
#: (none), a directory, or an open :class:`ResponseCache`.
CacheSpec = bool | str | os.PathLike[str] | ResponseCache | None


def open_cache(spec: CacheSpec) -> ResponseCache | None:
    """The :class:`ResponseCache` a :data:`CacheSpec` asks for, or ``None``.

    Raises:
        OSError, sqlite3.Error: if the cache file cannot be opened.
    """
    if isinstance(spec, ResponseCache):
        return spec
    if spec is True:
        return ResponseCache()
    if spec is False or spec is None:
        return None
    return ResponseCache(spec)


class CachingBackend(Backend):
    """Any backend, with its ``score`` and ``generate`` answers kept in a persistent cache.

    Args:
        backend: the backend to wrap.
        cache: where answers are kept (closed with the wrapper).
        close_backend: close ``backend`` too when the wrapper is closed (False for a
            backend the caller still owns).

    Attributes:
        hits: requests answered from the cache so far (also in :meth:`usage_snapshot`
            as ``cache_hits``).
    """

    def __init__(self, backend: Backend, cache: ResponseCache, *, close_backend: bool = True) -> None:
        self.inner = backend
        self.close_backend = close_backend
        self.cache = cache
        self.name = backend.name
        self.hits = 0
        self._capabilities: Capabilities | None = None
        self._identity: dict[str, object] | None = None

    # ---------------------------------------------------------------- delegation

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def context_length(self) -> int:
        return self.inner.context_length

    @property
    def chat_template(self) -> str | None:
        return self.inner.chat_template

    def capabilities(self) -> Capabilities:
        if self._capabilities is None:
            self._capabilities = self.inner.capabilities()
        return self._capabilities

    def tokenize(self, text: str) -> Tokenization:
        return self.inner.tokenize(text)

    def tokenize_markup(self, text: str) -> tuple[int, ...]:
        return self.inner.tokenize_markup(text)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.inner.detokenize(ids)

    def token_text(self, ids: Sequence[int]) -> list[str]:
        return self.inner.token_text(ids)

    def ids_of_pieces(self, pieces: Sequence[str]) -> tuple[int, ...]:
        return self.inner.ids_of_pieces(pieces)

    def describe(self) -> dict[str, object]:
        return self.inner.describe()

    def identity(self) -> dict[str, object]:
        if self._identity is None:
            self.capabilities()  # the identity of an endpoint names its scoring rung
            self._identity = self.inner.identity()
        return self._identity

    def usage_snapshot(self) -> dict[str, int]:
        return {**self.inner.usage_snapshot(), "cache_hits": self.hits}

    def close(self) -> None:
        try:
            if self.close_backend:
                self.inner.close()
        finally:
            self.cache.close()

    # ---------------------------------------------------------------- keys

    def _prompt_key(self, ids: Sequence[int], text: str | None) -> object:
        if self.capabilities().exposes_token_ids:
            return [int(i) for i in ids]
        return text if text is not None else self.inner.detokenize(ids)

    def _tokens_key(self, ids: Sequence[int]) -> object:
        if self.capabilities().exposes_token_ids:
            return [int(i) for i in ids]
        return self.inner.token_text(ids)

    def _score_key(self, request: ScoreRequest) -> str:
        return request_key(
            kind="score",
            backend=self.identity(),
            prompt=self._prompt_key(request.prompt_ids, request.prompt_text),
            continuation=self._tokens_key(request.continuation_ids),
            messages=None if request.messages is None else [list(m) for m in request.messages],
            sample=request.sample,
        )

    # ---------------------------------------------------------------- cached calls

    def score(
        self,
        requests: Sequence[ScoreRequest],
        *,
        on_result: Callable[[int, ScoreResult], None] | None = None,
    ) -> list[ScoreResult]:
        """Answer what the cache holds, send the rest to the wrapped backend, store each answer.

        Cached answers report ``tokens_evaluated == 0`` (nothing was computed).

        Returns:
            One :class:`ScoreResult` per request, in request order.
        """
        keys = [self._score_key(r) for r in requests]
        results: list[ScoreResult | None] = [None] * len(requests)
        missing: list[int] = []
        for index, key in enumerate(keys):
            stored = self.cache.get(key)
            if isinstance(stored, list) and len(stored) == len(requests[index].continuation_ids):
                self.hits += 1
                result = ScoreResult(logprobs=np.asarray(stored, dtype=np.float64), tokens_evaluated=0)
                results[index] = result
                if on_result is not None:
                    on_result(index, result)
            else:
                missing.append(index)
        if missing:

            def arrived(position: int, result: ScoreResult) -> None:
                index = missing[position]
                self.cache.put(keys[index], [float(v) for v in np.asarray(result.logprobs, dtype=np.float64)])
                if on_result is not None:
                    on_result(index, result)

            sent = self.inner.score([requests[i] for i in missing], on_result=arrived)
            for index, result in zip(missing, sent, strict=True):
                results[index] = result
        return [r for r in results if r is not None]

    def generate(
        self, prompt_ids: Sequence[int], *, max_new_tokens: int, messages: Messages | None = None
    ) -> Generation:
        """The wrapped backend's greedy output, from the cache when this prompt was generated from before."""
        key = request_key(
            kind="generate",
            backend=self.identity(),
            prompt=self._prompt_key(prompt_ids, None),
            max_new_tokens=max_new_tokens,
            messages=None if messages is None else [list(m) for m in messages],
        )
        stored: Any = self.cache.get(key)
        if isinstance(stored, list):
            self.hits += 1
            if self.capabilities().exposes_token_ids:
                ids = tuple(int(i) for i in stored)
            else:
                ids = self.inner.ids_of_pieces([str(p) for p in stored])
            return Generation(ids=ids, tokens_evaluated=0)
        generation = self.inner.generate(prompt_ids, max_new_tokens=max_new_tokens, messages=messages)
        self.cache.put(key, self._tokens_key(generation.ids))
        return generation

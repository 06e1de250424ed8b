"""The ``sglang`` rung: exact forced decoding through SGLang's native ``/generate``, keeping its prefix cache.

SGLang's native ``POST /generate`` (at the server root, beside ``/v1``) scores a
prompt with ``return_logprob: true``: ``meta_info.input_token_logprobs`` lists one
``[logprob, token_id, text]`` entry per prompt token from position
``logprob_start_len`` on (``text`` is ``null`` unless ``return_text_in_logprobs``), and
``meta_info.prompt_tokens`` counts the whole prompt. SGLang reuses its radix (prefix)
cache only up to ``logprob_start_len``, so the rung sets it to where the scored
continuation starts: variants that share a prefix share its KV cache, which no
echo or ``prompt_logprobs`` request does (vLLM skips its prefix cache for those).

One score is two requests: ``POST /v1/tokenize`` counts the prompt's tokens (n),
then ``/generate`` scores ``prompt + continuation`` from position n - 1 with
``max_new_tokens: 0``. The answer must count n + m tokens (m: the continuation's);
otherwise the prompt's end and the continuation merged into other tokens and
:class:`~attrib.errors.ResponseMismatchError` is raised, as the ``forced`` rung does.
The last m entries are the continuation's log-probabilities, in nats.

Shapes from SGLang's documentation ("Sampling Parameters", the ``/generate``
endpoint: ``return_logprob``, ``logprob_start_len``, ``top_logprobs_num``; "Native
APIs") and its server tests (``run_logprob_check``: ``len(input_token_logprobs) +
logprob_start_len == prompt_tokens``); the recorded exchange the tests replay is in
``tests/data/recorded/sglang_generate.json``.

Probe: offered when ``/generate`` answers a scoring request with at least two
numeric input log-probabilities and ``/v1/tokenize`` answers with tokens; not
offered when either route is missing (llama.cpp's and vLLM's servers) or ``/generate``,
outside ``/v1``, answers with a web page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from attrib.backend import Messages, ScoreResult
from attrib.errors import ResponseMismatchError

from ..statuses import NotAnAPIError
from .base import Generated, Rung

__all__ = ["SGLangRung", "input_logprobs"]

_PROBE_TEXT = "The capital of France is Paris"


class SGLangRung(Rung):
    """Forced decoding by SGLang's ``/generate`` from where the output starts (nats; any target)."""

    name: ClassVar[str] = "sglang"
    position: ClassVar[int] = 5

    def scoring_body(self, text: str, start: int) -> dict[str, Any]:
        """The ``/generate`` request scoring ``text``'s tokens from token ``start`` on, generating none."""
        return {
            "text": text,
            "sampling_params": {"max_new_tokens": 0, "temperature": 0.0},
            "return_logprob": True,
            "logprob_start_len": start,
        }

    async def _count(self, text: str) -> int:
        """Tokens of ``text`` by the server's tokenizer (special tokens such as BOS included)."""
        reply = await self.transport.call("POST", "/tokenize", {"model": self.model, "prompt": text})
        count, tokens = reply.get("count"), reply.get("tokens")
        if isinstance(count, int) and not isinstance(count, bool):
            return count
        if isinstance(tokens, list):
            return len(tokens)
        raise ResponseMismatchError("the server's /v1/tokenize answered without tokens or a count")

    async def probe(self) -> bool:
        try:
            data = await self.transport.probe_call(
                "/generate",
                self.scoring_body(_PROBE_TEXT, 0),
                names=("return_logprob", "logprob_start_len"),
                what="probing SGLang scoring",
                root=True,
            )
        except NotAnAPIError:  # a page outside /v1 (a web UI) says nothing of the API; the next rung reports it
            return False
        meta = data.get("meta_info") if data is not None else None
        entries = meta.get("input_token_logprobs") if isinstance(meta, dict) else None
        if not isinstance(entries, list) or sum(1 for e in entries if _value(e) is not None) < 2:
            return False
        tokens = await self.transport.probe_call(
            "/tokenize",
            {"model": self.model, "prompt": _PROBE_TEXT},
            names=("tokenize",),
            what="probing /v1/tokenize",
            holding=None,
        )
        return tokens is not None and isinstance(tokens.get("tokens"), list)

    async def score(self, prompt: str, continuation: Sequence[str], *, messages: Messages | None) -> ScoreResult:
        n = await self._count(prompt)
        start = max(0, n - 1)
        body = self.scoring_body(prompt + "".join(continuation), start)
        data = await self.transport.model_call("/generate", body, root=True, holding="meta_info")
        logprobs = input_logprobs(data, prompt_tokens=n, start=start, m=len(continuation))
        meta = data["meta_info"]
        total = meta.get("prompt_tokens") if isinstance(meta, dict) else None
        evaluated = total - start if isinstance(total, int) and not isinstance(total, bool) else 0
        return ScoreResult(logprobs=logprobs, tokens_evaluated=max(0, evaluated))

    async def generate(self, prompt: str, *, max_new_tokens: int, messages: Messages | None) -> Generated:
        """Greedy continuation of the prompt text (a chat arrives here already rendered by its template)."""
        body = {"text": prompt, "sampling_params": {"max_new_tokens": max_new_tokens, "temperature": 0.0}}
        data = await self.transport.model_call("/generate", body, root=True, holding="meta_info")
        meta = data["meta_info"] if isinstance(data["meta_info"], dict) else {}
        counts = [meta.get("prompt_tokens"), meta.get("completion_tokens")]
        text = data.get("text")
        return Generated(
            text=text if isinstance(text, str) else "",
            tokens=(),
            tokens_evaluated=sum(c for c in counts if isinstance(c, int) and not isinstance(c, bool)),
        )


def _value(entry: object) -> float | None:
    """The log-probability of one ``[logprob, token_id, text]`` entry, or ``None``."""
    if isinstance(entry, list | tuple) and entry:
        value = entry[0]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def input_logprobs(data: dict[str, Any], *, prompt_tokens: int, start: int, m: int) -> np.ndarray:
    """The continuation's log-probabilities from a ``/generate`` answer scored from token ``start``.

    Args:
        data: the answer (``meta_info.input_token_logprobs``, ``meta_info.prompt_tokens``).
        prompt_tokens: tokens of the prompt alone (n), by the same tokenizer.
        start: the ``logprob_start_len`` sent (at most n).
        m: tokens of the continuation.

    Returns:
        Log-probabilities in nats, float64, shape (m,).

    Raises:
        ResponseMismatchError: if the answer lacks the entries, counts other than n + m
            tokens (the prompt's end and the continuation merged), or lacks a value.
    """
    meta = data.get("meta_info")
    entries = meta.get("input_token_logprobs") if isinstance(meta, dict) else None
    total = meta.get("prompt_tokens") if isinstance(meta, dict) else None
    if not isinstance(entries, list) or not isinstance(total, int) or isinstance(total, bool):
        raise ResponseMismatchError("the /generate answer holds no meta_info.input_token_logprobs and prompt_tokens")
    if total != prompt_tokens + m:
        raise ResponseMismatchError(
            f"the server counts {total} tokens in prompt and output where {prompt_tokens} + {m} were expected; "
            "the prompt's end and the output merge into different tokens"
        )
    if len(entries) != total - start:
        raise ResponseMismatchError(
            f"/generate returned {len(entries)} input log-probabilities from token {start} of {total}; "
            f"expected {total - start}"
        )
    values = [_value(e) for e in entries[len(entries) - m :]]
    if any(v is None for v in values):
        raise ResponseMismatchError("/generate returned no log-probability for an output token")
    return np.asarray(values, dtype=np.float64)

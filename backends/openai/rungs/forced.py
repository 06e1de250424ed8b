"""The ``forced`` rung: exact forced decoding through ``/v1/completions`` with ``echo``.

``/v1/completions`` with ``echo=True, logprobs=0, max_tokens=1`` returns the
log-probability of every prompt token, so sending ``prompt + output`` scores the
output by forced decoding, exactly as the local backend does (nats, per output
token). llama-cpp-python's server and vLLM offer it (OpenAI's legacy completions
API describes ``echo`` and ``logprobs``; current OpenAI models refuse the pair).
The echoed tokens that fall inside the output are checked against the output's
own tokens, and any difference in number or text raises
:class:`~attrib.errors.ResponseMismatchError` (servers have shipped off-by-one
bugs here).

Probe: the endpoint offers the rung when an echo request answers with a
log-probability for the prompt's tokens; it does not when it answers 2xx without
them, refuses a parameter by name (``echo``, ``logprobs``) or has no such route.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from attrib.backend import Messages, ScoreResult
from attrib.errors import ResponseMismatchError

from .base import Generated, Rung, prompt_tokens

__all__ = ["ForcedRung", "echoed_continuation", "offers_echo"]

#: A short text whose echo has at least two scored tokens.
PROBE_TEXT = "The capital of France is Paris"


class ForcedRung(Rung):
    """Forced decoding from echoed prompt log-probabilities (nats; can score any target)."""

    name: ClassVar[str] = "forced"
    position: ClassVar[int] = 10
    takes_token_ids: ClassVar[bool] = True

    def _echo(self, prompt: str | Sequence[int]) -> dict[str, Any]:
        sent = prompt if isinstance(prompt, str) else list(prompt)
        return {"model": self.model, "prompt": sent, "max_tokens": 1, "temperature": 0.0, "logprobs": 0, "echo": True}

    async def probe(self) -> bool:
        data = await self.transport.probe_call(
            "/completions", self._echo(PROBE_TEXT), names=("echo", "logprobs"), what="probing forced scoring"
        )
        return data is not None and offers_echo(data)

    async def score(
        self,
        prompt: str,
        continuation: Sequence[str],
        *,
        messages: Messages | None,
        ids: Sequence[int] | None = None,
    ) -> ScoreResult:
        """As :meth:`Rung.score`; ``ids`` (the server's token ids of prompt and continuation,
        BOS first), when given, are sent instead of the text, so the server scores exactly
        these tokens."""
        sent = prompt + "".join(continuation) if ids is None else ids
        data = await self.transport.model_call("/completions", self._echo(sent))
        logprobs = echoed_continuation(data, continuation)
        return ScoreResult(logprobs=logprobs, tokens_evaluated=prompt_tokens(data))

    async def generate(self, prompt: str, *, max_new_tokens: int, messages: Messages | None) -> Generated:
        """Greedy completion of the prompt text (a chat arrives here already rendered by its template)."""
        body = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_new_tokens,
            "temperature": 0.0,
            "logprobs": 0,
            "seed": 0,
        }
        data = await self.transport.model_call("/completions", body)
        choice = data["choices"][0] if isinstance(data["choices"][0], dict) else {}
        text = choice.get("text")
        logprobs = choice.get("logprobs")
        tokens = logprobs.get("tokens") if isinstance(logprobs, dict) else None
        return Generated(
            text=text if isinstance(text, str) else "",
            tokens=tuple(str(t) for t in tokens) if isinstance(tokens, list) else (),
            tokens_evaluated=prompt_tokens(data, completion=True),
        )


def offers_echo(data: dict[str, Any]) -> bool:
    """Whether a completions answer echoed the prompt with log-probabilities (two or more, aligned)."""
    choice = data["choices"][0]
    logprobs = choice.get("logprobs") if isinstance(choice, dict) else None
    if not isinstance(logprobs, dict):
        return False
    values = logprobs.get("token_logprobs")
    offsets = logprobs.get("text_offset")
    if not isinstance(values, list) or not isinstance(offsets, list):
        return False
    return len([v for v in values if isinstance(v, (int, float))]) >= 2 and len(offsets) == len(values)


def echoed_continuation(data: dict[str, Any], continuation: Sequence[str]) -> np.ndarray:
    """The continuation's log-probabilities from an echo answer, checked token by token.

    The echo lists every prompt token, then the continuation's, then the one token the
    server generated (none if it stopped at once; ``usage.completion_tokens`` says
    which). The continuation is read from that tail, not located by ``text_offset``:
    servers compute offsets from detokenized text, in which special tokens of a chat
    template count as empty, so offsets do not index the prompt string.

    Args:
        data: the completions answer.
        continuation: the output's token texts, length m.

    Returns:
        Log-probabilities in nats, float64, shape (m,).

    Raises:
        ResponseMismatchError: if the answer lacks echo log-probabilities, or the
            tokens before the generated one are not the continuation's tokens.
    """
    choice = data["choices"][0]
    logprobs = (choice.get("logprobs") if isinstance(choice, dict) else None) or {}
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
    usage = data.get("usage")
    generated = usage.get("completion_tokens") if isinstance(usage, dict) else None
    candidates = [generated] if isinstance(generated, int) and not isinstance(generated, bool) else [1, 0]
    for n_generated in candidates:
        end = len(tokens) - n_generated
        if end - m < 0:
            continue
        if [str(t) for t in tokens[end - m : end]] == list(continuation):
            scores = values[end - m : end]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in scores):
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

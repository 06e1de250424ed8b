"""The ``top_logprobs`` rung: regenerate under each prompt and read the original tokens from the top-k.

Chat completions with ``logprobs``/``top_logprobs`` (OpenAI's chat API, llama.cpp's
and llama-cpp-python's servers, Ollama since v0.12.11) return, for each generated
token, its log-probability and the k most likely alternatives. The output is
regenerated greedily under each perturbed prompt and each original token is read
from those distributions after aligning the two outputs; a token outside the
top-k gets the bound ``log p <= smallest returned value`` and is counted in the
``bounded_tokens`` counter (:mod:`.regeneration` has the rules). Scores are
estimates in nats, not forced decoding, and only the model's own output can be
explained (``supports_target`` is False).

Hosted APIs: OpenAI's chat completions today take ``logprobs: true`` and
``top_logprobs`` 0-20 (this rung asks for 1-20) and answer ``choices[0].logprobs.content``:
one ``{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}`` per generated
token. The length cap is sent as ``max_tokens``, which every OpenAI-compatible server
takes; OpenAI's reasoning models refuse it and name ``max_completion_tokens``, which
the rung then sends instead (:meth:`.base.Rung.chat`). Reasoning models give no
log-probabilities: a refusal naming ``logprobs`` is one clear
:class:`~attrib.errors.RequestRejectedError`, and the probe skips the rung. The
shapes are tested against ``tests/data/recorded/openai_chat.json``.

Probe: offered when a chat request asking for log-probabilities answers with a
``logprobs.content`` list; not offered when it answers 2xx without one or refuses
``logprobs``/``top_logprobs`` by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from attrib.backend import Messages, ScoreResult
from attrib.errors import RequestRejectedError, ResponseMismatchError

from .base import Generated, Rung, chat_body, chat_logprobs, message_text, prompt_tokens
from .regeneration import GeneratedToken, regeneration_length, score_from_top_logprobs

__all__ = ["TopLogprobsRung", "regenerated_tokens"]

_PROBE_TEXT = "The capital of France is Paris"


class TopLogprobsRung(Rung):
    """Regeneration read through the top-k log-probabilities (nats, estimated; the model's own output only)."""

    name: ClassVar[str] = "top_logprobs"
    position: ClassVar[int] = 20
    supports_target: ClassVar[bool] = False

    def identity(self) -> dict[str, object]:
        return {"scoring": self.name, "top_logprobs": self.top_logprobs}

    def _body(self, prompt: str, messages: Messages | None, max_tokens: int) -> dict[str, Any]:
        return chat_body(
            prompt,
            messages,
            model=self.model,
            max_tokens=max_tokens,
            top_logprobs=self.top_logprobs,
            chat_template=self.chat_template,
        )

    async def probe(self) -> bool:
        data = await self.chat(self._body(_PROBE_TEXT, None, 2), probe=("logprobs", "top_logprobs"))
        if data is None:
            return False
        content = chat_logprobs(data)
        # An empty answer (a base model may give one) carries an empty list when log-probabilities are on.
        return content is not None and (bool(content) or not message_text(data))

    async def score(self, prompt: str, continuation: Sequence[str], *, messages: Messages | None) -> ScoreResult:
        body = self._body(prompt, messages, regeneration_length(len(continuation)))
        data = await self._call(body)
        estimate = score_from_top_logprobs(list(continuation), regenerated_tokens(data))
        self.transport.usage.bounded_tokens += int(estimate.bounded.sum())
        return ScoreResult(logprobs=estimate.logprobs, tokens_evaluated=prompt_tokens(data))

    async def generate(self, prompt: str, *, max_new_tokens: int, messages: Messages | None) -> Generated:
        data = await self._call(self._body(prompt, messages, max_new_tokens))
        content = chat_logprobs(data) or []
        tokens = tuple(str(t.get("token", "")) for t in content if isinstance(t, dict))
        return Generated(text=message_text(data), tokens=tokens, tokens_evaluated=prompt_tokens(data, completion=True))

    async def _call(self, body: dict[str, Any]) -> dict[str, Any]:
        """A chat request asking for log-probabilities; a refusal of them becomes one clear error.

        Raises:
            RequestRejectedError: saying the model gives no log-probabilities, when the
                endpoint refuses ``logprobs`` (OpenAI's reasoning models do).
        """
        try:
            data = await self.chat(body)
        except RequestRejectedError as error:
            if error.status in (400, 422) and "logprobs" in str(error):
                raise RequestRejectedError(
                    _no_logprobs(self.model, self.transport.endpoint), status=error.status
                ) from error
            raise
        if data is None:  # pragma: no cover - only a probe answers None
            raise ResponseMismatchError("the endpoint gave no answer")
        return data


def _no_logprobs(model: str, endpoint: str) -> str:
    return (
        f"the model {model!r} at {endpoint} gives no log-probabilities (OpenAI's reasoning models give none), "
        "so --scoring top_logprobs cannot score it; choose a model that does, or --scoring text"
    )


def regenerated_tokens(data: dict[str, Any]) -> list[GeneratedToken]:
    """The generated tokens of a chat answer with their log-probabilities and top-k alternatives (nats).

    Raises:
        ResponseMismatchError: if the answer carries no ``logprobs.content`` list, or an
            entry lacks its token or log-probability.
    """
    content = chat_logprobs(data)
    if content is None:
        raise ResponseMismatchError(
            "the endpoint returned no logprobs for a chat request that asked for them (reasoning models give "
            "none); choose a model that gives log-probabilities, or --scoring text"
        )
    tokens = []
    for entry in content:
        if not isinstance(entry, dict) or not isinstance(entry.get("logprob"), (int, float)) or "token" not in entry:
            raise ResponseMismatchError("a chat logprobs entry lacks its token or log-probability")
        top = entry.get("top_logprobs") or []
        alternatives = {
            str(a["token"]): float(a["logprob"])
            for a in top
            if isinstance(a, dict) and "token" in a and isinstance(a.get("logprob"), (int, float))
        }
        tokens.append(GeneratedToken(text=str(entry["token"]), logprob=float(entry["logprob"]), top=alternatives))
    return tokens

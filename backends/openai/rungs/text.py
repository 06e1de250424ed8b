"""The ``text`` rung: no log-probabilities at all, so the share of each output token that survives.

For endpoints that only offer chat completions without log-probabilities, the
output is regenerated greedily under each perturbed prompt and compared with the
original, character by character (:func:`.regeneration.text_retention`):
each output token scores 0 when reproduced and -1 when lost. Results say
``score_kind = "text-similarity"``; these are not nats, and only the model's own
output can be explained.

Probe: offered when a plain chat request answers 2xx with choices; not offered
when the chat route is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from attrib.backend import Messages, ScoreKind, ScoreResult
from attrib.errors import ResponseMismatchError

from .base import Generated, Rung, chat_body, message_text, prompt_tokens
from .regeneration import regeneration_length, text_retention

__all__ = ["TextRung"]

_PROBE_TEXT = "The capital of France is Paris"


class TextRung(Rung):
    """Regenerated text compared with the original (text similarity in [-1, 0], not nats)."""

    name: ClassVar[str] = "text"
    position: ClassVar[int] = 30
    score_kind: ClassVar[ScoreKind] = "text-similarity"
    supports_target: ClassVar[bool] = False

    async def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        data = await self.chat(body)
        if data is None:  # pragma: no cover - only a probe answers None
            raise ResponseMismatchError("the endpoint gave no answer")
        return data

    async def probe(self) -> bool:
        body = chat_body(_PROBE_TEXT, None, model=self.model, max_tokens=2, top_logprobs=None)
        data = await self.chat(body, probe=("messages",))
        return data is not None

    async def score(self, prompt: str, continuation: Sequence[str], *, messages: Messages | None) -> ScoreResult:
        length = regeneration_length(len(continuation))
        body = chat_body(
            prompt, messages, model=self.model, max_tokens=length, top_logprobs=None, chat_template=self.chat_template
        )
        data = await self._answer(body)
        retention = text_retention(list(continuation), message_text(data))
        return ScoreResult(logprobs=retention, tokens_evaluated=prompt_tokens(data))

    async def generate(self, prompt: str, *, max_new_tokens: int, messages: Messages | None) -> Generated:
        body = chat_body(
            prompt,
            messages,
            model=self.model,
            max_tokens=max_new_tokens,
            top_logprobs=None,
            chat_template=self.chat_template,
        )
        data = await self._answer(body)
        return Generated(text=message_text(data), tokens=(), tokens_evaluated=prompt_tokens(data, completion=True))

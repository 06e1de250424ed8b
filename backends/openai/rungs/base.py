"""The scoring-rung contract: how one kind of endpoint scores a fixed output, as one strategy object.

A rung knows one way to score an output under a prompt through an
OpenAI-compatible API, and nothing else does: the backend, the probe and the
cache never branch on a rung's name. Each rung

* ``probe()``: asks the endpoint once whether it offers the rung and answers
  ``True`` (supported) or ``False`` (the endpoint *answered* that it does not: a
  refusal naming the route or parameter, or a 2xx answer without what the rung
  reads); transport failures after all retries raise instead
  (:meth:`~attrib.backends.openai.transport.Transport.probe_call`);
* ``score(...)``: the continuation's per-token scores under one prompt;
* ``generate(...)``: the greedy output under one prompt;
* declares the :class:`~attrib.backend.Capabilities` it implies (its
  ``score_kind``, whether it can score a given target) and what of it enters a
  cache key (:meth:`Rung.identity`).

Adding a rung (vLLM's ``prompt_logprobs``, SGLang's native ``/generate`` with
``logprob_start_len``) is one new file with a :class:`Rung` subclass and one line
``registry.rungs.register("<name>", "<module>:<Class>")`` (or an entry in
:data:`attrib.registry.rungs`, or an installed package's ``attrib.rungs`` entry
point): its ``position`` places it on the ladder
(lower is more exact; ``forced`` is 10, ``top_logprobs`` 20, ``text`` 30).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from attrib.backend import Capabilities, Messages, ScoreKind, ScoreResult
from attrib.errors import RequestRejectedError

from ..transport import Transport

__all__ = ["LENGTH_FIELDS", "Generated", "Rung", "chat_body", "message_text", "prompt_tokens"]

#: The chat field that caps the output's length: ``max_tokens`` (every OpenAI-compatible server),
#: and ``max_completion_tokens``, which OpenAI's reasoning models require in its place.
LENGTH_FIELDS: tuple[str, str] = ("max_tokens", "max_completion_tokens")


@dataclass(frozen=True)
class Generated:
    """A greedy output as the endpoint returned it.

    Attributes:
        text: the output text.
        tokens: its tokens as texts when the endpoint listed them (they may not join to
            ``text``; the backend then splits ``text`` itself).
        tokens_evaluated: prompt plus completion tokens the endpoint reported.
    """

    text: str
    tokens: tuple[str, ...]
    tokens_evaluated: int


class Rung(abc.ABC):
    """One way of scoring a fixed output through an OpenAI-compatible endpoint.

    Args:
        transport: the endpoint.
        model: the served model's name.
        top_logprobs: alternatives asked per position, for rungs that read them (1-20).

    Attributes:
        name: the rung's registry name, recorded in results as ``backend["scoring"]``.
        position: place on the ladder, most exact first (lower is tried first).
        score_kind: what :meth:`score` returns (``"logprob"``: nats; ``"text-similarity"``).
        supports_target: whether it can score an output the model did not generate itself.
    """

    name: ClassVar[str]
    position: ClassVar[int]
    score_kind: ClassVar[ScoreKind] = "logprob"
    supports_target: ClassVar[bool] = True
    #: Whether :meth:`score` takes ``ids``: the prompt and continuation as the server's token ids.
    takes_token_ids: ClassVar[bool] = False

    def __init__(self, *, transport: Transport, model: str, top_logprobs: int = 20) -> None:
        self.transport = transport
        self.model = model
        self.top_logprobs = top_logprobs
        #: A chat template (jinja2) the server's chat route should apply instead of its own,
        #: sent as ``chat_template`` with every chat request (vLLM and SGLang take it); ``None``: the server's.
        self.chat_template: str | None = None
        #: The chat field that caps the output's length (:data:`LENGTH_FIELDS`), switched once
        #: when the endpoint refuses ``max_tokens`` and names ``max_completion_tokens``.
        self.length_field = LENGTH_FIELDS[0]

    async def chat(self, body: dict[str, Any], *, probe: Sequence[str] | None = None) -> dict[str, Any] | None:
        """POST a chat request built by :func:`chat_body`, with the length field this endpoint takes.

        OpenAI's reasoning models refuse ``max_tokens`` ("Use 'max_completion_tokens'
        instead"): on that refusal the request is sent again once with
        ``max_completion_tokens``, which every later request of this rung then uses.
        With ``probe`` (the probed parameters' names) it is a probe: ``None`` when the
        endpoint answers that it does not offer them (:meth:`Transport.probe_call`).

        Raises:
            EndpointError: as :meth:`Transport.model_call`.
        """
        for _ in LENGTH_FIELDS:
            sent = _with_length_field(body, self.length_field)
            try:
                if probe is not None:
                    return await self.transport.probe_call(
                        "/chat/completions", sent, names=probe, what=f"probing {self.name} scoring"
                    )
                return await self.transport.model_call("/chat/completions", sent)
            except RequestRejectedError as error:
                other = LENGTH_FIELDS[1]
                if self.length_field == other or other not in str(error) or error.status not in (400, 422):
                    raise
                self.length_field = other
        raise AssertionError("unreachable")  # pragma: no cover - the second field raises or returns

    @abc.abstractmethod
    async def probe(self) -> bool:
        """Whether the endpoint offers this rung, from its answer to one small request.

        Raises:
            EndpointError: if the endpoint keeps failing, refuses the key, or answers
                with something that is not the API (never read as "not supported").
        """

    @abc.abstractmethod
    async def score(self, prompt: str, continuation: Sequence[str], *, messages: Messages | None) -> ScoreResult:
        """Scores of ``continuation`` (token texts, m >= 1) after ``prompt``.

        Returns:
            :class:`~attrib.backend.ScoreResult` with ``logprobs`` of shape (m,): nats,
            or retention in [-1, 0] for a ``"text-similarity"`` rung.

        Raises:
            ResponseMismatchError: if the answer does not hold what was asked for.
            EndpointError: if the endpoint refuses or keeps failing.
        """

    @abc.abstractmethod
    async def generate(self, prompt: str, *, max_new_tokens: int, messages: Messages | None) -> Generated:
        """The greedy output after ``prompt`` (or for ``messages``), at most ``max_new_tokens`` tokens.

        Raises:
            EndpointError: if the endpoint refuses or keeps failing.
        """

    def capabilities(self, *, has_tokenizer: bool) -> Capabilities:
        """The backend's capabilities with this rung (token ids are always local)."""
        return Capabilities(
            score_kind=self.score_kind,
            supports_target=self.supports_target,
            exposes_token_ids=False,
            has_tokenizer=has_tokenizer,
        )

    def identity(self) -> dict[str, object]:
        """What of this rung changes a score: its name (and settings it sends)."""
        return {"scoring": self.name}


def chat_body(
    prompt: str,
    messages: Messages | None,
    *,
    model: str,
    max_tokens: int,
    top_logprobs: int | None,
    chat_template: str | None = None,
) -> dict[str, Any]:
    """A greedy chat request: ``messages`` as given, or the plain prompt as one user message.

    A coalition with no message at all is sent as one empty user message (the API
    needs at least one). ``top_logprobs`` asks for log-probabilities and that many
    alternatives per position; ``None`` asks for none. ``chat_template`` is sent as the
    request's ``chat_template`` (vLLM's and SGLang's chat routes apply it instead of the
    model's; OpenAI's refuses unknown fields, so it is sent only when given).
    """
    if messages is None:
        chat = [{"role": "user", "content": prompt}]
    else:
        chat = [{"role": role, "content": content} for role, content in messages] or [{"role": "user", "content": ""}]
    body: dict[str, Any] = {"model": model, "messages": chat, "max_tokens": max_tokens, "temperature": 0.0, "seed": 0}
    if top_logprobs is not None:
        body.update(logprobs=True, top_logprobs=top_logprobs)
    if chat_template is not None:
        body["chat_template"] = chat_template
    return body


def _with_length_field(body: dict[str, Any], field: str) -> dict[str, Any]:
    """``body`` with its length cap under ``field`` (the other length field removed)."""
    value = next((body[name] for name in LENGTH_FIELDS if name in body), None)
    if value is None:
        return body
    return {**{k: v for k, v in body.items() if k not in LENGTH_FIELDS}, field: value}


def _first_choice(data: dict[str, Any]) -> dict[str, Any]:
    choice = data["choices"][0]
    return choice if isinstance(choice, dict) else {}


def message_text(data: dict[str, Any]) -> str:
    """The assistant message of a chat answer (``""`` when there is none)."""
    message = _first_choice(data).get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def prompt_tokens(data: dict[str, Any], *, completion: bool = False) -> int:
    """Prompt tokens an answer's ``usage`` reports (plus completion tokens with ``completion``)."""
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return 0
    names = ("prompt_tokens", "completion_tokens") if completion else ("prompt_tokens",)
    return sum(v for v in (usage.get(n) for n in names) if isinstance(v, int) and not isinstance(v, bool))


def chat_logprobs(data: dict[str, Any]) -> list[Any] | None:
    """The ``logprobs.content`` list of a chat answer, or ``None`` when it carries none."""
    logprobs = _first_choice(data).get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    return content if isinstance(content, list) else None

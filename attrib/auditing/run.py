"""System-prompt audits: which messages and instructions drive an output, and whether something hidden does.

:func:`audit` runs the attribution pipeline on the visible chat (message Shapley
values and units inside each message), then judges hidden influence with the
indicators of :mod:`attrib.auditing.hidden_influence`: reference-free from the output's
log-probability with nothing visible, and differential against a reference
endpoint (the same model without the suspected prompt) when one is given.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Unpack

import numpy as np

from attrib.auditing.hidden_influence import differential, reference_free
from attrib.backend import Backend, ScoreRequest
from attrib.cache.wrapper import CacheSpec
from attrib.errors import InputError, ResultError
from attrib.loading import open_backend
from attrib.options import AuditOptions, RunOptions, with_options
from attrib.pipeline import run
from attrib.progress import Progress
from attrib.prompt import ChatPrompt
from attrib.result import Attribution, HiddenInfluence

__all__ = ["audit"]


@with_options("audit")
def audit(
    prompt: str | None = None,
    *,
    system: str | None = None,
    messages: list[dict[str, str]] | None = None,
    backend: Backend | str | None = None,
    backend_options: dict[str, Any] | None = None,
    reference: Backend | str | None = None,
    reference_options: dict[str, Any] | None = None,
    cache: CacheSpec = None,
    progress: bool | Progress | None = False,
    **options: Unpack[AuditOptions],
) -> Attribution:
    """Audit how much a system prompt, seen or hidden, drives an output.

    Attributes the output to the chat's messages (Shapley values: ``result.roles``) and
    to the units inside each message (``level``, default sentences), then judges
    whether something the caller cannot see steers the endpoint
    (``result.hidden_influence``, see :mod:`attrib.auditing.hidden_influence`): reference-free from
    ``log p(y | visible)`` against ``log p(y | nothing visible)``, and, when a
    ``reference`` endpoint (the same model without the suspected prompt) is given,
    differentially from the two endpoints' log-probabilities of the same output.

    Args:
        prompt: the user message (or use ``messages``).
        system: the visible system prompt, if any.
        messages: the whole visible chat instead of ``system`` + ``prompt``.
        backend, backend_options: the audited endpoint (as in :func:`attrib.attribute`).
        reference, reference_options: the reference endpoint, or ``None``.
        cache, progress: as in :func:`attrib.attribute`.
        **options: the run options (:class:`~attrib.options.AuditOptions`), declared there;
            ``help()`` lists them below with their defaults. With a contrast, the attributions
            and the messages' Shapley values are contrastive; hidden influence is judged on the
            output's own log-probability.

    Returns:
        An :class:`~attrib.result.Attribution` with ``roles``, ``shapley`` and
        ``hidden_influence`` (``flag``, ``score``, ``method``, ``indicators``).

    Raises:
        InputError: if neither ``prompt`` nor ``messages`` is given, or both are.
        AttribError: the errors of :func:`attrib.attribute`.
    """
    started = time.perf_counter()
    if (prompt is None) == (messages is None):
        raise InputError("give the user prompt or the whole chat as messages (not both)")
    if prompt is not None:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    elif system is not None:
        raise InputError("give the system prompt inside messages, or use system= with prompt=")
    checked = RunOptions.build(task="audit", **options)
    chat = ChatPrompt.of(messages, checked.chat_template)
    bar = progress if isinstance(progress, Progress) else Progress(enabled=progress)
    with open_backend(backend, backend_options, cache) as model:
        result = run(chat, model, checked, progress=bar, started=started)
    if result.base_logprobs is None or result.shapley is None:
        raise ResultError("the audited run recorded no base log-probabilities or message values")
    own = result.output_columns  # hidden influence is about the output, not the contrast
    base = result.base_logprobs[own]
    empty = np.asarray(result.shapley.empty_logprobs, dtype=np.float64)[own]
    indicators = {"reference_free": reference_free(base, empty)}
    described = result.backend
    if reference is not None:
        with open_backend(reference, reference_options, cache) as ref_model:
            reference_logprobs = _score_elsewhere(ref_model, chat, result)
            described = {**described, "reference": ref_model.describe()}
        indicators["differential"] = differential(base, reference_logprobs, result.output_tokens[own])
    verdict = indicators.get("differential") or indicators["reference_free"]
    hidden = HiddenInfluence.from_dict(
        {"flag": verdict["flag"], "score": verdict["score"], "method": verdict["method"], "indicators": indicators}
    )
    return dataclasses.replace(result, backend=described, hidden_influence=hidden)


def _score_elsewhere(model: Backend, chat: ChatPrompt, result: Attribution) -> np.ndarray:
    """``log p(y_t | visible messages)`` of ``result``'s output (not its contrast) at another endpoint, nats, shape (m,).

    The output keeps the audited endpoint's tokens: ids when both sides expose the same
    model's ids, otherwise the output text tokenized by the reference; a tokenization
    that differs in length is scored on the reference's own tokens and spread evenly
    over the audited ones.
    """
    layout = chat.render(model)
    own = result.output_columns
    if result.output_token_ids is not None and model.capabilities().exposes_token_ids:
        output_ids = tuple(result.output_token_ids[own])
    else:
        output_ids = model.tokenize(result.output).ids
    request = ScoreRequest(
        layout.tokenization.ids, output_ids, layout.tokenization.text, messages=chat.generation_messages
    )
    logprobs = np.asarray(model.score([request])[0].logprobs, dtype=np.float64)
    m = len(result.output_tokens[own])
    if len(logprobs) != m:
        return np.full(m, logprobs.sum() / m)
    return logprobs

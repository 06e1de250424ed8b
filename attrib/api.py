"""``attrib.attribute``: explain a model's output by perturbing its prompt."""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from attrib.backend import Backend, Generation, Messages, ScoreRequest, ScoreResult, load_backend
from attrib.chat import DEFAULT_TEMPLATE, ChatLayout, check_messages, layout_chat
from attrib.errors import BudgetError, EmptyOutputError, EmptyPromptError, InputError, PromptTooLongError
from attrib.hipe import HiPe
from attrib.perturbation import Perturbation, get_perturbation
from attrib.progress import Progress
from attrib.result import Attribution, Stats
from attrib.scheduler import Scheduler, get_scheduler
from attrib.influence import differential, reference_free
from attrib.roles import coalitions, role_shares, shapley_values
from attrib.scoring import RegionScorer, Scorer
from attrib.segmentation import Segmentation, Tokenization, Unit, check_level

__all__ = ["attribute", "audit", "plan", "Plan", "noise_floor", "default_backend", "split_target"]


@functools.lru_cache(maxsize=1)
def default_backend() -> Backend:
    """The embedded local model (Gemma 3 270M through llama.cpp), loaded once per process.

    Raises:
        BackendUnavailableError: if ``attrib[local]`` is not installed.
    """
    return load_backend("llama")


def _resolve_backend(backend: Backend | str | None, options: dict[str, Any] | None) -> tuple[Backend, bool]:
    """The backend to use, and whether this call created it (and so must close it)."""
    if isinstance(backend, Backend):
        if options:
            raise InputError("backend_options apply to a backend given by name, not to a Backend instance")
        return backend, False
    if backend is not None and not isinstance(backend, str):
        raise InputError(f"backend must be a name or an attrib Backend, got {type(backend).__name__}")
    if backend in (None, "llama") and not options:
        return default_backend(), False
    return load_backend(backend or "llama", **(options or {})), True


def _unit_level(model: Backend, level: str) -> str:
    if level == "token" and not model.capabilities().has_tokenizer:
        warnings.warn(
            "this endpoint exposes no tokenizer, so units are words (level 'word'); "
            "pass level='word' to silence this",
            stacklevel=3,
        )
        return "word"
    return level


def _validate(prompt: object, level: str, max_new_tokens: int, target: str | None, budget: int | None) -> None:
    if isinstance(prompt, list):
        check_messages(prompt)
    elif not isinstance(prompt, str):
        raise InputError(f"prompt must be a string or a list of chat messages, got {type(prompt).__name__}")
    elif not prompt.strip():
        raise EmptyPromptError("prompt is empty; give the text to explain")
    check_level(level)
    if max_new_tokens < 1 and target is None:
        raise InputError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if target == "":
        raise InputError("target is empty; pass the output text to explain, or omit it to generate")
    if budget is not None and budget < 2:
        raise BudgetError(f"budget must allow at least 2 calls, got {budget}")


def split_target(backend: Backend, prompt: str, target: str) -> tuple[Tokenization, tuple[int, ...], str]:
    """Tokenize ``prompt + target`` together and split it at the prompt's end.

    Encoding context and continuation together keeps the boundary tokens as the
    model sees them in running text (the lm-evaluation-harness convention). When a
    token straddles the boundary (``"... is "`` + ``"Paris"`` tokenizes as
    ``" Paris"``), that token belongs to the output and the prompt is shortened to
    its start; a warning says so.

    Returns:
        ``(prompt tokenization, output token ids, output text)``.

    Raises:
        EmptyPromptError: if nothing of the prompt remains before the target.
        InputError: if the target is empty.
    """
    if not target:
        raise InputError("target is empty; pass the output text to explain, or omit it to generate")
    whole = backend.tokenize(prompt + target)
    cut = len(whole)
    for position in range(len(whole)):
        if whole.spans[position][1] > len(prompt):
            cut = position
            break
    # Only cut on a character-aligned edge.
    while cut > 0 and cut not in whole.edges:
        cut -= 1
    prompt_chars = whole.char_offset(cut)
    if prompt_chars < len(prompt):
        warnings.warn(
            f"the prompt's last {len(prompt) - prompt_chars} character(s) "
            f"{prompt[prompt_chars:]!r} merge with the target's first token; "
            "they are scored as part of the output",
            stacklevel=3,
        )
    if not prompt[:prompt_chars].strip():
        raise EmptyPromptError("nothing of the prompt remains before the target")
    return whole.head(cut), whole.ids[cut:], whole.text[prompt_chars:]


def _check_fits(backend: Backend, n_prompt: int, n_output: int) -> None:
    needed = n_prompt + n_output + 1
    if needed > backend.context_length:
        raise PromptTooLongError(
            f"prompt is {n_prompt:,} tokens and the output {n_output:,}; with BOS that is "
            f"{needed:,}, over the model's context of {backend.context_length:,} tokens; "
            "shorten the prompt or the output",
            n_tokens=needed,
            limit=backend.context_length,
        )


def attribute(
    prompt: str | list[dict[str, str]],
    *,
    backend: Backend | str | None = None,
    backend_options: dict[str, Any] | None = None,
    method: str | Scheduler = "hipe",
    level: str = "token",
    target: str | None = None,
    max_new_tokens: int = 16,
    budget: int | None = None,
    seed: int = 0,
    perturbation: str | Perturbation = "delete",
    noise_samples: int = 0,
    chat_template: str | None = None,
    progress: bool | Progress | None = False,
) -> Attribution:
    """Attribute a model's output to the units of its prompt by perturbation.

    The output ``y`` is generated once greedily (or given as ``target``). Then the
    chosen method ablates units of the prompt and scores the *original* output
    under each variant by forced decoding; the attribution of unit ``u`` to output
    token ``t`` is ``log p(y_t | x, y_<t) - log p(y_t | x without u, y_<t)`` in nats.

    Args:
        prompt: the prompt text (plain text; special-token syntax is treated as text),
            or a chat as a list of ``{"role", "content"}`` messages. A chat is rendered
            with the model's chat template (``chat_template`` overrides it; without one,
            :data:`attrib.chat.DEFAULT_TEMPLATE`); only message content is perturbed.
            Each message gets its Shapley value (``result.roles``), then units inside
            every message are attributed by ``method``; their spans index their message.
        backend: ``None`` for the embedded local model (Gemma 3 270M via llama.cpp),
            a registered name (``"llama"``, ``"openai"``, ``"toy"``), or a
            :class:`~attrib.backend.Backend`.
        backend_options: keyword arguments for a backend given by name, e.g.
            ``{"base_url": "http://127.0.0.1:8080/v1", "model": "gemma"}`` for ``"openai"``.
            A backend built from them is closed when the call returns.
        method: ``"hipe"`` (hierarchical perturbation, default), ``"itp"`` (exhaustive
            leave-one-out), or a scheduler instance such as ``HiPe(threshold="relative")``.
        level: unit level: ``"token"``, ``"word"``, ``"sentence"`` or ``"paragraph"``.
            A backend without the model's tokenizer turns ``"token"`` into ``"word"``
            (with a warning).
        target: output text to explain; ``None`` generates it greedily.
        max_new_tokens: tokens to generate when ``target`` is ``None``.
        budget: maximum scoring calls, the unperturbed prompt and noise samples
            included; ``None`` for no limit. Calls answered from a cache count too, so
            a re-run follows the same schedule.
        seed: recorded for reproducibility (the built-in methods are deterministic).
        perturbation: ``"delete"`` (default), ``"replace"``, or a perturbation instance.
        noise_samples: score the unperturbed prompt this many more times and mark the
            units whose attribution is within the spread (for endpoints that are not
            deterministic); see :func:`noise_floor`.
        progress: draw a progress line on stderr (``None``: only on a terminal).

    Returns:
        An :class:`~attrib.result.Attribution` with ``scores`` of shape
        (n_units, n_output_tokens), in nats (``score_kind == "logprob"``) or, from a
        text-only endpoint, in text-similarity units.

    Raises:
        EmptyPromptError: if the prompt is empty or whitespace.
        PromptTooLongError: if prompt and output exceed the model's context.
        UnknownNameError: for an unknown method, level, backend or perturbation.
        BudgetError: if ``budget`` cannot cover the method's first round.
        InputError: for a ``target`` on an endpoint that can only regenerate.
        BackendUnavailableError: if the default backend's extra is not installed.
        EmptyOutputError: if the model generates nothing and no target was given.
        EndpointError: if an API endpoint refuses a request or keeps failing.
    """
    started = time.perf_counter()
    _validate(prompt, level, max_new_tokens, target, budget)
    if noise_samples < 0:
        raise InputError(f"noise_samples must be 0 or more, got {noise_samples}")
    scheduler = get_scheduler(method)
    perturb = get_perturbation(perturbation)
    model, owned = _resolve_backend(backend, backend_options)
    try:
        if target is not None and not model.capabilities().supports_target:
            raise InputError(
                "this endpoint can only regenerate outputs (no forced scoring), so it cannot explain a given "
                "target; omit target to explain the model's own output"
            )
        if isinstance(prompt, list):
            if noise_samples:
                raise InputError("noise_samples applies to plain prompts; it is not implemented for chats yet")
            return _attribute_chat(
                check_messages(prompt), model, scheduler, perturb, level, target, max_new_tokens, budget, seed,
                chat_template, progress, started,
            )
        return _attribute(
            prompt, model, scheduler, perturb, level, target, max_new_tokens, budget, seed,
            noise_samples, progress, started,
        )
    finally:
        if owned:
            model.close()


def _generate(
    model: Backend, prompt_ids: Sequence[int], max_new_tokens: int, bar: Progress, *, messages: Messages | None = None
) -> Generation:
    """The model's greedy output for the prompt, checked to fit and to be non-empty.

    Raises:
        PromptTooLongError: if prompt and output would exceed the context.
        EmptyOutputError: if the model stops at once.
    """
    _check_fits(model, len(prompt_ids), max_new_tokens)
    bar.set_phase("generating")
    generation = model.generate(prompt_ids, max_new_tokens=max_new_tokens, messages=messages)
    if not generation.ids:
        raise EmptyOutputError(
            "the model generated no output (it stopped at once); pass target=... to explain a given output"
        )
    return generation


def _run_stats(
    model: Backend,
    scorer: Scorer,
    usage_before: dict[str, int],
    started: float,
    *,
    tokens_evaluated: int,
    generated: int,
    budget: int | None,
    budget_exhausted: bool,
    extra_calls: int = 0,
) -> Stats:
    """What the run cost: the scorer's calls and tokens plus ``extra_calls`` made outside it,
    and the backend's own counters since ``usage_before``."""
    usage_after = model.usage_snapshot()
    return Stats(
        calls=scorer.calls + extra_calls,
        tokens_evaluated=tokens_evaluated + scorer.tokens_evaluated,
        seconds=time.perf_counter() - started,
        generated_tokens=generated,
        reused=scorer.reused,
        budget=budget,
        budget_exhausted=budget_exhausted,
        backend_usage={key: value - usage_before.get(key, 0) for key, value in usage_after.items()},
    )


def _attribute(
    prompt: str,
    model: Backend,
    scheduler: Scheduler,
    perturb: Perturbation,
    level: str,
    target: str | None,
    max_new_tokens: int,
    budget: int | None,
    seed: int,
    noise_samples: int,
    progress: bool | Progress | None,
    started: float,
) -> Attribution:
    level = _unit_level(model, level)
    usage_before = model.usage_snapshot()
    perturb = perturb.bind(model.tokenize)

    bar = progress if isinstance(progress, Progress) else Progress(enabled=progress)
    try:
        generated = 0
        tokens_evaluated = 0
        if target is None:
            tokens = model.tokenize(prompt)
            generation = _generate(model, tokens.ids, max_new_tokens, bar)
            output_ids = generation.ids
            generated = len(output_ids)
            tokens_evaluated += generation.tokens_evaluated
            output_text = model.detokenize(output_ids)
        else:
            tokens, output_ids, output_text = split_target(model, prompt, target)
            _check_fits(model, len(tokens), len(output_ids))
        segmentation = Segmentation(tokens)

        needed = scheduler.min_calls(segmentation, level) + 1 + noise_samples
        if budget is not None and budget < needed:
            raise BudgetError(
                f"{scheduler.name} at {level} level needs at least {needed} calls here but the "
                f"budget is {budget}; raise --budget"
                + (" or use --method hipe" if scheduler.name == "itp" else "")
            )
        scorer = Scorer(model, tokens, output_ids, perturb, budget=budget, on_call=bar.update)

        def on_phase(label: str, total: int | None) -> None:
            bar.set_phase(label, total=total)

        bar.set_phase("scoring the prompt", total=1)
        scorer.base_logprobs  # noqa: B018 - the first call, alone, so progress starts at once
        noise_rows = None
        if noise_samples:
            bar.set_phase("noise samples", total=noise_samples + 1)
            noise_rows = scorer.repeat_base(noise_samples)
        base = scorer.base_logprobs
        schedule = scheduler.run(scorer, segmentation, level, on_phase=on_phase)
    finally:
        bar.close()

    units = segmentation.units(level)
    stats = _run_stats(
        model, scorer, usage_before, started,
        tokens_evaluated=tokens_evaluated, generated=generated, budget=budget,
        budget_exhausted=schedule.budget_exhausted,
    )  # fmt: skip
    parameters: dict[str, Any] = {**scheduler.describe(), "seed": seed}
    if target is None:
        parameters["max_new_tokens"] = max_new_tokens
    return Attribution(
        prompt=tokens.text,
        units=units,
        output=output_text,
        output_tokens=model.token_text(output_ids),
        scores=schedule.scores,
        method=scheduler.name,
        level=level,
        backend=model.describe(),
        stats=stats,
        output_token_ids=list(output_ids) if model.capabilities().exposes_token_ids else None,
        base_logprobs=base,
        perturbation=perturb.describe(),
        parameters=parameters,
        trace=schedule.trace,
        score_kind=model.capabilities().score_kind,
        noise=None if noise_rows is None else noise_floor(noise_rows, schedule.scores),
    )


def _attribute_chat(
    messages: list[dict[str, str]],
    model: Backend,
    scheduler: Scheduler,
    perturb: Perturbation,
    level: str,
    target: str | None,
    max_new_tokens: int,
    budget: int | None,
    seed: int,
    chat_template: str | None,
    progress: bool | Progress | None,
    started: float,
) -> Attribution:
    """The chat path of :func:`attribute`: Shapley values over messages, then units inside each message."""
    level = _unit_level(model, level)
    template = chat_template or model.chat_template or DEFAULT_TEMPLATE
    usage_before = model.usage_snapshot()
    perturb = perturb.bind(model.tokenize)

    def lay(subset: list[dict[str, str]]) -> ChatLayout:
        return layout_chat(subset, template, tokenize=model.tokenize, tokenize_markup=model.tokenize_markup)

    layout = lay(messages)
    prompt_tokens = layout.tokenization
    bar = progress if isinstance(progress, Progress) else Progress(enabled=progress)
    try:
        generated = 0
        tokens_evaluated = 0
        if target is None:
            chat = tuple((m["role"], m["content"]) for m in messages)
            generation = _generate(model, prompt_tokens.ids, max_new_tokens, bar, messages=chat)
            output_ids = generation.ids
            generated = len(output_ids)
            tokens_evaluated += generation.tokens_evaluated
        else:
            output_ids = model.tokenize(target).ids
            _check_fits(model, len(prompt_tokens), len(output_ids))
        output_text = model.detokenize(output_ids)
        regions = [i for i, content in enumerate(layout.contents) if len(content)]
        segmentations = {
            i: Segmentation(layout.contents[i], role=messages[i]["role"], message=i) for i in regions
        }
        k = len(messages)
        subsets = coalitions(k, seed=seed)
        needed = sum(scheduler.min_calls(segmentations[i], level) for i in regions) + len(subsets)
        if budget is not None and budget < needed:
            raise BudgetError(
                f"{scheduler.name} over {len(regions)} messages needs at least {needed} calls here (with "
                f"{len(subsets)} for the messages' Shapley values) but the budget is {budget}; raise --budget"
            )
        scorer = Scorer(model, prompt_tokens, output_ids, perturb, budget=budget, on_call=bar.update, chat=layout)
        bar.set_phase("scoring the prompt", total=1)
        base = scorer.base_logprobs

        # Shapley values of the messages: every coalition rendered on its own.
        bar.set_phase("message coalitions", total=len(subsets))
        others = [s for s in subsets if len(s) < k]
        requests = []
        for subset in others:
            kept = [messages[j] for j in sorted(subset)]
            sub = lay(kept)
            requests.append(
                ScoreRequest(
                    sub.tokenization.ids,
                    tuple(output_ids),
                    sub.tokenization.text,
                    messages=tuple((m["role"], m["content"]) for m in kept),
                )
            )
        results = model.score(requests)
        coalition_calls = len(results)
        tokens_evaluated += sum(int(r.tokens_evaluated) for r in results)
        values = {s: np.asarray(r.logprobs, dtype=np.float64) for s, r in zip(others, results, strict=True)}
        values[frozenset(range(k))] = base
        phi, exact = shapley_values(values, k, seed=seed)
        if scorer.budget is not None:
            scorer.budget -= coalition_calls

        units: list[Unit] = []
        rows: list[np.ndarray] = []
        chunks: list[dict[str, Any]] = []
        depths = 0
        budget_exhausted = False
        for i in regions:
            seg = segmentations[i]

            def on_phase(label: str, total: int | None, i: int = i) -> None:
                bar.set_phase(f"{messages[i]['role']} message {i}: {label}", total=total)

            schedule = scheduler.run(RegionScorer(scorer, layout.offsets[i]), seg, level, on_phase=on_phase)
            units.extend(seg.units(level))
            rows.append(schedule.scores)
            budget_exhausted |= schedule.budget_exhausted
            if schedule.trace and "chunks" in schedule.trace:
                first = len(chunks)
                depths = max(depths, int(schedule.trace.get("depths", 0)))
                for chunk in schedule.trace["chunks"]:
                    parent = chunk.get("parent")
                    chunks.append({
                        **chunk,
                        "message": i,
                        "start": chunk["start"] + layout.offsets[i],
                        "end": chunk["end"] + layout.offsets[i],
                        "char_start": chunk["char_start"] + layout.char_offsets[i],
                        "char_end": chunk["char_end"] + layout.char_offsets[i],
                        "parent": None if parent is None else parent + first,
                    })  # fmt: skip
    finally:
        bar.close()

    stats = _run_stats(
        model, scorer, usage_before, started,
        tokens_evaluated=tokens_evaluated, generated=generated, budget=budget,
        budget_exhausted=budget_exhausted, extra_calls=coalition_calls,
    )  # fmt: skip
    parameters: dict[str, Any] = {**scheduler.describe(), "seed": seed, "chat_template": template}
    if target is None:
        parameters["max_new_tokens"] = max_new_tokens
    roles = [m["role"] for m in messages]
    totals = phi.sum(axis=1)
    return Attribution(
        prompt=prompt_tokens.text,
        units=units,
        output=output_text,
        output_tokens=model.token_text(output_ids),
        scores=np.concatenate(rows) if rows else np.zeros((0, len(output_ids))),
        method=scheduler.name,
        level=level,
        backend=model.describe(),
        stats=stats,
        output_token_ids=list(output_ids) if model.capabilities().exposes_token_ids else None,
        base_logprobs=base,
        perturbation=perturb.describe(),
        parameters=parameters,
        trace={"depths": depths, "chunks": chunks} if chunks else None,
        score_kind=model.capabilities().score_kind,
        messages=messages,
        roles=role_shares(phi, roles),
        shapley={
            "values": [[float(v) for v in row] for row in phi],
            "message_totals": [float(v) for v in totals],
            "exact": exact,
            "empty_logprobs": [float(v) for v in values[frozenset()]],
            "coalitions": len(subsets),
        },
    )


def audit(
    prompt: str | None = None,
    *,
    system: str | None = None,
    messages: list[dict[str, str]] | None = None,
    backend: Backend | str | None = None,
    backend_options: dict[str, Any] | None = None,
    reference: Backend | str | None = None,
    reference_options: dict[str, Any] | None = None,
    method: str | Scheduler = "hipe",
    level: str = "sentence",
    target: str | None = None,
    max_new_tokens: int = 16,
    budget: int | None = None,
    seed: int = 0,
    chat_template: str | None = None,
    progress: bool | Progress | None = False,
) -> Attribution:
    """Audit how much a system prompt, seen or hidden, drives an output.

    Attributes the output to the chat's messages (Shapley values: ``result.roles``) and
    to the units inside each message (``level``, default sentences), then judges
    whether something the caller cannot see steers the endpoint
    (``result.hidden_influence``, see :mod:`attrib.influence`): reference-free from
    ``log p(y | visible)`` against ``log p(y | nothing visible)``, and, when a
    ``reference`` endpoint (the same model without the suspected prompt) is given,
    differentially from the two endpoints' log-probabilities of the same output.

    Args:
        prompt: the user message (or use ``messages``).
        system: the visible system prompt, if any.
        messages: the whole visible chat instead of ``system`` + ``prompt``.
        backend, backend_options: the audited endpoint (as in :func:`attribute`).
        reference, reference_options: the reference endpoint, or ``None``.
        method, level, target, max_new_tokens, budget, seed, chat_template, progress:
            as in :func:`attribute`.

    Returns:
        An :class:`~attrib.result.Attribution` with ``roles``, ``shapley`` and
        ``hidden_influence`` (``flag``, ``score``, ``method``, ``indicators``).

    Raises:
        InputError: if neither ``prompt`` nor ``messages`` is given, or both are.
        The errors of :func:`attribute`.
    """
    if (prompt is None) == (messages is None):
        raise InputError("give the user prompt or the whole chat as messages (not both)")
    if messages is None:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    elif system is not None:
        raise InputError("give the system prompt inside messages, or use system= with prompt=")
    checked = check_messages(messages)
    model, owned = _resolve_backend(backend, backend_options)
    try:
        result = attribute(
            checked, backend=model, method=method, level=level, target=target, max_new_tokens=max_new_tokens,
            budget=budget, seed=seed, chat_template=chat_template, progress=progress,
        )  # fmt: skip
    finally:
        if owned:
            model.close()
    assert result.base_logprobs is not None and result.shapley is not None
    indicators = {"reference_free": reference_free(result.base_logprobs, np.asarray(result.shapley["empty_logprobs"]))}
    if reference is not None:
        ref_model, ref_owned = _resolve_backend(reference, reference_options)
        try:
            reference_logprobs = _score_elsewhere(ref_model, checked, result, chat_template)
            result.backend = {**result.backend, "reference": ref_model.describe()}
        finally:
            if ref_owned:
                ref_model.close()
        indicators["differential"] = differential(result.base_logprobs, reference_logprobs, result.output_tokens)
    verdict = indicators.get("differential") or indicators["reference_free"]
    result.hidden_influence = {
        "flag": verdict["flag"],
        "score": verdict["score"],
        "method": verdict["method"],
        "indicators": indicators,
    }
    return result


def _score_elsewhere(
    model: Backend, messages: list[dict[str, str]], result: Attribution, chat_template: str | None
) -> np.ndarray:
    """``log p(y_t | visible messages)`` of ``result``'s output at another endpoint, nats, shape (m,).

    The output keeps the audited endpoint's tokens: texts for API backends, ids when
    both sides expose the same model's ids; a tokenization that differs in length is
    scored on the reference's own tokens and spread evenly over the audited ones.
    """
    template = chat_template or model.chat_template or DEFAULT_TEMPLATE
    layout = layout_chat(messages, template, tokenize=model.tokenize, tokenize_markup=model.tokenize_markup)
    if result.output_token_ids is not None and model.capabilities().exposes_token_ids:
        output_ids = tuple(result.output_token_ids)
    else:
        output_ids = model.tokenize(result.output).ids
    request = ScoreRequest(
        layout.tokenization.ids,
        output_ids,
        layout.tokenization.text,
        messages=tuple((m["role"], m["content"]) for m in messages),
    )
    logprobs = np.asarray(model.score([request])[0].logprobs, dtype=np.float64)
    m = len(result.output_tokens)
    if len(logprobs) != m:
        return np.full(m, logprobs.sum() / m)
    return logprobs


def noise_floor(samples: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """The noise floor of a run from repeated scores of the unperturbed prompt.

    An attribution is the difference between the base score, averaged over the
    ``k + 1`` samples, and one variant's score, so with per-request noise of standard
    deviation ``sd`` its own standard deviation is ``sd * sqrt(1 + 1/(k + 1))``. A
    unit is *within noise* when its total attribution is no larger in magnitude than
    two of those (about a 95% band for Gaussian noise).

    Args:
        samples: log-probabilities of the output under the unperturbed prompt, one
            row per repeat, shape (k + 1, m), nats.
        scores: the run's attribution matrix, shape (n_units, m).

    Returns:
        ``{"samples", "sd_per_token" (m,), "sd_total", "range_total", "threshold",
        "within_noise" (n_units,)}``; standard deviations and threshold in nats.
    """
    totals = samples.sum(axis=1)
    ddof = 1 if len(samples) > 1 else 0
    sd_total = float(totals.std(ddof=ddof))
    threshold = 2.0 * sd_total * float(np.sqrt(1.0 + 1.0 / len(samples)))
    return {
        "samples": int(len(samples)),
        "sd_per_token": [float(v) for v in samples.std(axis=0, ddof=ddof)],
        "sd_total": sd_total,
        "range_total": float(totals.max() - totals.min()),
        "threshold": threshold,
        "within_noise": [bool(abs(v) <= threshold) for v in scores.sum(axis=1)],
    }


@dataclass(frozen=True)
class Plan:
    """What a run would cost, computed without querying the model (``attrib explain --dry-run``).

    Attributes:
        method: the method's name.
        level: the unit level.
        units: number of units at that level.
        prompt_tokens: tokens in the prompt.
        output_tokens: tokens in the output (``max_new_tokens`` when it would be generated).
        generation_calls: 1 if the output would be generated, else 0.
        calls: scoring calls, the unperturbed prompt and noise samples included.
        tokens: prompt plus output tokens sent over all scoring calls (before any
            prefix reuse or caching).
        exact: True when ``calls`` is exact (``itp``); False for an upper bound
            (``hipe`` refining every chunk).
    """

    method: str
    level: str
    units: int
    prompt_tokens: int
    output_tokens: int
    generation_calls: int
    calls: int
    tokens: int
    exact: bool

    def describe(self) -> str:
        """One line for people: ``"hipe at token level over 251 units: at most ..."``."""
        bound = "" if self.exact else "at most "
        generation = "1 generation call + " if self.generation_calls else ""
        return (
            f"{self.method} at {self.level} level over {self.units:,} units: {bound}{generation}"
            f"{self.calls:,} scoring calls, {bound}{self.tokens:,} prompt tokens "
            f"({self.prompt_tokens:,}-token prompt, {self.output_tokens:,}-token output)"
        )


class _CountingBackend(Backend):
    """Answers every variant with a large drop so a schedule refines everything; counts tokens."""

    name = "plan"

    def __init__(self, base: tuple[int, ...]) -> None:
        self.base = base

    model = "plan"  # type: ignore[assignment]
    context_length = 1 << 30  # type: ignore[assignment]

    def tokenize(self, text: str) -> Tokenization:  # pragma: no cover - never called
        raise NotImplementedError

    def detokenize(self, ids: Sequence[int]) -> str:  # pragma: no cover - never called
        raise NotImplementedError

    def generate(self, prompt_ids: Sequence[int], *, max_new_tokens: int, messages: Any = None) -> Generation:  # pragma: no cover
        raise NotImplementedError

    def score(self, requests: Sequence[ScoreRequest], *, on_result: Any = None) -> list[ScoreResult]:
        return [
            ScoreResult(
                logprobs=np.full(len(r.continuation_ids), 0.0 if r.prompt_ids == self.base else -1e3),
                tokens_evaluated=len(r.prompt_ids) + len(r.continuation_ids),
            )
            for r in requests
        ]


def plan(
    prompt: str,
    *,
    backend: Backend | str | None = None,
    backend_options: dict[str, Any] | None = None,
    method: str | Scheduler = "hipe",
    level: str = "token",
    target: str | None = None,
    max_new_tokens: int = 16,
    budget: int | None = None,
    perturbation: str | Perturbation = "delete",
    noise_samples: int = 0,
) -> Plan:
    """The calls and tokens :func:`attribute` would need, without any model call.

    Only the prompt is tokenized (locally, or by an endpoint's tokenizer route).
    For ``hipe`` the numbers are an upper bound: the schedule is run against a
    stand-in that makes every chunk pass the threshold, capped by ``budget``.

    Returns:
        A :class:`Plan`.

    Raises:
        The same input errors as :func:`attribute`.
    """
    _validate(prompt, level, max_new_tokens, target, budget)
    if not isinstance(prompt, str):
        raise InputError("plan() takes a plain prompt; dry runs of chats are not implemented yet")
    scheduler = get_scheduler(method)
    if isinstance(scheduler, HiPe) and scheduler.top_k is not None:
        # the stand-in's drops are all equal, which would trigger the early stop at once
        scheduler = HiPe(
            threshold=scheduler.threshold, max_depth=scheduler.max_depth, leaf_group=scheduler.leaf_group,
            order=scheduler.order,
        )  # fmt: skip
    perturb = get_perturbation(perturbation)
    model, owned = _resolve_backend(backend, backend_options)
    try:
        level = _unit_level(model, level)
        perturb = perturb.bind(model.tokenize)
        if target is None:
            tokens = model.tokenize(prompt)
            output_ids: tuple[int, ...] = (0,) * max_new_tokens
        else:
            tokens, output_ids, _ = split_target(model, prompt, target)
    finally:
        if owned:
            model.close()
    segmentation = Segmentation(tokens)
    stand_in = _CountingBackend(tokens.ids)
    scorer = Scorer(stand_in, tokens, output_ids, perturb, budget=None if budget is None else budget - noise_samples)
    scheduler.run(scorer, segmentation, level)
    per_call = len(tokens) + len(output_ids)
    return Plan(
        method=scheduler.name,
        level=level,
        units=len(segmentation.units(level)),
        prompt_tokens=len(tokens),
        output_tokens=len(output_ids),
        generation_calls=int(target is None),
        calls=scorer.calls + noise_samples,
        tokens=scorer.tokens_evaluated + noise_samples * per_call,
        exact=scheduler.name == "itp",
    )

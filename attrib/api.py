"""``attrib.attribute``: explain a model's output by perturbing its prompt."""

from __future__ import annotations

import functools
import time
import warnings
from typing import Any

from attrib.backend import Backend, load_backend
from attrib.errors import BudgetError, EmptyOutputError, EmptyPromptError, InputError, PromptTooLongError
from attrib.perturbation import Perturbation, get_perturbation
from attrib.progress import Progress
from attrib.result import Attribution, Stats
from attrib.scheduler import Scheduler, get_scheduler
from attrib.scoring import Scorer
from attrib.segmentation import Segmentation, Tokenization, check_level

__all__ = ["attribute", "default_backend", "split_target"]


@functools.lru_cache(maxsize=1)
def default_backend() -> Backend:
    """The embedded local model (Gemma 3 270M through llama.cpp), loaded once per process.

    Raises:
        BackendUnavailableError: if ``attrib[local]`` is not installed.
    """
    return load_backend("llama")


def _resolve_backend(backend: Backend | str | None) -> Backend:
    if backend is None:
        return default_backend()
    if isinstance(backend, str):
        return default_backend() if backend == "llama" else load_backend(backend)
    if not isinstance(backend, Backend):
        raise InputError(f"backend must be a name or an attrib Backend, got {type(backend).__name__}")
    return backend


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
    prompt: str,
    *,
    backend: Backend | str | None = None,
    method: str | Scheduler = "hipe",
    level: str = "token",
    target: str | None = None,
    max_new_tokens: int = 16,
    budget: int | None = None,
    seed: int = 0,
    perturbation: str | Perturbation = "delete",
    progress: bool | Progress | None = False,
) -> Attribution:
    """Attribute a model's output to the units of its prompt by perturbation.

    The output ``y`` is generated once greedily (or given as ``target``). Then the
    chosen method ablates units of the prompt and scores the *original* output
    under each variant by forced decoding; the attribution of unit ``u`` to output
    token ``t`` is ``log p(y_t | x, y_<t) - log p(y_t | x without u, y_<t)`` in nats.

    Args:
        prompt: the prompt text (plain text; special-token syntax is treated as text).
        backend: ``None`` for the embedded local model (Gemma 3 270M via llama.cpp),
            a registered name (``"llama"``, ``"toy"``), or a :class:`~attrib.backend.Backend`.
        method: ``"hipe"`` (hierarchical perturbation, default), ``"itp"`` (exhaustive
            leave-one-out), or a scheduler instance such as ``HiPe(threshold="relative")``.
        level: unit level: ``"token"``, ``"word"``, ``"sentence"`` or ``"paragraph"``.
        target: output text to explain; ``None`` generates it greedily.
        max_new_tokens: tokens to generate when ``target`` is ``None``.
        budget: maximum scoring calls, the unperturbed prompt included; ``None`` for no limit.
        seed: recorded for reproducibility (the built-in methods are deterministic).
        perturbation: ``"delete"`` (default), ``"replace"``, or a perturbation instance.
        progress: draw a progress line on stderr (``None``: only on a terminal).

    Returns:
        An :class:`~attrib.result.Attribution` with ``scores`` of shape
        (n_units, n_output_tokens) in nats.

    Raises:
        EmptyPromptError: if the prompt is empty or whitespace.
        PromptTooLongError: if prompt and output exceed the model's context.
        UnknownNameError: for an unknown method, level, backend or perturbation.
        BudgetError: if ``budget`` cannot cover the method's first round.
        BackendUnavailableError: if the default backend's extra is not installed.
        EmptyOutputError: if the model generates nothing and no target was given.
    """
    started = time.perf_counter()
    if not isinstance(prompt, str):
        raise InputError(f"prompt must be a string, got {type(prompt).__name__}")
    if not prompt.strip():
        raise EmptyPromptError("prompt is empty; give the text to explain")
    check_level(level)
    scheduler = get_scheduler(method)
    perturb = get_perturbation(perturbation)
    if max_new_tokens < 1 and target is None:
        raise InputError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if budget is not None and budget < 2:
        raise BudgetError(f"budget must allow at least 2 calls, got {budget}")
    model = _resolve_backend(backend)
    perturb = perturb.bind(model.tokenize)

    bar = progress if isinstance(progress, Progress) else Progress(enabled=progress)
    try:
        generated = 0
        tokens_evaluated = 0
        if target is None:
            tokens = model.tokenize(prompt)
            _check_fits(model, len(tokens), max_new_tokens)
            bar.set_phase("generating")
            generation = model.generate(tokens.ids, max_new_tokens=max_new_tokens)
            output_ids = generation.ids
            generated = len(output_ids)
            tokens_evaluated += generation.tokens_evaluated
            if not output_ids:
                raise EmptyOutputError(
                    "the model generated no output (it stopped at once); pass target=... to explain a given output"
                )
            output_text = model.detokenize(output_ids)
        else:
            tokens, output_ids, output_text = split_target(model, prompt, target)
            _check_fits(model, len(tokens), len(output_ids))
        segmentation = Segmentation(tokens)

        needed = scheduler.min_calls(segmentation, level) + 1
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
        base = scorer.base_logprobs
        schedule = scheduler.run(scorer, segmentation, level, on_phase=on_phase)
    finally:
        bar.close()

    stats = Stats(
        calls=scorer.calls,
        tokens_evaluated=tokens_evaluated + scorer.tokens_evaluated,
        seconds=time.perf_counter() - started,
        generated_tokens=generated,
        reused=scorer.reused,
        budget=budget,
        budget_exhausted=schedule.budget_exhausted,
    )
    parameters: dict[str, Any] = {**scheduler.describe(), "seed": seed}
    if target is None:
        parameters["max_new_tokens"] = max_new_tokens
    return Attribution(
        prompt=tokens.text,
        units=segmentation.units(level),
        output=output_text,
        output_tokens=model.token_text(output_ids),
        scores=schedule.scores,
        method=scheduler.name,
        level=level,
        backend=model.describe(),
        stats=stats,
        output_token_ids=list(output_ids),
        base_logprobs=base,
        perturbation=perturb.describe(),
        parameters=parameters,
        trace=schedule.trace,
    )

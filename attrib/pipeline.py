"""The attribution pipeline: one path for plain prompts and chats.

    prompt ──lay out──> layout + regions ──fix the output──> y (given, or generated once)
          ──Scorer──> base log p(y | x) [+ noise samples] [+ message coalitions (chats)]
          ──method, per region──> unit × output-token scores (nats) ──> Attribution

Every model call after the output is fixed goes through one
:class:`~attrib.scoring.Scorer`: the unperturbed prompt, noise samples, a chat's
message coalitions and every perturbed variant are counted, budgeted, memoised
and shown in the progress line alike. A chat differs from a plain prompt only in
what :mod:`attrib.prompt` supplies: several regions (one per message) and the
coalitions for the messages' Shapley values.

Source of the attribution definition: leave-one-out occlusion on token
log-probabilities (see :mod:`attrib.scoring`); HiPe after Cooper et al. 2021.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, Unpack

import numpy as np

from attrib.auditing.message_shapley import coalitions, role_shares, shapley_values
from attrib.backend import Backend, Capabilities
from attrib.cache.wrapper import CacheSpec
from attrib.errors import BudgetError
from attrib.loading import open_backend
from attrib.methods.base import ReservedScorer, Schedule, Scheduler, SpanScorer, first_round_calls, later_reserves
from attrib.noise import noise_floor
from attrib.options import ExplainOptions, RunOptions, with_options
from attrib.perturbation import Span
from attrib.progress import Progress
from attrib.prompt import ChatPrompt, Layout, Prompt, Region, as_prompt, coalition_requests
from attrib.result import Attribution, Contrast, MessageShapley, MethodTrace, NoiseFloor, Stats, Trace
from attrib.scoring import RegionScorer, Scorer
from attrib.segmentation import Unit
from attrib.target import Output, resolve_output

__all__ = ["attribute", "run", "run_probed", "score", "Scored", "unit_level", "check_budget"]

T = TypeVar("T")


def unit_level(capabilities: Capabilities, level: str) -> str:
    """The unit level a backend can give: ``"token"`` becomes ``"word"`` without the model's tokenizer (warned)."""
    if level == "token" and not capabilities.has_tokenizer:
        warnings.warn(
            "this endpoint exposes no tokenizer, so units are words (level 'word'); pass level='word' to silence this",
            stacklevel=4,
        )
        return "word"
    return level


@with_options("explain")
def attribute(
    prompt: str | list[dict[str, str]],
    *,
    backend: Backend | str | None = None,
    backend_options: dict[str, Any] | None = None,
    cache: CacheSpec = None,
    progress: bool | Progress | None = False,
    **options: Unpack[ExplainOptions],
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
            a registered name (``"llama"``, ``"openai"``, ``"toy"``, ...), or a
            :class:`~attrib.backend.Backend`.
        backend_options: keyword arguments for a backend given by name, e.g.
            ``{"base_url": "http://127.0.0.1:8080/v1", "model": "gemma"}`` for ``"openai"``.
            A backend built from them is closed when the call returns.
        cache: keep scores and generations in a persistent cache so an interrupted run
            resumes and a re-run is free: ``True`` (``~/.cache/attrib`` or
            ``$ATTRIB_CACHE_DIR``), a directory, ``False``; ``None`` caches for API
            backends given by name only.
        progress: draw a progress line on stderr (``None``: only on a terminal).
        **options: the run options (:class:`~attrib.options.ExplainOptions`), declared there;
            ``help()`` lists them below with their defaults.

    Returns:
        An :class:`~attrib.result.Attribution` with ``scores`` of shape
        (n_units, n_output_tokens), in nats (``score_kind == "logprob"``) or, from a
        text-only endpoint, in text-similarity units. With a contrast, the columns are the
        output's tokens then the contrast's (``result.contrast``; shape
        (n_units, n_output_tokens + n_contrast_tokens)).

    Raises:
        EmptyPromptError: if the prompt is empty or whitespace.
        PromptTooLongError: if prompt and output exceed the model's context.
        UnknownNameError: for an unknown method, level, backend or perturbation.
        BudgetError: if ``budget`` cannot cover the method's first round.
        InputError: for a bad option, a ``target`` on an endpoint that can only regenerate,
            or a ``contrast`` that is empty, equals the output, splits the prompt elsewhere
            than the output, or is given to an endpoint without forced log-probabilities.
        BackendUnavailableError: if the default backend's extra is not installed.
        EmptyOutputError: if the model generates nothing and no target was given.
        EndpointError: if an API endpoint refuses a request or keeps failing.
    """
    started = time.perf_counter()
    checked = RunOptions.build(**options)
    source = as_prompt(prompt, checked.chat_template)
    bar = progress if isinstance(progress, Progress) else Progress(enabled=progress)
    with open_backend(backend, backend_options, cache) as model:
        return run(source, model, checked, progress=bar, started=started)


def run(
    prompt: Prompt,
    backend: Backend,
    options: RunOptions,
    *,
    progress: Progress | None = None,
    started: float | None = None,
) -> Attribution:
    """Run the pipeline for a prompt on a ready backend with checked options.

    Returns:
        The :class:`~attrib.result.Attribution` (see :func:`attribute`).

    Raises:
        The errors of :func:`attribute`, less the option checks done by
        :meth:`RunOptions.build`.
    """
    return run_probed(prompt, backend, options, progress=progress, started=started)[0]


#: What :func:`run_probed` asks after the method: given the result, the probes' log-probabilities
#: and the layout, groups of ablations (each a list of token spans of the layout) to score, most
#: wanted first.
FollowUp = Callable[[Attribution, np.ndarray, Layout], list[list[list[Span]]]]


def run_probed(
    prompt: Prompt,
    backend: Backend,
    options: RunOptions,
    *,
    progress: Progress | None = None,
    started: float | None = None,
    follow_up: FollowUp | None = None,
) -> tuple[Attribution, np.ndarray, list[np.ndarray | None]]:
    """:func:`run`, with the log-probabilities under the prompt's probes (:meth:`~attrib.prompt.Prompt.probes`)
    and, when ``follow_up`` asks for more, under further ablations chosen from the result.

    ``follow_up(result, probes, layout)`` runs once the method is done and returns groups of
    ablations; they are scored by the run's Scorer (counted in ``stats``, cached, never sent
    twice), a group whole or not at all, in order, as far as the budget goes (a group that
    does not fit ends them and sets ``stats.budget_exhausted``).

    Returns:
        ``(result, probes, followed)``: the result of :func:`run`, the output's
        log-probabilities under each probe, nats, shape (n_probes, n_output_tokens) (contrast
        columns signed as the result's ``base_logprobs``), and per follow-up group its
        log-probabilities, nats, shape (len(group), n_output_tokens), or ``None`` for a group
        the budget left out.

    Raises:
        The errors of :func:`run`.
    """
    started = time.perf_counter() if started is None else started
    bar = progress if progress is not None else Progress(enabled=False)
    capabilities = backend.capabilities()
    level = unit_level(capabilities, options.level)
    perturb = options.perturbation.bind(backend.tokenize)
    usage_before = backend.usage_snapshot()
    method = options.method
    try:
        output = resolve_output(
            prompt,
            backend,
            target=options.target,
            max_new_tokens=options.max_new_tokens,
            progress=bar,
            contrast=options.contrast,
        )
        layout = output.layout
        scorer = Scorer(
            backend,
            layout.tokenization,
            output.ids,
            perturb,
            budget=options.budget,
            on_call=bar.update,
            chat=layout.chat,
            contrast_ids=output.contrast_ids,
        )

        chat = prompt if isinstance(prompt, ChatPrompt) else None

        def spend(region: Region, reserve: int) -> Schedule:
            return _run_region(method, scorer, region, level, chat, bar, reserve=reserve)

        scored = score(prompt, backend, scorer, layout, level, options, spend, progress=bar)
        result, probes = _assemble(
            prompt, backend, options, output, layout, level, scorer, scored, usage_before, started
        )
        followed: list[np.ndarray | None] = []
        if follow_up is not None:
            groups = follow_up(result, probes, layout)
            followed, stopped = _follow(scorer, groups, bar)
            followed = [None if rows is None else np.array([_unsigned(r, output) for r in rows]) for rows in followed]
            if groups:
                stats = dataclasses.replace(
                    result.stats,
                    **_spent(scorer, output, backend, usage_before, started),
                    budget_exhausted=result.stats.budget_exhausted or stopped,
                )
                result = dataclasses.replace(result, stats=stats)
    finally:
        bar.close()
    return result, probes, followed


def _follow(scorer: Scorer, groups: list[list[list[Span]]], bar: Progress) -> tuple[list[np.ndarray | None], bool]:
    """Score the follow-up groups, each whole, in order, while the budget lasts; whether it stopped one."""
    followed: list[np.ndarray | None] = []
    stopped = False
    new = sum(scorer.count_new(group) for group in groups)
    if new:
        bar.set_phase("units of sources alone", total=new)
    for group in groups:
        remaining = scorer.remaining
        if stopped or (remaining is not None and scorer.count_new(group) > remaining):
            stopped = True
            followed.append(None)
            continue
        followed.append(scorer.logprobs(group) if group else np.zeros((0, scorer.n_output)))
    return followed, stopped


def _spent(
    scorer: Scorer, output: Output, backend: Backend, usage_before: dict[str, int], started: float
) -> dict[str, Any]:
    """What the run has spent so far, as :class:`Stats` fields: calls, tokens evaluated (the
    output's generation included), seconds since ``started``, reused prefix tokens and the
    backend's usage counters since ``usage_before``."""
    return {
        "calls": scorer.calls,
        "tokens_evaluated": output.tokens_evaluated + scorer.tokens_evaluated,
        "seconds": time.perf_counter() - started,
        "reused": scorer.reused,
        "backend_usage": {key: value - usage_before.get(key, 0) for key, value in backend.usage_snapshot().items()},
    }


def _assemble(
    prompt: Prompt,
    backend: Backend,
    options: RunOptions,
    output: Output,
    layout: Layout,
    level: str,
    scorer: Scorer,
    scored: Scored[Schedule],
    usage_before: dict[str, int],
    started: float,
) -> tuple[Attribution, np.ndarray]:
    """The result of a run from what :func:`score` gave back, and its probes' log-probabilities."""
    capabilities = backend.capabilities()
    method = options.method
    units: list[Unit] = [unit for region in layout.regions for unit in region.segmentation.units(level)]
    columns = output.ids + output.contrast_ids
    schedules, shapley = scored.regions, scored.shapley
    scores = np.concatenate([s.scores for s in schedules]) if schedules else np.zeros((0, len(columns)))
    if shapley is not None and output.contrast_ids:
        shapley = dataclasses.replace(shapley, empty_logprobs=list(_unsigned(shapley.empty_logprobs, output)))
    stats = Stats(
        **_spent(scorer, output, backend, usage_before, started),
        generated_tokens=output.generated,
        budget=options.budget,
        budget_exhausted=any(s.budget_exhausted for s in schedules),
    )
    result = Attribution(
        prompt=layout.tokenization.text,
        units=units,
        output=output.text,
        output_tokens=backend.token_text(output.ids) + backend.token_text(output.contrast_ids),
        scores=scores,
        method=method.name,
        level=level,
        backend=backend.describe(),
        stats=stats,
        output_token_ids=list(columns) if capabilities.exposes_token_ids else None,
        base_logprobs=_unsigned(scored.base, output),
        perturbation=scorer.perturbation.describe(),
        parameters=options.parameters(generated=options.target is None, template=prompt.template(backend)),
        trace=_trace(layout, schedules),
        score_kind=capabilities.score_kind,
        noise=None if scored.noise_rows is None else NoiseFloor.from_dict(noise_floor(scored.noise_rows, scores)),
        messages=prompt.messages,
        roles=scored.roles,
        shapley=shapley,
        contrast=None if output.contrast_text is None else Contrast(text=output.contrast_text, start=len(output.ids)),
    )
    probes = np.stack([_unsigned(row, output) for row in scored.probes]) if len(scored.probes) else scored.probes
    return result, probes


@dataclass(frozen=True)
class Scored(Generic[T]):
    """What :func:`score` gives back: the calls before the method's, and the method's per region.

    Attributes:
        base: ``log p(y_t | x, y_<t)`` of the unperturbed prompt (the mean over noise samples
            when there are any), nats, shape (n_columns,).
        noise_rows: the noise samples' log-probabilities, nats, shape (samples + 1, n_columns),
            or ``None`` without noise samples.
        shapley, roles: the messages' Shapley values and role shares (chats), else ``None``.
        regions: what ``spend`` returned for each region, in order.
        probes: the log-probabilities under the prompt's probes (:meth:`~attrib.prompt.Prompt.probes`),
            nats, shape (n_probes, n_columns).
    """

    base: np.ndarray
    noise_rows: np.ndarray | None
    shapley: MessageShapley | None
    roles: dict[str, float] | None
    regions: list[T]
    probes: np.ndarray


def score(
    prompt: Prompt,
    backend: Backend,
    scorer: Scorer,
    layout: Layout,
    level: str,
    options: RunOptions,
    spend: Callable[[Region, int], T],
    *,
    progress: Progress,
) -> Scored[T]:
    """Every scoring call after the output is fixed, through ``scorer``: the budget check, the
    unperturbed prompt, noise samples, a chat's message coalitions, then ``spend(region, reserve)``
    for each region, ``reserve`` calls kept for the regions after it. What :func:`run` does
    with the model, and :func:`attrib.plan` with a counting stand-in and the methods' dry runs.

    Raises:
        BudgetError: if the budget cannot cover the first round (:func:`check_budget`), or a
            method's own refusal.
    """
    method = options.method
    chat = prompt if isinstance(prompt, ChatPrompt) else None
    subsets = coalitions(len(chat.chat), seed=options.seed) if chat is not None else []
    probes = prompt.probes(layout)
    new_probes = scorer.count_new(probes)  # before any call, as the budget check needs
    check_budget(method, layout, level, options, len(subsets), scorer=scorer, probes=new_probes)
    progress.set_phase("scoring the prompt", total=1)
    base = scorer.base_logprobs
    noise_rows = None
    if options.noise_samples:
        progress.set_phase("noise samples", total=options.noise_samples + 1)
        noise_rows = scorer.repeat_base(options.noise_samples)
        base = scorer.base_logprobs
    shapley: MessageShapley | None = None
    roles: dict[str, float] | None = None
    if chat is not None:
        shapley, roles = _message_shapley(chat, backend, scorer, subsets, base, options.seed, progress)
    probed = np.zeros((0, scorer.n_output))
    if probes:
        progress.set_phase("sources alone", total=new_probes)
        probed = scorer.logprobs(probes)
    reserves = _reserves(method, scorer, layout, level)
    regions = [spend(region, reserve) for region, reserve in zip(layout.regions, reserves, strict=True)]
    return Scored(base, noise_rows, shapley, roles, regions, probed)


def _unsigned(row: Sequence[float] | np.ndarray, output: Output) -> np.ndarray:
    """A scorer's row as each column's own log-probability: the contrast's columns, which the
    scorer negates (see :mod:`attrib.scoring`), turned back; shape (len(row),), nats."""
    values = np.array(row, dtype=np.float64)
    values[len(output.ids) :] *= -1.0
    return values


def check_budget(
    method: Scheduler,
    layout: Layout,
    level: str,
    options: RunOptions,
    n_coalitions: int,
    *,
    scorer: SpanScorer,
    probes: int = 0,
) -> None:
    """Refuse a budget that cannot cover the base, noise samples, coalitions, the prompt's probes
    (at most ``probes`` calls) and the method's first round.

    The first round is counted through ``scorer`` (:func:`~attrib.methods.base.first_round_calls`):
    its distinct perturbed prompts, as the run sends them. Call it before ``scorer`` scores anything.

    Raises:
        BudgetError: naming how many calls are needed.
    """
    if options.budget is None:
        return
    extra = max(0, n_coalitions - 1)  # the full coalition is the unperturbed prompt
    first = sum(
        first_round_calls(method, RegionScorer(scorer, r.offset), r.segmentation, level) for r in layout.regions
    )
    needed = first + 1 + options.noise_samples + extra + probes
    if options.budget >= needed:
        return
    count = len(layout.regions)
    by_message = layout.chat is not None and all(r.message is not None for r in layout.regions)
    scope = f"over {count} message{'' if count == 1 else 's'}" if by_message else f"at {level} level"
    notes = [f"{n_coalitions} for the messages' Shapley values"] if n_coalitions else []
    notes += [f"{probes} for the sources alone and without sources"] if probes else []
    coalition_note = f" (with {' and '.join(notes)})" if notes else ""
    hint = " or use --method hipe" if method.name == "itp" else ""
    raise BudgetError(
        f"{method.name} {scope} needs at least {needed} calls here{coalition_note} but the budget is "
        f"{options.budget}; raise --budget{hint}"
    )


def _reserves(method: Scheduler, scorer: SpanScorer, layout: Layout, level: str) -> list[int]:
    """For each region, the calls kept for the regions after it (:func:`~attrib.methods.base.later_reserves`);
    none without a budget."""
    if scorer.remaining is None:
        return [0] * len(layout.regions)
    views = [RegionScorer(scorer, region.offset) for region in layout.regions]
    return later_reserves(method, views, [region.segmentation for region in layout.regions], level)


def _message_shapley(
    chat: ChatPrompt,
    backend: Backend,
    scorer: Scorer,
    subsets: list[frozenset[int]],
    base: np.ndarray,
    seed: int,
    bar: Progress,
) -> tuple[MessageShapley, dict[str, float]]:
    """The messages' Shapley values for the output's log-probability, every coalition scored by ``scorer``."""
    k = len(chat.chat)
    others = [s for s in subsets if len(s) < k]
    requests = coalition_requests(chat, backend, others, scorer.output_ids)
    bar.set_phase("message coalitions", total=scorer.calls + len({r.prompt_ids for r in requests}))
    logprobs = scorer.score_prompts(requests)
    values = {s: row for s, row in zip(others, logprobs, strict=True)}
    values[frozenset(range(k))] = base
    phi, exact = shapley_values(values, k, seed=seed)
    shapley = MessageShapley(
        values=[[float(v) for v in row] for row in phi],
        message_totals=[float(v) for v in phi.sum(axis=1)],
        exact=exact,
        empty_logprobs=[float(v) for v in values[frozenset()]],
        coalitions=len(subsets),
    )
    return shapley, role_shares(phi, [role for role, _ in chat.chat])


def _run_region(
    method: Scheduler,
    scorer: Scorer,
    region: Region,
    level: str,
    chat: ChatPrompt | None,
    bar: Progress,
    *,
    reserve: int = 0,
) -> Schedule:
    """The method over one region's units, its spans shifted into the whole prompt, leaving
    ``reserve`` calls of the budget to the regions after it."""
    on_phase: Callable[[str, int | None], None]
    if chat is None or region.message is None:

        def on_phase(label: str, total: int | None) -> None:
            bar.set_phase(label, total=total)

    else:
        prefix = f"{chat.chat[region.message][0]} message {region.message}: "

        def on_phase(label: str, total: int | None) -> None:
            bar.set_phase(prefix + label, total=total)

    view: SpanScorer = RegionScorer(scorer, region.offset)
    if reserve:
        view = ReservedScorer(view, reserve)
    return method.run(view, region.segmentation, level, on_phase=on_phase)


def _trace(layout: Layout, schedules: Sequence[Schedule]) -> Trace | MethodTrace | None:
    """The result's trace: for a plain prompt, the method's as it recorded it, placed in the whole
    text when its one region does not start at the text's start (the sources of an assembled
    prompt); for a chat, every message's trace placed in the rendered prompt
    (:meth:`~attrib.result.BaseTrace.shifted`) and the messages' combined
    (:meth:`~attrib.result.BaseTrace.combined`). ``None`` if none was recorded."""
    traced = [(region, s.trace) for region, s in zip(layout.regions, schedules, strict=True) if s.trace is not None]
    if not traced:
        return None
    if layout.chat is None and len(traced) == 1:
        region, trace = traced[0]
        return trace if region.offset == 0 and region.char_offset == 0 else trace.shifted(region)
    placed = [trace.shifted(region) for region, trace in traced]
    return type(placed[0]).combined(placed)

"""The context-attribution entry point, :func:`cite`: sources in, claims with their sources out.

    question + sources (+ instructions) ──template──> prompt (fixed parts + one region of sources)
        ──the pipeline (:func:`attrib.pipeline.run`)──> units inside sources × answer tokens, nats
        ──claims (sentences, or given spans) + citation markers──> per claim: ranked sources, verdicts

Every claim of the answer comes from the same calls: one variant scores every answer token,
and a claim's attribution to a source is a sum over the matrix (no further model call).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, Unpack

import numpy as np

from attrib.backend import Backend
from attrib.cache.wrapper import CacheSpec
from attrib.context.citations import Marker, find_markers
from attrib.context.claims import check_spans, split_claims
from attrib.context.sources import Source, as_sources
from attrib.context.template import ChatTemplate, PlainTemplate, SourcePrompt, SourceSegmentation, Template, as_template
from attrib.dryrun import Plan, plan_prompt
from attrib.errors import EmptyOutputError, InputError
from attrib.loading import open_backend
from attrib.options import CiteOptions, RunOptions, with_options
from attrib.perturbation import Span
from attrib.pipeline import run_probed, unit_level
from attrib.progress import Progress
from attrib.prompt import Layout
from attrib.result import Attribution
from attrib.result.context import Context, ContextSource
from attrib.target import check_fits

__all__ = ["cite", "check_cite", "token_spans", "answer_end"]

_BLANK = re.compile(r"\n[^\S\n]*\n")


def token_spans(tokens: Sequence[str], text: str) -> list[tuple[int, int]]:
    """Each token's character span in ``text``, from the tokens' texts laid end to end.

    A token holding part of a character (its text has U+FFFD) gets that character's span,
    shared with the token that completes it.
    """
    spans = []
    position = 0
    for index, token in enumerate(tokens):
        if text.startswith(token, position):
            spans.append((position, position + len(token)))
            position += len(token)
            continue
        end = min(position + 1, len(text))
        spans.append((position, end))
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if not (following and text.startswith(following, position)):
            position = end
    return spans


def _check_text(value: object, name: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InputError(f"{name} is empty; give the {name} text" + (", or omit it" if optional else ""))
    return value


def _target(answer: str, form: Template, prompt: SourcePrompt) -> tuple[str, int]:
    """The text scored for a given answer, and where the answer starts in it: a plain prompt
    ending in a cue such as ``Answer:`` gets a space before an answer that has none."""
    text = prompt.text
    if isinstance(form, PlainTemplate) and text and not text[-1].isspace() and not answer[:1].isspace():
        return " " + answer, 1
    return answer, 0


@with_options("cite")
def cite(
    question: str,
    sources: Sequence[str | dict[str, Any] | Source],
    *,
    answer: str | None = None,
    instructions: str | None = None,
    template: str | Template | None = None,
    claims: Sequence[tuple[int, int]] | None = None,
    backend: Backend | str | None = None,
    backend_options: dict[str, Any] | None = None,
    cache: CacheSpec = None,
    progress: bool | Progress | None = False,
    **options: Unpack[CiteOptions],
) -> Attribution:
    """Attribute an answer to the sources of its prompt, claim by claim, and check its citations.

    The prompt is assembled from the sources and the fixed parts by ``template``; only the
    sources are perturbed (at ``level="source"`` each source is one unit, removed with its
    header and separator; finer levels cut inside sources only, and HiPe's tree starts from
    the sources). The answer is generated once greedily, or given and forced; then the method
    scores every answer token under each variant (the unit × token matrix of
    :func:`attrib.attribute`, in nats). Claims are the answer's sentences (or ``claims``); a
    claim's attribution to a source is the sum of the matrix over the source's units and the
    claim's tokens: the drop of the claim's log-probability, in nats, when the source is gone.
    Before the method, the answer is scored with every source removed and with each source
    alone (``1 + n_sources`` calls, shared by every claim and counted in ``stats`` and the
    budget). A source *supports* a claim when, given alone, it raises the claim's
    log-probability by more than ``support`` times the claim's information (its surprisal
    with no source, nats) and by more than the claim's noise floor when ``noise_samples``
    measured one; a claim no source supports is *unsupported* (:mod:`attrib.result.context`).
    A claim stating two facts from two sources is judged by what each source supplies alone:
    the default claims, sentences, keep such claims apart. Citation markers in
    the answer (``markers``) are scored with it but left out of the claims' attribution; each
    claim's cited ids are compared with its supporting sources (``Claim.verified``,
    ``Claim.cited_not_used``, ``Claim.used_not_cited``).

    Args:
        question: the question (a fixed part, never perturbed).
        sources: the sources, in order: strings (ids ``"1"``, ``"2"``, ...) or mappings with a
            string ``id`` and a ``text`` (other keys are metadata, kept in the result).
        answer: the answer to explain (forced); ``None`` generates it greedily
            (``max_new_tokens``) and keeps it up to its first blank line (a base model goes on
            with another question), which is then scored as a given answer.
        instructions: instructions placed before the sources (fixed), or ``None``.
        template: ``None``/``"plain"`` (numbered sources, the question, ``Answer:``), ``"chat"``
            (sources and question in the user message), a frame string with ``{sources}`` and
            ``{question}`` (and optionally ``{instructions}``), or a
            :class:`~attrib.context.template.PlainTemplate` / :class:`~attrib.context.template.ChatTemplate`.
        claims: the claims as ``(start, end)`` character spans of ``answer``; default: its sentences.
        backend: ``None`` for the embedded model, a registered name, or a backend (as in
            :func:`attrib.attribute`).
        backend_options: keyword arguments for a backend given by name.
        cache: the persistent cache (as in :func:`attrib.attribute`).
        progress: draw a progress line on stderr (``None``: only on a terminal).
        **options: the run options (:class:`~attrib.options.CiteOptions`), declared there.

    Returns:
        An :class:`~attrib.result.Attribution` whose rows are units inside sources (spans index
        ``result.prompt``) and whose ``context`` holds the sources and ``claims``:
        ``result.claims[i].sources`` is a list of ``(id, score)`` pairs, nats, largest first;
        ``result.claim(start, end)`` attributes any span of ``result.answer``;
        ``result.to_frame()`` is the claims × sources table.

    Raises:
        InputError: for an empty source list, duplicate ids, an id that is not a string, an
            empty question, answer or source, claim spans outside the answer (or claims without
            an answer), a template without a place for the sources or the question, a
            ``target`` or ``contrast`` option, a ``chat_template`` without a chat layout, or a
            bad option.
        EmptyOutputError: if the model generates no answer and none was given.
        PromptTooLongError: if the prompt and the answer exceed the model's context.
        BudgetError: if ``budget`` cannot cover the method's first round.
        BackendError: the other errors of :func:`attrib.attribute` (backend, endpoint).
    """
    started = time.perf_counter()
    prompt, form, checked, given, lead, spans = _prepare(
        question, sources, answer, instructions, template, claims, options
    )
    bar = progress if isinstance(progress, Progress) else Progress(enabled=progress)
    with open_backend(backend, backend_options, cache) as model:
        generation = None
        if given is None and model.capabilities().supports_target:
            try:
                generation = _generate(prompt, model, checked.max_new_tokens, bar)
            except BaseException:
                bar.close()
                raise
            given = generation.text
            target, lead = _target(given, form, prompt)
            checked = dataclasses.replace(checked, target=target)
        region = prompt.lay_out(model).regions[0]
        asked: list[str] = []

        def follow_up(result: Attribution, probes: np.ndarray, layout: Layout) -> list[list[list[Span]]]:
            judged = _judge(
                result, probes, prompt, region.segmentation, region.char_offset, checked, given, lead, spans
            )
            groups, ids = _inside_ablations(judged, prompt, layout)
            asked.extend(ids)
            return groups

        result, probes, followed = run_probed(
            prompt, model, checked, progress=bar, started=started, follow_up=follow_up
        )
    inside = {source: rows for source, rows in zip(asked, followed, strict=True) if rows is not None}
    if generation is not None:
        stats = dataclasses.replace(
            result.stats,
            generated_tokens=generation.generated,
            tokens_evaluated=result.stats.tokens_evaluated + generation.tokens_evaluated,
            seconds=time.perf_counter() - started,
        )
        parameters = {**result.parameters, "max_new_tokens": checked.max_new_tokens}
        result = dataclasses.replace(result, stats=stats, parameters=parameters)
    return _judge(result, probes, prompt, region.segmentation, region.char_offset, checked, given, lead, spans, inside)


def _inside_ablations(
    judged: Attribution, prompt: SourcePrompt, layout: Layout
) -> tuple[list[list[list[Span]]], list[str]]:
    """Below the source level, the ablations that score each supporting source unit by unit alone:
    per source (those that support a claim, the strongest support first), its
    :func:`_source_unit_ablations`. Returns the groups and their source ids.

    Redundant evidence is why: a fact stated in two sources loses little when one copy's
    sentence is removed from the full prompt (the other copy still states it), so the
    leave-one-out matrix cannot say which sentence of a source states it; with the source
    alone, removing that sentence removes the fact (the sufficiency side of ERASER's
    comprehensiveness and sufficiency, DeYoung et al. 2020).
    """
    context = judged.context
    if judged.level == "source" or context is None:
        return [], []
    strongest: dict[str, float] = {}
    for claim in context.claims:
        gains = dict(claim.sufficiency or [])
        for source in claim.supporting:
            share = gains.get(source, 0.0) / max(claim.information or 0.0, 1e-12)
            strongest[source] = max(strongest.get(source, -np.inf), share)
    alone = prompt.probes(layout)[1:]
    groups, ids = [], []
    for source in sorted(strongest, key=lambda key: (-strongest[key], context.ids.index(key))):
        index = context.ids.index(source)
        group = _source_unit_ablations(layout, judged.level, index, alone[index])
        if group:
            groups.append(group)
            ids.append(source)
    return groups, ids


def _source_unit_ablations(layout: Layout, level: str, index: int, others: list[Span]) -> list[list[Span]]:
    """Source ``index`` given alone (``others``: the other sources' spans, its "alone" probe of
    :meth:`SourcePrompt.probes`) less each of its units at ``level`` in turn, token spans of
    ``layout``; empty for a source of one unit."""
    region = layout.regions[0]
    segmentation = region.segmentation
    assert isinstance(segmentation, SourceSegmentation)
    first, last = segmentation.starts[index], segmentation.starts[index + 1]
    units = [u.tokens for u in segmentation.units(level) if first <= u.tokens[0] < last]
    if len(units) < 2:
        return []
    return [[*others, (region.offset + a, region.offset + b)] for a, b in units]


def _inside_bound(prompt: SourcePrompt, level: str) -> Callable[[Layout], list[list[Span]]]:
    """What a dry run charges for :func:`_inside_ablations`: every source scored unit by unit
    alone (as if every source supported a claim), an upper bound."""

    def bound(layout: Layout) -> list[list[Span]]:
        if level == "source":
            return []
        alone = prompt.probes(layout)[1:]
        return [a for index, others in enumerate(alone) for a in _source_unit_ablations(layout, level, index, others)]

    return bound


def _prepare(
    question: str,
    sources: Sequence[str | dict[str, Any] | Source],
    answer: str | None,
    instructions: str | None,
    template: str | Template | None,
    claims: Sequence[tuple[int, int]] | None,
    options: CiteOptions,
) -> tuple[SourcePrompt, Template, RunOptions, str | None, int, list[tuple[int, int]] | None]:
    """The checked inputs of :func:`cite` and :func:`plan_cite`: the prompt, its template, the
    options (target set for a given answer), the answer, its lead and the claim spans."""
    checked_question = _check_text(question, "question")
    assert checked_question is not None
    checked_sources = as_sources(sources)
    given = _check_text(answer, "answer", optional=True)
    checked_instructions = None if instructions is None else _check_text(instructions, "instructions")
    form = as_template(template)
    if "target" in options:
        raise InputError("cite takes the answer as answer=..., not target=...")
    if "contrast" in options:
        raise InputError("contrast does not apply to cite; claims are judged on the answer alone")
    prompt = SourcePrompt(checked_sources, checked_question, checked_instructions, form)
    spans = None
    if claims is not None:
        if given is None:
            raise InputError("claims index the answer; give answer=... with them, or omit claims")
        spans = check_spans(claims, given)
    target, lead = (None, 0) if given is None else _target(given, form, prompt)
    checked = dataclasses.replace(RunOptions.build(task="cite", **options), target=target)
    if checked.chat_template is not None:
        if not isinstance(form, ChatTemplate):
            raise InputError("chat_template applies to a chat layout; pass template='chat' or a ChatTemplate")
        if form.chat_template is None:
            form = dataclasses.replace(form, chat_template=checked.chat_template)
            prompt = dataclasses.replace(prompt, form=form)
    return prompt, form, checked, given, lead, spans


def check_cite(
    question: object,
    sources: object,
    *,
    answer: object = None,
    instructions: object = None,
    template: object = None,
    claims: object = None,
    options: dict[str, Any] | None = None,
) -> None:
    """Check :func:`cite`'s inputs as it does before any model call, with its messages (for a
    dataset's records, checked up front).

    Args:
        question, sources, answer, instructions, template, claims: as in :func:`cite`.
        options: the run options of :func:`cite` (:class:`~attrib.options.CiteOptions`).

    Raises:
        InputError: the input errors of :func:`cite` (an empty source list, duplicate ids, an
            empty question, claim spans outside the answer, ...); BudgetError and
            UnknownNameError for a bad option.
    """
    _prepare(question, sources, answer, instructions, template, claims, options or {})  # type: ignore[arg-type]


@with_options("cite")
def plan_cite(
    question: str,
    sources: Sequence[str | dict[str, Any] | Source],
    *,
    answer: str | None = None,
    instructions: str | None = None,
    template: str | Template | None = None,
    backend: Backend | str | None = None,
    backend_options: dict[str, Any] | None = None,
    **options: Unpack[CiteOptions],
) -> Plan:
    """The calls and tokens :func:`cite` would need, without any model call (``attrib cite --dry-run``).

    The prompt is assembled as :func:`cite` assembles it and planned by :func:`attrib.plan`'s
    machinery (:func:`attrib.dryrun.plan_prompt`). Without ``answer`` the plan counts one
    generation call and an answer of ``max_new_tokens`` tokens (an upper bound).

    Args:
        question, sources, answer, instructions, template, backend, backend_options: as in :func:`cite`.
        **options: the run options of :func:`cite` (:class:`~attrib.options.CiteOptions`).

    Returns:
        A :class:`~attrib.dryrun.Plan`.

    Raises:
        InputError: the input errors of :func:`cite`, including
            :class:`~attrib.errors.PromptTooLongError` and :class:`~attrib.errors.BudgetError`.
    """
    prompt, _, checked, _, _, _ = _prepare(question, sources, answer, instructions, template, None, options)
    with open_backend(backend, backend_options, cache=False) as model:
        level = unit_level(model.capabilities(), checked.level)
        return plan_prompt(prompt, model, checked, follow_up=_inside_bound(prompt, level))


@dataclasses.dataclass(frozen=True)
class _Generated:
    """A generated answer cut at its end, and what generating it cost."""

    text: str
    generated: int
    tokens_evaluated: int


def _generate(prompt: SourcePrompt, backend: Backend, max_new_tokens: int, bar: Progress) -> _Generated:
    """The model's greedy answer, cut at its first blank line (:func:`answer_end`).

    Raises:
        PromptTooLongError: if the prompt and ``max_new_tokens`` exceed the context.
        EmptyOutputError: if nothing is left of the answer.
    """
    layout = prompt.lay_out(backend)
    check_fits(backend, len(layout.tokenization), max_new_tokens)
    bar.set_phase("generating")
    generation = backend.generate(
        layout.tokenization.ids, max_new_tokens=max_new_tokens, messages=prompt.generation_messages
    )
    text = backend.detokenize(generation.ids)
    answer = text[: answer_end(text)]
    if not answer.strip():
        raise EmptyOutputError(
            "the model generated no answer (it stopped at once or began with a blank line); pass answer=... "
            "to explain a given answer"
        )
    return _Generated(answer, len(generation.ids), generation.tokens_evaluated)


def answer_end(text: str) -> int:
    """Where a generated answer ends: at its first blank line after some text (a base model that
    has answered goes on with a new block, such as another ``Question:``), else at its end,
    trailing whitespace left out."""
    start = len(text) - len(text.lstrip())
    found = _BLANK.search(text, start)
    end = found.start() if found else len(text)
    return len(text[:end].rstrip())


def _judge(
    result: Attribution,
    probes: np.ndarray,
    prompt: SourcePrompt,
    segmentation: object,
    char_offset: int,
    options: RunOptions,
    given: str | None,
    lead: int,
    spans: list[tuple[int, int]] | None,
    inside: dict[str, np.ndarray] | None = None,
) -> Attribution:
    """The result with its context: sources and their rows, the probes (every source removed,
    then each alone: :meth:`SourcePrompt.probes`), the sources scored unit by unit alone
    (``inside``, by id), the answer's claims and verdicts."""
    assert isinstance(segmentation, SourceSegmentation)
    tokens = segmentation.tokenization
    entries = []
    for source, (first, last) in zip(prompt.sources, itertools.pairwise(segmentation.starts), strict=True):
        start, end = char_offset + tokens.char_offset(first), char_offset + tokens.char_offset(last)
        rows = [i for i, unit in enumerate(result.units) if start <= unit.start < end]
        units = (rows[0], rows[-1] + 1) if rows else (0, 0)
        entries.append(ContextSource(id=source.id, start=start, end=end, units=units, metadata=dict(source.metadata)))
    output = result.output
    if given is not None and output.endswith(given):
        answer_start = len(output) - len(given)
    else:
        answer_start = min(lead, len(output)) if given is not None else 0
    answer = output[answer_start:]
    ids = [source.id for source in prompt.sources]
    markers: list[Marker] = find_markers(answer, options.markers, ids) if options.markers else []
    context = Context(
        question=prompt.question,
        instructions=prompt.instructions,
        sources=entries,
        answer_start=answer_start,
        token_spans=token_spans(result.output_tokens[result.output_columns], output),
        support=options.support,
        markers=options.markers or None,
        marker_spans=[(m.start, m.end) for m in markers],
        empty_logprobs=[float(x) for x in probes[0]],
        alone_logprobs=[[float(x) for x in row] for row in probes[1:]],
        inside_logprobs={key: [[float(x) for x in row] for row in rows] for key, rows in inside.items()}
        if inside
        else None,
    )
    result = dataclasses.replace(result, context=context)
    judged = []
    for start, end in spans if spans is not None else split_claims(answer, markers):
        cited = [i for m in markers if m.start < end and m.end > start for i in m.ids]
        judged.append(result.claim(start, end, cited=list(dict.fromkeys(cited))))
    return dataclasses.replace(result, context=dataclasses.replace(context, claims=judged))

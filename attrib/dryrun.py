"""Dry runs: what an attribution would cost, computed without any model call.

:func:`plan` runs the pipeline's own front half (:func:`attrib.pipeline.score`: the
output's layout, the target and contrast split, every check, the budget check, noise
samples, a chat's message coalitions, the per-region reserves) on the backend's
tokenizer, with a counting stand-in for the model's scores: a :class:`~attrib.scoring.Scorer`
that answers without the model and counts each distinct prompt with the tokens it
would send. Each region is spent by the method's own dry run
(:meth:`~attrib.methods.base.Scheduler.dry_run`): the method itself for a schedule fixed
in advance, its largest schedule (every chunk salient) for an adaptive one, an upper
bound on the calls and tokens of the real run.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Unpack

import numpy as np

from attrib.backend import Backend, ScoreRequest, ScoreResult
from attrib.chat import ChatLayout
from attrib.errors import BudgetError
from attrib.loading import open_backend
from attrib.methods.base import ReservedScorer
from attrib.options import ExplainOptions, RunOptions, with_options
from attrib.perturbation import Perturbation, Span, merge_spans
from attrib.pipeline import score, unit_level
from attrib.progress import Progress
from attrib.prompt import Layout, Prompt, Region, as_prompt
from attrib.scoring import RegionScorer, Scorer
from attrib.segmentation import Tokenization
from attrib.target import resolve_output

__all__ = ["Plan", "plan"]


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
        calls: scoring calls, the unperturbed prompt, noise samples and message coalitions included.
        tokens: prompt plus output tokens sent over all scoring calls (before any
            prefix reuse or caching).
        calls_exact: True when ``calls`` and ``tokens`` are exact (methods whose schedule is
            fixed in advance: ``itp``, the sampled coalition methods); False for an upper bound
            (``hipe`` and ``hierarchical``, planned with every chunk refined).
        exact: the ``exact`` flag the run's trace will record, from the same code run
            against the stand-in (``shapley``, ``kernelshap``: True when every coalition is
            scored, False when the values are estimated from samples, as a budget below
            the enumeration's cost forces); ``None`` for a method that records none or whose
            choice depends on the scores (``hierarchical``).
        contrast_tokens: tokens in the contrast (0 without one). With a contrast each call
            is two requests sharing the prompt, and ``tokens`` counts both.
    """

    method: str
    level: str
    units: int
    prompt_tokens: int
    output_tokens: int
    generation_calls: int
    calls: int
    tokens: int
    calls_exact: bool
    exact: bool | None = None
    contrast_tokens: int = 0

    def describe(self) -> str:
        """One line for people: ``"hipe at token level over 251 units: at most ..."``."""
        bound = "" if self.calls_exact else "at most "
        generation = "1 generation call + " if self.generation_calls else ""
        contrast = f", {self.contrast_tokens:,}-token contrast: 2 requests a call" if self.contrast_tokens else ""
        values = {None: "", True: "; exact values (every coalition scored)", False: "; values estimated from samples"}
        return (
            f"{self.method} at {self.level} level over {self.units:,} units: {bound}{generation}"
            f"{self.calls:,} scoring calls, {bound}{self.tokens:,} prompt tokens "
            f"({self.prompt_tokens:,}-token prompt, {self.output_tokens:,}-token output{contrast})"
            f"{values[self.exact]}"
        )


class _CountingModel:
    """A stand-in for the model's scores (:class:`~attrib.backend.ScoringModel`): every request is
    answered with log-probabilities of 0 and counted as its prompt and continuation tokens."""

    def score(
        self, requests: Sequence[ScoreRequest], *, on_result: Callable[[int, ScoreResult], None] | None = None
    ) -> list[ScoreResult]:
        results = [
            ScoreResult(np.zeros(len(r.continuation_ids)), len(r.prompt_ids) + len(r.continuation_ids))
            for r in requests
        ]
        for index, result in enumerate(results):
            if on_result is not None:
                on_result(index, result)
        return results


class _Counter(Scorer):
    """The run's :class:`~attrib.scoring.Scorer` with the model's scores counted instead of computed
    (a :class:`~attrib.methods.base.CostCounter`): the unperturbed prompt, noise samples and message
    coalitions go through the Scorer itself to :class:`_CountingModel`; perturbed prompts are
    identified by the perturbation (:meth:`~attrib.perturbation.Perturbation.identify`, none built
    for deletion and replacement), and every one drops each output token's log-probability by
    1,000 nats, so every chunk looks salient.

    Args:
        prompt, output_ids, perturbation, budget, chat, contrast_ids: as for the run's Scorer.
    """

    def __init__(
        self,
        prompt: Tokenization,
        output_ids: Sequence[int],
        perturbation: Perturbation,
        *,
        budget: int | None,
        chat: ChatLayout | None,
        contrast_ids: Sequence[int],
    ) -> None:
        super().__init__(
            _CountingModel(), prompt, output_ids, perturbation, budget=budget, chat=chat, contrast_ids=contrast_ids
        )
        self.identify = perturbation.identify(prompt)
        self.seen_spans: set[tuple[Span, ...]] = set()
        self.seen_variants: set[Hashable] = set()
        self.unperturbed = self.identify(())[0]

    def _new(self, ablations: Sequence[Sequence[Span]]) -> dict[Hashable, int]:
        """The distinct prompts of ``ablations`` not counted yet, with their lengths."""
        new: dict[Hashable, int] = {}
        for key in {merge_spans(a) for a in ablations}:
            if key in self.seen_spans:
                continue
            variant, length = self.identify(key)
            if variant not in self.seen_variants:
                new[variant] = length
        return new

    def count_new(self, ablations: Sequence[Sequence[Span]]) -> int:
        """As :meth:`Scorer.count_new`: the unperturbed prompt is no new call (every run scores it first)."""
        return len(self._new(ablations).keys() - {self.unperturbed})

    def _charge(self, lengths: Sequence[int]) -> None:
        """Count one call per prompt of ``lengths`` tokens, each sent once per continuation."""
        if self.remaining is not None and len(lengths) > self.remaining:
            raise BudgetError(
                f"{len(lengths)} more calls needed but only {self.remaining} left of the budget of {self.budget}"
            )
        requests = 2 if self.contrast_ids else 1
        self.calls += len(lengths)
        self.tokens_evaluated += requests * sum(lengths) + len(lengths) * self.n_output

    def _logprobs(self, ablations: Sequence[Sequence[Span]]) -> np.ndarray:
        keys = [merge_spans(a) for a in ablations]
        new = self._new(ablations)
        self._charge(list(new.values()))
        self.seen_variants |= set(new)
        self.seen_spans |= set(keys)
        rows = np.full((len(keys), self.n_output), -1e3)
        rows[[index for index, key in enumerate(keys) if key == ()]] = 0.0  # the unperturbed prompt
        return rows

    def charge_bound(self, ablations: Sequence[Sequence[Span]], *, limit: int | None = None) -> None:
        new = self._new(ablations)
        allowed = [a for a in (self.remaining, limit) if a is not None]
        if not allowed or len(new) <= min(allowed):
            self.drops(ablations)
            return
        self._charge(sorted(new.values(), reverse=True)[: min(allowed)])

    def charge_calls(self, count: int) -> None:
        if self.remaining is not None:
            count = min(count, self.remaining)
        self._charge([len(self.prompt)] * count)


class _RegionCounter(ReservedScorer):
    """A :class:`_Counter` seen from one region (spans relative to it), leaving ``reserve`` calls of the
    budget to the regions after it, as the run's region views do."""

    def __init__(self, counter: _Counter, offset: int, reserve: int) -> None:
        super().__init__(RegionScorer(counter, offset), reserve)
        self.counter = counter
        self.offset = offset

    def _shift(self, ablations: Sequence[Sequence[Span]]) -> list[list[Span]]:
        return [[(a + self.offset, b + self.offset) for a, b in spans] for spans in ablations]

    def charge_bound(self, ablations: Sequence[Sequence[Span]], *, limit: int | None = None) -> None:
        allowed = [a for a in (self.remaining, limit) if a is not None]
        self.counter.charge_bound(self._shift(ablations), limit=min(allowed) if allowed else None)

    def charge_calls(self, count: int) -> None:
        self.counter.charge_calls(count if self.remaining is None else min(count, self.remaining))


@with_options("plan")
def plan(
    prompt: str | list[dict[str, str]],
    *,
    backend: Backend | str | None = None,
    backend_options: dict[str, Any] | None = None,
    **options: Unpack[ExplainOptions],
) -> Plan:
    """The calls and tokens :func:`attrib.attribute` would need, without any model call.

    Only the prompt is tokenized (locally, or by an endpoint's tokenizer route). The
    pipeline runs as :func:`attrib.attribute` runs it, with a counting stand-in for the
    model's scores and each region spent by the method's
    :meth:`~attrib.methods.base.Scheduler.dry_run`. For ``hipe`` the numbers are an upper
    bound: every chunk of its refinement tree, capped by ``budget``, whatever the
    threshold and the early stop would pass; every other parameter of the method is honoured.

    Args:
        prompt, backend, backend_options: as in :func:`attrib.attribute`.
        **options: the run options of :func:`attrib.attribute` (:class:`~attrib.options.ExplainOptions`).

    Returns:
        A :class:`Plan`.

    Raises:
        InputError: the input errors of :func:`attrib.attribute` (a contrast included), including
            :class:`~attrib.errors.PromptTooLongError` and :class:`~attrib.errors.BudgetError`.
    """
    checked = RunOptions.build(**options)
    source = as_prompt(prompt, checked.chat_template)
    with open_backend(backend, backend_options, cache=False) as model:
        return plan_prompt(source, model, checked)


def plan_prompt(
    source: Prompt,
    model: Backend,
    checked: RunOptions,
    *,
    follow_up: Callable[[Layout], list[list[Span]]] | None = None,
) -> Plan:
    """The :class:`Plan` of the pipeline for any prompt (:func:`plan`, :func:`attrib.context.plan_cite`)
    on an open backend with checked options; the errors of :func:`plan`.

    ``follow_up(layout)`` gives the most ablations a run's follow-up
    (:func:`attrib.pipeline.run_probed`) could ask for after the method; they are charged as an
    upper bound (as far as the budget goes) and the plan's calls are then not exact."""
    method = checked.method
    level = unit_level(model.capabilities(), checked.level)
    perturb = checked.perturbation.bind(model.tokenize)
    output = resolve_output(
        source,
        model,
        target=checked.target,
        max_new_tokens=checked.max_new_tokens,
        contrast=checked.contrast,
        generate=False,
    )
    layout = output.layout
    counter = _Counter(
        layout.tokenization,
        output.ids,
        perturb,
        budget=checked.budget,
        chat=layout.chat,
        contrast_ids=output.contrast_ids,
    )

    def spend(region: Region, reserve: int) -> bool | None:
        view = _RegionCounter(counter, region.offset, reserve)
        return method.dry_run(view, region.segmentation, level)

    flags = score(source, model, counter, layout, level, checked, spend, progress=Progress(enabled=False)).regions
    extra = follow_up(layout) if follow_up is not None else []
    if extra:
        counter.charge_bound(extra)
    known = [flag for flag in flags if flag is not None]
    return Plan(
        method=method.name,
        level=level,
        units=sum(len(r.segmentation.units(level)) for r in layout.regions),
        prompt_tokens=len(layout.tokenization),
        output_tokens=len(output.ids),
        generation_calls=int(checked.target is None),
        calls=counter.calls,
        tokens=counter.tokens_evaluated,
        calls_exact=not method.adaptive and not extra,
        exact=all(known) if known and len(known) == len(flags) and not method.adaptive else None,
        contrast_tokens=len(output.contrast_ids),
    )

"""Dry runs: what an attribution would cost, computed without any model call.

:func:`plan` lays the prompt out with the backend's tokenizer (the only thing it
asks of the backend), checks everything the real run checks before its first
call (options, context length, budget), and runs the method's schedule against a
stand-in model that makes every chunk look salient, so HiPe refines everything:
an upper bound on the calls and tokens of the real run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Unpack

import numpy as np

from attrib.auditing.message_shapley import coalitions
from attrib.backend import Backend
from attrib.errors import BudgetError
from attrib.loading import open_backend
from attrib.methods.base import ReservedScorer, Scheduler, later_reserves
from attrib.methods.hipe import HiPe
from attrib.options import ExplainOptions, RunOptions, with_options
from attrib.perturbation import Replacement, Span, merge_spans
from attrib.pipeline import check_budget, unit_level
from attrib.prompt import ChatPrompt, Region, as_prompt, coalition_requests
from attrib.scoring import RegionScorer, Scorer
from attrib.target import check_contrast_backend, check_fits, split_contrast

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


_MODULUS = (1 << 61) - 1
_BASE = 1_000_003


class _VariantHashes:
    """Polynomial hashes of perturbed prompts in O(spans) each, from prefix hashes of the
    prompt's ids (Karp & Rabin 1987): two ablations that yield the same token ids (deleting
    either copy of a repeated word) are counted once, as the real Scorer counts them,
    without building either variant.

    Args:
        ids: the prompt's token ids.
        baseline: the replacement token id, or ``None`` for deletion.
    """

    def __init__(self, ids: Sequence[int], baseline: int | None) -> None:
        self.prefix = [0]
        self.power = [1]
        for token in ids:
            self.prefix.append((self.prefix[-1] * _BASE + token + 1) % _MODULUS)
            self.power.append(self.power[-1] * _BASE % _MODULUS)
        self.baseline = baseline
        self.run = [0]  # hash of r baseline tokens in a row
        if baseline is not None:
            for _ in ids:
                self.run.append((self.run[-1] * _BASE + baseline + 1) % _MODULUS)

    def _append(self, value: int, start: int, end: int) -> int:
        piece = (self.prefix[end] - self.prefix[start] * self.power[end - start]) % _MODULUS
        return (value * self.power[end - start] + piece) % _MODULUS

    def __call__(self, spans: tuple[Span, ...]) -> tuple[int, int]:
        """``(hash, length)`` of the variant with ``spans`` (merged, sorted) perturbed."""
        value, cursor, length = 0, 0, 0
        for start, end in spans:
            value = self._append(value, cursor, start)
            length += start - cursor
            if self.baseline is not None:
                value = (value * self.power[end - start] + self.run[end - start]) % _MODULUS
                length += end - start
            cursor = end
        value = self._append(value, cursor, len(self.prefix) - 1)
        return value, length + len(self.prefix) - 1 - cursor


class _CountingScorer:
    """A stand-in :class:`~attrib.scoring.SpanScorer` for dry runs: every ablation drops the
    output by 1,000 nats (so every chunk is refined), and each distinct variant is counted
    with the tokens it would send, without building it.

    Args:
        ids: the prompt's token ids.
        n_output: output tokens.
        baseline: the replacement token id, or ``None`` for deletion.
        budget: calls allowed, the unperturbed prompt included, or ``None``.
        requests: requests per call (2 with a contrast: each sends the variant's prompt).
    """

    def __init__(
        self, ids: Sequence[int], n_output: int, *, baseline: int | None, budget: int | None, requests: int = 1
    ) -> None:
        self.hashes = _VariantHashes(ids, baseline)
        self._n_output = n_output
        self.budget = budget
        self.requests = requests
        self.seen_spans: set[tuple[Span, ...]] = {()}
        self.seen_variants: set[tuple[int, int]] = {self.hashes(())}
        self.calls = 1  # the unperturbed prompt
        self.tokens_evaluated = requests * len(ids) + n_output

    @property
    def n_output(self) -> int:
        return self._n_output

    @property
    def contrast_start(self) -> int | None:
        return None  # the dry run scores nothing: every drop is 0 whatever the columns

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else max(0, self.budget - self.calls)

    @property
    def base_logprobs(self) -> np.ndarray:
        return np.zeros(self._n_output)

    def _new(self, ablations: Sequence[Sequence[Span]]) -> dict[tuple[int, int], tuple[Span, ...]]:
        new: dict[tuple[int, int], tuple[Span, ...]] = {}
        for ablation in ablations:
            key = merge_spans(ablation)
            if key in self.seen_spans:
                continue
            variant = self.hashes(key)
            if variant not in self.seen_variants:
                new.setdefault(variant, key)
        return new

    def count_new(self, ablations: Sequence[Sequence[Span]]) -> int:
        """Distinct variants of ``ablations`` not yet scored: as :meth:`attrib.scoring.Scorer.count_new`
        counts them, so the method's budget decisions here are the run's."""
        return len(self._new(ablations))

    def charge_bound(self, ablations: Sequence[Sequence[Span]], *, limit: int | None = None) -> None:
        """Charge ``ablations``; if their new variants exceed the budget (or ``limit`` calls), charge
        that many calls at the longest of their lengths (an upper bound on any subset the method picks)."""
        new = self._new(ablations)
        allowed = [a for a in (self.remaining, limit) if a is not None]
        if not allowed or len(new) <= min(allowed):
            self.drops(ablations)
            return
        lengths = sorted((length for _, length in new), reverse=True)[: min(allowed)]
        self.tokens_evaluated += self.requests * sum(lengths) + len(lengths) * self._n_output
        self.calls += len(lengths)

    def charge_calls(self, count: int) -> None:
        """Charge up to ``count`` more calls (fewer if the budget ends first), each at the unperturbed
        prompt's length: an upper bound for variants not known in advance."""
        if self.remaining is not None:
            count = min(count, self.remaining)
        self.add(count, count * (self.requests * (len(self.hashes.prefix) - 1) + self._n_output))

    def add(self, count: int, tokens: int) -> None:
        """Count ``count`` calls of ``tokens`` tokens in all, made outside span ablations."""
        self.calls += count
        self.tokens_evaluated += tokens

    def drops(self, ablations: Sequence[Sequence[Span]]) -> np.ndarray:
        new = self._new(ablations)
        if self.remaining is not None and len(new) > self.remaining:
            raise BudgetError(
                f"{len(new)} more calls needed but only {self.remaining} left of the budget of {self.budget}"
            )
        for variant in new:
            self.tokens_evaluated += self.requests * variant[1] + self._n_output
        self.seen_variants |= set(new)
        self.seen_spans |= {merge_spans(a) for a in ablations}
        self.calls += len(new)
        return np.full((len(ablations), self._n_output), 1e3)


def _schedule(method: Scheduler, scorer: _CountingScorer, region: Region, level: str, reserve: int) -> bool | None:
    """Spend ``scorer`` as ``method`` would on ``region`` with every chunk salient (HiPe: its
    whole refinement tree in breadth-first order, capped by the budget), leaving ``reserve``
    calls to the regions after it as the run does (:class:`~attrib.methods.base.ReservedScorer`).

    Returns:
        The ``exact`` flag of the method's trace, or ``None`` when it records none.
    """
    from attrib.methods.coalitions.hierarchical import Hierarchical  # on use: ``import attrib`` loads no method

    left = None if scorer.remaining is None else max(0, scorer.remaining - reserve)
    segmentation = region.segmentation
    shift = region.offset
    if isinstance(method, Hierarchical):
        hipe = method.hipe()
        ablations = [[(a + shift, b + shift)] for a, b in hipe.every_chunk(segmentation, level)]
        scorer.charge_bound(ablations, limit=method.hipe_cap(left, segmentation, level))
        left = None if scorer.remaining is None else max(0, scorer.remaining - reserve)
        coalition_calls = method.most_calls(len(segmentation.boundaries(level)) - 1)
        scorer.charge_calls(coalition_calls if left is None else min(coalition_calls, left))
        return None  # an upper bound whatever region HiPe picks: none of its variants counted as shared
    if not isinstance(method, HiPe):
        view = ReservedScorer(RegionScorer(scorer, shift), reserve)
        trace = method.run(view, segmentation, level).trace
        flag = None if trace is None else trace.get("exact")
        return flag if isinstance(flag, bool) else None
    ablations = [[(a + shift, b + shift)] for a, b in method.every_chunk(segmentation, level)]
    first = method.min_calls(segmentation, level)
    if left is not None and scorer.count_new(ablations[:first]) > left:
        raise BudgetError(f"hipe needs at least {first + 1} calls (the prompt and its first chunks); raise --budget")
    scorer.charge_bound(ablations, limit=left)
    return None


@with_options("plan")
def plan(
    prompt: str | list[dict[str, str]],
    *,
    backend: Backend | str | None = None,
    backend_options: dict[str, Any] | None = None,
    **options: Unpack[ExplainOptions],
) -> Plan:
    """The calls and tokens :func:`attrib.attribute` would need, without any model call.

    Only the prompt is tokenized (locally, or by an endpoint's tokenizer route). For
    ``hipe`` the numbers are an upper bound: the schedule is run against a stand-in
    that makes every chunk pass the threshold, capped by ``budget``; the early stop is
    left out (all the stand-in's drops are equal, which would stop at once), every
    other parameter of the method is honoured.

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
    target, contrast, budget = checked.target, checked.contrast, checked.budget
    source = as_prompt(prompt, checked.chat_template)
    scheduler = checked.method
    if getattr(scheduler, "top_k", None) is not None:
        scheduler = scheduler.replace(top_k=None)
    with open_backend(backend, backend_options, cache=False) as model:
        level = unit_level(model.capabilities(), checked.level)
        perturb = checked.perturbation.bind(model.tokenize)
        if target is None:
            layout = source.lay_out(model)
            output_ids: tuple[int, ...] = (0,) * checked.max_new_tokens
        else:
            layout, output_ids, _ = source.with_target(model, target)
        check_fits(model, len(layout.tokenization), len(output_ids))
        contrast_ids: tuple[int, ...] = ()
        if contrast is not None:
            check_contrast_backend(model)
            if target is None:  # the run splits a generated output like the contrast (attrib.target)
                layout = source.with_target(model, contrast)[0]
            contrast_ids, _ = split_contrast(source, model, layout, output_ids, target, contrast)
        subsets = coalitions(len(source.chat), seed=checked.seed) if isinstance(source, ChatPrompt) else []
        # the run's own scorer counts the first round (no call is made before its first score)
        counter = Scorer(model, layout.tokenization, output_ids, perturb, chat=layout.chat, contrast_ids=contrast_ids)
        check_budget(checked.method, layout, level, checked, len(subsets), scorer=counter)
        coalition_prompts = []
        if isinstance(source, ChatPrompt):
            others = [s for s in subsets if len(s) < len(source.chat)]
            coalition_prompts = coalition_requests(source, model, others, output_ids)
    tokens = layout.tokenization
    budget_left = None if budget is None else budget - checked.noise_samples
    baseline = perturb.token_id if isinstance(perturb, Replacement) else None
    requests = 2 if contrast_ids else 1
    n_columns = len(output_ids) + len(contrast_ids)
    scorer = _CountingScorer(tokens.ids, n_columns, baseline=baseline, budget=budget_left, requests=requests)
    distinct = {r.prompt_ids: len(r.prompt_ids) for r in coalition_prompts}
    scorer.add(len(distinct), requests * sum(distinct.values()) + len(distinct) * n_columns)
    views = [RegionScorer(scorer, region.offset) for region in layout.regions]
    reserves = later_reserves(scheduler, views, [region.segmentation for region in layout.regions], level)
    flags = [
        _schedule(scheduler, scorer, region, level, reserve)
        for region, reserve in zip(layout.regions, reserves, strict=True)
    ]
    known = [flag for flag in flags if flag is not None]
    exact = all(known) if known and len(known) == len(flags) and not scheduler.adaptive else None
    per_call = requests * len(tokens) + n_columns
    return Plan(
        method=scheduler.name,
        level=level,
        units=sum(len(r.segmentation.units(level)) for r in layout.regions),
        prompt_tokens=len(tokens),
        output_tokens=len(output_ids),
        generation_calls=int(target is None),
        calls=scorer.calls + checked.noise_samples,
        tokens=scorer.tokens_evaluated + checked.noise_samples * per_call,
        calls_exact=not scheduler.adaptive,
        exact=exact,
        contrast_tokens=len(contrast_ids),
    )

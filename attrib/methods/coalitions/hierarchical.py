"""Hierarchical coalitions: HiPe finds the salient region, a coalition method splits it.

Coarse to fine, in two steps on the same scorer:

1. :class:`~attrib.methods.hipe.HiPe` (with ``top_k`` set to the region's size, so it stops
   once that many units are settled) scores chunks and refines the salient ones,
   giving every unit a score. Under a call budget it gets ``share`` of what is left.
2. The ``region`` units with the highest HiPe scores (ties, such as the near-zero
   leave-one-out scores of repeated facts, go to units inside the chunks whose
   removal dropped the output most) become the players of a
   coalition game in which every other unit stays in the prompt; the coalition
   method (Shapley values by default, exact for up to 8 players) replaces their
   scores. The other units keep HiPe's scores.

The region's values add up to the drop of removing the whole region at once, so
two copies of one fact inside it share that drop, where HiPe's leaves (single-unit
leave-one-out) give each copy nearly nothing. The coalition step costs calls in
the region's size, not the prompt's.

Limitation: the region is HiPe's top units, so a copy HiPe scores near zero (its
leave-one-out drop) enters it only when few units score higher; a larger
``region`` makes that likelier at the coalition method's cost (``2^region - 1``
calls for exact Shapley values).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from attrib.errors import InputError
from attrib.methods.base import CostCounter, Schedule, ScorerView, SpanScorer
from attrib.methods.coalitions.base import CoalitionMethod, Phase
from attrib.methods.coalitions.checks import at_least, probability
from attrib.methods.coalitions.game import CoalitionGame
from attrib.methods.coalitions.shapley import ShapleySampling
from attrib.perturbation import Span, merge_spans
from attrib.result import MethodTrace, Trace
from attrib.result.codec import encode
from attrib.segmentation import Segmentation

if TYPE_CHECKING:
    from attrib.methods.hipe import HiPe

__all__ = ["Hierarchical", "CappedScorer"]


class CappedScorer(ScorerView):
    """A :class:`~attrib.scoring.SpanScorer` that allows at most ``cap`` more calls than it started with.

    Args:
        scorer: the run's scorer (its own budget still holds).
        cap: calls this view may make; ``None`` for the scorer's own limit only.
    """

    def __init__(self, scorer: SpanScorer, cap: int | None) -> None:
        super().__init__(scorer)
        self.start = scorer.calls
        self.cap = cap

    @property
    def remaining(self) -> int | None:
        own = None if self.cap is None else max(0, self.start + self.cap - self.scorer.calls)
        outer = self.scorer.remaining
        if own is None or outer is None:
            return outer if own is None else own
        return min(own, outer)


def top_region(coarse: Schedule, bounds: Sequence[int], size: int) -> list[int]:
    """The ``size`` units with the highest HiPe scores; ties by the largest drop of a chunk holding them.

    HiPe's score of a unit refined to a leaf is its leave-one-out drop, so the copies
    of a repeated fact tie near zero with units that do not matter; among tied
    units, those inside a chunk whose removal dropped the output more come first.

    Returns:
        Unit indices, sorted.
    """
    n = len(bounds) - 1
    totals = coarse.scores.sum(axis=1)
    cover = np.full(n, -np.inf)
    chunks = coarse.trace.chunks if isinstance(coarse.trace, Trace) else []
    for chunk in chunks:
        first = int(np.searchsorted(bounds, chunk.start, side="left"))
        last = int(np.searchsorted(bounds, chunk.end, side="right")) - 1
        if last > first:
            cover[first:last] = np.maximum(cover[first:last], chunk.score)
    order = np.lexsort((np.arange(n), -cover, -totals))
    return sorted(int(i) for i in order[:size])


def _hipe_record(trace: Trace | MethodTrace | None) -> dict[str, object]:
    """HiPe's trace as the JSON record hierarchical's own starts from: every field, its chunks
    without the ``message`` tag (unset in one region's trace), or ``{}`` without a trace."""
    if not isinstance(trace, Trace):
        return {}
    record: dict[str, object] = encode(trace)
    record["chunks"] = [{k: v for k, v in encode(chunk).items() if k != "message"} for chunk in trace.chunks]
    return record


def _most_disjoint(sets: list[frozenset[int]]) -> int:
    """The size of the largest family of pairwise disjoint sets among ``sets`` (few sets: searched)."""
    if len(sets) > 16:
        return len(sets)  # an upper bound, enough for a lower bound on calls
    best = 0

    def grow(start: int, used: frozenset[int], size: int) -> None:
        nonlocal best
        best = max(best, size)
        for index in range(start, len(sets)):
            if not used & sets[index]:
                grow(index + 1, used | sets[index], size + 1)

    grow(0, frozenset(), 0)
    return best


@dataclass(frozen=True)
class Hierarchical(CoalitionMethod):
    """HiPe over the prompt, then a coalition method among its top units (nats, shape (n_units, m)).

    Args:
        region: how many of HiPe's top units become the coalition game's players.
        method: the coalition method for the region, an instance or a registered name
            (``"shapley"``, ``"kernelshap"``, ``"surrogate"``, ``"lime"``); its seed is
            replaced by ``seed``.
        share: under a call budget, the share of the remaining calls HiPe may use (at
            least its first round); the coalition method takes what is left.
        threshold: HiPe's threshold (see :class:`~attrib.methods.hipe.HiPe`).
        seed: seed of the coalition method.

    Raises:
        InputError: for ``region`` below 1, ``share`` outside (0, 1), a negative seed, or a
            ``method`` that is not one coalition game's method.
        UnknownNameError: for an unknown method name.

    Source: Cooper, Arandjelović & Harrison 2021 (HiPe); the coalition method's own.
    """

    region: int = 6
    method: CoalitionMethod = field(default_factory=ShapleySampling)
    share: float = 0.5
    threshold: str = "relative"
    seed: int = 0

    name = "hierarchical"
    adaptive: ClassVar[bool] = True  # HiPe chooses the region first

    def __post_init__(self) -> None:
        at_least("region", self.region, 1)
        probability("share", self.share)
        at_least("seed", self.seed, 0)
        method: object = self.method
        if isinstance(method, str):
            from attrib import registry

            method = registry.methods.instance(method)
        if not isinstance(method, CoalitionMethod) or isinstance(method, Hierarchical):
            raise InputError(
                f"hierarchical's method must be a method of one coalition game (shapley, kernelshap, "
                f"surrogate or lime), got {self.method!r}"
            )
        object.__setattr__(self, "method", method)

    def min_calls(self, segmentation: Segmentation, level: str) -> int:
        """HiPe's first chunks plus the coalition method's first round, less the variants both score.

        With at most ``region`` units the region is every unit, so the coalition method's
        first round is known and the variants HiPe's first chunks already scored (the
        leave-one-out of a unit that is a first chunk) are free, as in :meth:`run`. With
        more units the region is chosen by HiPe's scores: the bound then assumes the
        most first chunks the first round could meet (a lower bound: the run may need more).
        """
        hipe = self.hipe()
        bounds = segmentation.boundaries(level)
        n = len(bounds) - 1
        inner = self.method.replace(seed=self.seed)
        chunks = hipe.first_chunks(segmentation, level)
        r = min(n, self.region)
        first = [c for round_ in inner.rounds(r)[: inner.minimum_rounds] for c in round_] if r else []
        removed = {frozenset(i for i in range(r) if i not in set(c)) for c in first}
        removed.discard(frozenset())
        if n <= self.region:
            scored = {merge_spans([chunk]) for chunk in chunks}
            spans = [(bounds[i], bounds[i + 1]) for i in range(n)]
            fresh = {merge_spans([spans[i] for i in sorted(units)]) for units in removed} - scored
            return len(chunks) + len(fresh)
        # HiPe's first chunks are disjoint, so they can equal at most a family of disjoint ablations.
        return len(chunks) + len(removed) - min(len(chunks), _most_disjoint(list(removed)))

    def first_round(self, segmentation: Segmentation, level: str) -> list[list[Span]] | None:
        """With at most ``region`` units, HiPe's first chunks and the coalition method's first round
        over every unit. With more, the region is HiPe's choice: ``None`` (:meth:`min_calls` bounds
        it), unless some units repeat, when the region's coalitions may share prompts that bound
        does not know: then HiPe's first chunks alone (a lower bound; the run checks the rest)."""
        bounds = segmentation.boundaries(level)
        n = len(bounds) - 1
        chunks = self.hipe().first_round(segmentation, level)
        if n <= self.region:
            return chunks + (self.method.replace(seed=self.seed).first_round(segmentation, level) or [])
        ids = segmentation.tokenization.ids
        units = {ids[a:b] for a, b in zip(bounds, bounds[1:], strict=False)}
        return chunks if len(units) < n else None

    def least_calls(self, n: int) -> int:
        return self.method.replace(seed=self.seed).least_calls(min(n, self.region))

    def most_calls(self, n: int) -> int:
        """Most calls the coalition step can make on ``n`` units' region, none shared with HiPe's."""
        return self.method.replace(seed=self.seed).most_calls(min(n, self.region))

    def hipe(self) -> HiPe:
        """The HiPe scheduler of the first step (stopping once ``region`` units are settled)."""
        from attrib.methods.hipe import HiPe

        return HiPe(threshold=self.threshold, top_k=self.region)

    def hipe_cap(self, remaining: int | None, segmentation: Segmentation, level: str) -> int | None:
        """Calls HiPe may make when ``remaining`` are left (``None``: no limit): ``share`` of them, at
        least its first chunks, leaving the coalition method its first round when that fits.
        What :meth:`run` gives HiPe, and what the dry run (:mod:`attrib.dryrun`) bounds it by."""
        if remaining is None:
            return None
        n = len(segmentation.boundaries(level)) - 1
        reserve = self.method.replace(seed=self.seed).least_calls(min(n, self.region))
        first = self.hipe().min_calls(segmentation, level)
        return max(first, min(remaining - reserve, int(self.share * remaining)))

    def dry_run(self, counter: CostCounter, segmentation: Segmentation, level: str) -> None:
        """Charge HiPe's whole refinement tree within :meth:`hipe_cap`, then the coalition step's
        :meth:`most_calls` at the unperturbed prompt's length: an upper bound whatever region HiPe
        picks (none of the coalition step's prompts counted as shared with HiPe's)."""
        counter.charge_bound(
            [[span] for span in self.hipe().every_chunk(segmentation, level)],
            limit=self.hipe_cap(counter.remaining, segmentation, level),
        )
        counter.charge_calls(self.most_calls(len(segmentation.boundaries(level)) - 1))

    def run(
        self,
        scorer: SpanScorer,
        segmentation: Segmentation,
        level: str,
        *,
        on_phase: Phase = None,
    ) -> Schedule:
        """HiPe, then the coalition method among HiPe's top ``region`` units.

        Returns:
            A :class:`Schedule` with scores of shape (n_units, n_output_tokens), nats;
            the trace is HiPe's (its chunks) plus ``coalitions``: the region's unit
            indices, the method and its trace, and the calls each step made.

        Raises:
            BudgetError: if the budget cannot cover HiPe's first round and the
                coalition method's.
        """
        hipe = self.hipe()
        bounds = segmentation.boundaries(level)
        inner = self.method.replace(seed=self.seed)
        cap = self.hipe_cap(scorer.remaining, segmentation, level)
        start = scorer.calls
        # HiPe reads only the SpanScorer protocol; its signature names the Scorer class.
        coarse = hipe.run(CappedScorer(scorer, cap), segmentation, level, on_phase=on_phase)
        hipe_calls = scorer.calls - start
        region = top_region(coarse, bounds, self.region)
        game = CoalitionGame(scorer, [(bounds[i], bounds[i + 1]) for i in region])
        fine = inner.solve(game, on_phase)
        scores = coarse.scores.copy()
        scores[region] = fine.scores
        trace = _hipe_record(coarse.trace)
        trace["coalitions"] = {
            "region": region,
            "method": inner.describe(),
            "trace": fine.trace.record if isinstance(fine.trace, MethodTrace) else None,
            "hipe_calls": hipe_calls,
            "coalition_calls": scorer.calls - start - hipe_calls,
        }
        exhausted = coarse.budget_exhausted or fine.budget_exhausted
        return Schedule(scores=scores, trace=self.method_trace(trace), budget_exhausted=exhausted)

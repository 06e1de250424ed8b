"""The HiPe scheduler: score the first chunks, then refine, family by family, what the order passes.

The method, its assumption and its parameters are described in :mod:`attrib.hipe`;
this file holds only the loop that ties the chunk tree, the threshold, the
refinement order, the early stop and the call budget together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from attrib import registry
from attrib.errors import BudgetError, InputError
from attrib.hipe.chunks import Chunk, ChunkTree, children, first_spans
from attrib.hipe.orders import Order
from attrib.hipe.thresholds import Threshold, get_threshold
from attrib.perturbation import Span
from attrib.scheduler import Schedule, Scheduler, SpanScorer
from attrib.segmentation import Segmentation

__all__ = ["HiPe"]

#: A parent to refine (``None`` for the first chunks) and the spans of its new children.
Family = tuple[Chunk | None, list[Span]]


class EarlyStop:
    """HiPe's early stop: leave chunks unrefined that cannot change the top ``top_k`` units.

    Once ``top_k`` leaves are scored, a chunk whose ceiling does not exceed the
    ``top_k``-th largest leaf drop cannot hold a unit that would enter the top
    ``top_k`` (the monotonicity assumption). When that leaves no parent to refine,
    :attr:`record` says so: calls so far, the ``top_k``-th unit drop and the largest
    ceiling left unrefined (nats).

    Args:
        top_k: units to settle, or ``None`` for no early stop.
    """

    def __init__(self, top_k: int | None) -> None:
        self.top_k = top_k
        self.record: dict[str, float] | None = None

    def settle(self, tree: ChunkTree, ranked: list[Chunk], calls: int) -> list[Chunk]:
        """The chunks of ``ranked`` that can still change the top ``top_k`` units, in order."""
        kth = None if self.top_k is None else tree.kth_leaf_drop(self.top_k)
        if kth is None:
            return ranked
        kept = [c for c in ranked if tree.ceiling(c) > kth]
        if ranked and not kept:
            unrefined = max(tree.ceiling(c) for c in ranked)
            self.record = {"calls": calls, "kth_unit_drop": kth, "largest_unrefined_drop": unrefined}
        return kept


@dataclass(frozen=True, init=False)
class HiPe(Scheduler):
    """Hierarchical perturbation scheduler.

    Args:
        threshold: ``"relative"`` (default), ``"midrange"`` (HiPe's original rule), a
            number of nats (fixed threshold), or a :class:`~attrib.hipe.Threshold`.
        max_depth: deepest refinement depth (0 scores only the first three chunks);
            ``None`` refines down to the requested level.
        leaf_group: a chunk of at most this many units is cut straight into its units.
            ``None`` (default): the order's own, 4 with ``order="depth"`` and 8 with
            ``order="best"``. A chunk of ``n`` units costs ``n`` calls cut into units,
            and about ``3 log2 n`` calls halved down to one salient unit, so below ~10
            units the direct cut is the cheaper one (measurements in ``docs/design.md``).
        order: ``"best"`` (default) refines one chunk at a time, always the one with the
            highest ceiling the threshold passes at its depth (best-first search), so a
            call budget goes to the most salient region all the way down to its units
            first; ``"depth"`` refines level by level (every chunk the threshold passes
            at one depth before the next depth, HiPe's original schedule); or an
            :class:`~attrib.hipe.orders.Order`.
        top_k: early stop: once ``top_k`` units are refined to the requested level,
            stop refining chunks whose ceiling is no larger than the ``top_k``-th
            largest unit drop. Under the monotonicity assumption of hierarchical
            perturbation (a unit inside a chunk cannot drop the output more than
            ablating the whole chunk) the remaining chunks cannot change which units
            are the top ``top_k``; a chunk left unrefined passes its drop to its units
            spread over their tokens. ``None`` turns the early stop off.

    Raises:
        InputError: for a negative ``max_depth``, a ``leaf_group`` below 1 or a
            ``top_k`` below 1.
        UnknownNameError: for an unknown threshold or order name.
    """

    name: ClassVar[str] = "hipe"
    threshold: Threshold
    max_depth: int | None
    leaf_group: int | None
    order: Order
    top_k: int | None

    def __init__(
        self,
        *,
        threshold: str | float | Threshold = "relative",
        max_depth: int | None = None,
        leaf_group: int | None = None,
        order: str | Order = "best",
        top_k: int | None = None,
    ) -> None:
        if max_depth is not None and max_depth < 0:
            raise InputError(f"max_depth must be 0 or more, got {max_depth}")
        if leaf_group is not None and leaf_group < 1:
            raise InputError(f"leaf_group must be at least 1, got {leaf_group}")
        if top_k is not None and top_k < 1:
            raise InputError(f"top_k must be at least 1 (or None to turn the early stop off), got {top_k}")
        # A frozen dataclass sets its fields once, here, after normalising them.
        object.__setattr__(self, "threshold", get_threshold(threshold))
        object.__setattr__(self, "max_depth", max_depth)
        object.__setattr__(self, "leaf_group", leaf_group)
        object.__setattr__(self, "order", registry.orders.instance(order))
        object.__setattr__(self, "top_k", top_k)

    @property
    def group(self) -> int:
        """The ``leaf_group`` in use: the given one, else the order's default."""
        return self.order.leaf_group if self.leaf_group is None else self.leaf_group

    def describe(self) -> dict[str, object]:
        """JSON-ready parameters (every field; ``leaf_group`` as the group in use)."""
        return {**super().describe(), "leaf_group": self.group}

    def min_calls(self, segmentation: Segmentation, level: str) -> int:
        return len(self.first_chunks(segmentation, level))

    def first_round(self, segmentation: Segmentation, level: str) -> list[list[Span]]:
        """Each of :meth:`first_chunks` ablated on its own."""
        return [[span] for span in self.first_chunks(segmentation, level)]

    def first_chunks(self, segmentation: Segmentation, level: str) -> list[Span]:
        """The depth-0 chunks every run scores first, token spans (what :meth:`min_calls` counts):
        the segmentation's roots when it has them (the sources of an assembled prompt), else the
        whole prompt cut once."""
        roots = segmentation.roots(level)
        if roots is not None:
            return list(roots)
        return first_spans(segmentation.n_tokens, segmentation.hierarchy(level), leaf_group=self.group)

    def every_chunk(self, segmentation: Segmentation, level: str) -> list[Span]:
        """Every chunk a run scores when every chunk passes the threshold: the whole
        refinement tree down to ``max_depth``, breadth first, each chunk once (a chunk two
        parents share is scored once). The dry run's upper bound (:mod:`attrib.dryrun`);
        kept here, next to :meth:`run`, so a new parameter that shapes the tree shapes both.
        """
        hierarchy = segmentation.hierarchy(level)
        first = self.first_chunks(segmentation, level)
        seen = dict.fromkeys(first)
        frontier = list(first)
        depth = 0
        while frontier and (self.max_depth is None or depth < self.max_depth):
            deeper = []
            for start, end in frontier:
                for span in children(start, end, hierarchy, leaf_group=self.group):
                    if span not in seen:
                        seen[span] = None
                        deeper.append(span)
            frontier = deeper
            depth += 1
        return list(seen)

    def run(
        self,
        scorer: SpanScorer,
        segmentation: Segmentation,
        level: str,
        *,
        on_phase: Callable[[str, int | None], None] | None = None,
    ) -> Schedule:
        """Score chunks coarse to fine, refining those the threshold passes, in the order's order.

        Returns:
            A :class:`Schedule` with scores of shape (n_units, n_output_tokens), nats,
            and a trace of every scored chunk (``trace["chunks"]``) and of the early
            stop (``trace["early_stop"]``: calls so far, the ``top_k``-th unit drop and
            the largest ceiling left unrefined, or ``None``).

        Raises:
            BudgetError: if the budget cannot cover the first chunks.
        """
        tree = ChunkTree(
            segmentation.hierarchy(level),
            segmentation.n_tokens,
            scorer.n_output,
            leaf_group=self.group,
            contrast_start=scorer.contrast_start,
        )
        first = self.first_chunks(segmentation, level)
        if scorer.remaining is not None and scorer.count_new([[s] for s in first]) > scorer.remaining:
            raise BudgetError(
                f"hipe needs at least {len(first) + 1} calls (the prompt and its first "
                f"{len(first)} chunks); raise --budget"
            )
        newest = self._score(scorer, tree, [(None, first)], on_phase)
        stop = EarlyStop(self.top_k)
        budget_exhausted = False
        while parents := self._parents(tree, newest, stop, scorer.calls):
            families, stopped = self._fit(tree, parents, scorer.remaining)
            budget_exhausted = budget_exhausted or stopped
            if stopped and not families:
                break  # not even the first parent's family fits the budget
            newest = self._score(scorer, tree, families, on_phase)
        return Schedule(
            scores=tree.unit_scores(),
            trace=self._trace(tree, segmentation, stop.record),
            budget_exhausted=budget_exhausted,
        )

    def _parents(self, tree: ChunkTree, newest: Sequence[Chunk], stop: EarlyStop, calls: int) -> list[Chunk]:
        """This round's parents: passed by the threshold, ranked by the order, kept by the early stop.

        Depth order refines every one of them; best-first only the first.
        """
        ranked = self.order.parents(tree, newest, self.threshold, self.max_depth)
        return self.order.take(stop.settle(tree, ranked, calls))

    @staticmethod
    def _fit(tree: ChunkTree, parents: list[Chunk], remaining: int | None) -> tuple[list[Family], bool]:
        """The families (a parent and its new children) that fit the budget, in rank order.

        A parent is refined whole or not at all (a partial set of children can miss
        the part that made it salient), and the round ends at the first family that
        does not fit. Parents whose children were all scored already count as refined.

        Returns:
            The families with children to score, and whether the budget stopped a family.
        """
        families: list[Family] = []
        spans: list[Span] = []
        stopped = False
        for parent in parents:
            kids = [k for k in tree.family(parent) if k not in spans]
            if remaining is not None and len(spans) + len(kids) > remaining:
                stopped = True
                break
            parent.refined = True
            families.append((parent, kids))
            spans.extend(kids)
        return [family for family in families if family[1]], stopped

    @staticmethod
    def _score(
        scorer: SpanScorer,
        tree: ChunkTree,
        families: list[Family],
        on_phase: Callable[[str, int | None], None] | None,
    ) -> list[Chunk]:
        """Score the children of ``families`` in one batch and add them to the tree; the new chunks."""
        spans = [span for _, kids in families for span in kids]
        if not spans:
            return []
        depth = max((parent.depth + 1 for parent, _ in families if parent is not None), default=0)
        if on_phase is not None:
            on_phase(f"hipe depth {depth}", scorer.calls + scorer.count_new([[s] for s in spans]))
        drops = scorer.drops([[s] for s in spans])
        rows = iter(drops)
        new: list[Chunk] = []
        for parent, kids in families:
            index = None if parent is None else tree.index(parent)
            new.extend(tree.add(span, depth, index, next(rows)) for span in kids)
        return new

    def _trace(
        self, tree: ChunkTree, segmentation: Segmentation, early_stop: dict[str, float] | None
    ) -> dict[str, object]:
        """The JSON-ready record of the run: parameters, early stop, depths and every scored chunk."""
        offset = segmentation.tokenization.char_offset
        return {
            "threshold": self.threshold.describe(),
            "max_depth": self.max_depth,
            "order": self.order.describe(),
            "top_k": self.top_k,
            "early_stop": early_stop,
            "depths": tree.deepest() + 1,
            "chunks": [
                {
                    "start": c.start,
                    "end": c.end,
                    "char_start": offset(c.start),
                    "char_end": offset(c.end),
                    "depth": c.depth,
                    "parent": c.parent,
                    "score": c.score,
                    "refined": c.refined,
                    "leaf": c.leaf,
                }
                for c in tree.chunks
            ],
        }

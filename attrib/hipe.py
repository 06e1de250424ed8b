"""Hierarchical perturbation (HiPe): coarse overlapping chunks first, refined only where it matters.

Method (after Cooper, Arandjelović & Harrison 2021, "Believe the HiPe: Hierarchical
Perturbation for Fast, Robust, and Model-Agnostic Saliency Mapping", adapted to
text as in Leap Labs' PIZZA):

1. Depth 0 cuts the prompt into three overlapping halves, ``[0, n/2)``,
   ``[n/4, 3n/4)`` and ``[n/2, n)``, each ablated on its own.
2. After each depth, a :class:`Threshold` picks the chunks worth refining. Each
   picked chunk is cut the same way into (up to) three overlapping halves at the
   next depth; a chunk of at most ``leaf_group`` units (8, or 4 in depth order) is
   cut straight into its units.
   Every cut follows the text's hierarchy: it lands on a paragraph edge if one lies
   within an eighth of the chunk's length of the ideal cut point, else on a
   sentence edge, else a word edge, else a token edge, never below the requested
   level. A chunk of one unit is a leaf.
3. Chunks that two parents share are scored once; the Scorer also never sends the
   same variant twice. Under a call budget, the most salient parents are refined
   first, each with all its children, and refinement stops at the first parent
   whose children no longer fit.

Refinement order (``order``):

* ``"depth"``: every chunk the threshold passes at one depth is refined before the
  next depth, as in the original method. Under a budget the calls go to the shallow
  depths first, so a tight budget can end with no single unit scored.
* ``"best"`` (default): best-first search. Each scored chunk bounds the drop of
  every token inside it (the *monotonicity* assumption hierarchical perturbation
  rests on: a unit cannot drop the output more than a chunk that holds it), a
  token's bound is the smallest drop of the chunks around it, and a chunk's
  *ceiling* is the largest bound among its tokens. One chunk is refined at a time:
  the one with the highest ceiling that the threshold passes (judged on ceilings
  among the chunks of its depth). Overlapping chunks whose tokens are already
  covered by smaller, weaker chunks fall below the threshold and are skipped, and a
  budget reaches single units in the most salient region first (branch and bound, as
  in best-first search for the maximum of a function bounded on regions).

Early stop (``top_k``): once ``top_k`` units are refined to the requested level,
chunks whose ceiling does not exceed the ``top_k``-th largest unit drop are left
unrefined: by the same assumption they cannot hold a unit that would enter the top
``top_k``. With ``order="best"`` the stop ends the run as soon as the top units are
settled; with ``order="depth"`` leaves appear only at the last depths, so it saves
little.
4. The per-token map spreads each chunk's drop evenly over its tokens and keeps,
   for every token, the mean over the smallest chunks that cover it. A unit's
   score is the sum of the map over its tokens: a leaf unit gets its exact
   leave-one-out drop, a unit never refined inherits its chunk's drop divided
   over the chunk's tokens.

Thresholds:

* :class:`Relative` (default): refine a chunk whose drop is at least ``fraction``
  of the largest drop at its depth and at least ``floor`` nats.
* :class:`MidRange` (HiPe's original rule): refine a chunk of the newest depth
  when the current per-token map reaches ``(max + min) / 2`` somewhere inside it.
  On prompts that end in a question it follows the question, whose ablation
  dominates the map, and can leave the decisive context unrefined (measured on
  ``examples/needle.txt``: the fact sentence was never refined, where
  ``Relative`` reproduced exhaustive leave-one-out's top six units).
* :class:`Fixed`: refine a chunk whose drop is at least a fixed number of nats.

All drops are summed over output tokens (nats); the matrix keeps the per-token columns.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from attrib.errors import BudgetError, InputError, UnknownNameError
from attrib.perturbation import Span
from attrib.scheduler import Schedule, Scheduler
from attrib.scoring import Scorer
from attrib.segmentation import Segmentation

__all__ = ["HiPe", "Chunk", "Threshold", "MidRange", "Relative", "Fixed", "get_threshold", "ORDERS"]

#: Refinement orders of :class:`HiPe`.
ORDERS: tuple[str, ...] = ("best", "depth")


@dataclass
class Chunk:
    """A scored chunk of the prompt.

    Attributes:
        start, end: token positions, half-open.
        depth: refinement depth (0 = the first, coarsest chunks).
        parent: index of the chunk it was cut from, or ``None`` at depth 0.
        drops: attribution of ablating the chunk, nats, shape (n_output_tokens,).
        leaf: True if the chunk is a single unit of the requested level.
        refined: True once its children were scored.
    """

    start: int
    end: int
    depth: int
    parent: int | None
    drops: np.ndarray
    leaf: bool
    refined: bool = False

    @property
    def score(self) -> float:
        """Drop in the whole output's log-probability when the chunk is ablated, nats."""
        return float(self.drops.sum())

    @property
    def length(self) -> int:
        return self.end - self.start


class Threshold:
    """Chooses which chunks of the newest depth to refine."""

    name = ""
    #: Whether :meth:`select` reads ``token_map`` (it is not computed for rules that do not).
    uses_map = True

    def select(
        self, chunks: Sequence[Chunk], token_map: np.ndarray, values: Sequence[float] | None = None
    ) -> list[Chunk]:
        """Return the chunks of ``chunks`` to refine.

        Args:
            chunks: the non-leaf chunks of one depth.
            token_map: current per-token attribution summed over output tokens,
                nats, shape (n_tokens,).
            values: what to judge each chunk by, nats, one per chunk; default each
                chunk's drop (``chunk.score``). Best-first HiPe passes its tighter bounds.
        """
        raise NotImplementedError

    def describe(self) -> dict[str, object]:
        return {"name": self.name}


@dataclass(frozen=True)
class MidRange(Threshold):
    """HiPe's rule: refine where the per-token map reaches its mid-range ``(max + min) / 2``.

    Source: Cooper et al. 2021, "Believe the HiPe" (the saliency map is thresholded
    at its mid-range to choose where the next, finer masks go).
    """

    name = "midrange"

    def select(
        self, chunks: Sequence[Chunk], token_map: np.ndarray, values: Sequence[float] | None = None
    ) -> list[Chunk]:
        level = (float(token_map.max()) + float(token_map.min())) / 2.0
        return [c for c in chunks if float(token_map[c.start : c.end].max()) >= level]


@dataclass(frozen=True)
class Relative(Threshold):
    """Refine a chunk whose drop is at least ``fraction`` of its depth's largest and ``floor`` nats.

    Args:
        fraction: share of the largest chunk drop at the same depth (0..1).
        floor: absolute minimum drop in nats, so noise is never refined.
    """

    fraction: float = 0.1
    floor: float = 0.5
    name = "relative"
    uses_map = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise InputError(f"threshold fraction must be within [0, 1], got {self.fraction}")

    def select(
        self, chunks: Sequence[Chunk], token_map: np.ndarray, values: Sequence[float] | None = None
    ) -> list[Chunk]:
        if not chunks:
            return []
        judged = [c.score for c in chunks] if values is None else list(values)
        level = max(self.floor, self.fraction * max(judged))
        return [c for c, v in zip(chunks, judged) if v >= level]

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "fraction": self.fraction, "floor": self.floor}


@dataclass(frozen=True)
class Fixed(Threshold):
    """Refine a chunk whose drop is at least ``nats``."""

    nats: float = 1.0
    name = "fixed"
    uses_map = False

    def select(
        self, chunks: Sequence[Chunk], token_map: np.ndarray, values: Sequence[float] | None = None
    ) -> list[Chunk]:
        judged = [c.score for c in chunks] if values is None else list(values)
        return [c for c, v in zip(chunks, judged) if v >= self.nats]

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "nats": self.nats}


_THRESHOLDS = ("relative", "midrange")


def get_threshold(spec: str | float | Threshold) -> Threshold:
    """Threshold from a name (``"relative"``, ``"midrange"``), a number of nats, or an instance.

    Raises:
        UnknownNameError: for an unknown name.
    """
    if isinstance(spec, Threshold):
        return spec
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Fixed(float(spec))
    if spec == "midrange":
        return MidRange()
    if spec == "relative":
        return Relative()
    try:
        return Fixed(float(spec))
    except (TypeError, ValueError):
        raise UnknownNameError.for_choice("threshold", spec, _THRESHOLDS) from None


def token_map(chunks: Sequence[Chunk], n_tokens: int, n_output: int) -> np.ndarray:
    """Per-token attribution from scored chunks.

    Each chunk's drops are spread evenly over its tokens; every token takes the
    mean over the *smallest* chunks that cover it (a leaf, where there is one, so
    refined units keep their exact leave-one-out drop; otherwise the finest chunks
    scored around it). Tokens no chunk covers are 0.

    Returns:
        Array of shape (n_tokens, n_output), nats per token.
    """
    size_at = np.full(n_tokens, np.iinfo(np.int64).max, dtype=np.int64)
    total = np.zeros((n_tokens, n_output))
    count = np.zeros(n_tokens)
    for chunk in sorted(chunks, key=lambda c: -c.length):
        rows = np.arange(chunk.start, chunk.end)
        smaller = size_at[rows] > chunk.length
        if smaller.any():
            reset = rows[smaller]
            total[reset] = 0.0
            count[reset] = 0.0
            size_at[reset] = chunk.length
        same = rows[size_at[rows] == chunk.length]
        total[same] += chunk.drops / chunk.length
        count[same] += 1.0
    return total / np.maximum(count, 1.0)[:, None]


def children(start: int, end: int, hierarchy: Sequence[Sequence[int]], *, leaf_group: int = 4) -> list[Span]:
    """Cut ``[start, end)`` into up to three overlapping halves along the text's hierarchy.

    Args:
        start, end: the chunk's token positions.
        hierarchy: sorted boundary positions per level, coarsest first; the last is the
            requested level (no cut is made below it).
        leaf_group: a chunk of at most this many units of the requested level is cut
            straight into its units (cheaper than halves that would be refined again).

    Returns:
        The child spans, in order, without duplicates or the parent itself; empty if
        the chunk is a single unit of the requested level.
    """
    units = hierarchy[-1]
    inner = units[bisect.bisect_right(units, start) : bisect.bisect_left(units, end)]
    if not inner:
        return []
    if len(inner) + 1 <= leaf_group:
        edges = [start, *inner, end]
        return list(zip(edges, edges[1:]))
    length = end - start
    tolerance = length / 8.0

    def cut(target: float) -> int:
        """The edge nearest ``target`` at the coarsest level with one within the tolerance."""
        for bounds in hierarchy:
            lo = bisect.bisect_left(bounds, max(start + 1, target - tolerance))
            hi = bisect.bisect_right(bounds, min(end - 1, target + tolerance))
            if lo < hi:
                return min(bounds[lo:hi], key=lambda c: (abs(c - target), c))
        return min(inner, key=lambda c: (abs(c - target), c))

    middle = cut(start + length / 2.0)
    first_quarter = cut(start + length / 4.0)
    third_quarter = cut(end - length / 4.0)
    result: list[Span] = []
    for span in ((start, middle), (first_quarter, third_quarter), (middle, end)):
        if span[0] < span[1] and span != (start, end) and span not in result:
            result.append(span)
    return result


class HiPe(Scheduler):
    """Hierarchical perturbation scheduler.

    Args:
        threshold: ``"relative"`` (default), ``"midrange"`` (HiPe's original rule), a
            number of nats (fixed threshold), or a :class:`Threshold`.
        max_depth: deepest refinement depth (0 scores only the first three chunks);
            ``None`` refines down to the requested level.
        leaf_group: a chunk of at most this many units is cut straight into its units.
            Default: 4 with ``order="depth"``; 8 with ``order="best"``. A chunk of ``n``
            units costs ``n`` calls cut into units, and about ``3 log2 n`` calls
            halved down to one salient unit, so below ~10 units the direct cut is the
            cheaper one (measured on the padded factual set at 1% key words, word level,
            ``top_k=3``: 22.7 calls on average with 8, 26.1 with 4, same hits).
        order: ``"best"`` (default) refines one chunk at a time, always the one with the
            highest ceiling the threshold passes at its depth (best-first search), so a
            call budget goes to the most salient region all the way down to its units
            first; ``"depth"`` refines level by level (every chunk the threshold passes
            at one depth before the next depth, HiPe's original schedule). Best-first
            also skips overlapping chunks that smaller chunks already explain (measured
            with the embedded model, token level, ten needles of ~1,000 tokens: 87.2
            calls on average against 109.3 in depth order, hit@1 10/10 for both;
            ``python -m benchmarks``).
        top_k: early stop: once ``top_k`` units are refined to the requested level,
            stop refining chunks whose drop is no larger than the ``top_k``-th largest
            unit drop. Under the monotonicity assumption of hierarchical perturbation
            (a unit inside a chunk cannot drop the output more than ablating the whole
            chunk) the remaining chunks cannot change which units are the top ``top_k``;
            a chunk left unrefined passes its drop to its units spread over their tokens.
            ``None`` turns the early stop off.

    Raises:
        InputError: for a negative ``max_depth``, a ``leaf_group`` below 1, a ``top_k``
            below 1, or an unknown ``order``.
        UnknownNameError: for an unknown threshold name.
    """

    name = "hipe"

    def __init__(
        self,
        *,
        threshold: str | float | Threshold = "relative",
        max_depth: int | None = None,
        leaf_group: int | None = None,
        order: str = "best",
        top_k: int | None = None,
    ) -> None:
        self.threshold = get_threshold(threshold)
        if max_depth is not None and max_depth < 0:
            raise InputError(f"max_depth must be 0 or more, got {max_depth}")
        if leaf_group is None:
            leaf_group = 8 if order == "best" else 4
        if leaf_group < 1:
            raise InputError(f"leaf_group must be at least 1, got {leaf_group}")
        if order not in ORDERS:
            raise UnknownNameError.for_choice("order", order, ORDERS)
        if top_k is not None and top_k < 1:
            raise InputError(f"top_k must be at least 1 (or None to turn the early stop off), got {top_k}")
        self.max_depth = max_depth
        self.leaf_group = leaf_group
        self.order = order
        self.top_k = top_k

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "threshold": self.threshold.describe(),
            "max_depth": self.max_depth,
            "leaf_group": self.leaf_group,
            "order": self.order,
            "top_k": self.top_k,
        }

    def _first_chunks(self, segmentation: Segmentation, level: str) -> list[Span]:
        spans = children(0, segmentation.n_tokens, segmentation.hierarchy(level), leaf_group=self.leaf_group)
        return spans or [(0, segmentation.n_tokens)]

    def min_calls(self, segmentation: Segmentation, level: str) -> int:
        return len(self._first_chunks(segmentation, level))

    def _settled_level(self, chunks: Sequence[Chunk]) -> float | None:
        """The ``top_k``-th largest leaf drop, or ``None`` while fewer leaves are scored (or no early stop)."""
        if self.top_k is None:
            return None
        leaves = sorted((c.score for c in chunks if c.leaf), reverse=True)
        return leaves[self.top_k - 1] if len(leaves) >= self.top_k else None

    def run(
        self,
        scorer: Scorer,
        segmentation: Segmentation,
        level: str,
        *,
        on_phase: Callable[[str, int | None], None] | None = None,
    ) -> Schedule:
        """Score chunks coarse to fine, refining those the threshold selects.

        Returns:
            A :class:`Schedule` with scores of shape (n_units, n_output_tokens), nats,
            and a trace of every scored chunk (``trace["chunks"]``) and of the early
            stop (``trace["early_stop"]``: calls so far, the ``top_k``-th unit drop and
            the largest drop left unrefined, or ``None``).

        Raises:
            BudgetError: if the budget cannot cover the first three chunks.
        """
        hierarchy = segmentation.hierarchy(level)
        unit_bounds = hierarchy[-1]
        n_tokens = segmentation.n_tokens

        def is_leaf(span: Span) -> bool:
            inside = bisect.bisect_left(unit_bounds, span[1]) - bisect.bisect_right(unit_bounds, span[0])
            return inside <= 0

        chunks: list[Chunk] = []
        index_of: dict[Span, int] = {}
        # bound[t]: the smallest drop of any scored chunk that holds token t. Under
        # HiPe's monotonicity assumption no unit drops the output more than a chunk
        # around it, so a chunk can hold nothing above the largest bound inside it.
        bound = np.full(n_tokens, np.inf)

        def score(spans: list[Span], parents: list[int | None], depth: int) -> list[Chunk]:
            if on_phase is not None:
                on_phase(f"hipe depth {depth}", scorer.calls + scorer.count_new([[s] for s in spans]))
            drops = scorer.drops([[s] for s in spans])
            new = []
            for span, parent, row in zip(spans, parents, drops):
                index_of[span] = len(chunks)
                chunk = Chunk(span[0], span[1], depth, parent, row, is_leaf(span))
                chunks.append(chunk)
                new.append(chunk)
                np.minimum(bound[span[0] : span[1]], chunk.score, out=bound[span[0] : span[1]])
            return new

        def ceiling(chunk: Chunk) -> float:
            """The largest drop any unit inside ``chunk`` could still have, nats."""
            return float(bound[chunk.start : chunk.end].max())

        best_first = self.order == "best"

        def passed(candidates: Sequence[Chunk]) -> list[Chunk]:
            """Candidates the threshold passes, each judged among the chunks of its depth.

            Depth order judges drops (HiPe's rule); best-first judges ceilings, so a
            chunk whose tokens are already accounted for by smaller chunks is skipped.
            """
            current = token_map(chunks, n_tokens, scorer.n_output).sum(axis=1) if self.threshold.uses_map else None
            picked: list[Chunk] = []
            for depth in sorted({c.depth for c in candidates}):
                peers = [c for c in chunks if c.depth == depth and not c.leaf]
                values = [ceiling(c) for c in peers] if best_first else None
                chosen = {id(c) for c in self.threshold.select(peers, current, values)}
                picked.extend(c for c in candidates if c.depth == depth and id(c) in chosen)
            if best_first:
                return sorted(picked, key=lambda c: (-ceiling(c), c.length, c.start))
            return sorted(picked, key=lambda c: -c.score)

        def settle(selected: list[Chunk]) -> list[Chunk]:
            """Drop the chunks that cannot change the top ``top_k`` units; record the stop."""
            nonlocal early_stop
            level_k = self._settled_level(chunks)
            if level_k is None:
                return selected
            kept = [c for c in selected if ceiling(c) > level_k]
            if selected and not kept:
                early_stop = {
                    "calls": scorer.calls,
                    "kth_unit_drop": level_k,
                    "largest_unrefined_drop": max(ceiling(c) for c in selected),
                }
            return kept

        first = self._first_chunks(segmentation, level)
        if scorer.remaining is not None and scorer.count_new([[s] for s in first]) > scorer.remaining:
            raise BudgetError(
                f"hipe needs at least {len(first) + 1} calls (the prompt and its first "
                f"{len(first)} chunks); raise --budget"
            )
        frontier = score(first, [None] * len(first), 0)
        early_stop: dict[str, float] | None = None
        budget_exhausted = False
        deepest = 0
        while True:
            if best_first:
                candidates = [c for c in chunks if not c.leaf and not c.refined]
            else:
                candidates = [c for c in frontier if not c.leaf]
            if self.max_depth is not None:
                candidates = [c for c in candidates if c.depth < self.max_depth]
            selected = settle(passed(candidates)) if candidates else []
            if best_first:
                selected = selected[:1]
            spans: list[Span] = []
            parents: list[int | None] = []
            for parent in selected:
                cut = children(parent.start, parent.end, hierarchy, leaf_group=self.leaf_group)
                kids = [k for k in cut if k not in index_of and k not in spans]
                remaining = scorer.remaining
                if remaining is not None and len(spans) + len(kids) > remaining:
                    # A parent is refined whole or not at all: a partial set of
                    # children can miss the part that made the parent salient.
                    budget_exhausted = True
                    break
                parent.refined = True
                spans.extend(kids)
                parents.extend([index_of[(parent.start, parent.end)]] * len(kids))
            if not spans:
                if best_first and selected and not budget_exhausted:
                    continue  # every child was already scored as another chunk's child
                break
            depth = max(chunks[p].depth for p in parents if p is not None) + 1
            deepest = max(deepest, depth)
            frontier = score(spans, parents, depth)

        final = token_map(chunks, n_tokens, scorer.n_output)
        starts = np.asarray(unit_bounds[:-1])
        scores = np.add.reduceat(final, starts, axis=0) if len(starts) else np.zeros((0, scorer.n_output))
        trace = {
            "threshold": self.threshold.describe(),
            "max_depth": self.max_depth,
            "order": self.order,
            "top_k": self.top_k,
            "early_stop": early_stop,
            "depths": deepest + 1,
            "chunks": [
                {
                    "start": c.start,
                    "end": c.end,
                    "char_start": segmentation.tokenization.char_offset(c.start),
                    "char_end": segmentation.tokenization.char_offset(c.end),
                    "depth": c.depth,
                    "parent": c.parent,
                    "score": c.score,
                    "refined": c.refined,
                    "leaf": c.leaf,
                }
                for c in chunks
            ],
        }
        return Schedule(scores=scores, trace=trace, budget_exhausted=budget_exhausted)

"""The chunk tree of hierarchical perturbation: scored chunks, the cut rule, bounds and the token map.

Everything HiPe knows about a prompt while it runs lives in one :class:`ChunkTree`:
the chunks scored so far (each with its parent, depth and drops), the rule that
cuts a chunk into children (:func:`children`), which chunks are leaves, the upper
bound on every token's drop under the monotonicity assumption (a unit cannot drop
the output more than a chunk that holds it) with each chunk's *ceiling*, and the
per-token map that turns chunk drops into unit scores (:func:`token_map`).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from attrib.perturbation import Span

__all__ = ["Chunk", "ChunkTree", "children", "first_spans", "salience", "token_map"]


def salience(drops: np.ndarray, contrast_start: int | None) -> np.ndarray:
    """What HiPe refines by, nats, shape (rows,), from drops of shape (rows, n_output).

    Without a contrast: the drop summed over the output tokens. With one (the columns
    from ``contrast_start`` on hold the contrast's negated drops): ``|drop of log p(y)|
    + |drop of log p(c)|``, how much the chunk moves either answer. The margin itself
    (their difference) would hide a chunk that holds evidence for the output *and*
    evidence for the contrast, which cancel; a unit that moves both answers alike
    (the question) is refined too, and scores near zero once refined.
    """
    if contrast_start is None:
        total: np.ndarray = drops.sum(axis=1)
        return total
    both: np.ndarray = np.abs(drops[:, :contrast_start].sum(axis=1)) + np.abs(drops[:, contrast_start:].sum(axis=1))
    return both


@dataclass(eq=False)
class Chunk:
    """A scored chunk of the prompt (compared by identity).

    Attributes:
        start, end: token positions, half-open.
        depth: refinement depth (0 = the first, coarsest chunks).
        parent: index of the chunk it was cut from, or ``None`` at depth 0.
        drops: attribution of ablating the chunk, nats, shape (n_output_tokens,).
        leaf: True if the chunk is a single unit of the requested level.
        refined: True once its children were scored.
        contrast_start: in a contrastive run, the first column of the contrast's tokens
            (``drops`` is then a margin's: the output's drops, then the contrast's negated);
            ``None`` otherwise.
    """

    start: int
    end: int
    depth: int
    parent: int | None
    drops: np.ndarray
    leaf: bool
    refined: bool = False
    contrast_start: int | None = None

    @property
    def score(self) -> float:
        """Drop in the whole output's log-probability when the chunk is ablated, nats."""
        return float(self.drops.sum())

    @property
    def salience(self) -> float:
        """What refinement judges the chunk by, nats: its :attr:`score`; in a contrastive run
        the magnitude of its drop on each side, summed (:func:`salience`)."""
        return float(salience(self.drops[None, :], self.contrast_start)[0])

    @property
    def length(self) -> int:
        """Number of tokens in the chunk."""
        return self.end - self.start

    @property
    def span(self) -> Span:
        """``(start, end)``, token positions, half-open."""
        return (self.start, self.end)


def children(start: int, end: int, hierarchy: Sequence[Sequence[int]], *, leaf_group: int = 4) -> list[Span]:
    """Cut ``[start, end)`` into up to three overlapping halves along the text's hierarchy.

    The halves are ``[start, m)``, ``[q1, q3)`` and ``[m, end)`` around the middle
    ``m`` and the quarters ``q1``, ``q3`` (Cooper et al. 2021's overlapping masks,
    in one dimension). Each cut lands on the coarsest edge (paragraph, sentence,
    word, token) within an eighth of the chunk's length of the ideal point, never
    below the requested level.

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
        return list(itertools.pairwise(edges))
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


def first_spans(n_tokens: int, hierarchy: Sequence[Sequence[int]], *, leaf_group: int) -> list[Span]:
    """The depth-0 chunks: the whole prompt cut once by :func:`children` (or whole, if it is one unit)."""
    return children(0, n_tokens, hierarchy, leaf_group=leaf_group) or [(0, n_tokens)]


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


class ChunkTree:
    """The chunks scored so far over one prompt at one level, and what they bound.

    Args:
        hierarchy: sorted boundary positions per level, coarsest first; the last is the
            requested level (``Segmentation.hierarchy(level)``).
        n_tokens: prompt length in tokens.
        n_output: number of output tokens (columns of every chunk's drops).
        leaf_group: a chunk of at most this many units is cut straight into its units.
        contrast_start: in a contrastive run, the first contrast column (chunks are then
            judged by :func:`salience`'s two-sided magnitude); ``None`` otherwise.
    """

    def __init__(
        self,
        hierarchy: Sequence[Sequence[int]],
        n_tokens: int,
        n_output: int,
        *,
        leaf_group: int,
        contrast_start: int | None = None,
    ) -> None:
        self.hierarchy = hierarchy
        self.units = hierarchy[-1]
        self.n_tokens = n_tokens
        self.n_output = n_output
        self.leaf_group = leaf_group
        self.contrast_start = contrast_start
        self.chunks: list[Chunk] = []
        self._index: dict[Span, int] = {}
        # bound[t]: the smallest salience of any scored chunk that holds token t, nats.
        self.bound = np.full(n_tokens, np.inf)

    def first_spans(self) -> list[Span]:
        """The depth-0 chunks (see :func:`first_spans`)."""
        return first_spans(self.n_tokens, self.hierarchy, leaf_group=self.leaf_group)

    def is_leaf(self, span: Span) -> bool:
        """True if ``span`` holds no unit edge inside it: a single unit of the requested level."""
        inside = bisect.bisect_left(self.units, span[1]) - bisect.bisect_right(self.units, span[0])
        return inside <= 0

    def index(self, chunk: Chunk) -> int:
        """Position of ``chunk`` in :attr:`chunks` (what children record as ``parent``)."""
        return self._index[chunk.span]

    def family(self, parent: Chunk) -> list[Span]:
        """The children of ``parent`` (:func:`children`) that are not scored yet, in order."""
        cut = children(parent.start, parent.end, self.hierarchy, leaf_group=self.leaf_group)
        return [span for span in cut if span not in self._index]

    def add(self, span: Span, depth: int, parent: int | None, drops: np.ndarray) -> Chunk:
        """Record a scored chunk and tighten the bound of every token inside it.

        Args:
            span: token positions, half-open.
            depth: refinement depth.
            parent: index of the chunk it was cut from, or ``None``.
            drops: attribution of ablating the span, nats, shape (n_output,).
        """
        chunk = Chunk(span[0], span[1], depth, parent, drops, self.is_leaf(span), contrast_start=self.contrast_start)
        self._index[span] = len(self.chunks)
        self.chunks.append(chunk)
        inside = self.bound[chunk.start : chunk.end]
        np.minimum(inside, chunk.salience, out=inside)
        return chunk

    def ceiling(self, chunk: Chunk) -> float:
        """The largest drop (salience) any unit inside ``chunk`` could still have, nats.

        Under the monotonicity assumption a token's drop is bounded by the smallest
        drop of the chunks around it; the ceiling is the largest such bound inside.
        In a contrastive run the same assumption is made of each side's magnitude.
        """
        return float(self.bound[chunk.start : chunk.end].max())

    def peers(self, depth: int) -> list[Chunk]:
        """The non-leaf chunks of ``depth``, in scoring order (what a threshold judges a chunk among)."""
        return [c for c in self.chunks if c.depth == depth and not c.leaf]

    def open_chunks(self) -> list[Chunk]:
        """The non-leaf chunks not refined yet, in scoring order."""
        return [c for c in self.chunks if not c.leaf and not c.refined]

    def kth_leaf_drop(self, k: int) -> float | None:
        """The ``k``-th largest salience among the leaves, nats, or ``None`` while fewer are scored."""
        leaves = sorted((c.salience for c in self.chunks if c.leaf), reverse=True)
        return leaves[k - 1] if len(leaves) >= k else None

    def per_token(self) -> np.ndarray:
        """The token map (:func:`token_map`) of the chunks so far, nats, shape (n_tokens, n_output)."""
        return token_map(self.chunks, self.n_tokens, self.n_output)

    def unit_scores(self) -> np.ndarray:
        """Unit scores from the token map summed over each unit's tokens, nats, shape (n_units, n_output)."""
        starts = np.asarray(self.units[:-1])
        if not len(starts):
            return np.zeros((0, self.n_output))
        return np.add.reduceat(self.per_token(), starts, axis=0)

    def deepest(self) -> int:
        """The largest depth scored (0 before any refinement)."""
        return max((c.depth for c in self.chunks), default=0)

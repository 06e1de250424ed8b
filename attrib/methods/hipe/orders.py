"""Refinement orders of hierarchical perturbation: which scored chunks to refine next, and in what order.

An order is a small strategy object. It names the chunks that may be refined
next, hands the threshold the quantity it judges them by (one quantity per
order, so every threshold judges the same thing), and ranks the chunks the
threshold passes; HiPe then refines them, a whole family at a time, as far as
the call budget reaches. Orders are registered in :data:`attrib.registry.orders`.

* :class:`DepthOrder` (Cooper et al. 2021's schedule): every chunk the threshold
  passes at one depth is refined before the next depth. It judges chunk drops.
* :class:`BestFirst`: one chunk at a time, the one with the highest ceiling the
  threshold passes (best-first branch and bound over the chunk tree). It judges
  ceilings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from attrib.methods.hipe.chunks import Chunk, ChunkTree, salience
from attrib.methods.hipe.thresholds import Quantity, Threshold

__all__ = ["Order", "BestFirst", "DepthOrder"]


class Order(ABC):
    """A refinement order: candidates, the quantity the threshold judges, and their ranking.

    Attributes:
        name: the order's registered name (recorded in results).
        judges: the name of the quantity its thresholds judge.
        leaf_group: HiPe's default ``leaf_group`` in this order.
    """

    name: ClassVar[str] = ""
    judges: ClassVar[str] = ""
    leaf_group: ClassVar[int] = 4

    @abstractmethod
    def candidates(self, tree: ChunkTree, newest: Sequence[Chunk]) -> list[Chunk]:
        """The chunks that may be refined now (non-leaf, not refined), given the chunks scored last."""

    @abstractmethod
    def quantity(self, tree: ChunkTree, peers: Sequence[Chunk]) -> Quantity:
        """What the threshold judges ``peers`` (the non-leaf chunks of one depth) by."""

    @abstractmethod
    def rank(self, tree: ChunkTree, passed: list[Chunk]) -> list[Chunk]:
        """The chunks the threshold passed, most worth refining first."""

    def take(self, ranked: list[Chunk]) -> list[Chunk]:
        """The ranked chunks to refine in this round (all of them, unless the order says otherwise)."""
        return ranked

    def parents(
        self, tree: ChunkTree, newest: Sequence[Chunk], threshold: Threshold, max_depth: int | None
    ) -> list[Chunk]:
        """The candidates ``threshold`` passes, each judged among the chunks of its depth, ranked.

        Args:
            tree: the chunks scored so far.
            newest: the chunks scored in the last round.
            threshold: the rule that passes chunks worth refining.
            max_depth: no chunk at this depth or deeper is refined (``None``: no limit).
        """
        candidates = [c for c in self.candidates(tree, newest) if max_depth is None or c.depth < max_depth]
        passed: list[Chunk] = []
        for depth in sorted({c.depth for c in candidates}):
            chosen = set(threshold.select(self.quantity(tree, tree.peers(depth))))
            passed.extend(c for c in candidates if c.depth == depth and c in chosen)
        return self.rank(tree, passed)

    def describe(self) -> str:
        """JSON-ready record of the order: its name (an order has no parameters)."""
        return self.name


@dataclass(frozen=True)
class DepthOrder(Order):
    """Refine depth by depth: every chunk the threshold passes at the newest depth, largest drop first.

    Thresholds judge chunk drops (per token: the token map the drops spread into),
    HiPe's original rule. A depth that adds no new chunk ends the refinement.

    Source: Cooper et al. 2021, "Believe the HiPe" (masks refined level by level).
    """

    name: ClassVar[str] = "depth"
    judges: ClassVar[str] = "drop"
    leaf_group: ClassVar[int] = 4

    def candidates(self, tree: ChunkTree, newest: Sequence[Chunk]) -> list[Chunk]:
        return [c for c in newest if not c.leaf and not c.refined]

    def quantity(self, tree: ChunkTree, peers: Sequence[Chunk]) -> Quantity:
        def per_token() -> np.ndarray:
            return salience(tree.per_token(), tree.contrast_start)

        return Quantity(self.judges, peers, [c.salience for c in peers], per_token)

    def rank(self, tree: ChunkTree, passed: list[Chunk]) -> list[Chunk]:
        return sorted(passed, key=lambda c: -c.salience)


@dataclass(frozen=True)
class BestFirst(Order):
    """Refine one chunk at a time: the highest ceiling the threshold passes, at any depth.

    Thresholds judge ceilings among the chunks of the same depth (per token: the
    bounds whose maximum inside a chunk is its ceiling), so overlapping chunks whose
    tokens smaller, weaker chunks already explain fall below the threshold, and a
    budget reaches single units in the most salient region first. Ties go to the
    shorter chunk, then the earlier one.

    Source: best-first branch and bound (Land & Doig 1960) over the chunk tree of
    Cooper et al. 2021, with the bound from their monotonicity assumption.
    """

    name: ClassVar[str] = "best"
    judges: ClassVar[str] = "ceiling"
    leaf_group: ClassVar[int] = 8

    def candidates(self, tree: ChunkTree, newest: Sequence[Chunk]) -> list[Chunk]:
        return tree.open_chunks()

    def quantity(self, tree: ChunkTree, peers: Sequence[Chunk]) -> Quantity:
        def per_token() -> np.ndarray:
            return tree.bound.copy()

        return Quantity(self.judges, peers, [tree.ceiling(c) for c in peers], per_token)

    def rank(self, tree: ChunkTree, passed: list[Chunk]) -> list[Chunk]:
        return sorted(passed, key=lambda c: (-tree.ceiling(c), c.length, c.start))

    def take(self, ranked: list[Chunk]) -> list[Chunk]:
        return ranked[:1]

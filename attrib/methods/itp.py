"""Iterative perturbation (ItP): exhaustive leave-one-out over the units of one level.

One variant per unit, each with exactly that unit ablated; the unit's row of the
attribution matrix is the drop in each output token's log-probability (nats).
This is the reference that hierarchical perturbation approximates
(Li, Monroe & Jurafsky 2016, "Understanding Neural Networks through
Representation Erasure"; "iterative perturbation" in Leap Labs' PIZZA).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from attrib.errors import BudgetError
from attrib.methods.base import Schedule, Scheduler, SpanScorer
from attrib.perturbation import Span
from attrib.segmentation import Segmentation

__all__ = ["ITP"]


@dataclass(frozen=True)
class ITP(Scheduler):
    """Exhaustive leave-one-out: ``n_units`` variants at the requested level (no parameters)."""

    name: ClassVar[str] = "itp"
    adaptive: ClassVar[bool] = False

    def min_calls(self, segmentation: Segmentation, level: str) -> int:
        return len(segmentation.boundaries(level)) - 1

    def first_round(self, segmentation: Segmentation, level: str) -> list[list[Span]]:
        """Every unit on its own: ItP has no partial result."""
        return [[(a, b)] for a, b in itertools.pairwise(segmentation.boundaries(level))]

    def run(
        self,
        scorer: SpanScorer,
        segmentation: Segmentation,
        level: str,
        *,
        on_phase: Callable[[str, int | None], None] | None = None,
    ) -> Schedule:
        """Score every unit of ``level`` on its own.

        Returns:
            A :class:`Schedule` whose scores have shape (n_units, n_output_tokens), nats.

        Raises:
            BudgetError: if the budget cannot cover every unit (ItP has no partial result).
        """
        ablations = self.first_round(segmentation, level)
        needed = scorer.count_new(ablations)
        if scorer.remaining is not None and needed > scorer.remaining:
            raise BudgetError(
                f"itp at {level} level needs {needed} more calls but the budget leaves "
                f"{scorer.remaining}; raise --budget or use --method hipe"
            )
        if on_phase is not None:
            on_phase(f"itp {level}", scorer.calls + needed)
        return Schedule(scores=scorer.drops(ablations))

"""What every coalition method shares: the players of a level, their rounds and the budget's first round.

Coalition methods are frozen dataclasses (their fields are their parameters), like
the other schedulers; ``parameters``, ``describe`` and ``replace`` come from the
:class:`~attrib.methods.base.Scheduler` base. :meth:`CoalitionMethod.run` builds the
:class:`~attrib.methods.coalitions.game.CoalitionGame` of the level's units and hands it to
:meth:`CoalitionMethod.solve`, which each method implements.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np

from attrib.methods.base import Schedule, Scheduler, SpanScorer
from attrib.methods.coalitions.game import Coalition, CoalitionGame
from attrib.perturbation import Span
from attrib.segmentation import Segmentation

__all__ = ["CoalitionMethod", "Phase"]

#: ``on_phase(label, total_calls)`` as schedulers receive it.
Phase = Callable[[str, int | None], None] | None


class CoalitionMethod(Scheduler):
    """Base of the coalition schedulers (subclasses are frozen dataclasses with a ``seed`` field)."""

    adaptive: ClassVar[bool] = False  # the coalitions are drawn before any is scored

    #: Leading rounds of :meth:`rounds` without which the method gives no answer.
    minimum_rounds: ClassVar[int] = 1

    def min_calls(self, segmentation: Segmentation, level: str) -> int:
        return self.least_calls(len(segmentation.boundaries(level)) - 1)

    def first_round(self, segmentation: Segmentation, level: str) -> list[list[Span]] | None:
        """The ablations of the first :attr:`minimum_rounds` of :meth:`rounds` but the full coalition."""
        bounds = segmentation.boundaries(level)
        spans = list(zip(bounds, bounds[1:], strict=False))
        first = {c for round_ in self.rounds(len(spans))[: self.minimum_rounds] for c in round_} if spans else set()
        return [[span for i, span in enumerate(spans) if i not in c] for c in sorted(first) if len(set(c)) < len(spans)]

    def rounds(self, n: int) -> list[list[Coalition]]:
        """The coalitions the method plans for ``n`` units, in rounds, in the order it keeps them
        under a budget (what :meth:`solve` passes to :meth:`CoalitionGame.fit_rounds`)."""
        raise NotImplementedError

    def least_calls(self, n: int) -> int:
        """Fewest scoring calls that give an answer for ``n`` units: the distinct coalitions of the
        first :attr:`minimum_rounds` of :meth:`rounds` but the full one (which is the unperturbed prompt).

        Derived from the rounds :meth:`solve` plays, so the budget check and the run agree.
        """
        if n == 0:
            return 0
        first = {c for round_ in self.rounds(n)[: self.minimum_rounds] for c in round_}
        return sum(1 for c in first if len(set(c)) < n)

    def run(
        self,
        scorer: SpanScorer,
        segmentation: Segmentation,
        level: str,
        *,
        on_phase: Phase = None,
    ) -> Schedule:
        """Score coalitions of the units of ``level`` through ``scorer``.

        Returns:
            A :class:`Schedule` with scores of shape (n_units, n_output_tokens), nats,
            the method's trace, and ``budget_exhausted`` when the budget cut the plan short.

        Raises:
            BudgetError: if the budget cannot cover the method's first round.
        """
        bounds = segmentation.boundaries(level)
        game = CoalitionGame(scorer, list(zip(bounds, bounds[1:], strict=False)))
        if game.n == 0:
            return Schedule(scores=np.zeros((0, scorer.n_output)), trace=self.method_trace({"units": 0}))
        return self.solve(game, on_phase)

    def most_calls(self, n: int) -> int:
        """Most scoring calls the method can make for ``n`` units, with no budget: the distinct
        coalitions of all its :meth:`rounds` but the full one (an upper bound for the dry run)."""
        if n == 0:
            return 0
        return len({c for round_ in self.rounds(n) for c in round_ if len(set(c)) < n})

    def solve(self, game: CoalitionGame, on_phase: Phase) -> Schedule:
        """The method proper: coalition values to unit scores, shape (game.n, m), nats."""
        raise NotImplementedError

"""The cooperative game every coalition method plays: units of one level as players.

A *coalition* is the set of units kept; every other unit of the level is ablated
together, as one variant. Its value, per output token, is

    v(K) = log p(y_t | x with only K kept, y_<t) - log p(y_t | x, y_<t)
         = -drop(ablate every unit not in K)                         (nats, shape (m,))

so ``v(all) = 0`` (the unperturbed prompt, already scored) and
``v(all) - v(none)`` is the drop of removing every unit of the level at once.
Shapley values, KernelSHAP and linear surrogates all split that total (exactly or
approximately) among the units; a unit's share is positive when it makes the
output more likely.

Costs: every distinct coalition but the full one is one scoring call; the scorer
memoises, so a coalition seen twice (by two permutations, or two sampled masks) is
scored once. A method plans its coalitions in *rounds* (a permutation pair, a batch
of masks) and :meth:`CoalitionGame.fit_rounds` keeps the rounds that fit the
scorer's remaining budget; all kept coalitions are then scored as one batch, which
the backend orders lexicographically (the pre-order of the variants' prefix trie),
so a KV-caching backend re-evaluates only what consecutive variants do not share.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np

from attrib.errors import BudgetError
from attrib.methods.base import SpanScorer
from attrib.perturbation import Span

__all__ = ["Coalition", "CoalitionGame", "all_coalitions"]

#: Indices of the units kept, sorted (the units of the level, 0-based).
Coalition = tuple[int, ...]


class CoalitionGame:
    """Values of coalitions of units, scored through a :class:`~attrib.scoring.SpanScorer`.

    Args:
        scorer: the run's scorer (budgeted, memoised).
        spans: the players' token spans, one per unit, in prompt order. Tokens
            outside them are kept in every variant.

    Attributes:
        n: number of players (units).
    """

    def __init__(self, scorer: SpanScorer, spans: Sequence[Span]) -> None:
        self.scorer = scorer
        self.spans = tuple(spans)
        self.n = len(self.spans)

    def ablation(self, coalition: Iterable[int]) -> list[Span]:
        """The token spans removed when only ``coalition`` is kept (adjacent spans merge in the scorer)."""
        kept = set(coalition)
        return [span for index, span in enumerate(self.spans) if index not in kept]

    def new_calls(self, coalitions: Iterable[Coalition]) -> int:
        """Scoring calls the coalitions would need (the full one and those already scored are free)."""
        ablations = [self.ablation(c) for c in coalitions if len(c) < self.n]
        return self.scorer.count_new(ablations) if ablations else 0

    def fit_rounds(
        self, rounds: Sequence[Sequence[Coalition]], *, method: str, minimum: int = 1
    ) -> tuple[list[Sequence[Coalition]], bool]:
        """The leading rounds whose coalitions fit the scorer's remaining budget.

        Args:
            rounds: planned rounds of coalitions, in the order they should be kept.
            method: the method's name, for the error message.
            minimum: rounds needed to give any answer.

        Returns:
            ``(kept_rounds, budget_exhausted)``; ``budget_exhausted`` is True when a round was left out.

        Raises:
            BudgetError: if fewer than ``minimum`` rounds fit.
        """
        remaining = self.scorer.remaining
        if remaining is None:
            return list(rounds), False
        kept: list[Sequence[Coalition]] = []
        planned: dict[Coalition, None] = {}
        for round_ in rounds:
            fresh = [c for c in dict.fromkeys(round_) if c not in planned]
            # counted with the kept rounds: a coalition whose prompt one of them already has is free
            if self.new_calls([*planned, *fresh]) > remaining:
                break
            kept.append(round_)
            planned.update(dict.fromkeys(fresh))
        if len(kept) < min(minimum, len(rounds)):
            needed = self.new_calls([c for r in rounds[:minimum] for c in r])
            raise BudgetError(
                f"{method} needs at least {needed} more calls for {self.n} units but the budget leaves "
                f"{remaining}; raise --budget or use a coarser --level"
            )
        return kept, len(kept) < len(rounds)

    def values(self, coalitions: Sequence[Coalition]) -> np.ndarray:
        """``v(K)`` of each coalition, nats, shape (len(coalitions), m); the full coalition is 0.

        Coalitions are sent as one batch (distinct ones scored once).

        Raises:
            BudgetError: if the new coalitions exceed the remaining budget.
        """
        if not coalitions:
            return np.zeros((0, self.scorer.n_output))
        order = sorted(range(len(coalitions)), key=lambda i: self._prefix_key(coalitions[i]))
        proper = [i for i in order if len(set(coalitions[i])) < self.n]
        out = np.zeros((len(coalitions), self.scorer.n_output))
        if proper:
            out[proper] = -self.scorer.drops([self.ablation(coalitions[i]) for i in proper])
        return out

    def _prefix_key(self, coalition: Coalition) -> tuple[int, ...]:
        """Sort key putting variants that keep the same leading units next to each other.

        The variant keeps the units of ``coalition`` in prompt order, so two variants
        share their tokens up to the first unit one keeps and the other removes: the
        lexicographic order of the kept-unit bit strings (kept first) is the
        pre-order of their prefix trie. Backends that sort again lose nothing.
        """
        kept = set(coalition)
        return tuple(0 if i in kept else 1 for i in range(self.n))


def all_coalitions(n: int) -> list[Coalition]:
    """Every coalition of ``n`` players, smallest first (``2^n`` of them)."""
    return [c for size in range(n + 1) for c in itertools.combinations(range(n), size)]

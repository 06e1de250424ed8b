"""Shapley values of the units by exact enumeration or by sampling antithetic permutations.

The Shapley value of unit ``i`` (L. S. Shapley 1953) averages its marginal
contribution over every order of adding the units to the prompt:

    phi_i = sum over K not holding i of |K|! (n-|K|-1)! / n! * (v(K + i) - v(K))

with ``v`` the coalition value of :mod:`attrib.methods.coalitions.game` (nats, per output
token), so the values of all units add up to the drop of removing every unit of
the level at once (*efficiency*). Two copies of the same fact each get half of
what removing both costs, where leave-one-out gives each nearly nothing.

* Exact: with at most ``exact_limit`` units every one of the ``2^n`` coalitions is
  scored (``2^n - 1`` calls: 255 for 8 units).
* Sampled: each of ``permutations`` random orders of the units adds them one by
  one and credits each with its marginal contribution (S. Castro, D. Gomez,
  J. Tejada 2009, "Polynomial calculation of the Shapley value based on sampling",
  Computers & Operations Research 36(5)); a permutation costs ``n - 1`` calls
  plus the empty prompt once. Permutations come in antithetic pairs, an order and
  its reverse (R. Mitchell, J. Cooper, E. Frank, G. Holmes 2022, "Sampling
  permutations for Shapley value estimation", JMLR 23): a unit added early in one
  is added late in the other, which lowers the variance. Every permutation's
  contributions add up to the total exactly, so sampled values are efficient too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attrib.methods.base import Schedule
from attrib.methods.coalitions.base import CoalitionMethod, Phase
from attrib.methods.coalitions.checks import at_least
from attrib.methods.coalitions.game import Coalition, CoalitionGame, all_coalitions

__all__ = ["ShapleySampling", "exact_shapley", "permutation_shapley"]


def exact_shapley(values: dict[Coalition, np.ndarray], n: int) -> np.ndarray:
    """The Shapley values from the values of all ``2^n`` coalitions.

    Args:
        values: ``v(K)`` for every sorted coalition ``K``, nats, each of shape (m,).
        n: number of players.

    Returns:
        Shapley values, nats, shape (n, m).

    Raises:
        KeyError: if a coalition's value is missing.
    """
    m = len(next(iter(values.values())))
    phi = np.zeros((n, m))
    weights = [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
    for coalition, value in values.items():
        kept = set(coalition)
        for i in range(n):
            if i not in kept:
                joined = tuple(sorted(kept | {i}))
                phi[i] += weights[len(coalition)] * (values[joined] - value)
    return phi


def permutation_shapley(orders: list[list[int]], values: dict[Coalition, np.ndarray]) -> np.ndarray:
    """Each unit's marginal contribution in each order, nats, shape (len(orders), n, m).

    Args:
        orders: permutations of ``range(n)``.
        values: ``v(K)`` of every prefix of every order (sorted coalitions), nats.

    Raises:
        KeyError: if a prefix's value is missing.
    """
    n = len(orders[0])
    m = len(next(iter(values.values())))
    contributions = np.zeros((len(orders), n, m))
    for row, order in enumerate(orders):
        previous = values[()]
        for stop in range(1, n + 1):
            current = values[tuple(sorted(order[:stop]))]
            contributions[row, order[stop - 1]] = current - previous
            previous = current
    return contributions


@dataclass(frozen=True)
class ShapleySampling(CoalitionMethod):
    """Shapley values of the units of a level, per output token (nats, shape (n_units, m)).

    Args:
        permutations: random orders to sample when the units are too many to
            enumerate; each costs ``n_units - 1`` calls (the empty prompt is shared).
        antithetic: sample orders in pairs, each followed by its reverse.
        exact_limit: enumerate every coalition (``2^n - 1`` calls) when there are at
            most this many units and the budget allows it; 0 always samples.
        seed: seed of the permutations.

    Under a call budget the method keeps the permutations that fit (at least one);
    ``budget_exhausted`` says when some did not.

    Raises:
        InputError: for ``permutations`` below 1 or a negative ``exact_limit`` or seed.

    Source: Shapley 1953; Castro, Gomez & Tejada 2009 (permutation sampling);
    Mitchell, Cooper, Frank & Holmes 2022 (antithetic permutations).
    """

    permutations: int = 10
    antithetic: bool = True
    exact_limit: int = 8
    seed: int = 0

    name = "shapley"

    def __post_init__(self) -> None:
        at_least("permutations", self.permutations, 1)
        at_least("exact_limit", self.exact_limit, 0)
        at_least("seed", self.seed, 0)

    def least_calls(self, n: int) -> int:
        """One permutation's proper prefixes, all distinct: ``n`` (what the base class derives from
        :meth:`rounds`, without building every permutation's prefixes for a long prompt)."""
        return n

    def most_calls(self, n: int) -> int:
        """Every coalition (``2^n - 1`` calls) when ``n`` is within ``exact_limit``, else the sampled ones."""
        sampled = super().most_calls(n)
        return max(sampled, (1 << n) - 1) if n <= self.exact_limit else sampled

    def rounds(self, n: int) -> list[list[Coalition]]:
        """One round per sampled permutation: the sorted prefixes of the order (empty to full)."""
        return [[tuple(sorted(order[:stop])) for stop in range(n + 1)] for order in self.orders(n)]

    def orders(self, n: int) -> list[list[int]]:
        """The sampled permutations of ``range(n)``, antithetic pairs adjacent."""
        rng = np.random.default_rng(self.seed)
        orders: list[list[int]] = []
        while len(orders) < self.permutations:
            order = [int(i) for i in rng.permutation(n)]
            orders.append(order)
            if self.antithetic and len(orders) < self.permutations:
                orders.append(order[::-1])
        return orders

    def solve(self, game: CoalitionGame, on_phase: Phase) -> Schedule:
        n = game.n
        if n <= self.exact_limit:
            everything = all_coalitions(n)
            remaining = game.scorer.remaining
            if remaining is None or game.new_calls(everything) <= remaining:
                if on_phase is not None:
                    on_phase(
                        f"shapley: all {len(everything)} coalitions", game.scorer.calls + game.new_calls(everything)
                    )
                values = dict(zip(everything, game.values(everything), strict=True))
                exact: dict[str, object] = {"units": n, "exact": True, "coalitions": len(everything)}
                return Schedule(scores=exact_shapley(values, n), trace=self.method_trace(exact))
        every = self.orders(n)
        rounds = self.rounds(n)
        kept, exhausted = game.fit_rounds(rounds, method=self.name, minimum=self.minimum_rounds)
        orders = every[: len(kept)]
        planned = list(dict.fromkeys(c for r in kept for c in r))
        if on_phase is not None:
            on_phase(f"shapley: {len(kept)} permutations", game.scorer.calls + game.new_calls(planned))
        values = dict(zip(planned, game.values(planned), strict=True))
        contributions = permutation_shapley(orders, values)
        totals = contributions.sum(axis=2)  # (permutations, n)
        spread = totals.std(axis=0, ddof=1) / math.sqrt(len(orders)) if len(orders) > 1 else None
        trace: dict[str, object] = {
            "units": n,
            "exact": False,
            "permutations": len(orders),
            "antithetic": self.antithetic,
            "coalitions": len(planned),
            "standard_error": None if spread is None else [float(v) for v in spread],
        }
        return Schedule(scores=contributions.mean(axis=0), trace=self.method_trace(trace), budget_exhausted=exhausted)

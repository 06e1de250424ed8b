"""KernelSHAP: Shapley values as the solution of a weighted least-squares fit over coalitions.

The Shapley values are the unique additive model ``v(K) ~ v(none) + sum_{i in K} phi_i``
that minimises the squared error over all coalitions weighted by the Shapley kernel

    k(s) = (n - 1) / (C(n, s) * s * (n - s))        for a coalition of s of n units,

under the constraint ``sum_i phi_i = v(all) - v(none)`` (S. Lundberg & S.-I. Lee
2017, "A Unified Approach to Interpreting Model Predictions", NeurIPS). With the
values of every coalition the fit gives the exact Shapley values; with a sample it
estimates them.

* Every coalition is enumerated when ``2^n - 2 <= samples``, each with its kernel weight.
* Otherwise coalitions are drawn from the kernel: a size ``s`` with probability
  proportional to ``(n - 1) / (s (n - s))``, then ``s`` units uniformly, each draw
  weighted equally; with ``paired`` each draw comes with its complement (I. Covert &
  S.-I. Lee 2021, "Improving KernelSHAP: Practical Shapley Value Estimation via
  Linear Regression", AISTATS), which lowers the variance.

The constraint is eliminated by substituting the last unit's value, and the
remaining ``n - 1`` values are fitted with numpy's least squares (the minimum-norm
solution while there are fewer coalitions than units), per output token.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from attrib.methods.base import Schedule
from attrib.methods.coalitions.base import CoalitionMethod, Phase
from attrib.methods.coalitions.checks import at_least
from attrib.methods.coalitions.game import Coalition, CoalitionGame

__all__ = ["KernelSHAP", "kernel_weight", "constrained_fit"]


def kernel_weight(n: int, size: int) -> float:
    """The Shapley kernel weight of a coalition of ``size`` of ``n`` units (0 < size < n)."""
    return (n - 1) / (math.comb(n, size) * size * (n - size))


def constrained_fit(
    coalitions: list[Coalition], weights: np.ndarray, values: np.ndarray, empty: np.ndarray, n: int
) -> np.ndarray:
    """Weighted least squares of ``v(K) - v(none)`` on the units of ``K``, values summing to ``-v(none)``.

    Args:
        coalitions: proper, non-empty coalitions (sorted unit indices).
        weights: one non-negative weight per coalition, shape (k,).
        values: ``v(K)`` of each coalition, nats, shape (k, m).
        empty: ``v(none)``, nats, shape (m,); ``v(all)`` is 0.
        n: number of units.

    Returns:
        Unit values, nats, shape (n, m), summing over units to ``-empty``.
    """
    total = -empty
    if n == 1 or not coalitions:
        return np.tile(total / n, (n, 1))
    x = np.zeros((len(coalitions), n))
    for row, coalition in enumerate(coalitions):
        x[row, list(coalition)] = 1.0
    y = values - empty[None, :]
    design = x[:, :-1] - x[:, -1:]
    target = y - x[:, -1:] * total[None, :]
    root = np.sqrt(weights)[:, None]
    head, *_ = np.linalg.lstsq(design * root, target * root, rcond=None)
    last = total - head.sum(axis=0)
    return np.vstack([head, last[None, :]])


@dataclass(frozen=True)
class KernelSHAP(CoalitionMethod):
    """Shapley values estimated by KernelSHAP, per output token (nats, shape (n_units, m)).

    Args:
        samples: coalitions to score besides the empty prompt (the budget of the fit);
            all ``2^n - 2`` proper ones are enumerated when they are no more.
        paired: draw each coalition together with its complement.
        seed: seed of the draws.

    Under a call budget the method keeps the draws that fit; ``budget_exhausted``
    says when some did not.

    Raises:
        InputError: for ``samples`` below 2 or a negative seed.

    Source: Lundberg & Lee 2017 (KernelSHAP); Covert & Lee 2021 (paired sampling).
    """

    samples: int = 64
    paired: bool = True
    seed: int = 0

    name = "kernelshap"

    def __post_init__(self) -> None:
        at_least("samples", self.samples, 2)
        at_least("seed", self.seed, 0)

    def rounds(self, n: int) -> list[list[Coalition]]:
        return self.plan(n)[0]

    def plan(self, n: int) -> tuple[list[list[Coalition]], dict[Coalition, float], bool]:
        """Rounds of coalitions (the first holds the empty one), the weight of each, and whether enumerated."""
        if n < 2:
            return [[()]], {}, True
        if 2**n - 2 <= self.samples:
            rounds: list[list[Coalition]] = [[()]]
            weights: dict[Coalition, float] = {}
            for size in range(1, n // 2 + 1):
                for coalition in _combinations(n, size):
                    complement = tuple(i for i in range(n) if i not in coalition)
                    pair = [coalition] if complement == coalition else [coalition, complement]
                    pair = list(dict.fromkeys(pair))
                    for c in pair:
                        weights[c] = kernel_weight(n, len(c))
                    rounds.append(pair)
            return _with_empty(rounds), weights, True
        rng = np.random.default_rng(self.seed)
        sizes = np.arange(1, n)
        mass = (n - 1) / (sizes * (n - sizes))
        mass = mass / mass.sum()
        counts: Counter[Coalition] = Counter()
        rounds = [[()]]
        distinct: set[Coalition] = set()
        for _ in range(50 * self.samples):
            if len(distinct) >= self.samples:
                break
            size = int(sizes[rng.choice(len(sizes), p=mass)])
            coalition = tuple(sorted(int(i) for i in rng.choice(n, size=size, replace=False)))
            draw = [coalition]
            if self.paired:
                draw.append(tuple(i for i in range(n) if i not in coalition))
            counts.update(draw)
            distinct.update(draw)
            rounds.append(draw)
        return _with_empty(rounds), {c: float(k) for c, k in counts.items()}, False

    def solve(self, game: CoalitionGame, on_phase: Phase) -> Schedule:
        n = game.n
        rounds, weights, enumerated = self.plan(n)
        kept, exhausted = game.fit_rounds(rounds, method=self.name, minimum=self.minimum_rounds)
        planned = list(dict.fromkeys(c for r in kept for c in r))
        if on_phase is not None:
            on_phase(f"kernelshap: {len(planned)} coalitions", game.scorer.calls + game.new_calls(planned))
        values = game.values(planned)
        by_coalition = dict(zip(planned, values, strict=True))
        fitted = [c for c in planned if 0 < len(c) < n]
        # Weights count the draws that were kept (a draw cut by the budget does not count).
        kept_weights = Counter[Coalition]()
        for round_ in kept[1:]:
            for c in round_:
                kept_weights[c] += 1
        w = np.asarray([weights[c] if enumerated else float(kept_weights[c]) for c in fitted])
        rows = np.stack([by_coalition[c] for c in fitted]) if fitted else np.zeros((0, game.scorer.n_output))
        scores = constrained_fit(fitted, w, rows, by_coalition[()], n)
        trace: dict[str, object] = {
            "units": n,
            "exact": enumerated and not exhausted,
            "coalitions": len(planned),
            "paired": self.paired,
        }
        return Schedule(scores=scores, trace=self.method_trace(trace), budget_exhausted=exhausted)


def _combinations(n: int, size: int) -> list[Coalition]:
    return list(itertools.combinations(range(n), size))


def _with_empty(rounds: list[list[Coalition]]) -> list[list[Coalition]]:
    """The empty coalition joins the first round of draws, so the least plan is one scorable round."""
    if len(rounds) > 1:
        return [[(), *rounds[1]], *rounds[2:]]
    return rounds

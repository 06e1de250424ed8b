"""Linear surrogates of the coalition game: random ablation masks, a linear fit, its held-out quality.

Each sampled mask keeps every unit independently with probability ``keep`` and
ablates the rest as one variant. A linear model of the masks,

    v(K) ~ b + sum over kept units i of w_i          (nats, per output token)

is fitted to the coalition values (:mod:`attrib.methods.coalitions.game`); ``w_i`` is unit
``i``'s score: the drop its removal is predicted to cause. The methods differ only
in the fit (:class:`~attrib.methods.coalitions.surrogate.Surrogate`: a sparse Lasso fit, as
ContextCite; :class:`~attrib.methods.coalitions.lime.LIME`: a ridge fit weighted by a
kernel on the distance to the full prompt).

The fit's quality is measured on held-out masks by ``folds``-fold
cross-validation (no extra calls): each fold's masks are predicted by a fit to the
other folds, and over all masks the trace reports the linear datamodeling score
(LDS, Spearman's rank correlation of predicted and actual values of the whole
output's log-probability; Park et al. 2023, "TRAK", as used by Cohen-Wang et al.
2024, "ContextCite") and the R^2 of those predictions. The scores themselves come
from a fit to every mask. Where a quality is undefined (constant coalition values: an output
that does not depend on the units) it is ``None`` (JSON null) with the reason in
``held_out["undefined"]``; results hold finite numbers only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from attrib.methods.base import Schedule
from attrib.methods.coalitions.base import CoalitionMethod, Phase
from attrib.methods.coalitions.game import Coalition, CoalitionGame

__all__ = ["LinearSurrogate", "Fit", "random_masks", "held_out_quality"]

#: ``fit(x, y, weights) -> (coef (n, m), intercept (m,))``: x is (k, n) 0/1, y is (k, m) nats.
Fit = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def random_masks(n: int, count: int, keep: float, rng: np.random.Generator) -> list[Coalition]:
    """``count`` coalitions keeping each of ``n`` units with probability ``keep``, independently."""
    draws = rng.random((count, n)) < keep
    return [tuple(int(i) for i in np.flatnonzero(row)) for row in draws]


def indicator(coalitions: list[Coalition], n: int) -> np.ndarray:
    """0/1 design matrix: 1 where a unit is kept, shape (len(coalitions), n)."""
    x = np.zeros((len(coalitions), n))
    for row, coalition in enumerate(coalitions):
        x[row, list(coalition)] = 1.0
    return x


def held_out_quality(
    fit: Fit, x: np.ndarray, y: np.ndarray, weights: np.ndarray, *, folds: int, seed: int
) -> dict[str, float | int | str | None] | None:
    """Cross-validated LDS and R^2 of the fit's predictions of the whole output's value.

    Args:
        fit: the linear fit.
        x: masks, shape (k, n), 0/1.
        y: values, nats, shape (k, m).
        weights: per-mask fit weights, shape (k,).
        folds: number of folds (fewer when there are fewer masks).
        seed: seed of the fold assignment.

    Returns:
        ``{"lds", "r2", "folds", "masks"}``, or ``None`` with fewer than 4 masks. A
        quality that is undefined is ``None`` (JSON null, never NaN) and the record
        then holds ``"undefined"``, the reason: the LDS (a rank correlation) when the
        values or the held-out predictions are constant, R^2 when the values are
        constant (there is no variance to explain). Both are finite otherwise.
    """
    from attrib.metrics import spearman

    k = len(x)
    if k < 4:
        return None
    folds = max(2, min(folds, k // 2))
    assignment = np.random.default_rng(seed).permutation(k) % folds
    predicted = np.zeros(k)
    for fold in range(folds):
        test = assignment == fold
        coef, intercept = fit(x[~test], y[~test], weights[~test])
        predicted[test] = (x[test] @ coef + intercept[None, :]).sum(axis=1)
    actual = y.sum(axis=1)
    quality: dict[str, float | int | str | None] = {"lds": None, "r2": None, "folds": folds, "masks": k}
    if not (np.all(np.isfinite(actual)) and np.all(np.isfinite(predicted))):
        quality["undefined"] = "a value or a prediction is not finite: fit quality undefined"
        return quality
    spread = float(((actual - actual.mean()) ** 2).sum())
    if spread <= 0.0:
        quality["undefined"] = "coalition values constant: fit quality undefined"
        return quality
    quality["r2"] = 1.0 - float(((actual - predicted) ** 2).sum()) / spread
    lds = spearman(predicted, actual)
    if math.isfinite(lds):
        quality["lds"] = lds
    else:
        quality["undefined"] = "held-out predictions constant: LDS undefined"
    return quality


@dataclass(frozen=True)
class LinearSurrogate(CoalitionMethod):
    """Base of the linear surrogate methods: subclasses give the masks' count and keep
    probability, the fit, and optionally per-mask weights and extra coalitions."""

    def mask_plan(self, n: int) -> tuple[int, float, int, int]:
        """``(count, keep, folds, seed)`` of the masks to draw."""
        raise NotImplementedError

    def fit(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The linear fit: ``(coef, intercept)`` of shapes (n, m) and (m,), nats."""
        raise NotImplementedError

    def weights(self, x: np.ndarray) -> np.ndarray:
        """Per-mask fit weights, shape (k,); equal by default."""
        return np.ones(len(x))

    def extra(self, n: int) -> list[Coalition]:
        """Coalitions always fitted besides the random masks (free ones, like the full prompt)."""
        return []

    minimum_rounds: ClassVar[int] = 2  # a fit needs two masks

    def rounds(self, n: int) -> list[list[Coalition]]:
        """One round per random mask (the extra coalitions are added to whatever is kept)."""
        count, keep, _, seed = self.mask_plan(n)
        return [[m] for m in random_masks(n, count, keep, np.random.default_rng(seed))]

    def least_calls(self, n: int) -> int:
        """The distinct first :attr:`minimum_rounds` masks and the extra coalitions but the full one."""
        return self._distinct_calls(n, self.minimum_rounds)

    def most_calls(self, n: int) -> int:
        """The distinct masks and extra coalitions but the full one."""
        return self._distinct_calls(n, None)

    def _distinct_calls(self, n: int, rounds: int | None) -> int:
        if n == 0:
            return 0
        every = {r[0] for r in self.rounds(n)[:rounds]} | set(self.extra(n))
        return sum(1 for c in every if len(set(c)) < n)

    def solve(self, game: CoalitionGame, on_phase: Phase) -> Schedule:
        n = game.n
        _, keep, folds, seed = self.mask_plan(n)
        rounds = self.rounds(n)
        kept, exhausted = game.fit_rounds(rounds, method=self.name, minimum=self.minimum_rounds)
        coalitions = [r[0] for r in kept] + self.extra(n)
        if on_phase is not None:
            on_phase(f"{self.name}: {len(coalitions)} masks", game.scorer.calls + game.new_calls(coalitions))
        y = game.values(coalitions)
        x = indicator(coalitions, n)
        w = self.weights(x)
        coef, intercept = self.fit(x, y, w)
        trace: dict[str, object] = {
            "units": n,
            "masks": len(coalitions),
            "distinct": len(set(coalitions)),
            "keep": keep,
            "intercept": [float(v) for v in intercept],
            "held_out": held_out_quality(self.fit, x, y, w, folds=folds, seed=seed),
        }
        return Schedule(scores=coef, trace=self.method_trace(trace), budget_exhausted=exhausted)

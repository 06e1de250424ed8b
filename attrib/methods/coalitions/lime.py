"""LIME: a ridge fit of the coalition values, weighted by closeness to the full prompt.

After Ribeiro, Singh & Guestrin 2016, "Why Should I Trust You?": sample random
ablation masks around the prompt, weight each by an exponential kernel on its
distance to the full prompt, and fit a weighted ridge model; a unit's weight is
its attribution. The distance is LIME's for text: the cosine distance between the
mask and the all-kept mask, ``1 - sqrt(kept / n)``; the kernel is LIME's
``sqrt(exp(-d^2 / width^2))``. The full prompt (distance 0, already scored) is
fitted too, as LIME does with the original instance. Masks keep each unit with
probability ``keep`` (LIME's text sampler draws the number of removed words
uniformly instead). The ridge fit is solved in numpy, intercept unpenalised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attrib.methods.coalitions.checks import at_least, positive, probability
from attrib.methods.coalitions.game import Coalition
from attrib.methods.coalitions.linear import LinearSurrogate

__all__ = ["LIME", "weighted_ridge"]


def weighted_ridge(x: np.ndarray, y: np.ndarray, weights: np.ndarray, penalty: float) -> tuple[np.ndarray, np.ndarray]:
    """Minimise ``sum_k w_k ||y_k - b - x_k W||^2 + penalty ||W||^2`` (intercept ``b`` unpenalised).

    Args:
        x: design, shape (k, n).
        y: targets, shape (k, m).
        weights: non-negative weights, shape (k,), not all zero.
        penalty: ridge penalty, 0 or more (0 gives the minimum-norm least squares).

    Returns:
        ``(W, b)`` of shapes (n, m) and (m,). With every weight 0 (a kernel so narrow
        that only masks left out of this fit had weight) only the penalty is left:
        ``W = 0`` and ``b`` the plain mean of ``y``.
    """
    total = float(weights.sum())
    if not total > 0.0:
        return np.zeros((x.shape[1], y.shape[1])), y.mean(axis=0)
    w = weights / total
    x_mean = w @ x
    y_mean = w @ y
    xc, yc = x - x_mean, y - y_mean
    root = np.sqrt(w)[:, None]
    gram = (xc * root).T @ (xc * root) + penalty / total * np.eye(x.shape[1])
    coef = np.linalg.lstsq(gram, (xc * root).T @ (yc * root), rcond=None)[0]
    return coef, y_mean - x_mean @ coef


@dataclass(frozen=True)
class LIME(LinearSurrogate):
    """LIME attribution, per output token (nats, shape (n_units, m)).

    Args:
        samples: random ablation masks to score (one call each, fewer when masks repeat).
        keep: probability that a unit is kept in a mask.
        width: kernel width on the cosine distance (LIME's text default, 25 on a
            distance scaled by 100, is 0.25 here).
        ridge: ridge penalty (LIME's default 1.0).
        folds: cross-validation folds for the held-out quality in the trace.
        seed: seed of the masks and folds.

    Raises:
        InputError: for ``samples`` below 2, ``keep`` outside (0, 1), a ``width`` not
            above 0, a negative ``ridge``, ``folds`` below 2 or a negative seed.

    Source: Ribeiro, Singh & Guestrin 2016 (LIME).
    """

    samples: int = 64
    keep: float = 0.5
    width: float = 0.25
    ridge: float = 1.0
    folds: int = 4
    seed: int = 0

    name = "lime"

    def __post_init__(self) -> None:
        at_least("samples", self.samples, 2)
        probability("keep", self.keep)
        positive("width", self.width)
        positive("ridge", self.ridge, zero=True)
        at_least("folds", self.folds, 2)
        at_least("seed", self.seed, 0)

    def mask_plan(self, n: int) -> tuple[int, float, int, int]:
        return self.samples, self.keep, self.folds, self.seed

    def extra(self, n: int) -> list[Coalition]:
        return [tuple(range(n))]

    def weights(self, x: np.ndarray) -> np.ndarray:
        distance = 1.0 - np.sqrt(x.sum(axis=1) / x.shape[1])
        # sqrt(exp(-d^2 / width^2)), written so that a tiny width cannot make 0/0
        with np.errstate(over="ignore", under="ignore"):  # far masks get weight 0, as they should
            weights: np.ndarray = np.exp(-0.5 * (distance / self.width) ** 2)
        return weights

    def fit(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return weighted_ridge(x, y, weights, self.ridge)

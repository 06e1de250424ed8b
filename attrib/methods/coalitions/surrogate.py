"""ContextCite's surrogate: random half-ablations of the units and a sparse linear (Lasso) fit.

After Cohen-Wang, Shah, Georgiev & Madry 2024, "ContextCite: Attributing Model
Generation to Context" (NeurIPS): ablate each unit with probability 1/2 in each of
64 random masks, score the output under each, and fit a Lasso model of the
output's log-probability on the masks; a unit's weight is its attribution. Here
the fit is per output token and the values are log-probabilities in nats (the
paper fits the logit of the whole response's probability). The fit's held-out LDS
and R^2 (see :mod:`attrib.methods.coalitions.linear`) say how far the linear surrogate can
be trusted.

Needs scikit-learn (``pip install 'attrib[fit]'``), imported only when a fit runs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from attrib.errors import BackendUnavailableError
from attrib.methods.coalitions.checks import at_least, positive, probability
from attrib.methods.coalitions.linear import LinearSurrogate

__all__ = ["Surrogate", "lasso"]


def lasso() -> Any:
    """scikit-learn's ``Lasso`` class.

    Raises:
        BackendUnavailableError: if scikit-learn is not installed.
    """
    try:
        from sklearn.linear_model import Lasso
    except ImportError as error:
        raise BackendUnavailableError("the surrogate method needs scikit-learn; pip install 'attrib[fit]'") from error
    return Lasso


@dataclass(frozen=True)
class Surrogate(LinearSurrogate):
    """ContextCite's sparse linear surrogate, per output token (nats, shape (n_units, m)).

    Args:
        masks: random ablation masks to score (one call each, fewer when masks repeat).
        keep: probability that a unit is kept in a mask.
        alpha: Lasso penalty on the weights' absolute values (scikit-learn's ``alpha``;
            the squared error is in nats^2, halved and averaged over masks).
        folds: cross-validation folds for the held-out quality in the trace.
        seed: seed of the masks and folds.

    Under a call budget the method scores the masks that fit (at least 2);
    ``budget_exhausted`` says when some did not. The trace holds the masks' count,
    the intercept and ``held_out`` (cross-validated LDS and R^2; ``None`` with the reason in
    ``held_out["undefined"]`` when undefined, as for constant coalition values).

    Raises:
        InputError: for ``masks`` below 2, ``keep`` outside (0, 1), a negative
            ``alpha``, ``folds`` below 2 or a negative seed.
        BackendUnavailableError: from :meth:`run`, when scikit-learn is not installed.

    Source: Cohen-Wang et al. 2024 (ContextCite); Tibshirani 1996 (the Lasso).
    """

    masks: int = 64
    keep: float = 0.5
    alpha: float = 0.01
    folds: int = 4
    seed: int = 0

    name = "surrogate"

    def __post_init__(self) -> None:
        at_least("masks", self.masks, 2)
        probability("keep", self.keep)
        positive("alpha", self.alpha, zero=True)
        at_least("folds", self.folds, 2)
        at_least("seed", self.seed, 0)

    def mask_plan(self, n: int) -> tuple[int, float, int, int]:
        return self.masks, self.keep, self.folds, self.seed

    def fit(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        model = lasso()(alpha=self.alpha, fit_intercept=True, max_iter=10_000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence notes on tiny or constant folds
            model.fit(x, y, sample_weight=weights)
        coef = np.asarray(model.coef_, dtype=np.float64).reshape(y.shape[1], x.shape[1]).T
        intercept = np.asarray(model.intercept_, dtype=np.float64).reshape(y.shape[1])
        return coef, intercept

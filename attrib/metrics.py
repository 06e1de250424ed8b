"""Faithfulness of an attribution: does removing what it ranks first hurt the output most?

Every metric re-scores the result's own output by forced decoding under prompts
with units removed in the attribution's order (highest total score first), so it
measures the model, not the attribution's self-consistency. All log-probabilities
are of the whole output, in nats.

* Deletion curve and AUC: remove the top ``k`` units for ``k`` on an even grid of
  fractions of the units; lower AUC means the attribution found what the output
  needs sooner (Petsiuk, Das & Saenko 2018, "RISE", deletion metric; Samek et al.
  2017, "Evaluating the visualization of what a deep neural network has learned").
* Insertion curve and AUC: start from the empty prompt and add units in the same
  order; higher is better (Petsiuk et al. 2018, insertion metric).
* Comprehensiveness at ``q``: ``log p(y | x) - log p(y | x without the top q of
  units)``; higher is better. Sufficiency at ``q``: ``log p(y | x) - log p(y | only
  the top q of units)``; lower is better (DeYoung et al. 2020, "ERASER", which
  uses probabilities; here log-probabilities, in nats).
* Top-k drop: ``log p(y | x) - log p(y | x without the top k units)``.
* Linear datamodeling score (LDS): over random ablation masks (each unit kept with
  probability ``keep``), Spearman's rank correlation between the drop the
  attribution predicts (the sum of the removed units' scores) and the actual drop;
  higher is better, 1 when the attribution orders every mask's effect right
  (Park et al. 2023, "TRAK: Attributing Model Behavior at Scale"; the evaluation of
  Cohen-Wang et al. 2024, "ContextCite"). It judges an attribution as an additive
  model of many units removed at once, where the curves above judge its ranking.
* Agreement between two attributions of the same prompt: Spearman's rank
  correlation of unit scores and precision@k of their top units.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from attrib.backend import Backend
from attrib.errors import InputError
from attrib.perturbation import Deletion, Span
from attrib.prompt import split_target
from attrib.result import Attribution
from attrib.scoring import Scorer
from attrib.segmentation import Tokenization

__all__ = [
    "Faithfulness",
    "faithfulness",
    "DatamodelScore",
    "lds",
    "spearman",
    "precision_at_k",
    "prompt_tokens",
]


@dataclass
class Faithfulness:
    """Faithfulness measurements of one attribution (all log-probabilities in nats).

    Attributes:
        fractions: the grid of unit fractions for the curves, shape (steps + 1,), 0..1.
        deletion: ``log p(y | x without the top fraction)`` at each grid point.
        insertion: ``log p(y | only the top fraction)`` at each grid point.
        deletion_auc: trapezoid area under ``deletion`` over [0, 1]; lower is better.
        insertion_auc: area under ``insertion``; higher is better.
        comprehensiveness: fraction -> drop when the top fraction is removed.
        sufficiency: fraction -> drop when only the top fraction is kept.
        top_k_drop: k -> drop when the top k units are removed.
        calls: scoring calls the measurements needed.
    """

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: float
    insertion_auc: float
    comprehensiveness: dict[float, float] = field(default_factory=dict)
    sufficiency: dict[float, float] = field(default_factory=dict)
    top_k_drop: dict[int, float] = field(default_factory=dict)
    calls: int = 0


def prompt_tokens(result: Attribution, backend: Backend) -> tuple[Tokenization, tuple[int, ...]]:
    """Re-tokenize ``result``'s prompt as the attribution did, with its output token ids.

    A generated output was scored after the prompt tokenized alone; a given target
    after the prompt and target tokenized together. The first that reproduces the
    result's token count is used.

    Raises:
        InputError: if neither matches the result's units (a different model or
            tokenizer than the one that produced the result).
    """

    n_tokens = result.units[-1].tokens[1] if result.units else 0
    alone = backend.tokenize(result.prompt)
    if len(alone) == n_tokens and result.output_token_ids:
        return alone, tuple(result.output_token_ids)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        joint, output_ids, _ = split_target(backend, result.prompt, result.output)
    if len(joint) == n_tokens and (result.output_token_ids is None or list(output_ids) == result.output_token_ids):
        return joint, output_ids
    raise InputError("this backend tokenizes the result's prompt differently; use the backend that produced it")


def _spans(units: Sequence[int], result: Attribution) -> list[Span]:
    return [result.units[i].tokens for i in units]


def faithfulness(
    result: Attribution,
    backend: Backend,
    *,
    steps: int = 20,
    fractions: Sequence[float] = (0.01, 0.05, 0.10, 0.20),
    ks: Sequence[int] = (1, 3, 5),
) -> Faithfulness:
    """Measure deletion/insertion curves, comprehensiveness, sufficiency and top-k drops.

    Units are ordered by total attribution, highest first (ties keep prompt order).
    A fraction ``q`` of the units means the top ``ceil(q * n_units)`` units. All
    variants are scored in one batch, so the backend can share prefixes.

    Args:
        result: the attribution to evaluate.
        backend: the backend (and model) that produced it.
        steps: number of equal steps of the curves' fraction grid.
        fractions: fractions for comprehensiveness and sufficiency.
        ks: unit counts for the top-k drop.

    Returns:
        A :class:`Faithfulness` with every measurement in nats.

    Raises:
        InputError: for ``steps < 1`` or a backend whose tokenizer does not match.
    """
    if steps < 1:
        raise InputError(f"steps must be at least 1, got {steps}")
    n = len(result.units)
    order = [item.index for item in result.top(n)]
    tokens, output_ids = prompt_tokens(result, backend)
    scorer = Scorer(backend, tokens, output_ids, Deletion())
    base = float(scorer.base_logprobs.sum())

    def count(q: float) -> int:
        return min(n, math.ceil(q * n - 1e-9))

    grid = np.linspace(0.0, 1.0, steps + 1)
    removed = [_spans(order[: count(q)], result) for q in grid]
    kept = [_spans(order[count(q) :], result) for q in grid]
    comp = [_spans(order[: count(q)], result) for q in fractions]
    suff = [_spans(order[count(q) :], result) for q in fractions]
    top = [_spans(order[:k], result) for k in ks]
    variants = removed + kept + comp + suff + top
    drops = scorer.drops(variants).sum(axis=1)

    parts = np.split(drops, np.cumsum([len(removed), len(kept), len(comp), len(suff)]))
    deletion = base - parts[0]
    insertion = base - parts[1]
    return Faithfulness(
        fractions=grid,
        deletion=deletion,
        insertion=insertion,
        deletion_auc=_area(grid, deletion),
        insertion_auc=_area(grid, insertion),
        comprehensiveness={float(q): float(d) for q, d in zip(fractions, parts[2], strict=True)},
        sufficiency={float(q): float(d) for q, d in zip(fractions, parts[3], strict=True)},
        top_k_drop={int(k): float(d) for k, d in zip(ks, parts[4], strict=True)},
        calls=scorer.calls,
    )


@dataclass
class DatamodelScore:
    """The linear datamodeling score of one attribution (drops in nats, whole output).

    Attributes:
        lds: Spearman's rank correlation of ``predicted`` and ``actual``, in [-1, 1];
            ``nan`` when either is constant.
        predicted: each mask's predicted drop, the sum of its removed units' scores, shape (masks,).
        actual: each mask's actual drop ``log p(y | x) - log p(y | x masked)``, shape (masks,).
        removed: which units each mask removed, shape (masks, n_units), bool.
        calls: scoring calls the measurement needed.
    """

    lds: float
    predicted: np.ndarray
    actual: np.ndarray
    removed: np.ndarray
    calls: int = 0


def lds(result: Attribution, backend: Backend, *, masks: int = 64, keep: float = 0.5, seed: int = 0) -> DatamodelScore:
    """Measure the linear datamodeling score of ``result`` on random ablation masks.

    Each mask keeps every unit independently with probability ``keep`` and deletes
    the rest; the output is re-scored under each mask by forced decoding (one batch,
    so the backend can share prefixes; repeated masks are scored once).

    Args:
        result: the attribution to evaluate.
        backend: the backend (and model) that produced it.
        masks: number of random masks.
        keep: probability that a unit is kept in a mask.
        seed: seed of the masks.

    Returns:
        A :class:`DatamodelScore`.

    Raises:
        InputError: for ``masks`` below 2, ``keep`` outside (0, 1), or a backend whose
            tokenizer does not match.

    Source: Park et al. 2023 (TRAK); Cohen-Wang et al. 2024 (ContextCite).
    """
    if isinstance(masks, bool) or not isinstance(masks, int) or masks < 2:
        raise InputError(f"masks must be a whole number of at least 2, got {masks!r}")
    if isinstance(keep, bool) or not isinstance(keep, int | float) or not 0.0 < keep < 1.0:
        raise InputError(f"keep must be a number strictly between 0 and 1, got {keep!r}")
    tokens, output_ids = prompt_tokens(result, backend)
    scorer = Scorer(backend, tokens, output_ids, Deletion())
    removed = np.random.default_rng(seed).random((masks, len(result.units))) >= keep
    variants = [_spans(np.flatnonzero(row).tolist(), result) for row in removed]
    actual = scorer.drops(variants).sum(axis=1)
    predicted = removed.astype(np.float64) @ np.asarray(result.unit_scores, dtype=np.float64)
    return DatamodelScore(
        lds=spearman(predicted, actual), predicted=predicted, actual=actual, removed=removed, calls=scorer.calls
    )


def _area(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoid-rule area under ``y`` over ``x``."""
    return float(((y[1:] + y[:-1]) / 2.0 * np.diff(x)).sum())


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation of two score vectors (Pearson correlation of average ranks).

    Returns:
        A value in [-1, 1]; ``nan`` if either vector is constant.

    Raises:
        InputError: if the vectors differ in length.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise InputError(f"score vectors differ in length: {x.size} and {y.size}")
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def precision_at_k(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, k: int) -> float:
    """Share of ``b``'s top ``k`` units that are also in ``a``'s top ``k`` (ties: prompt order)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    top_a = set(np.argsort(-x, kind="stable")[:k].tolist())
    top_b = set(np.argsort(-y, kind="stable")[:k].tolist())
    return len(top_a & top_b) / min(k, len(x))

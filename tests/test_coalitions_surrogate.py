"""The linear surrogates (ContextCite's Lasso fit and LIME) against the toy backend's known weights."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import attrib
from attrib.backends.toy import ToyBackend
from attrib.errors import BackendUnavailableError, BudgetError, InputError
from attrib.methods.coalitions import LIME, Surrogate

SENTENCES = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
PROMPT = " ".join(f"Sentence {word} here." for word in SENTENCES)
WEIGHTS = {"two": 2.0, "five": [1.0, 0.4], "nine": 0.5}


def _expected(n_output: int = 2) -> np.ndarray:
    expected = np.zeros((len(SENTENCES), n_output))
    for word, weight in WEIGHTS.items():
        expected[SENTENCES.index(word)] = weight
    return expected


@pytest.fixture
def toy() -> ToyBackend:
    return ToyBackend(sensitivity=WEIGHTS, output=" yes it")


def test_the_surrogate_recovers_the_toys_additive_weights(toy):
    pytest.importorskip("sklearn")
    result = attrib.attribute(PROMPT, backend=toy, method=Surrogate(), level="sentence")
    assert result.scores.shape == (12, 2)
    np.testing.assert_allclose(result.scores, _expected(), atol=0.1)
    held_out = result.trace["held_out"]
    assert held_out["lds"] > 0.95 and held_out["r2"] > 0.95
    assert held_out["masks"] == 64 and result.trace["keep"] == 0.5
    assert result.stats.calls <= 64 + 1


def test_a_weaker_penalty_recovers_the_weights_closer(toy):
    pytest.importorskip("sklearn")
    result = attrib.attribute(PROMPT, backend=toy, method=Surrogate(alpha=0.0005, masks=96), level="sentence")
    np.testing.assert_allclose(result.scores, _expected(), atol=0.01)


def test_lime_recovers_the_toys_weights_without_a_penalty(toy):
    result = attrib.attribute(PROMPT, backend=toy, method=LIME(ridge=0.0), level="sentence")
    np.testing.assert_allclose(result.scores, _expected(), atol=1e-6)
    assert result.trace["masks"] == 65  # the full prompt is fitted too, as LIME fits the instance
    assert result.trace["held_out"]["lds"] > 0.95


def test_limes_ridge_penalty_shrinks_but_keeps_the_order(toy):
    result = attrib.attribute(PROMPT, backend=toy, method=LIME(), level="sentence")
    totals = result.scores.sum(axis=1)
    order = list(np.argsort(-totals)[:3])
    assert order == [SENTENCES.index("two"), SENTENCES.index("five"), SENTENCES.index("nine")]
    assert totals[SENTENCES.index("two")] < 4.0


@pytest.mark.parametrize(
    "make", [lambda seed: Surrogate(masks=24, seed=seed), lambda seed: LIME(samples=24, seed=seed)]
)
def test_masks_reproduce_with_a_seed_and_differ_with_another(make):
    if isinstance(make(0), Surrogate):
        pytest.importorskip("sklearn")
    toy = ToyBackend(sensitivity={("two", "five"): 2.0, "nine": 0.5}, output=" yes")
    first = attrib.attribute(PROMPT, backend=toy, method=make(0), level="sentence")
    again = attrib.attribute(PROMPT, backend=toy, method=make(0), level="sentence")
    other = attrib.attribute(PROMPT, backend=toy, method=make(1), level="sentence")
    np.testing.assert_array_equal(first.scores, again.scores)
    assert not np.allclose(first.scores, other.scores)


@pytest.mark.parametrize("method", [Surrogate(), LIME()])
def test_budgets_are_respected(toy, method):
    if isinstance(method, Surrogate):
        pytest.importorskip("sklearn")
    result = attrib.attribute(PROMPT, backend=toy, method=method, level="sentence", budget=20)
    assert result.stats.calls <= 20
    assert result.stats.budget_exhausted
    free = 1 if isinstance(method, LIME) else 0  # LIME also fits the full prompt, the base
    assert result.trace["distinct"] <= 19 + free
    with pytest.raises(BudgetError):
        attrib.attribute(PROMPT, backend=toy, method=method, level="sentence", budget=2)


def test_a_missing_scikit_learn_names_the_extra(toy, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)
    with pytest.raises(BackendUnavailableError, match=r"pip install 'attrib\[fit\]'"):
        attrib.attribute(PROMPT, backend=toy, method=Surrogate(masks=8), level="sentence")


def test_bad_parameters_are_refused():
    with pytest.raises(InputError, match="keep"):
        Surrogate(keep=1.0)
    with pytest.raises(InputError, match="alpha"):
        Surrogate(alpha=-0.1)
    with pytest.raises(InputError, match="masks"):
        Surrogate(masks=1)
    with pytest.raises(InputError, match="width"):
        LIME(width=0.0)
    with pytest.raises(InputError, match="folds"):
        LIME(folds=1)
    assert Surrogate().describe() == {
        "name": "surrogate",
        "masks": 64,
        "keep": 0.5,
        "alpha": 0.01,
        "folds": 4,
        "seed": 0,
    }

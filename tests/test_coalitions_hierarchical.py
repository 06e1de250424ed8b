"""Hierarchical coalitions: HiPe's salient units split by a coalition method, on the toy backend."""

from __future__ import annotations

import numpy as np
import pytest

import attrib
from attrib.backends.toy import ToyBackend
from attrib.errors import InputError
from attrib.methods.coalitions import Hierarchical, KernelSHAP

FACT = "The capital of France is Paris."
FILLER = [
    "Birds fly.",
    "Cats sleep.",
    "Dogs bark.",
    "Fish swim.",
    "Cows moo.",
    "Owls hoot.",
    "Bees hum.",
    "Frogs leap.",
]
PROMPT = " ".join([*FILLER[:3], FACT, FILLER[3], FACT, *FILLER[4:], "Question: which city?"])
COPIES = [3, 5]


@pytest.fixture
def toy() -> ToyBackend:
    return ToyBackend(sensitivity={"paris": 2.0, "question": 0.5}, output=" yes")


def test_the_copies_share_the_drop_hipe_gives_neither(toy):
    hipe = attrib.attribute(PROMPT, backend=toy, method="hipe", level="sentence")
    result = attrib.attribute(PROMPT, backend=toy, method=Hierarchical(), level="sentence")
    np.testing.assert_allclose(hipe.scores[COPIES], 0.0, atol=1e-12)
    np.testing.assert_allclose(result.scores[COPIES], [[1.0], [1.0]], atol=1e-12)
    assert result.scores[-1, 0] == pytest.approx(0.5)  # the question keeps its (additive) score
    coalitions = result.trace["coalitions"]
    assert set(COPIES) <= set(coalitions["region"]) and len(coalitions["region"]) == 6
    assert coalitions["trace"]["exact"] is True
    assert result.trace["chunks"], "HiPe's chunks stay in the trace for the report"
    assert result.stats.calls == 1 + coalitions["hipe_calls"] + coalitions["coalition_calls"]


def test_units_outside_the_region_keep_hipes_scores(toy):
    hipe = attrib.attribute(PROMPT, backend=toy, method="hipe", level="sentence")
    result = attrib.attribute(PROMPT, backend=toy, method=Hierarchical(region=2), level="sentence")
    region = result.trace["coalitions"]["region"]
    outside = [i for i in range(len(result.units)) if i not in region]
    np.testing.assert_array_equal(result.scores[outside], hipe.scores[outside])


def test_a_budget_is_shared_and_respected(toy):
    method = Hierarchical(method=KernelSHAP(samples=40))
    result = attrib.attribute(PROMPT, backend=toy, method=method, level="sentence", budget=24)
    assert result.stats.calls <= 24
    coalitions = result.trace["coalitions"]
    assert coalitions["method"]["name"] == "kernelshap" and coalitions["method"]["seed"] == 0
    assert coalitions["coalition_calls"] > 0
    assert result.stats.budget_exhausted


def test_parameters_are_checked_and_described():
    with pytest.raises(InputError, match="region"):
        Hierarchical(region=0)
    with pytest.raises(InputError, match="share"):
        Hierarchical(share=1.5)
    described = Hierarchical(seed=4).describe()
    assert described["name"] == "hierarchical" and described["region"] == 6
    assert described["method"]["name"] == "shapley"

"""Faithfulness metrics against the toy model, whose exact effects are known."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import attrib
from attrib.backends.toy import ToyBackend
from attrib.errors import InputError
from attrib.metrics import faithfulness, precision_at_k, spearman

PROMPT = "The weather was mild. The capital of France is Paris. Markets were busy. " * 2


def _attribution(toy, method="itp"):
    return attrib.attribute(PROMPT, backend=toy, method=method, level="word")


def test_a_faithful_attribution_scores_the_known_answers():
    toy = ToyBackend(sensitivity={"paris": 2.0, "capital": 1.0}, output=" yes")
    result = _attribution(toy)
    # "Paris" and "capital" each occur twice, so leave-one-out sees nothing...
    assert np.all(result.unit_scores == 0.0)
    # ...and a random-looking order: removing the "top" units changes nothing
    measured = faithfulness(result, toy, steps=4, fractions=(0.1,), ks=(1,))
    assert measured.top_k_drop[1] == 0.0
    # the full deletion curve ends with the empty prompt: both keys gone, 3 nats lower
    assert measured.deletion[0] == pytest.approx(-0.25)
    assert measured.deletion[-1] == pytest.approx(-3.25)
    assert measured.insertion[0] == pytest.approx(-3.25)
    assert measured.insertion[-1] == pytest.approx(-0.25)


def test_deletion_auc_prefers_the_true_order_over_its_reverse():
    toy = ToyBackend(sensitivity={"paris": 2.0, "capital": 1.0, "markets": 0.5}, output=" yes")
    prompt = "The weather was mild. The capital of France is Paris. Markets were busy."
    good = attrib.attribute(prompt, backend=toy, method="itp", level="word")
    bad = attrib.Attribution(**{**good.__dict__, "scores": -good.scores})
    good_m = faithfulness(good, toy, steps=10)
    bad_m = faithfulness(bad, toy, steps=10)
    assert good_m.deletion_auc < bad_m.deletion_auc
    assert good_m.insertion_auc > bad_m.insertion_auc
    assert good_m.top_k_drop[1] == pytest.approx(2.0)  # " Paris." first
    assert good_m.top_k_drop[3] == pytest.approx(3.5)
    assert len(good.units) == 13  # so the top 20% is the top ceil(2.6) = 3 units
    assert good_m.comprehensiveness[0.2] == pytest.approx(3.5)
    assert good_m.sufficiency[0.2] == pytest.approx(0.0)  # the three keys alone suffice
    assert bad_m.sufficiency[0.2] == pytest.approx(3.5)
    # one batch, repeated variants scored once: at most base + 2 curves of 11 points + 4 + 4 + 3
    assert good_m.calls <= 1 + 2 * 11 + 4 + 4 + 3


def test_a_result_from_another_tokenizer_is_refused(toy):
    result = _attribution(toy)
    from attrib.segmentation import Unit

    result = dataclasses.replace(result, units=[*result.units[:-1], Unit(result.prompt[:1], 0, 1, tokens=(0, 999))])
    with pytest.raises(InputError, match="tokenizes the result's prompt differently"):
        faithfulness(result, toy)


def test_spearman_and_precision():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 2], [1, 1, 2]) == pytest.approx(1.0)  # ties take average ranks
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert precision_at_k([5, 4, 0, 0], [4, 5, 1, 0], 2) == 1.0
    assert precision_at_k([5, 0, 4, 0], [4, 5, 1, 0], 2) == 0.5
    with pytest.raises(InputError):
        spearman([1, 2], [1, 2, 3])

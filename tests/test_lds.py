"""The linear datamodeling score (LDS) against the toy backend, whose drops are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

import attrib
from attrib.backends.toy import ToyBackend
from attrib.errors import InputError
from attrib.methods.coalitions import ShapleySampling
from attrib.metrics import lds

PROMPT = "The capital is Paris. Cats sleep. The river is the Seine. Dogs bark. Birds fly. Rome is old."
FACT = "The capital of France is Paris."
REDUNDANT = f"Birds fly. {FACT} Cats sleep. Dogs bark. {FACT} Owls hoot."


def test_an_exact_additive_attribution_scores_one_and_its_reverse_minus_one():
    toy = ToyBackend(sensitivity={"paris": 2.0, "seine": 1.0, "rome": 0.25}, output=" yes it")
    result = attrib.attribute(PROMPT, backend=toy, method="itp", level="sentence")
    measured = lds(result, toy, masks=32)
    assert measured.lds == pytest.approx(1.0)
    np.testing.assert_allclose(measured.predicted, measured.actual)
    assert measured.removed.shape == (32, 6)
    assert measured.calls <= 32 + 1
    flipped = attrib.Attribution(**{**result.__dict__, "scores": -result.scores})
    assert lds(flipped, toy, masks=32).lds == pytest.approx(-1.0)


def test_shapley_beats_leave_one_out_on_a_redundant_pair():
    toy = ToyBackend(sensitivity={"paris": 2.0, "owls": 0.5}, output=" yes")
    loo = attrib.attribute(REDUNDANT, backend=toy, method="itp", level="sentence")
    shapley = attrib.attribute(REDUNDANT, backend=toy, method=ShapleySampling(), level="sentence")
    loo_score = lds(loo, toy, masks=48, seed=1).lds
    shapley_score = lds(shapley, toy, masks=48, seed=1).lds
    assert shapley_score > loo_score + 0.1
    assert shapley_score > 0.6


def test_masks_follow_the_seed_and_keep_probability():
    toy = ToyBackend(sensitivity={"paris": 2.0}, output=" yes")
    result = attrib.attribute(PROMPT, backend=toy, method="itp", level="word")
    a, b = lds(result, toy, masks=40, seed=2), lds(result, toy, masks=40, seed=2)
    np.testing.assert_array_equal(a.removed, b.removed)
    assert not np.array_equal(a.removed, lds(result, toy, masks=40, seed=3).removed)
    mostly_kept = lds(result, toy, masks=40, keep=0.9, seed=2).removed.mean()
    assert mostly_kept < a.removed.mean()


def test_constant_predictions_give_nan():
    toy = ToyBackend(sensitivity={"paris": 2.0}, output=" yes")
    result = attrib.attribute(REDUNDANT, backend=toy, method="itp", level="sentence")
    assert np.all(result.scores == 0.0)
    assert math.isnan(lds(result, toy, masks=16).lds)


def test_bad_options_are_refused():
    toy = ToyBackend(sensitivity={"paris": 2.0}, output=" yes")
    result = attrib.attribute(PROMPT, backend=toy, method="itp", level="sentence")
    with pytest.raises(InputError, match="masks"):
        lds(result, toy, masks=1)
    with pytest.raises(InputError, match="keep"):
        lds(result, toy, keep=0.0)

"""Scoring a fixed output from regenerated outputs: alignment, top-k lookup, bounds, text retention."""

from __future__ import annotations

import math

import numpy as np
import pytest

from attrib.backends.openai.rungs.regeneration import GeneratedToken, score_from_top_logprobs, text_retention

ORIGINAL = [" The", " code", " is", " 4", "8", "1", "7", "."]


def regenerate(texts: list[str], logprob: float = -0.1, top: dict[str, float] | None = None) -> list[GeneratedToken]:
    return [GeneratedToken(t, logprob, dict(top or {})) for t in texts]


def test_identical_regeneration_reads_each_tokens_own_logprob() -> None:
    tokens = [GeneratedToken(t, -0.1 * (i + 1)) for i, t in enumerate(ORIGINAL)]
    scores = score_from_top_logprobs(ORIGINAL, tokens)
    assert np.allclose(scores.logprobs, [-0.1 * (i + 1) for i in range(len(ORIGINAL))])
    assert scores.matched.all() and not scores.bounded.any()


def test_a_shift_by_one_token_is_aligned_not_compared_by_position() -> None:
    # The perturbed output starts with an extra token; position-wise every token would differ.
    shifted = regenerate([" Well", *ORIGINAL], logprob=-0.2)
    scores = score_from_top_logprobs(ORIGINAL, shifted)
    assert scores.matched.all()
    assert np.allclose(scores.logprobs, -0.2)
    assert not scores.bounded.any()


def test_a_diverging_token_is_read_from_the_alternatives_at_the_divergence() -> None:
    regenerated = regenerate([" The", " code", " is", " 2"])
    regenerated[3] = GeneratedToken(" 2", -0.3, {" 2": -0.3, " 4": -2.5, " 9": -4.0})
    scores = score_from_top_logprobs(ORIGINAL[:4], regenerated)
    assert scores.logprobs[3] == pytest.approx(-2.5)
    assert not scores.bounded[3] and not scores.matched[3]


def test_a_token_absent_from_top_k_gets_the_smallest_returned_logprob_as_bound() -> None:
    regenerated = regenerate([" The", " code", " is", " 2"])
    regenerated[3] = GeneratedToken(" 2", -0.3, {" 2": -0.3, " 9": -4.0, " 5": -6.5})
    scores = score_from_top_logprobs(ORIGINAL[:4], regenerated)
    assert scores.logprobs[3] == pytest.approx(-6.5)
    assert scores.bounded[3]
    assert scores.logprobs.min() > -100  # no magic floor


def test_tokens_after_an_early_stop_are_bounded_by_one_half() -> None:
    scores = score_from_top_logprobs(ORIGINAL, regenerate(ORIGINAL[:3]))
    assert scores.matched[:3].all()
    assert np.allclose(scores.logprobs[3:], math.log(0.5))
    assert scores.bounded[3:].all()


def test_an_empty_regeneration_bounds_every_token() -> None:
    scores = score_from_top_logprobs(ORIGINAL, [])
    assert scores.bounded.all()
    assert np.allclose(scores.logprobs, math.log(0.5))


def test_reworded_output_keeps_the_shared_tokens() -> None:
    reworded = regenerate([" The", " number", " is", " 4", "8", "1", "7", "."], logprob=-0.4)
    scores = score_from_top_logprobs(ORIGINAL, reworded)
    assert list(scores.matched) == [True, False, True, True, True, True, True, True]
    assert scores.bounded[1]


def test_empty_original_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one token"):
        score_from_top_logprobs([], [])
    with pytest.raises(ValueError, match="at least one token"):
        text_retention([], "x")


def test_text_retention_scores_the_lost_share_of_each_token() -> None:
    assert np.allclose(text_retention(ORIGINAL, "".join(ORIGINAL)), 0.0)
    scores = text_retention(ORIGINAL, " The code is 2935.")
    assert np.allclose(scores[:3], 0.0)
    assert scores[3] == pytest.approx(-0.5)  # " 4": the space survives, the digit does not
    assert np.allclose(scores[4:7], -1.0)
    assert scores[7] == 0.0
    assert np.all((scores >= -1) & (scores <= 0))

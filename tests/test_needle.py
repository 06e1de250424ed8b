"""End to end on the embedded model: HiPe finds the one decisive fact in ~1,000 tokens of real prose."""

from __future__ import annotations

from pathlib import Path

import pytest

import attrib
from benchmarks.needle import make_needle_case

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parent.parent


def test_hipe_ranks_a_unit_of_the_decisive_fact_first_with_far_fewer_calls_than_itp(llama):
    # seed 1: a case where the model itself answers with the decisive code
    case = make_needle_case(1000, seed=1, count_tokens=lambda text: len(llama.tokenize(text)))
    result = attrib.attribute(case.prompt, backend=llama, target=case.target, method="hipe", level="token")
    n_units = len(result.units)
    assert 900 <= n_units <= 1100
    assert result.scores.shape == (n_units, len(result.output_tokens))

    best = result.top(1)[0].unit
    start, end = case.fact
    assert start <= best.start and best.end <= end, (
        f"top unit {best.text!r} at {best.start}-{best.end} is outside the fact {case.prompt[start:end]!r}"
    )
    # the distractor facts, of the same form, do not outrank the decisive one
    for d_start, d_end in case.distractors:
        assert not (d_start <= best.start < d_end)

    itp_calls = n_units + 1  # exhaustive leave-one-out at token level, by construction
    assert result.stats.calls <= 0.2 * itp_calls, f"{result.stats.calls} calls vs {itp_calls} for itp"
    assert result.stats.tokens_evaluated < result.stats.calls * (n_units + len(result.output_tokens) + 1)


def test_hipe_reproduces_exhaustive_leave_one_out_on_the_readme_example(llama):
    prompt = (ROOT / "examples" / "needle.txt").read_text(encoding="utf-8").rstrip("\n")
    hipe = attrib.attribute(prompt, backend=llama, max_new_tokens=5)
    assert hipe.output == " 7328"
    itp = attrib.attribute(prompt, backend=llama, target=hipe.output, method="itp")
    assert hipe.units == itp.units
    top_hipe = [item.index for item in hipe.top(5)]
    top_itp = [item.index for item in itp.top(5)]
    assert set(top_hipe) == set(top_itp)
    fact = prompt.index("The access code for the machine shop is 7328.")
    assert fact <= hipe.units[top_hipe[0]].start < fact + 46
    # refined units carry the exact leave-one-out drop (up to llama.cpp's batch-shape noise)
    for index in top_hipe[:3]:
        assert hipe.unit_scores[index] == pytest.approx(itp.unit_scores[index], abs=0.1)
    assert hipe.stats.calls < itp.stats.calls

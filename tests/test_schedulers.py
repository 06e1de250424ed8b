"""ItP and HiPe against the toy backend, whose exact attributions are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

import attrib
from attrib.backends.toy import ToyBackend
from attrib.errors import BudgetError
from attrib.methods.hipe import HiPe, children

FILLER = (
    "The weather was mild that spring and the farmers planted early. Markets in the valley were busy every morning. "
)
PROMPT = (
    FILLER * 4
    + "\n\nThe capital of France is Paris, a city on the Seine.\n\n"
    + FILLER * 5
    + "Question: which city? Answer:"
)


class CountingToy(ToyBackend):
    """Toy backend that remembers every prompt it was asked to score."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen: list[tuple[int, ...]] = []

    def score(self, requests, *, on_result=None):
        self.seen.extend(r.prompt_ids for r in requests)
        return super().score(requests, on_result=on_result)


def _rows_by_text(result):
    return {u.text: result.scores[i] for i, u in enumerate(result.units)}


def test_itp_gives_the_exact_leave_one_out_answer(toy):
    result = attrib.attribute(PROMPT, backend=toy, method="itp", level="word")
    rows = _rows_by_text(result)
    n_output = len(result.output_tokens)
    assert n_output == 3
    np.testing.assert_allclose(rows[" Paris,"], [2.0] * n_output)
    np.testing.assert_allclose(rows[" capital"], [1.0] * n_output)
    others = [t for t in rows if t not in (" Paris,", " capital")]
    assert all(np.all(rows[t] == 0.0) for t in others)
    assert result.stats.calls == len(result.units) + 1
    np.testing.assert_allclose(result.unit_scores, result.scores.sum(axis=1))


def test_itp_keeps_per_output_token_columns():
    toy = ToyBackend(sensitivity={"paris": [2.0, 0.0, 0.5]}, output=" yes it is")
    result = attrib.attribute(PROMPT, backend=toy, method="itp", level="word")
    np.testing.assert_allclose(_rows_by_text(result)[" Paris,"], [2.0, 0.0, 0.5])
    np.testing.assert_allclose(result.column(0).sum(), 2.0)


@pytest.mark.parametrize("threshold", ["midrange", "relative", 0.5])
def test_hipe_finds_the_key_words_with_fewer_calls(toy, threshold):
    result = attrib.attribute(PROMPT, backend=toy, method=HiPe(threshold=threshold), level="token")
    top = [item.unit.text for item in result.top(4)]
    assert set(top[:2]) <= {" Pari", "s", " capi", "tal"}
    assert top[0] in {" Pari", "s"}
    assert result.stats.calls < 0.5 * (len(result.units) + 1)


def test_hipe_leaves_carry_exact_leave_one_out_scores(toy):
    result = attrib.attribute(PROMPT, backend=toy, method=HiPe(threshold="relative"), level="word")
    leaves = [c for c in result.trace["chunks"] if c["leaf"]]
    assert leaves, "hipe refined nothing down to single words"
    rows = _rows_by_text(result)
    assert rows[" Paris,"].sum() == pytest.approx(6.0)
    assert rows[" capital"].sum() == pytest.approx(3.0)


def test_hipe_never_sends_the_same_variant_twice():
    toy = CountingToy(sensitivity={"paris": 2.0, "capital": 1.0, "seine": 0.5})
    result = attrib.attribute(PROMPT, backend=toy, method="hipe", level="token")
    assert len(toy.seen) == len(set(toy.seen)) == result.stats.calls


def test_hipe_max_depth_zero_scores_only_the_first_three_chunks(toy):
    result = attrib.attribute(PROMPT, backend=toy, method=HiPe(max_depth=0), level="token")
    assert result.stats.calls == 1 + 3
    assert {c["depth"] for c in result.trace["chunks"]} == {0}
    # unrefined units inherit their chunk's score spread over its tokens, so the
    # units of the chunks holding "Paris" all share a small positive score
    assert (result.unit_scores > 0).sum() > 10


def test_hipe_stops_at_the_budget_and_says_so(toy):
    result = attrib.attribute(PROMPT, backend=toy, method="hipe", level="token", budget=10)
    assert result.stats.calls <= 10
    assert result.stats.budget_exhausted


def test_hipe_under_a_budget_refines_whole_families_most_salient_first():
    toy = ToyBackend(sensitivity={"paris": 5.0, "seine": 0.6})
    result = attrib.attribute(PROMPT, backend=toy, method=HiPe(threshold="relative"), level="token", budget=12)
    chunks = result.trace["chunks"]
    for index, chunk in enumerate(chunks):
        kids = [c for c in chunks if c["parent"] == index]
        if chunk["refined"]:
            # refined parents were cut whole: their children cover them
            assert min(k["start"] for k in kids) == chunk["start"]
            assert max(k["end"] for k in kids) == chunk["end"]
            # and no unrefined sibling candidate of the same depth scored higher
            peers = [c for c in chunks if c["depth"] == chunk["depth"] and not c["refined"] and not c["leaf"]]
            assert all(p["score"] <= chunk["score"] for p in peers)
        else:
            assert not kids
    # with so few calls the answer is coarse: the top unit lies in the smallest
    # salient chunk around "Paris"
    paris = PROMPT.index("Paris")
    around = min(
        (c for c in chunks if c["score"] > 0 and c["char_start"] <= paris < c["char_end"]),
        key=lambda c: c["end"] - c["start"],
    )
    best = result.top(1)[0].unit
    assert around["char_start"] <= best.start and best.end <= around["char_end"]
    assert result.stats.calls <= 12 and result.stats.budget_exhausted


def test_itp_refuses_a_budget_it_cannot_meet_before_calling_the_model():
    toy = CountingToy(sensitivity={"paris": 1.0})
    with pytest.raises(BudgetError, match="needs at least"):
        attrib.attribute(PROMPT, backend=toy, method="itp", level="token", budget=20)
    assert toy.seen == []


def test_fixed_threshold_above_every_score_refines_nothing(toy):
    result = attrib.attribute(PROMPT, backend=toy, method=HiPe(threshold=1e6), level="token")
    assert result.stats.calls == 4


def test_hipe_sees_redundant_evidence_that_leave_one_out_misses():
    # The output needs "capital" OR "seat": deleting either alone changes nothing.
    toy = ToyBackend(sensitivity={("capital", "seat"): 3.0})
    prompt = FILLER * 3 + "Paris is the capital and seat of government. " + FILLER * 3
    itp = attrib.attribute(prompt, backend=toy, method="itp", level="word")
    assert np.all(itp.unit_scores == 0.0)
    hipe = attrib.attribute(prompt, backend=toy, method=HiPe(threshold="relative", max_depth=2), level="word")
    rows = _rows_by_text(hipe)
    assert rows[" capital"].sum() > 0 and rows[" seat"].sum() > 0


def test_children_are_overlapping_halves_cut_on_the_coarsest_fitting_edges():
    hierarchy = [(0, 40, 100), (0, 10, 20, 40, 60, 100), tuple(range(0, 101))]
    # middle: the paragraph edge 40 is within 100/8 of 50; first quarter: no paragraph
    # edge near 25, sentence edge 20 is; third quarter: only a token edge near 75
    assert children(0, 100, hierarchy) == [(0, 40), (20, 75), (40, 100)]
    # a chunk of at most four units is cut straight into its units
    assert children(10, 13, hierarchy) == [(10, 11), (11, 12), (12, 13)]
    assert children(10, 11, hierarchy) == []


def test_best_first_finds_the_same_top_units_as_depth_order():
    toy = ToyBackend(sensitivity={"paris": 2.0, "capital": 1.0, "seine": 0.5})
    depth = attrib.attribute(PROMPT, backend=toy, method=HiPe(order="depth"), level="token")
    best = attrib.attribute(PROMPT, backend=toy, method=HiPe(order="best"), level="token")
    assert [i.unit.text for i in best.top(3)] == [i.unit.text for i in depth.top(3)]
    np.testing.assert_allclose(best.top(3)[0].score, depth.top(3)[0].score)
    assert best.trace["order"] == "best" and depth.trace["order"] == "depth"


def test_best_first_under_a_budget_reaches_single_tokens_where_depth_order_stays_coarse():
    toy = ToyBackend(sensitivity={"paris": 5.0, "seine": 0.6, "question": 0.8})
    depth = attrib.attribute(PROMPT, backend=toy, method=HiPe(order="depth"), level="token", budget=30)
    best = attrib.attribute(PROMPT, backend=toy, method=HiPe(order="best"), level="token", budget=30)
    assert best.stats.calls <= 30 and depth.stats.calls <= 30
    best_leaves = [c for c in best.trace["chunks"] if c["leaf"]]
    depth_leaves = [c for c in depth.trace["chunks"] if c["leaf"]]
    assert best_leaves and not depth_leaves
    # the exact leave-one-out drop of "Paris"'s first token: 5 nats per output token
    assert best.top(1)[0].unit.text == " Pari"
    assert best.top(1)[0].score == pytest.approx(5.0 * len(best.output_tokens))


@pytest.mark.parametrize("order", ["depth", "best"])
def test_early_stop_keeps_the_exhaustive_top_k_with_fewer_calls(order):
    toy = ToyBackend(sensitivity={"paris": 3.0, "capital": 2.0, "seine": 0.6, "valley": 0.5, "farmers": 0.5})
    full = attrib.attribute(PROMPT, backend=toy, method=HiPe(order=order), level="word")
    early = attrib.attribute(PROMPT, backend=toy, method=HiPe(order=order, top_k=2), level="word")
    itp = attrib.attribute(PROMPT, backend=toy, method="itp", level="word")
    assert [i.index for i in early.top(2)] == [i.index for i in itp.top(2)]
    np.testing.assert_allclose([i.score for i in early.top(2)], [i.score for i in itp.top(2)])
    assert full.trace["early_stop"] is None
    if order == "depth":
        # depth order meets its first units only at its last depth: little to save
        assert early.stats.calls <= full.stats.calls
        return
    assert early.stats.calls < full.stats.calls
    stop = early.trace["early_stop"]
    assert stop is not None and stop["largest_unrefined_drop"] <= stop["kth_unit_drop"]


def test_hipe_rejects_an_unknown_order_and_a_top_k_below_one():
    from attrib.errors import InputError, UnknownNameError

    with pytest.raises(UnknownNameError, match="order"):
        HiPe(order="widest")
    with pytest.raises(InputError, match="top_k"):
        HiPe(top_k=0)


def test_scorer_counts_distinct_perturbed_prompts_as_it_sends_them():
    from attrib.options import RunOptions
    from attrib.scoring import Scorer

    backend = CountingToy(sensitivity={"cats": 1.0}, output=" yes")
    prompt = backend.tokenize("Cats the the the the sleep.")
    ids = prompt.ids
    the = [i for i in range(len(ids)) if ids[i] == ids[2]]
    assert len(the) == 4  # the toy gives each word one token
    perturb = RunOptions.build(perturbation="delete").perturbation.bind(backend.tokenize)
    scorer = Scorer(backend, prompt, backend.tokenize(" yes").ids, perturb)
    ablations = [[(i, i + 1)] for i in range(len(ids))]
    expected = len({perturb.apply(prompt, a).ids for a in ablations})
    assert expected == len(ablations) - 3  # deleting any of the four "the" gives one prompt
    assert scorer.count_new(ablations) == expected  # counted before the base is scored: it makes no call
    assert backend.seen == []
    scorer.drops(ablations)
    assert scorer.calls == 1 + expected and len(backend.seen) == 1 + expected
    assert scorer.count_new(ablations) == 0
    assert scorer.count_new([[(0, 1)], [(0, 1), (1, 2)], [(0, 2)]]) == 1  # one merged span, one new prompt

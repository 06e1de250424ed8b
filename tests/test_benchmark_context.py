"""The context-attribution benchmark: its cases' ground truth, its metrics, attrib's side on the toy backend."""

from __future__ import annotations

import re

import pytest

from benchmarks.context_cases import (
    CALIBRATION_SEEDS,
    EVALUATION_SEEDS,
    KINDS,
    make_context_case,
    prompt_text,
    sentences,
)
from benchmarks.context_metrics import calibrate, claim_rows, metrics, report
from benchmarks.context_peer import partition
from benchmarks.needle import estimate_tokens

ALL_SEEDS = (*EVALUATION_SEEDS, *CALIBRATION_SEEDS)


def test_splits_are_disjoint_and_large_enough() -> None:
    assert not set(EVALUATION_SEEDS) & set(CALIBRATION_SEEDS)
    assert len(EVALUATION_SEEDS) >= 20
    assert {make_context_case(s).kind for s in EVALUATION_SEEDS} == set(KINDS)


def test_the_same_seed_gives_the_same_case() -> None:
    assert make_context_case(7) == make_context_case(7)
    assert make_context_case(7) != make_context_case(8)


@pytest.mark.parametrize("seed", ALL_SEEDS)
def test_every_case_holds_its_ground_truth(seed: int) -> None:
    case = make_context_case(seed)
    prompt, spans = prompt_text(case)
    assert 6 <= len(case.sources) <= 8
    assert estimate_tokens(prompt) <= 1600
    # every source states exactly one fact, at its recorded span, and the prompt holds them all
    for source, (start, end) in zip(case.sources, spans, strict=True):
        assert prompt[start:end] == f"[{source.id}] {source.text}"
        assert source.text[slice(*source.fact)] == f"The access code for the {source.place} is {source.code}."
        assert len(re.findall(r"The access code for the", source.text)) == 1
    # claims: two supported claims from two different sources, stated where the truth says
    supported = [c for c in case.claims if c.supported]
    assert len(supported) == 2
    assert not set(supported[0].support) & set(supported[1].support)
    for claim in case.claims:
        assert case.answer[claim.start : claim.end] == claim.text
        fact = case.answer[claim.start : claim.fact_end]
        place, code = re.fullmatch(r"The access code for the (.+) is (\d{4})", fact).groups()  # type: ignore[union-attr]
        stating = [s.id for s in case.sources if s.place == place]
        assert tuple(stating) == claim.support
        assert all(case.source(i).code == code for i in stating)
        assert place in case.question or not claim.supported
    # variants
    assert any(len(c.support) == 2 for c in case.claims) == ("duplicate" in case.kind)
    assert any(not c.supported for c in case.claims) == (case.kind != "plain")
    cited = [c for c in case.claims if c.cited]
    if "cited" in case.kind:
        assert len(cited) == len(case.claims)
        assert {c.citation_correct for c in supported} == {True, False}
    else:
        assert not cited


def test_distractors_have_the_same_form_and_other_codes() -> None:
    case = make_context_case(0)
    codes = [s.code for s in case.sources]
    assert len(set(codes)) == len(codes)
    assert len({c[0] for c in codes}) == len(codes)


@pytest.mark.parametrize("level", ["source", "sentence"])
def test_contextcite_partition_rebuilds_the_context_and_finds_the_fact_sentence(level: str) -> None:
    case = make_context_case(3)
    parts, separators, where = partition(case, level)
    context = "".join(sep + part for sep, part in zip(separators, parts, strict=True))
    assert context + "\n\nQuestion: " + case.question + "\nAnswer:" == prompt_text(case)[0]
    assert {w[0] for w in where} == {s.id for s in case.sources}
    if level == "sentence":
        for source in case.sources:
            inside = [(a, b) for i, a, b in where if i == source.id]
            assert inside == sentences(source.text)
            assert source.fact in inside  # the fact is a sentence of its own


def _record(split: str, top_scores: list[dict[str, float]], columns: int = 10) -> dict:
    """A record of two supported claims (sources "1", "2") and one unsupported claim."""
    truth = [
        {"support": ["1"], "cited": ["1"]},
        {"support": ["2"], "cited": ["3"]},
        {"support": [], "cited": []},
    ]
    return {
        "split": split,
        "side": "x",
        "method": "m",
        "level": "source",
        "sources": ["1", "2", "3"],
        "facts": {},
        "truth": truth,
        "claims": [{"columns": columns, "sources": s} for s in top_scores],
        "calls": 4,
        "tokens_evaluated": 100,
        "seconds": 1.0,
    }


def test_metrics_count_top1_verdicts_and_citations() -> None:
    record = _record(
        "evaluation",
        [{"1": 30.0, "2": 1.0, "3": 0.0}, {"1": 0.0, "2": 2.0, "3": 40.0}, {"1": 0.5, "2": 0.0, "3": 0.0}],
    )
    found = metrics([record], threshold=1.0)
    assert found["top1"] == [True, False]  # the second claim's top source is the distractor "3"
    # per token: 3.0, 4.0 (supported: not flagged), 0.05 (unsupported: flagged)
    assert found["unsupported_flagged"] == [True]
    assert found["supported_flagged"] == [False, False]
    # claim 1 cites "1" correctly (3 nats/token: verified); claim 2 cites "3" wrongly, and "3" moves it: not flagged
    assert found["correct_verified"] == [True]
    assert found["wrong_flagged"] == [False]
    assert found["calls"] == 4


def test_calibrate_separates_and_prefers_the_widest_gap() -> None:
    rows = [
        {"support": ["1"], "strength": 2.0},
        {"support": ["1"], "strength": 1.0},
        {"support": [], "strength": 0.1},
        {"support": [], "strength": 0.3},
    ]
    assert calibrate(rows) == pytest.approx(0.65)
    assert calibrate(rows[:2]) is None


def test_sentence_first_judges_the_top_unit_inside_the_stating_source() -> None:
    record = _record("evaluation", [{"1": 3.0, "2": 0.0, "3": 0.0}] * 3)
    record["level"] = "sentence"
    record["facts"] = {"1": [10, 20], "2": [6, 9], "3": [0, 5]}
    units = [["1", 0, 9, 0.5], ["1", 10, 20, 2.5], ["2", 0, 5, 0.0]]
    # claim 2's fact is in source "2", whose top unit (its only one here) is not the fact
    wrong = [["1", 0, 9, 2.5], ["1", 10, 20, 0.5], ["2", 0, 5, 0.0], ["2", 10, 12, -1.0]]
    record["claims"][0]["units"] = units
    record["claims"][1]["units"] = wrong
    rows = claim_rows(record)
    assert rows[0]["sentence_first"] is True
    assert rows[1]["sentence_first"] is False
    assert rows[2]["sentence_first"] is None  # unsupported: nothing to rank


def test_report_uses_the_calibration_split_only_for_the_threshold() -> None:
    calibration = _record(
        "calibration",
        [{"1": 30.0, "2": 0.0, "3": 0.0}, {"1": 0.0, "2": 30.0, "3": 0.0}, {"1": 0.0, "2": 0.0, "3": 0.0}],
    )
    evaluation = _record(
        "evaluation",
        [{"1": 30.0, "2": 0.0, "3": 0.0}, {"1": 0.0, "2": 30.0, "3": 0.0}, {"1": 20.0, "2": 0.0, "3": 0.0}],
    )
    text = report([calibration, evaluation])
    row = next(line for line in text.splitlines() if line.startswith("| x "))
    # threshold from calibration (1.5 nats/token) misses the evaluation's unsupported claim (2 nats/token)
    assert "| 1.500 |" in row
    assert "| 2/2 (100%) | - | 0/1 (0%) | 0/2 (0%) |" in row


def test_attrib_side_on_the_toy_backend_finds_each_claims_source() -> None:
    import attrib
    from attrib.backends.toy import ToyBackend
    from benchmarks.context_attrib import measure
    from benchmarks.context_cases import ContextCase

    case: ContextCase = make_context_case(2)  # cited, with an unsupported claim
    codes = [case.answer[c.start : c.fact_end].split()[-1] for c in case.claims]
    # each code, when its source is gone, lowers every answer token by 3 nats (the toy has no
    # per-claim sensitivity, so both supported claims move with both sources)
    toy = ToyBackend(sensitivity={codes[0]: 3.0, codes[1]: 2.0}, output=case.answer)
    sources = [{"id": s.id, "text": s.text} for s in case.sources]
    result = attrib.cite(case.question, sources, answer=case.answer, level="source", method="itp", backend=toy)
    from benchmarks.context import _fact_spans, _truth

    record = {
        "sources": [s.id for s in case.sources],
        "facts": _fact_spans(case),
        "truth": _truth(case),
        **measure(case, result, 0.0),
    }
    rows = claim_rows(record)
    assert [r["top"] for r in rows[:2]] == [case.claims[0].support[0]] * 2  # the 3-nat code's source
    # the prompt, no source and each source alone (the verdict's probes), each source left out
    assert record["calls"] == 1 + (1 + len(case.sources)) + len(case.sources)
    assert [c["cited_found"] for c in record["claims"]] == [list(c.cited) for c in case.claims]
    # markers' tokens are left out: a claim's columns are fewer than its tokens
    assert all(c["columns"] > 0 for c in record["claims"])


def test_attrib_side_at_sentence_level_records_units_inside_sources() -> None:
    import attrib
    from attrib.backends.toy import ToyBackend
    from benchmarks.context import _fact_spans, _truth
    from benchmarks.context_attrib import measure

    case = make_context_case(0)
    code = case.answer[case.claims[0].start : case.claims[0].fact_end].split()[-1]
    toy = ToyBackend(sensitivity={code: 3.0}, output=case.answer)
    sources = [{"id": s.id, "text": s.text} for s in case.sources]
    result = attrib.cite(case.question, sources, answer=case.answer, level="sentence", method="itp", backend=toy)
    record = {
        "sources": [s.id for s in case.sources],
        "facts": _fact_spans(case),
        "truth": _truth(case),
        **measure(case, result, 0.0),
    }
    units = record["claims"][0]["units"]
    for ident, start, end, _ in units:
        text = case.source(ident).text
        assert -len(f"[{ident}] ") <= start < end <= len(text) + 2  # a first unit may hold the header
    assert claim_rows(record)[0]["sentence_first"] is True


def test_report_without_calibration_uses_the_default_support_and_counts_cost_only_records() -> None:
    evaluation = _record(
        "evaluation",
        [{"1": 30.0, "2": 0.0, "3": 0.0}, {"1": 0.0, "2": 30.0, "3": 0.0}, {"1": 0.0, "2": 0.0, "3": 0.0}],
    )
    evaluation["support_default"] = 0.1
    cost = {**_record("evaluation", []), "side": "y", "claims": None, "calls": 64, "tokens_evaluated": 5000}
    text = report([evaluation, cost])
    row = next(line for line in text.splitlines() if line.startswith("| x "))
    assert "0.100 (cite's default)" in row
    assert "| 1/1 (100%) | 0/2 (0%) |" in row  # the unsupported claim (0 nats) is flagged
    cost_row = next(line for line in text.splitlines() if line.startswith("| y "))
    assert "| 64.0 | 5,000 | 1.0 |" in cost_row
    assert claim_rows(cost) == []


def test_with_sufficiency_the_verdict_is_a_share_of_the_claims_information_and_top1_alone_ranks_by_it() -> None:
    # claim 1: leaving source 3 out costs most, but source 1 alone supplies 16 of its 20 nats
    record = _record(
        "evaluation",
        [{"1": 0.5, "2": 0.0, "3": 0.9}, {"1": 0.0, "2": 8.0, "3": 0.0}, {"1": 4.0, "2": 0.0, "3": 0.0}],
    )
    sufficiency = [{"1": 16.0, "2": 0.5, "3": 1.0}, {"1": 0.0, "2": 9.0, "3": 0.0}, {"1": 3.0, "2": 0.0, "3": 0.0}]
    for claim, gains, information in zip(record["claims"], sufficiency, (20.0, 12.0, 30.0), strict=True):
        claim["sufficiency"], claim["information"] = gains, information
    rows = claim_rows(record)
    assert [round(r["strength"], 3) for r in rows] == [0.8, 0.75, 0.1]
    found = metrics([record], 0.4)
    assert found["top1"] == [False, True] and found["top1_alone"] == [True, True]
    # the made-up claim: source 1 moves it by 4 nats when removed, but supplies a tenth of it alone
    assert found["unsupported_flagged"] == [True] and found["supported_flagged"] == [False, False]
    assert found["correct_verified"] == [True] and found["wrong_flagged"] == [True]

"""The benchmark suite's data and table writer (the measured runs themselves live in benchmarks/, not in tests)."""

from __future__ import annotations

import pytest

import attrib
from attrib.backends.toy import ToyBackend
from benchmarks import suite
from benchmarks.padded import FACTS, SHARES, make_padded_case


@pytest.mark.parametrize("share", SHARES)
def test_padded_cases_hit_their_key_word_share_and_mark_the_key_words(share):
    for seed, fact in enumerate(FACTS):
        case = make_padded_case(fact, share, seed=seed)
        assert case.prompt.endswith(fact.statement)
        assert [case.prompt[a:b] for a, b in case.key_spans] == list(fact.key_words)
        if len(fact.statement.split()) <= len(fact.key_words) / share:
            assert case.n_words == round(len(fact.key_words) / share)
        assert case == make_padded_case(fact, share, seed=seed)
    assert make_padded_case(FACTS[0], 0.01, seed=1).prompt != make_padded_case(FACTS[0], 0.01, seed=2).prompt


def test_padded_share_out_of_range_is_refused():
    with pytest.raises(ValueError, match="share"):
        make_padded_case(FACTS[0], 0.0)


def _records(tmp_path):
    """Real records of the suite's measure() on the toy backend: two methods, two padded cases."""
    toy = ToyBackend(sensitivity={"capital": 2.0, "japan": 3.0}, output=" Tokyo")
    records = []
    for seed in range(2):
        case = make_padded_case(FACTS[0], 0.1, seed=seed)
        for method in ("itp", "hipe", "hipe-top3"):

            def judge(result, case=case):
                scores = result.unit_scores
                keys = [i for i, u in enumerate(result.units) if suite._overlaps(u, case.key_spans)]
                return {"hit": bool(scores[keys].mean() > scores.mean()), "key_share": case.share, "words": case.n_words}

            records.append(
                suite.measure("padded", 0.1, seed, method, case.prompt, case.target, "word", toy, faithful=True, judge=judge)
            )
    return records


def test_the_table_reports_hits_costs_ratios_faithfulness_and_agreement(tmp_path):
    records = _records(tmp_path)
    assert all(r["hit"] for r in records)
    itp = {r["seed"]: r for r in records if r["method"] == "itp"}
    assert all(r["calls"] == r["units"] + 1 for r in itp.values())
    text = suite.report(records)
    assert "## Padded factual prompts (word level)" in text and "Machine:" in text
    row = next(line for line in text.splitlines() if line.startswith("| 10% ") and "| hipe |" in line)
    hipe = [r for r in records if r["method"] == "hipe"]
    ratio = sum(r["calls"] for r in hipe) / sum(itp[r["seed"]]["calls"] for r in hipe)
    assert f"{100 * ratio:.1f}%" in row and "2/2" in row
    # HiPe against ItP on the toy: the exact leave-one-out scores of the key words agree
    section = text[text.index("Agreement with ItP") :]
    agreement = next(line for line in section.splitlines() if line.startswith("| 10% | hipe | 2 |"))
    assert "| 1.00 |" in agreement  # precision@5


def test_records_round_trip_through_the_cases_file_and_are_skipped_on_a_rerun(tmp_path):
    records = _records(tmp_path)
    path = tmp_path / "cases.jsonl"
    for record in records:
        suite._append(path, record)
    again = suite.load_records(path)
    assert again == [dict(r, early_stop=r.get("early_stop")) if "early_stop" in r else r for r in records]
    assert {suite._key(r) for r in again} == {("padded", 0.1, s, m) for s in range(2) for m in ("itp", "hipe", "hipe-top3")}
    assert suite.report(again) == suite.report(records)

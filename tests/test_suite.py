"""The benchmark suite's data, method names and table writer (the measured runs themselves live in benchmarks/, not in tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from attrib import registry
from attrib.errors import UnknownNameError
from attrib.methods.hipe import HiPe
from attrib.methods.itp import ITP
from benchmarks import runner, suite, table
from benchmarks.methods import METHOD_NAMES, make_method
from benchmarks.padded import FACTS, SHARES, make_padded_case
from benchmarks.tasks import CaseId, PaddedTask

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


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


def test_suite_method_names_build_the_same_schedulers_as_the_hand_built_ones():
    by_hand = {
        "itp": ITP(),
        "hipe-midrange": HiPe(threshold="midrange", order="depth"),
        "hipe-depth": HiPe(order="depth"),
        "hipe": HiPe(),
        "hipe-top3": HiPe(top_k=3),
    }
    assert tuple(by_hand) == METHOD_NAMES
    for name, scheduler in by_hand.items():
        built = make_method(name)
        assert type(built) is type(scheduler)
        assert built.describe() == scheduler.describe(), name
    assert make_method("hipe") is not make_method("hipe")  # a fresh scheduler per attribution
    with pytest.raises(UnknownNameError, match="did you mean 'hipe-top3'"):
        make_method("hipe-top4")


def _records():
    """Real records of the runner on the toy backend (from the registry): three methods, the first two padded facts."""
    toy = registry.create(
        "backend", "toy", sensitivity={"capital": 2.0, "japan": 3.0, "eiffel": 2.0, "tower": 3.0}, output=" Tokyo"
    )
    task = PaddedTask(shares=(0.1,), facts=1)
    records = []
    for seed in range(2):
        case = task.build(CaseId("padded", 0.1, seed), toy)
        for method in ("itp", "hipe", "hipe-top3"):
            records.append(runner.measure(case, method, toy, identity={"backend": "toy"}))
    return records


def test_the_table_reports_hits_costs_ratios_faithfulness_and_agreement():
    records = _records()
    assert all(r["hit"] for r in records)
    itp = {r["seed"]: r for r in records if r["method"] == "itp"}
    assert all(r["calls"] == r["units"] + 1 for r in itp.values())
    text = table.report(records)
    assert "## Padded factual prompts (word level)" in text and "Machine:" in text
    row = next(line for line in text.splitlines() if line.startswith("| 10% ") and "| hipe |" in line)
    hipe = [r for r in records if r["method"] == "hipe"]
    ratio = sum(r["calls"] for r in hipe) / sum(itp[r["seed"]]["calls"] for r in hipe)
    assert f"{100 * ratio:.1f}%" in row and "2/2" in row
    # HiPe against ItP on the toy: the exact leave-one-out scores of the key words agree
    section = text[text.index("Agreement with ItP") :]
    agreement = next(line for line in section.splitlines() if line.startswith("| 10% | hipe | 2 |"))
    assert "| 1.00 |" in agreement  # precision@5


def test_records_round_trip_through_the_cases_file(tmp_path):
    records = _records()
    path = tmp_path / "cases.jsonl"
    for record in records:
        runner.append(path, record)
    again = runner.load_records(path)
    assert again == records
    assert {runner.record_key(r) for r in again} == {
        ("padded", 0.1, s, m) for s in range(2) for m in ("itp", "hipe", "hipe-top3")
    }
    assert table.report(again, written="2000-01-01", machine_line="m") == table.report(
        records, written="2000-01-01", machine_line="m"
    )


def test_the_recorded_table_is_rewritten_byte_for_byte_from_the_recorded_cases(tmp_path):
    out = tmp_path / "faithfulness.md"
    recorded = (RESULTS / "faithfulness.md").read_text(encoding="utf-8")
    out.write_text(recorded, encoding="utf-8")
    assert suite.main(["--report-only", "--cases", str(RESULTS / "cases.jsonl"), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == recorded


def test_report_only_without_a_table_writes_today_and_this_machine(tmp_path):
    out = tmp_path / "table.md"
    suite.main(["--report-only", "--cases", str(tmp_path / "none.jsonl"), "--out", str(out)])
    written, machine_line = table.header_of(out)
    assert machine_line == table.machine()
    assert written is not None and len(written) == 10 and written[4] == "-"

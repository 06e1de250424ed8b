"""The equal-budget benchmark on the toy backend, and its table rewritten byte for byte from the records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from attrib.backends.toy import ToyBackend
from benchmarks import budget_table, budgets
from benchmarks.redundancy import CHECKED_SEEDS, make_redundancy_case

RESULTS = Path(budgets.__file__).resolve().parent / "results"


def _toy_for(seed: int) -> ToyBackend:
    """A toy whose answer needs the code: either copy suffices, removing both costs 3 nats a token."""
    code = make_redundancy_case(seed).target.strip()
    return ToyBackend(sensitivity={code: 3.0, "question": 1.0}, output=" x")


def _run(tmp_path: Path, methods: list[str], seed: int = CHECKED_SEEDS[0]) -> list[dict]:
    toy = _toy_for(seed)
    return budgets.run(
        toy,
        toy,
        tmp_path / "runs.jsonl",
        tasks=["redundancy"],
        levels=["sentence"],
        methods=methods,
        budgets=[64],
        count=1,
    )


def test_copies_share_is_near_zero_for_leave_one_out_and_whole_for_shapley(tmp_path):
    records = {r["method"]: r for r in _run(tmp_path, ["itp", "shapley", "kernelshap"])}
    both = records["itp"]["both_drop"]
    assert both == pytest.approx(3.0, rel=1e-6)  # the toy keeps a four-digit code as one output token
    assert abs(records["itp"]["share"]) < 1e-6
    assert records["shapley"]["share"] == pytest.approx(1.0, abs=1e-6)
    assert records["kernelshap"]["share"] == pytest.approx(1.0, abs=0.05)
    assert records["shapley"]["calls"] <= 64 and records["itp"]["budget"] is None
    assert records["shapley"]["hit1"] and not records["itp"]["hit1"]


def test_lds_and_deletion_favour_the_method_that_sees_the_pair(tmp_path):
    records = {r["method"]: r for r in _run(tmp_path, ["itp", "shapley"])}
    assert records["shapley"]["lds"] > records["itp"]["lds"]
    assert records["shapley"]["deletion_auc"] < records["itp"]["deletion_auc"]


def test_a_finished_run_is_skipped(tmp_path):
    first = _run(tmp_path, ["itp"])
    assert len(first) == 1
    assert _run(tmp_path, ["itp"]) == []
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 1


def test_every_method_spends_at_most_its_budget(tmp_path):
    toy = _toy_for(CHECKED_SEEDS[0])
    new = budgets.run(
        toy,
        toy,
        tmp_path / "runs.jsonl",
        tasks=["redundancy"],
        levels=["sentence"],
        methods=list(budgets.METHODS),
        budgets=[32],
        count=1,
    )
    assert {r["method"] for r in new} == set(budgets.METHODS)
    for record in new:
        if record["method"] != "itp":
            assert record["calls"] <= 32, record["method"]
        assert not math.isnan(record["deletion_auc"])


def test_pareto_front_keeps_the_runs_nothing_beats():
    points = [("a", 10, 0.5), ("b", 20, 0.7), ("c", 30, 0.6), ("d", 10, 0.4), ("e", 40, math.nan)]
    assert budget_table.pareto(points, higher=True) == [("a", 10, 0.5), ("b", 20, 0.7)]
    assert budget_table.pareto(points, higher=False) == [("d", 10, 0.4)]


def test_report_rewrites_the_committed_table_byte_for_byte(tmp_path):
    out = tmp_path / "budgets.md"
    recorded = (RESULTS / "budgets.md").read_text(encoding="utf-8")
    out.write_text(recorded, encoding="utf-8")
    assert budgets.main(["--report-only", "--cases", str(RESULTS / "budgets.jsonl"), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == recorded


def test_the_committed_records_cover_the_redundancy_criterion():
    records = [json.loads(line) for line in (RESULTS / "budgets.jsonl").read_text().splitlines() if line]
    redundancy = {r["seed"] for r in records if r["task"] == "redundancy" and r["level"] == "sentence"}
    assert len(redundancy) >= 10


def test_a_method_the_budget_cannot_start_is_recorded_as_refused(tmp_path):
    toy = _toy_for(CHECKED_SEEDS[0])
    new = budgets.run(
        toy,
        toy,
        tmp_path / "runs.jsonl",
        tasks=["redundancy"],
        levels=["token"],
        methods=["shapley", "kernelshap"],
        budgets=[32],
        count=1,
    )
    refused = {r["method"]: r for r in new}
    assert "needs at least" in refused["shapley"]["refused"] and "lds" not in refused["shapley"]
    assert "refused" not in refused["kernelshap"] and refused["kernelshap"]["calls"] <= 32
    text = budget_table.report(new, written="2026-01-01", machine_line="test machine")
    assert "## Refused runs" in text and "`shapley` at budget 32" in text
    assert "| kernelshap | 32 | 1 |" in text


def test_the_contrast_table_is_rewritten_byte_for_byte_and_measure_reads_both_sides(tmp_path):
    from types import SimpleNamespace

    from benchmarks import contrast

    out = tmp_path / "contrast.md"
    assert contrast.main(["--report-only", "--cases", str(RESULTS / "contrast.jsonl"), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == (RESULTS / "contrast.md").read_text(encoding="utf-8")

    def result(scores: list[float], calls: int) -> SimpleNamespace:
        units = [SimpleNamespace(start=10 * i, end=10 * i + 10) for i in range(len(scores))]
        return SimpleNamespace(units=units, unit_scores=scores, stats=SimpleNamespace(calls=calls, tokens_evaluated=9))

    hipe, itp = result([3.0, 0.1, -1.5, 0.0], 4), result([3.0, 0.2, -2.0, 0.1], 5)
    record = contrast.measure(hipe, itp, fact=(0, 10), foil=(20, 30))
    assert record["fact"] and record["foil"] and record["foil_itp"]
    assert record["foil_error"] == 0.5 and record["calls"] == 4 and record["itp_calls"] == 5


def test_report_only_keeps_the_date_and_machine_the_table_was_written_with(tmp_path):
    out = tmp_path / "budgets.md"
    recorded = (RESULTS / "budgets.md").read_text(encoding="utf-8")
    old = recorded.replace("Written: 2026-12-01.", "Written: 1999-01-01.", 1)
    assert old != recorded
    out.write_text(old, encoding="utf-8")
    assert budgets.main(["--report-only", "--cases", str(RESULTS / "budgets.jsonl"), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == old

"""The benchmark runner resumes: a finished case is skipped, an unfinished one is run (toy backend from the registry)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from attrib import registry
from attrib.backend import Backend
from attrib.errors import InputError
from benchmarks import runner
from benchmarks.tasks import Case, CaseId, NeedleTask, PaddedTask

METHODS = ("itp", "hipe")


@dataclass(frozen=True)
class CountingPadded(PaddedTask):
    """The padded task at 10% key words on two facts, noting each case it builds."""

    shares: Sequence[float] = (0.1,)
    facts: int | None = 2
    built: list[tuple[float, int]] = field(default_factory=list)

    def build(self, case: CaseId, backend: Backend) -> Case:
        self.built.append((case.size, case.seed))
        return super().build(case, backend)


@pytest.fixture
def toy() -> Backend:
    backend: Backend = registry.create("backend", "toy", sensitivity={"capital": 2.0, "japan": 3.0}, output=" Tokyo")
    return backend


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_finished_case_is_skipped_and_an_unfinished_one_is_run(tmp_path: Path, toy: Backend) -> None:
    path = tmp_path / "cases.jsonl"
    task = CountingPadded()
    first = runner.run(task, METHODS, toy, path, identity={"backend": "toy"}, report=lambda r: None)
    assert [(r["seed"], r["method"]) for r in first] == [(0, "itp"), (0, "hipe"), (1, "itp"), (1, "hipe")]
    assert _lines(path) == first
    assert all(r["backend"] == "toy" and "faithfulness" in r for r in first)

    # everything finished: nothing is built, run or appended
    task = CountingPadded()
    assert runner.run(task, METHODS, toy, path, identity={"backend": "toy"}, report=lambda r: None) == []
    assert task.built == [] and len(_lines(path)) == 4

    # a run stopped before its last case: only that case is built and run
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:3]), encoding="utf-8")
    task = CountingPadded()
    again = runner.run(task, METHODS, toy, path, identity={"backend": "toy"}, report=lambda r: None)
    assert task.built == [(0.1, 1)]
    assert [(r["seed"], r["method"]) for r in again] == [(1, "hipe")]
    strip = {"seconds"}
    assert {k: v for k, v in again[0].items() if k not in strip} == {
        k: v for k, v in first[3].items() if k not in strip
    }
    assert len(_lines(path)) == 4


def test_itp_runs_only_where_the_task_allows_it_and_faithfulness_only_where_asked(tmp_path: Path, toy: Backend) -> None:
    task = NeedleTask(sizes=(150, 200), seeds=1, itp_max_tokens=150, faithfulness_max_tokens=150)
    records = runner.run(
        task, METHODS, toy, tmp_path / "cases.jsonl", identity={"backend": "toy"}, report=lambda r: None
    )
    assert [(r["size"], r["method"]) for r in records] == [(150, "itp"), (150, "hipe"), (200, "hipe")]
    assert ["faithfulness" in r for r in records] == [True, True, False]
    assert all({"hit1", "hit3"} <= set(r) for r in records)


def test_records_of_another_backend_are_refused(tmp_path: Path, toy: Backend) -> None:
    path = tmp_path / "cases.jsonl"
    runner.append(path, {"task": "padded", "size": 0.1, "seed": 0, "method": "itp", "level": "word"})  # llama's
    with pytest.raises(InputError, match="backend 'llama'.*--cases"):
        runner.run(PaddedTask(shares=(0.1,), facts=1), METHODS, toy, path, identity={"backend": "toy"})


def test_an_early_stop_is_recorded_as_json(tmp_path: Path) -> None:
    # A finished case whose HiPe stopped early must still be written (the typed trace's
    # EarlyStop is a dataclass: the record holds its fields).
    from benchmarks.tasks import SpanHit

    toy: Backend = registry.create(
        "backend", "toy", sensitivity={"paris": 3.0, "tokyo": 2.5, "rome": 2.0}, output=" yes"
    )
    filler = "Filler words here. " * 12
    prompt = filler + "Paris. " + filler + "Tokyo. " + filler + "Rome. " + filler
    start = prompt.index("Paris")
    case = Case(CaseId("needle", 250, 0, faithful=False), prompt, " yes", "word", ((start, start + 5),), SpanHit())
    record = runner.measure(case, "hipe-top3", toy)
    assert record["early_stop"] is not None and record["early_stop"]["calls"] == record["calls"]
    path = tmp_path / "cases.jsonl"
    runner.append(path, record)
    assert _lines(path) == [json.loads(json.dumps(record))]

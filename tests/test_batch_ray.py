"""The Ray executor on a real local Ray runtime: same records as the local executor, a killed actor's items redone."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from attrib.batch import attribute_many, prepare

pytestmark = [pytest.mark.ray, pytest.mark.filterwarnings("ignore:the prompt's last")]

ray = pytest.importorskip("ray")

TOY = {"sensitivity": {"paris": 2.0, "capital": 1.0, "otter": 1.5}, "output": " yes it is"}
RECORDS = [
    {"id": f"q{n}", "prompt": f"Item {n}: the capital of France is Paris. The otter {n} swims.", "n": n}
    for n in range(16)
] + [
    {"id": "chat", "system": "You are kind. The capital is Paris.", "prompt": "Which capital?"},
    {"id": "empty", "prompt": " "},
]


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[None]:
    """A local Ray runtime with 2 CPUs; its workers import this tree's attrib."""
    root = str(Path(__file__).resolve().parents[1])
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = root if not previous else f"{root}{os.pathsep}{previous}"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    if previous is None:
        del os.environ["PYTHONPATH"]
    else:
        os.environ["PYTHONPATH"] = previous


def comparable(record: dict[str, object]) -> str:
    """A record without what depends on timing and on the worker's earlier items.

    ``seconds`` is wall time; ``tokens_evaluated`` counts the tokens a KV-cached model
    recomputes, which depends on the prompt the same worker scored just before.
    """
    cost = dict(record["cost"]) if "cost" in record else None  # type: ignore[call-overload]
    if cost is not None:
        cost.pop("seconds")
        cost.pop("tokens_evaluated")
    return json.dumps({**record, **({"cost": cost} if cost is not None else {})}, sort_keys=True)


def item_file(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text())
    data["stats"] = {key: value for key, value in data["stats"].items() if key not in ("seconds", "tokens_evaluated")}
    return data


def test_ray_run_equals_local_run_record_for_record(ray_runtime: None, tmp_path: Path) -> None:
    options = {"backend": "toy", "backend_options": TOY, "level": "word", "skip_bad": True}
    local = attribute_many(RECORDS, out_dir=tmp_path / "local", **options)
    remote = attribute_many(RECORDS, out_dir=tmp_path / "ray", executor="ray", workers=2, **options)
    assert (remote.ok, remote.failed) == (local.ok, local.failed) == (17, 1)
    assert len({o.worker for o in remote.outcomes if o.ok}) == 2  # both actors took items
    assert {o.id: comparable(o.record) for o in remote.outcomes} == {o.id: comparable(o.record) for o in local.outcomes}
    for name in (tmp_path / "local" / "items").iterdir():
        assert item_file(tmp_path / "ray" / "items" / name.name) == item_file(name)
    assert (tmp_path / "ray" / "units.csv").read_text() != ""
    local_rows = sorted((tmp_path / "local" / "units.csv").read_text().splitlines())
    assert sorted((tmp_path / "ray" / "units.csv").read_text().splitlines()) == local_rows


def test_a_killed_actor_loses_no_item(ray_runtime: None, tmp_path: Path) -> None:
    slow = {**TOY, "delay": 0.02}
    batch = prepare(
        RECORDS,
        out_dir=tmp_path,
        backend="toy",
        backend_options=slow,
        level="word",
        executor="ray",
        workers=2,
        skip_bad=True,
    )
    seen: list[str] = []
    workers: list[int] = []
    killed = None
    for outcome in batch.outcomes():
        seen.append(outcome.id)
        if outcome.worker is not None:
            workers.append(outcome.worker)
        if killed is None and outcome.worker is not None:
            killed = outcome.worker
            os.kill(killed, signal.SIGKILL)  # mid-run: its other queued item and the rest must go elsewhere
    assert killed is not None
    assert len(set(workers)) == 3  # a replacement actor took the killed one's items
    assert sorted(seen) == sorted(r["id"] for r in RECORDS) and len(seen) == len(set(seen))
    journal = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in journal) == sorted(seen)
    after = [r for r in journal if r["status"] == "ok"]
    assert len(after) == 17
    local = attribute_many(RECORDS, backend="toy", backend_options=TOY, level="word", skip_bad=True)
    expected = {o.id: comparable(o.record) for o in local.outcomes if o.ok}
    assert {r["id"]: comparable({k: v for k, v in r.items() if k != "file"}) for r in after} == expected

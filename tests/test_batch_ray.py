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


def test_the_command_line_ray_executor_matches_local(tmp_path: Path) -> None:
    """``attrib batch --executor ray`` in its own process (its own Ray runtime) writes the local run's records."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in RECORDS[:6]))
    env = {**os.environ, "PYTHONPATH": str(root)}
    common = [sys.executable, "-m", "attrib", "batch", str(source), "--backend", "toy", "--level", "word", "--quiet"]
    common += ["--threshold", "midrange", "--order", "depth"]  # a configured HiPe travels to the actors
    local = subprocess.run([*common, "-o", str(tmp_path / "local")], env=env, capture_output=True, text=True)
    remote = subprocess.run(
        [*common, "-o", str(tmp_path / "ray"), "--executor", "ray", "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert local.returncode == remote.returncode == 0, remote.stderr
    assert remote.stderr.splitlines()[-1] == "6 ok, 0 failed, 0 skipped (already done)"

    def read(name: str) -> dict[str, str]:
        journal = (tmp_path / name / "records.jsonl").read_text().splitlines()
        return {json.loads(line)["id"]: comparable(json.loads(line)) for line in journal}

    assert read("ray") == read("local")
    run = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert run["executor"] == "ray" and run["options"]["method"]["threshold"]["name"] == "midrange"


def test_a_backend_that_cannot_open_on_the_workers_is_the_runs_error(ray_runtime: None, tmp_path: Path) -> None:
    from attrib.errors import ModelNotFoundError

    missing = str(tmp_path / "missing.gguf")
    batch = prepare(
        RECORDS[:3], out_dir=tmp_path, backend="llama", backend_options={"model": missing}, executor="ray", workers=2
    )
    with pytest.raises(ModelNotFoundError, match="missing.gguf"):
        list(batch.outcomes())
    assert not (tmp_path / "records.jsonl").exists()
    assert not (tmp_path / "run.json").exists()  # written only once a run has started


def test_starting_ray_keeps_the_commands_sigterm_handler(tmp_path: Path) -> None:
    # ray.init installs its own SIGTERM handler (sys.exit) in the driver; the command line's
    # (finished work kept, one line, exit 143) must survive it.
    import subprocess
    import sys

    script = (
        "import signal\n"
        "from attrib.batch import attribute_many\n"
        "def mine(signum, frame): pass\n"
        "signal.signal(signal.SIGTERM, mine)\n"
        "summary = attribute_many([{'id': 'a', 'prompt': 'Paris is far.'}], executor='ray', workers=1, backend='toy')\n"
        "print(summary.ok, signal.getsignal(signal.SIGTERM) is mine)\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root, "RAY_ADDRESS": ""}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "True"], proc.stdout + proc.stderr


def test_cite_items_run_on_ray_as_locally(ray_runtime: None, tmp_path: Path) -> None:
    from tests.summary_helpers import cite_records, cite_toy_options

    options = {"backend": "toy", "backend_options": cite_toy_options(), "skip_bad": True}
    local = attribute_many(cite_records(), out_dir=tmp_path / "local", **options)
    remote = attribute_many(cite_records(), out_dir=tmp_path / "ray", executor="ray", workers=2, **options)
    assert (remote.ok, remote.failed) == (local.ok, local.failed) == (4, 1)
    assert {o.id: comparable(o.record) for o in remote.outcomes} == {o.id: comparable(o.record) for o in local.outcomes}
    assert [c["citation"] for c in next(o for o in remote.outcomes if o.id == "c3").record["claims"]] == [
        "verified",
        "mismatch",
        "mismatch",
    ]

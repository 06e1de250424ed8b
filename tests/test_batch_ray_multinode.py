"""The Ray executor on a two-node cluster: the node running the actor is killed mid-run, nothing is lost.

Two real Ray nodes on this machine, each started by ``ray start`` (a head, then a
second node joining it with ``--address``), each with its own raylet process and one
CPU. While the head's CPU is held by a placeholder actor, ``attrib batch --executor
ray --ray-address ...`` (toy backend) can only place its actor on the second node;
once it has written some records, the placeholder is released and the second node
is killed (SIGKILL to its raylet and every process under it, as when a machine
dies). The run must end with every item exactly once, and its records, item files
and units table must equal the local executor's (scores, units, outputs, calls;
only ``seconds`` and ``tokens_evaluated`` may differ, as docs/batch.md says). Two
more runs find no free CPU for a replacement: with two actors the survivor finishes
the run alone; with the only actor lost the run ends with one error line after the
(shortened) placement wait, its finished items kept for the re-run.

Every process the cluster started is found by its session directory or its ports
and killed by pid at the end, failed or not (never ``ray stop``, which would stop
every Ray runtime on the machine). Token authentication is turned off for these
processes (``RAY_AUTH_MODE=disabled``) so no token is read from or written to
``~/.ray``. This test's own process never joins the cluster: the placeholder is
started by a driver of its own, so another test's Ray runtime in this process is
left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.filterwarnings("ignore:the prompt's last")]

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

ROOT = Path(__file__).resolve().parents[1]
ITEMS = 160
KILL_AFTER = 8  # records written before the second node is killed


#: A driver of its own: a detached actor pinned to the head node holds the head's one CPU.
_HOLD = """
import sys
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

ray.init(address=sys.argv[1], namespace="attrib-test", logging_level="ERROR", log_to_driver=False)
alive = [node for node in ray.nodes() if node["Alive"]]
head = next(node for node in alive if node["NodeManagerPort"] != int(sys.argv[2]))


@ray.remote(num_cpus=1)
class Placeholder:
    def ready(self):
        return True


pinned = NodeAffinitySchedulingStrategy(head["NodeID"], soft=False)
holder = Placeholder.options(name="placeholder", lifetime="detached", scheduling_strategy=pinned).remote()
ray.get(holder.ready.remote())
print("nodes", len(alive))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TwoNodes:
    """A Ray head and a second node on this machine, started with ``ray start``, stopped by pid.

    Args:
        base: a short directory for the head's session (Ray's socket paths must fit in 107 bytes).
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.second_port = free_port()  # the second node's raylet, found by it
        self.address = f"127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),  # workers import this tree's attrib
            "RAY_AUTH_MODE": "disabled",
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_health_check_period_ms": "500",  # a dead node is noticed in seconds, not half a minute
            "RAY_health_check_timeout_ms": "500",
            "RAY_health_check_failure_threshold": "3",
        }
        self.logs: list[str] = []

    def start(self) -> None:
        self._ray(
            "start",
            "--head",
            "--port",
            str(self.port),
            "--num-cpus",
            "1",
            "--temp-dir",
            str(self.base),
            "--include-dashboard",
            "false",
            "--dashboard-port",
            str(free_port()),
            "--ray-client-server-port",
            str(free_port()),
            "--node-ip-address",
            "127.0.0.1",
        )
        self._ray(
            "start",
            "--address",
            self.address,
            "--num-cpus",
            "1",
            "--node-manager-port",
            str(self.second_port),
            "--node-ip-address",
            "127.0.0.1",
        )

    def _ray(self, *argv: str) -> None:
        done = subprocess.run(["ray", *argv], env=self.env, capture_output=True, text=True, timeout=300)
        self.logs.append(f"$ ray {' '.join(argv)}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        if done.returncode != 0:
            raise RuntimeError(f"ray {argv[0]} failed:\n{self.logs[-1]}")

    def processes(self) -> list[Any]:
        """Every live process of this cluster: those naming its session directory or ports, and their children."""
        marks = (str(self.base), f":{self.port}", f"node_manager_port={self.second_port}")
        found: dict[int, Any] = {}
        for process in psutil.process_iter(["cmdline"]):
            line = " ".join(process.info["cmdline"] or [])
            if any(mark in line for mark in marks):
                found[process.pid] = process
                with contextlib.suppress(psutil.Error):
                    found.update((child.pid, child) for child in process.children(recursive=True))
        found.pop(os.getpid(), None)
        return list(found.values())

    def raylet(self, *, second: bool) -> Any:
        """The head's or the second node's raylet process."""
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                if process.name() == "raylet":
                    line = " ".join(process.cmdline())
                    if (f"node_manager_port={self.second_port}" in line) == second:
                        return process
        raise AssertionError("raylet not found")

    def actors_on(self, raylet: Any, name: str = "BatchActor") -> list[Any]:
        """The actors of class ``name`` running under ``raylet`` (worker processes are its children)."""
        actors = []
        with contextlib.suppress(psutil.Error):
            for child in raylet.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if name in " ".join(child.cmdline()):
                        actors.append(child)
        return actors

    def hold_head(self) -> None:
        """Start an actor that holds the head's only CPU (from its own driver process, which then exits).

        The actor is detached, so it outlives that driver; this test's process never joins
        the cluster (another test's Ray runtime in this process stays untouched).
        """
        done = subprocess.run(
            [sys.executable, "-c", _HOLD, self.address, str(self.second_port)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0 and "nodes 2" in done.stdout.splitlines(), done.stdout + done.stderr[-3000:]

    def release_head(self) -> None:
        """Kill the actor holding the head's CPU."""
        holders = self.actors_on(self.raylet(second=False), "Placeholder")
        assert holders, "the placeholder actor is not on the head"
        for process in holders:
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGKILL)

    def kill_second_node(self) -> None:
        """SIGKILL the second node's raylet and every process under it (a machine that dies)."""
        raylet = self.raylet(second=True)
        victims = [raylet, *raylet.children(recursive=True)]
        for process in victims:
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGKILL)

    def stop(self) -> None:
        """Kill every process of this cluster, by pid."""
        for _ in range(3):
            left = self.processes()
            if not left:
                return
            for process in left:
                with contextlib.suppress(psutil.Error):
                    process.send_signal(signal.SIGKILL)
            psutil.wait_procs(left, timeout=5)


@pytest.fixture
def two_nodes() -> Iterator[TwoNodes]:
    base = Path(tempfile.mkdtemp(prefix="attrib-ray-", dir="/tmp"))
    cluster = TwoNodes(base)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def comparable(record: dict[str, Any]) -> str:
    """A record without what depends on timing or on the worker's previous item."""
    record = dict(record)
    if "cost" in record:
        record["cost"] = {k: v for k, v in record["cost"].items() if k not in ("seconds", "tokens_evaluated")}
    return json.dumps(record, sort_keys=True)


def item_file(path: Path) -> str:
    data = json.loads(path.read_text(encoding="utf-8"))
    data["stats"] = {k: v for k, v in data["stats"].items() if k not in ("seconds", "tokens_evaluated")}
    return json.dumps(data, sort_keys=True)


def journal(out: Path) -> list[dict[str, Any]]:
    path = out / "records.jsonl"
    if not path.exists():
        return []
    data = path.read_bytes()
    return [json.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines()]


def test_killing_the_node_of_the_actor_mid_run_loses_and_repeats_nothing(two_nodes: TwoNodes, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    prompts = [
        f"Item {n}: the capital of France is Paris, on the Seine. Otters {n} swim near the bridge at dawn." * 2
        for n in range(ITEMS)
    ]
    records = [{"id": f"q{n}", "prompt": prompt, "n": n} for n, prompt in enumerate(prompts)]
    records.append({"id": "empty", "prompt": "  "})  # a bad record: one error record, as locally
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    common = [sys.executable, "-m", "attrib", "batch", str(source), "--backend", "toy", "--quiet", "--no-cache"]
    common += ["--level", "token", "--method", "shapley", "--skip-bad-lines"]

    # the head's only CPU is held, so the batch's one actor can only start on the second node
    two_nodes.hold_head()
    out = tmp_path / "ray"
    argv = [*common, "-o", str(out), "--executor", "ray", "--ray-address", two_nodes.address, "--workers", "1"]
    driver = subprocess.Popen(argv, env=two_nodes.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        second = two_nodes.raylet(second=True)
        deadline = time.monotonic() + 180
        while len(journal(out)) < KILL_AFTER:
            assert driver.poll() is None, driver.communicate()[1]
            assert time.monotonic() < deadline, "the run wrote no records"
            time.sleep(0.005)
        assert two_nodes.actors_on(second), "the batch actor is not on the second node"
        assert not two_nodes.actors_on(two_nodes.raylet(second=False))
        two_nodes.release_head()  # room on the head for the replacement actor
        two_nodes.kill_second_node()
        killed_at = len(journal(out))
        _, err = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert killed_at < len(records), "the kill came after the run ended"
    assert driver.returncode == 1, err  # the bad record failed; every other item succeeded
    assert "Traceback" not in err, err
    assert err.splitlines()[-1] == f"{ITEMS} ok, 1 failed, 0 skipped (already done)"
    assert not second.is_running()  # so the items after the kill ran on a replacement actor on the head

    remote = journal(out)
    ids = [r["id"] for r in remote]
    assert sorted(ids) == sorted(r["id"] for r in records) and len(ids) == len(set(ids))  # each item exactly once

    local_out = tmp_path / "local"
    local = subprocess.run([*common, "-o", str(local_out)], env=two_nodes.env, capture_output=True, text=True)
    assert local.returncode == 1, local.stderr
    expected = {r["id"]: comparable(r) for r in journal(local_out)}
    assert {r["id"]: comparable(r) for r in remote} == expected
    names = sorted(path.name for path in (local_out / "items").iterdir())
    assert sorted(path.name for path in (out / "items").iterdir()) == names
    for name in names:
        assert item_file(out / "items" / name) == item_file(local_out / "items" / name)
    units = (out / "units.csv").read_text(encoding="utf-8").splitlines()
    assert sorted(units) == sorted((local_out / "units.csv").read_text(encoding="utf-8").splitlines())


def batch_command(tmp_path: Path, count: int) -> tuple[list[dict[str, Any]], list[str]]:
    """``count`` toy items and one bad record in ``tmp_path/in.jsonl``; the batch command line without OUT_DIR."""
    source = tmp_path / "in.jsonl"
    records: list[dict[str, Any]] = [
        {"id": f"q{n}", "prompt": f"Item {n}: the capital of France is Paris. Otters {n} swim at dawn." * 2, "n": n}
        for n in range(count)
    ]
    records.append({"id": "empty", "prompt": "  "})
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    common = [sys.executable, "-m", "attrib", "batch", str(source), "--backend", "toy", "--quiet", "--no-cache"]
    return records, [*common, "--level", "token", "--method", "shapley", "--skip-bad-lines"]


def assert_equals_local(common: list[str], out: Path, tmp_path: Path, env: dict[str, str]) -> None:
    """OUT_DIR's records and item files equal a local run's (timing fields aside)."""
    local_out = tmp_path / "local"
    local = subprocess.run([*common, "-o", str(local_out)], env=env, capture_output=True, text=True)
    assert local.returncode == 1, local.stderr
    assert {r["id"]: comparable(r) for r in journal(out)} == {r["id"]: comparable(r) for r in journal(local_out)}
    names = sorted(path.name for path in (local_out / "items").iterdir())
    assert sorted(path.name for path in (out / "items").iterdir()) == names
    for name in names:
        assert item_file(out / "items" / name) == item_file(local_out / "items" / name)


def wait_for_records(out: Path, driver: Any, count: int) -> None:
    deadline = time.monotonic() + 180
    while len(journal(out)) < count:
        assert driver.poll() is None, driver.communicate()[1]
        assert time.monotonic() < deadline, "the run wrote no records"
        time.sleep(0.005)


def test_a_lost_node_with_no_cpu_for_a_replacement_leaves_the_survivor_working(
    two_nodes: TwoNodes, tmp_path: Path
) -> None:
    # two actors fill both nodes' CPUs: the second node's actor has no CPU to be replaced on
    records, common = batch_command(tmp_path, ITEMS)
    out = tmp_path / "ray"
    argv = [*common, "-o", str(out), "--executor", "ray", "--ray-address", two_nodes.address, "--workers", "2"]
    driver = subprocess.Popen(argv, env=two_nodes.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_records(out, driver, KILL_AFTER)
        second = two_nodes.raylet(second=True)
        assert two_nodes.actors_on(second) and two_nodes.actors_on(two_nodes.raylet(second=False))
        two_nodes.kill_second_node()
        killed_at = len(journal(out))
        _, err = driver.communicate(timeout=240)  # it used to wait forever for a CPU for the replacement
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert killed_at < len(records), "the kill came after the run ended"
    assert driver.returncode == 1, err
    assert "Traceback" not in err, err
    assert err.splitlines()[-1] == f"{ITEMS} ok, 1 failed, 0 skipped (already done)"
    ids = [r["id"] for r in journal(out)]
    assert sorted(ids) == sorted(r["id"] for r in records) and len(ids) == len(set(ids))  # each item exactly once
    assert_equals_local(common, out, tmp_path, two_nodes.env)


def test_no_cpu_for_any_worker_ends_the_run_with_one_line_and_keeps_finished_items(
    two_nodes: TwoNodes, tmp_path: Path
) -> None:
    # the head's CPU is held: the one actor runs on the second node, and once that node dies no CPU is left
    records, common = batch_command(tmp_path, ITEMS)
    two_nodes.hold_head()
    out = tmp_path / "ray"
    options = ["-o", str(out), "--executor", "ray", "--ray-address", two_nodes.address, "--workers", "1"]
    argv = [*common, *options, "--placement-timeout", "5"]  # the wait for a CPU shortened
    driver = subprocess.Popen(argv, env=two_nodes.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_records(out, driver, KILL_AFTER)
        assert two_nodes.actors_on(two_nodes.raylet(second=True)), "the batch actor is not on the second node"
        two_nodes.kill_second_node()
        _, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode != 0
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("attrib: error:")]
    assert len(lines) == 1, err
    assert "none could be placed within 5 s" in lines[0] and "re-run the same command to resume" in lines[0]
    kept = journal(out)
    assert KILL_AFTER <= len(kept) < len(records)
    assert len({r["id"] for r in kept}) == len(kept)

    # a re-run with a CPU free again does only the rest
    two_nodes.release_head()
    again = subprocess.run([*common, *options], env=two_nodes.env, capture_output=True, text=True, timeout=300)
    bad_done = any(r["id"] == "empty" for r in kept)  # the bad record's error may be among the finished
    ok, failed = ITEMS - (len(kept) - bad_done), 0 if bad_done else 1
    assert again.stderr.splitlines()[-1] == f"{ok} ok, {failed} failed, {len(kept)} skipped (already done)", (
        again.stderr
    )
    ids = [r["id"] for r in journal(out)]
    assert sorted(ids) == sorted(r["id"] for r in records) and len(ids) == len(set(ids))
    assert_equals_local(common, out, tmp_path, two_nodes.env)

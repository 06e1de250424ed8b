"""Several replicas of one model behind one OpenAI-compatible backend, on loopback with real servers.

The server kind is a parameter (:data:`SERVERS`): llama-cpp-python's server with the
embedded GGUF (marker ``server``), and vLLM's CPU build serving the same model as a
float32 checkpoint (marker ``vllm``; ``bash .ci/vllm-env`` installs it). Each kind runs
two replicas. A vLLM server holds about 7 GB, so its first replica is the session's
``vllm_server`` (the one ``tests/test_vllm.py`` uses) and a session never runs more
than two.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import attrib
from attrib.backends.openai import OpenAIBackend
from attrib.errors import InputError
from attrib.testing.llama_server import Server
from attrib.testing.proxy import Proxy
from tests.conftest import SERVER_KEY

pytestmark = [pytest.mark.model]

PROMPT = "The capital of France is"
TARGET = " Paris"
#: Free memory a vLLM server needs to start (it holds about 7 GB over its processes), bytes.
VLLM_MEMORY = 8 * 2**30


def _llama(stack: contextlib.ExitStack, log: Path) -> Server:
    from attrib.testing.llama_server import llama_server

    return stack.enter_context(llama_server(log_path=log))


def _vllm(stack: contextlib.ExitStack, log: Path) -> Server:
    from attrib.testing.vllm_server import vllm_server

    available = _available_memory()
    if available < VLLM_MEMORY:
        pytest.fail(f"{available / 2**30:.1f} GiB of memory available; a second vLLM server needs about 7")
    return stack.enter_context(vllm_server(api_key=SERVER_KEY, log_path=log))


def _available_memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def _kill_process(server: Server) -> None:
    assert server.pid is not None
    os.kill(server.pid, signal.SIGKILL)


def _kill_group(server: Server) -> None:
    assert server.pid is not None  # started in a session of its own: its group's id is its pid
    os.killpg(server.pid, signal.SIGKILL)


def _left(pid: int) -> list[int]:
    """The live (not zombie) processes of ``pid`` and of the process group it leads."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError):
            state, _, group = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            if pid in (int(group), int(entry.name)) and state != "Z":
                members.append(int(entry.name))
    return members


@dataclass(frozen=True)
class Kind:
    """How the replica tests run one server kind.

    Attributes:
        start: starts one server in the stack (its log file given).
        kill: kills a running server at once, as a crash would: llama-cpp-python's is one
            process; vLLM's API server starts its engine in another process, so its whole
            process group is killed (killing only the parent leaves the engine holding its GBs).
        atol: how far a score (nats) may move between one endpoint and two.
        shared: a session fixture that serves as the first replica (``None``: both are started here).
    """

    start: Callable[[contextlib.ExitStack, Path], Server]
    kill: Callable[[Server], None]
    atol: float
    shared: str | None = None


#: Server kinds the replica tests run on. llama-cpp-python's server reuses the KV prefix of the
#: prompt it evaluated just before, so a score depends on which request came before it on that
#: server, one endpoint or two (seen: 1.7e-4 nats, and 0.033 nats once on a loaded machine): its
#: tolerance is that server's order noise, not the replicas'. vLLM computes prompt
#: log-probabilities without its prefix cache (see docs/serving.md), so a score does not depend
#: on what came before: float32 on both replicas, within the 1e-3 nats of tests/test_vllm.py.
SERVERS: dict[str, Kind] = {
    "llama": Kind(start=_llama, kill=_kill_process, atol=0.05),
    "vllm": Kind(start=_vllm, kill=_kill_group, atol=1e-3, shared="vllm_server"),
}
_MARKS = {"llama": pytest.mark.server, "vllm": pytest.mark.vllm}


class Pair:
    """Two replicas of one kind for a module; the second is the one a test may kill, started
    again when a later test needs it."""

    def __init__(self, name: str, request: pytest.FixtureRequest, directory: Path) -> None:
        self.kind, self.directory = SERVERS[name], directory
        self._first, self._second = contextlib.ExitStack(), contextlib.ExitStack()
        self.starts = 0
        shared = self.kind.shared
        first = request.getfixturevalue(shared) if shared else self.kind.start(self._first, directory / "first.log")
        try:
            self.servers = [first, self._start_second()]
        except BaseException:
            self._first.close()
            raise
        self.killed = False

    def _start_second(self) -> Server:
        self._second = contextlib.ExitStack()
        self.starts += 1
        return self.kind.start(self._second, self.directory / f"second-{self.starts}.log")

    def kill_second(self) -> None:
        """Kill the second replica now, as a crash would (:meth:`bury` reaps it)."""
        self.killed = True
        self.kind.kill(self.servers[1])

    def bury(self) -> list[int]:
        """Stop the second replica (reaping it if killed); its processes still alive (none expected)."""
        self.killed = True  # down, whether killed or stopped: started again when needed
        self._second.close()
        pid = self.servers[1].pid
        if pid is None:
            return []
        deadline = time.monotonic() + 30.0  # killed children are reaped by init a moment later
        while _left(pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        return _left(pid)

    def alive(self) -> list[Server]:
        """Both replicas, the second started again if a test killed it."""
        if self.killed:
            self.bury()
            self.servers[1] = self._start_second()
            self.killed = False
        return self.servers

    def close(self) -> None:
        self._second.close()
        self._first.close()


@pytest.fixture(scope="module", params=[pytest.param(name, marks=_MARKS[name]) for name in sorted(SERVERS)])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Two servers of one kind with the same model, for the whole module."""
    replicas = Pair(request.param, request, tmp_path_factory.mktemp("replicas"))
    try:
        yield replicas
    finally:
        replicas.close()


@pytest.fixture
def replicas(pair: Pair) -> list[Server]:
    return pair.alive()


def _backend(urls: list[str], model: str, **options: object) -> OpenAIBackend:
    options = {"api_key": SERVER_KEY, **options}  # the key vLLM's replicas require; llama's take any
    return OpenAIBackend(model, base_url=urls, cache=False, scoring="forced", timeout=600.0, **options)  # type: ignore[arg-type]


def _explain(backend: OpenAIBackend, **options: object) -> attrib.Attribution:
    return attrib.attribute(PROMPT, target=TARGET, backend=backend, method="itp", level="word", **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def single(pair: Pair) -> attrib.Attribution:
    """The run on the first replica alone (never killed)."""
    first = pair.servers[0]
    backend = _backend([first.url], first.model)
    try:
        return _explain(backend)
    finally:
        backend.close()


def _same(result: attrib.Attribution, reference: attrib.Attribution, kind: Kind) -> None:
    """Units, output and top unit the same; scores within the kind's tolerance (see :data:`SERVERS`)."""
    assert [u.text for u in result.units] == [u.text for u in reference.units]
    assert result.output_tokens == reference.output_tokens
    np.testing.assert_allclose(result.scores, reference.scores, atol=kind.atol, rtol=0)
    np.testing.assert_allclose(result.base_logprobs, reference.base_logprobs, atol=kind.atol, rtol=0)
    assert result.top(1)[0].unit.text == reference.top(1)[0].unit.text


def test_two_replicas_give_the_results_of_one_and_share_the_requests(
    pair: Pair, replicas: list[Server], single: attrib.Attribution
) -> None:
    backend = _backend([s.url for s in replicas], replicas[0].model, concurrency=2)
    spread = _explain(backend)
    answered = [r.answered for r in backend.transport.replicas.all]
    backend.close()
    _same(spread, single, pair.kind)
    assert all(n > 0 for n in answered), answered
    # The endpoint recorded is the set of replicas, whatever order they are given in.
    assert spread.backend["endpoint"] == ", ".join(sorted(s.url for s in replicas))
    reverse = _backend([s.url for s in reversed(replicas)], replicas[0].model)
    assert reverse.identity()["endpoint"] == spread.backend["endpoint"]
    reverse.close()


@pytest.mark.parametrize("fault", ["500", "drop"])
def test_a_failing_replica_is_avoided_and_nothing_is_lost(
    pair: Pair, replicas: list[Server], single: attrib.Attribution, fault: str
) -> None:
    with Proxy(replicas[1].root, faults=(fault,)) as broken:
        backend = _backend([replicas[0].url, broken.url], replicas[0].model, concurrency=2, max_retries=3)
        result = _explain(backend)
        healthy, faulty = backend.transport.replicas.all
        backend.close()
        faults = [record.fault for record in broken.records]  # the model requests that reached it
    _same(result, single, pair.kind)
    assert faults and set(faults) == {fault} and faulty.failures >= 1
    # Marked down after its first failures: most requests never went there.
    assert len(faults) < healthy.answered


def test_replicas_of_different_models_are_refused_in_one_line(replicas: list[Server]) -> None:
    backend = OpenAIBackend("another-model", base_url=[s.url for s in replicas], api_key=SERVER_KEY, cache=False)
    with pytest.raises(InputError, match=r"serves gemma3-270m, not 'another-model'; every --base-url") as caught:
        backend.capabilities()
    backend.close()
    assert "\n" not in str(caught.value)


# Last in the module: the killed replica is started again only if a later test needs it.
def test_killing_a_replica_mid_run_loses_nothing(
    pair: Pair, replicas: list[Server], single: attrib.Attribution
) -> None:
    backend = _backend([s.url for s in replicas], replicas[0].model, concurrency=2, max_retries=4)
    backend.capabilities()
    seen: list[int] = []
    killer = threading.Thread(target=pair.kill_second)

    def kill_after_two(index: int, _: object) -> None:
        seen.append(index)
        if len(seen) == 2 and not killer.is_alive():
            killer.start()  # kill the server while requests are in flight

    real_score = backend.score

    def score(requests, *, on_result=None):  # type: ignore[no-untyped-def]
        def both(index: int, result: object) -> None:
            kill_after_two(index, result)
            if on_result is not None:
                on_result(index, result)

        return real_score(requests, on_result=both)

    backend.score = score  # type: ignore[method-assign]
    result = _explain(backend)
    assert killer.ident is not None  # the kill started during the run
    killer.join()
    survivor, victim = backend.transport.replicas.all
    backend.close()
    left = pair.bury()
    _same(result, single, pair.kind)
    assert victim.answered >= 1 and survivor.answered >= 1
    assert left == []  # vLLM's engine process died with its API server

"""Several replicas of one model behind one OpenAI-compatible backend, on loopback with real servers.

The server kind is a parameter (:data:`SERVERS`): today llama-cpp-python's server with
the embedded model; a vLLM fixture adds its own entry (a function that starts one
server of that kind in an ExitStack and returns its :class:`~attrib.testing.llama_server.Server`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import attrib
from attrib.backends.openai import OpenAIBackend
from attrib.errors import InputError
from attrib.testing.llama_server import Server
from attrib.testing.proxy import Proxy

pytestmark = [pytest.mark.server, pytest.mark.model]

PROMPT = "The capital of France is"
TARGET = " Paris"


def _llama(stack: contextlib.ExitStack, log: Path) -> Server:
    from attrib.testing.llama_server import llama_server

    return stack.enter_context(llama_server(log_path=log))


#: Server kinds the replica tests run on: name -> start one server in the stack (log file given).
SERVERS: dict[str, Callable[[contextlib.ExitStack, Path], Server]] = {"llama": _llama}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def replicas(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    """Two servers of one kind with the same model, for the whole module."""
    start = SERVERS[request.param]
    with contextlib.ExitStack() as stack:
        yield [start(stack, tmp_path_factory.mktemp("replica") / "server.log") for _ in range(2)]


def _backend(urls: list[str], model: str, **options: object) -> OpenAIBackend:
    return OpenAIBackend(model, base_url=urls, cache=False, scoring="forced", timeout=600.0, **options)  # type: ignore[arg-type]


def _explain(backend: OpenAIBackend, **options: object) -> attrib.Attribution:
    return attrib.attribute(PROMPT, target=TARGET, backend=backend, method="itp", level="word", **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def single(replicas: list[Server]) -> attrib.Attribution:
    backend = _backend([replicas[0].url], replicas[0].model)
    try:
        return _explain(backend)
    finally:
        backend.close()


def _same(result: attrib.Attribution, reference: attrib.Attribution) -> None:
    assert [u.text for u in result.units] == [u.text for u in reference.units]
    assert result.output_tokens == reference.output_tokens
    # Same weights and server build, but llama-cpp-python's server reuses the KV prefix of the prompt
    # it evaluated just before, so a score depends on which request came before it on that server,
    # one endpoint or two (seen: 1.7e-4 nats, and 0.033 nats once on a loaded machine); the tolerance
    # is that server's order noise, not the replicas'. Units, output and ranking must be the same.
    np.testing.assert_allclose(result.scores, reference.scores, atol=0.05)
    np.testing.assert_allclose(result.base_logprobs, reference.base_logprobs, atol=0.05)
    assert result.top(1)[0].unit.text == reference.top(1)[0].unit.text


def test_two_replicas_give_the_results_of_one_and_share_the_requests(
    replicas: list[Server], single: attrib.Attribution
) -> None:
    backend = _backend([s.url for s in replicas], replicas[0].model, concurrency=2)
    spread = _explain(backend)
    answered = [r.answered for r in backend.transport.replicas.all]
    backend.close()
    _same(spread, single)
    assert all(n > 0 for n in answered), answered
    # The endpoint recorded is the set of replicas, whatever order they are given in.
    assert spread.backend["endpoint"] == ", ".join(sorted(s.url for s in replicas))
    reverse = _backend([s.url for s in reversed(replicas)], replicas[0].model)
    assert reverse.identity()["endpoint"] == spread.backend["endpoint"]
    reverse.close()


@pytest.mark.parametrize("fault", ["500", "drop"])
def test_a_failing_replica_is_avoided_and_nothing_is_lost(
    replicas: list[Server], single: attrib.Attribution, fault: str
) -> None:
    with Proxy(replicas[1].root, faults=(fault,)) as broken:
        backend = _backend([replicas[0].url, broken.url], replicas[0].model, concurrency=2, max_retries=3)
        result = _explain(backend)
        healthy, faulty = backend.transport.replicas.all
        backend.close()
        faults = [record.fault for record in broken.records]  # the model requests that reached it
    _same(result, single)
    assert faults and set(faults) == {fault} and faulty.failures >= 1
    # Marked down after its first failures: most requests never went there.
    assert len(faults) < healthy.answered


def test_killing_a_replica_mid_run_loses_nothing(
    replicas: list[Server], single: attrib.Attribution, tmp_path: Path
) -> None:
    from attrib.testing.llama_server import llama_server

    with contextlib.ExitStack() as doomed:
        victim = doomed.enter_context(llama_server(log_path=tmp_path / "victim.log"))
        backend = _backend([replicas[0].url, victim.url], replicas[0].model, concurrency=2, max_retries=4)
        backend.capabilities()
        seen: list[int] = []
        killer = threading.Thread(target=doomed.close)

        def kill_after_two(index: int, _: object) -> None:
            seen.append(index)
            if len(seen) == 2 and not killer.is_alive():
                killer.start()  # terminate the server while requests are in flight

        real_score = backend.score

        def score(requests, *, on_result=None):  # type: ignore[no-untyped-def]
            def both(index: int, result: object) -> None:
                kill_after_two(index, result)
                if on_result is not None:
                    on_result(index, result)

            return real_score(requests, on_result=both)

        backend.score = score  # type: ignore[method-assign]
        result = _explain(backend)
        killer.join()
        survivor, victim_state = backend.transport.replicas.all
        backend.close()
    _same(result, single)
    assert victim_state.answered >= 1 and survivor.answered >= 1


def test_replicas_of_different_models_are_refused_in_one_line(replicas: list[Server]) -> None:
    backend = OpenAIBackend("another-model", base_url=[s.url for s in replicas], cache=False)
    with pytest.raises(InputError, match=r"serves gemma3-270m, not 'another-model'; every --base-url") as caught:
        backend.capabilities()
    backend.close()
    assert "\n" not in str(caught.value)

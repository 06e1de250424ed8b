"""Replicas without a model: the routing rule, failover over real HTTP to replayed servers, the flags, Ray pinning.

The servers are :class:`~attrib.testing.replay.Replay` instances on loopback answering
with recorded exchanges (or with 503 for everything: a broken replica).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from attrib.backend import ScoreRequest
from attrib.backends.openai import OpenAIBackend
from attrib.backends.openai.replicas import Replicas
from attrib.batch.run import _shown_url
from attrib.batch.worker import Spec, pinned
from attrib.cli.common import backend_options
from attrib.cli.parser import build_parser
from attrib.errors import InputError
from attrib.testing.replay import Exchange, Replay, load_exchanges
from attrib.urls import BaseURL

SGLANG = load_exchanges(Path(__file__).parent / "data" / "recorded" / "sglang_generate.json")


def _broken(status: int = 503) -> list[Exchange]:
    answer = {"error": {"message": "replica is down", "type": "server_error"}}
    return [Exchange(m, p, None, status, answer, {}) for m in ("GET", "POST") for p in ("/v1/models", "/generate")]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _replicas(n: int, **options: object) -> tuple[Replicas, Clock]:
    clock = Clock()
    bases = [BaseURL.parse(f"http://127.0.0.1:{8000 + i}/v1") for i in range(n)]
    return Replicas(bases, clock=clock, **options), clock  # type: ignore[arg-type]


def test_least_outstanding_first_and_ties_alternate() -> None:
    replicas, _ = _replicas(3)
    a, b, c = replicas.all
    a.outstanding, b.outstanding, c.outstanding = 2, 0, 1
    assert replicas.pick() is b
    b.outstanding = 5
    assert replicas.pick() is c
    for r in replicas.all:
        r.outstanding = 0
    picks = [replicas.pick() for _ in range(6)]
    assert picks[:3] == picks[3:] and {id(r) for r in picks[:3]} == {id(a), id(b), id(c)}


def test_a_failed_replica_is_down_with_exponential_back_off_until_it_answers() -> None:
    replicas, clock = _replicas(2, first_down=1.0, max_down=5.0)
    a, b = replicas.all
    assert [replicas.failed(a) for _ in range(4)] == [1.0, 2.0, 4.0, 5.0]
    assert [replicas.pick() for _ in range(3)] == [b, b, b] and replicas.another_up(a)
    replicas.failed(b, wait=2.0)  # a 429's Retry-After
    assert replicas.pick() is b  # both down: the one back first
    clock.now += 5.0
    assert replicas.up() == [a, b]
    replicas.succeeded(a)
    assert a.failures == 0 and a.answered == 1


def test_in_order_routing_keeps_to_the_first_replica_that_is_up() -> None:
    replicas, _ = _replicas(3, routing="in_order")
    a, b, _c = replicas.all
    a.outstanding = 7
    assert replicas.pick() is a
    replicas.failed(a)
    assert replicas.pick() is b


def test_the_same_url_twice_or_an_unknown_routing_is_refused() -> None:
    with pytest.raises(InputError, match="given twice"):
        OpenAIBackend("m", base_url=["http://127.0.0.1:1/v1", "http://127.0.0.1:1/v1/"], cache=False)
    with pytest.raises(InputError, match="routing must be one of"):
        OpenAIBackend("m", base_url="http://127.0.0.1:1/v1", cache=False, routing="random")


def test_a_replica_down_at_the_start_is_left_out_and_the_answers_are_the_healthy_ones() -> None:
    with Replay(_broken()) as down, Replay(SGLANG) as up:
        backend = OpenAIBackend(None, base_url=[down.url, up.url], cache=False, tokenizer="words", max_wait=0.05)
        with pytest.warns(UserWarning, match="was unavailable .* left out of this run"):
            assert backend.describe()["scoring"] == "sglang"  # /v1/models asked of each (the broken one retried)
        ids = backend.ids_of_pieces([" Paris"])
        [result] = backend.score([ScoreRequest((), ids, prompt_text="The capital of France is")])
        broken, healthy = backend.transport.replicas.all
        backend.describe()
        backend.close()
    np.testing.assert_allclose(result.logprobs, [-0.9902])
    assert healthy.answered >= 3 and broken.answered == 0 and broken.excluded
    assert not down.bodies("POST", "/generate")
    assert backend.endpoint == ", ".join(sorted([down.url, up.url]))


def test_replicas_of_different_models_are_one_line_errors() -> None:
    other = [Exchange("GET", "/v1/models", None, 200, {"data": [{"id": "llama-3"}]}, {})]
    with Replay(SGLANG) as gemma, Replay(other) as llama:
        backend = OpenAIBackend(None, base_url=[gemma.url, llama.url], cache=False)
        with pytest.raises(InputError, match=r"do not serve one model alone .* serves llama-3\); give --model"):
            backend.capabilities()
        backend.close()
        named = OpenAIBackend("gemma3-270m", base_url=[gemma.url, llama.url], cache=False)
        with pytest.raises(InputError, match=rf"replica {llama.url} serves llama-3, not 'gemma3-270m'"):
            named.capabilities()
        named.close()


def test_base_url_given_twice_reaches_the_backend_as_a_list_and_once_as_a_string() -> None:
    parser = build_parser()
    urls = ["http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1"]
    twice = parser.parse_args(["explain", "x", "--backend", "openai", "--base-url", urls[0], "--base-url", urls[1]])
    once = parser.parse_args(["explain", "x", "--backend", "openai", "--base-url", urls[0]])
    assert backend_options(twice)["base_url"] == urls
    assert backend_options(once)["base_url"] == urls[0]
    assert "give it again for each replica" in parser._subparsers._group_actions[0].choices["explain"].format_help()  # type: ignore[union-attr]


def test_a_list_of_urls_is_recorded_without_query_values() -> None:
    assert _shown_url(["http://h:1/v1?key=s3cret", "http://h:2/v1"]) == ["http://h:1/v1?[redacted]", "http://h:2/v1"]


def test_pinning_rotates_the_replicas_so_actor_i_starts_at_replica_i_mod_n() -> None:
    spec = Spec(task="explain", backend="openai", backend_options={"base_url": ["a", "b", "c"]}, pin_replicas=True)
    assert [pinned(spec, i).backend_options["base_url"] for i in range(4)] == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
    ]
    assert pinned(spec, 1).backend_options["routing"] == "in_order"
    assert pinned(
        Spec(task="explain", backend="openai", backend_options={"base_url": ["a", "b"]}), 1
    ).backend_options == {"base_url": ["a", "b"]}


def test_pinning_needs_the_ray_executor() -> None:
    from attrib.batch import prepare

    with pytest.raises(InputError, match="applies to the ray executor"):
        prepare([{"id": "a", "prompt": "x"}], backend="toy", pin_replicas=True)


#: Any chat request answered with the same short text: the ``text`` rung scores every variant.
_CHAT = [
    Exchange("GET", "/v1/models", None, 200, {"data": [{"id": "m"}]}, {}),
    Exchange(
        "POST",
        "/v1/chat/completions",
        None,
        200,
        {"choices": [{"message": {"role": "assistant", "content": " yes"}}], "usage": {"prompt_tokens": 3}},
        {},
    ),
]


@pytest.fixture
def ray_runtime() -> Iterator[object]:
    ray = pytest.importorskip("ray")
    root = str(Path(__file__).resolve().parents[1])
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = root if not previous else f"{root}{os.pathsep}{previous}"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    if previous is None:
        del os.environ["PYTHONPATH"]
    else:
        os.environ["PYTHONPATH"] = previous


@pytest.mark.ray
def test_a_pinned_ray_actor_sends_only_to_its_replica(ray_runtime: object, tmp_path: Path) -> None:
    from attrib.batch import attribute_many

    records = [{"id": f"q{n}", "prompt": f"Item {n} is here."} for n in range(3)]
    with Replay(_CHAT) as first, Replay(_CHAT) as second:
        options = {"base_url": [first.url, second.url], "model": "m", "scoring": "text", "tokenizer": "words"}
        summary = attribute_many(
            records, executor="ray", workers=1, backend="openai", backend_options=options, pin_replicas=True
        )
        assert summary.ok == 3
        assert first.bodies("POST", "/v1/chat/completions") and not second.bodies("POST", "/v1/chat/completions")
        spread = attribute_many(records, executor="ray", workers=2, backend="openai", backend_options=options)
        assert spread.ok == 3


def test_a_replica_failing_mid_run_is_marked_down_and_its_requests_retried_on_another() -> None:
    failing = [e for e in SGLANG if e.path == "/v1/models"] + _broken(500)
    with Replay(SGLANG) as up, Replay(failing) as down:
        backend = OpenAIBackend(None, base_url=[down.url, up.url], cache=False, tokenizer="words", max_wait=30.0)
        backend.capabilities()
        ids = backend.ids_of_pieces([" Paris"])
        requests = [ScoreRequest((), ids, prompt_text="The capital of France is")] * 4
        started = time.monotonic()
        results = backend.score(requests)
        took = time.monotonic() - started
        broken, healthy = backend.transport.replicas.all
        usage = backend.usage_snapshot()
        backend.close()
    assert [r.logprobs.tolist() for r in results] == [[-0.9902]] * 4
    assert broken.failures >= 1 and not broken.excluded and len(down.bodies("POST", "/generate")) >= 1
    assert usage["retries"] >= 1 and usage["requests"] == 4
    assert took < 10.0  # retried on the healthy replica at once, not after a back-off of up to max_wait

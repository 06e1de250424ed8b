"""The OpenAI-compatible backend against a real server: llama-cpp-python's, serving the embedded model on loopback.

Faults come from ``attrib/testing/proxy.py``, a real HTTP proxy between the client and the
server; nothing here is mocked.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import attrib
from attrib.backends.openai import OpenAIBackend
from attrib.cache.store import ResponseCache
from attrib.cache.wrapper import CachingBackend
from attrib.metrics import spearman
from attrib.reports.text import render_text
from attrib.testing.proxy import Proxy

pytestmark = [pytest.mark.server, pytest.mark.model]

#: A short prompt: the server's echo scoring costs ~0.35 s per token (it sorts the whole
#: vocabulary at every position in Python), so the forced-scoring test keeps prompts small.
KEY_PROMPT = "Maria keeps her spare key under the blue flowerpot. Where is the key? Under the"


def backend(server, cache, **options) -> OpenAIBackend:
    return OpenAIBackend(server.model, base_url=server.url, api_key=server.key, cache=cache, **options)


def test_forced_scoring_agrees_with_the_local_backend_and_reruns_from_the_cache(
    llama_server, llama, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    local = attrib.attribute(KEY_PROMPT, backend=llama, method="itp", level="word", max_new_tokens=3)
    # Scores are cached by the wrapper; the backend's own cache keeps only endpoint metadata. The
    # server answers one request at a time, so the timeout covers a queue of four on a busy machine.
    api = CachingBackend(backend(llama_server, tmp_path, timeout=1800.0), ResponseCache(tmp_path))
    remote = attrib.attribute(KEY_PROMPT, backend=api, method="itp", level="word", target=local.output)
    assert remote.backend["scoring"] == "forced" and remote.backend["tokenizer"] == "server"
    assert remote.score_kind == "logprob"
    assert [u.text for u in remote.units] == [u.text for u in local.units]
    assert remote.output_tokens == local.output_tokens
    assert spearman(local.unit_scores, remote.unit_scores) >= 0.95
    assert remote.top(1)[0].unit.text == local.top(1)[0].unit.text
    # Same weights, same kernels, different batch shapes: within 0.1 nats per token.
    assert np.allclose(remote.base_logprobs, local.base_logprobs, atol=0.1)
    first = remote.stats.backend_usage
    assert first["requests"] >= remote.stats.calls and first["retries"] == 0

    again = attrib.attribute(KEY_PROMPT, backend=api, method="itp", level="word", target=local.output)
    assert again.stats.backend_usage["requests"] == 0
    assert again.stats.backend_usage["cache_hits"] == again.stats.calls
    assert np.array_equal(again.scores, remote.scores)
    api.close()

    # The key is in no cache file, result, report or log line.
    secret = llama_server.key.encode()
    for path in tmp_path.iterdir():
        assert secret not in path.read_bytes(), path.name
    assert llama_server.key not in remote.to_json() and llama_server.key not in remote.to_html()
    assert llama_server.key not in caplog.text


def test_chat_top_logprobs_still_finds_the_decisive_fact(llama_server, tmp_path: Path) -> None:
    from benchmarks.needle import make_needle_case

    api = backend(llama_server, tmp_path, scoring="top_logprobs")
    # Seed 3: one of the cases the 270M base model answers in a chat (most it does not).
    case = make_needle_case(150, seed=3, count_tokens=lambda text: len(api.tokenize(text)), n_distractors=2)
    result = attrib.attribute(case.prompt, backend=api, method="itp", level="sentence", max_new_tokens=14)
    api.close()
    assert result.backend["scoring"] == "top_logprobs"
    assert case.answer in result.output
    digits = [i for i, token in enumerate(result.output_tokens) if token.strip().isdigit()]
    answer = result.scores[:, digits].sum(axis=1)
    best = result.units[int(np.argmax(answer))]
    assert best.start < case.fact[1] and best.end > case.fact[0], best.text


def test_faults_are_retried_and_give_the_scores_of_a_clean_run(llama_server, tmp_path: Path) -> None:
    # Retries and caching sit below the scoring rungs; the text rung is the fastest on this server.
    prompt = "The river past the mill is called the Wend. Name the river: the"
    clean_backend = backend(llama_server, tmp_path / "clean", scoring="text")
    clean = attrib.attribute(prompt, backend=clean_backend, method="itp", level="word", max_new_tokens=4)
    clean_backend.close()

    faults = ["429", "500", "drop", "slow", "malformed"]
    with Proxy(
        llama_server.url.removesuffix("/v1"), faults=faults, fault_every=3, retry_after=1, slow_seconds=4.0
    ) as proxy:
        # One request at a time makes the fault sequence deterministic: every third request fails.
        faulty_backend = OpenAIBackend(
            llama_server.model,
            base_url=proxy.url,
            api_key=llama_server.key,
            cache=tmp_path / "faulty",
            scoring="text",
            timeout=2.0,
            concurrency=1,
        )
        faulty = attrib.attribute(prompt, backend=faulty_backend, method="itp", level="word", max_new_tokens=4)
        faulty_backend.close()
        seen = Counter(record.fault for record in proxy.records)
    assert set(faults) <= set(seen), seen
    assert faulty.stats.backend_usage["retries"] >= sum(seen[f] for f in faults)
    assert faulty.output == clean.output
    assert np.array_equal(faulty.scores, clean.scores)


def _explain(server, proxy: Proxy, cache: Path, out: Path, *extra: str) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "attrib", "explain", KEY_PROMPT,
        "--backend", "openai", "--base-url", proxy.url, "--model", server.model,
        "--api-key-env", "ATTRIB_TEST_KEY", "--cache-dir", str(cache),
        "--scoring", "text", "--method", "itp", "--level", "word",
        "--max-new-tokens", "4", "--concurrency", "1", "--quiet", "--json", str(out), *extra,
    ]  # fmt: skip
    env = {**os.environ, "ATTRIB_TEST_KEY": server.key}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


#: The CLI-level cache tests need the pipeline that wraps ``--cache-dir`` in CachingBackend (attrib/pipeline.py).
needs_pipeline = pytest.mark.skipif(
    not (Path(attrib.__file__).parent / "pipeline.py").exists(),
    reason="needs attrib.pipeline, which wraps the backend in CachingBackend from --cache-dir",
)


@needs_pipeline
def test_a_killed_run_resumes_from_the_cache_without_repeating_calls(llama_server, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with Proxy(llama_server.url.removesuffix("/v1")) as proxy:
        first = _explain(llama_server, proxy, cache, tmp_path / "first.json")
        deadline = time.monotonic() + 300
        while sum(proxy.forwarded_bodies().values()) < 6:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        before = proxy.forwarded_bodies()

        second = _explain(llama_server, proxy, cache, tmp_path / "second.json")
        stdout, stderr = second.communicate(timeout=600)
        assert second.returncode == 0, stderr
        after = proxy.forwarded_bodies()
        repeated = [body for body, count in after.items() if count > 1]
        # Only the request in flight at the kill (concurrency 1) may be sent again.
        assert len(repeated) <= 1
        assert sum(after.values()) - sum(before.values()) < sum(after.values())
        result = json.loads((tmp_path / "second.json").read_text())
        assert result["stats"]["backend_usage"]["cache_hits"] >= sum(before.values()) - 1

        third = _explain(llama_server, proxy, cache, tmp_path / "third.json")
        third.communicate(timeout=600)
        assert third.returncode == 0
        rerun = json.loads((tmp_path / "third.json").read_text())
        assert rerun["stats"]["backend_usage"]["requests"] == 0
        assert rerun["scores"] == result["scores"]
        assert sum(proxy.forwarded_bodies().values()) == sum(after.values())


def test_dry_run_sends_no_model_request(llama_server, tmp_path: Path) -> None:
    with Proxy(llama_server.url.removesuffix("/v1")) as proxy:
        run = _explain(llama_server, proxy, tmp_path, tmp_path / "unused.json", "--dry-run")
        stdout, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
        assert stdout.startswith("dry run: itp at word level over 15 units: 1 generation call + 16 scoring calls")
        assert "nothing was sent" in stdout
        assert proxy.records == []
    assert not (tmp_path / "unused.json").exists()


def test_a_wrong_key_stops_at_once_with_a_one_line_error(llama_server, tmp_path: Path) -> None:
    wrong = "sk-wrong-0123456789abcdef"
    api = OpenAIBackend(llama_server.model, base_url=llama_server.url, api_key=wrong, cache=tmp_path)
    started = time.monotonic()
    with pytest.raises(attrib.AuthenticationError) as caught:
        attrib.attribute(KEY_PROMPT, backend=api, level="word", max_new_tokens=2)
    api.close()
    assert time.monotonic() - started < 30  # not retried
    message = str(caught.value)
    assert "401" in message and "\n" not in message
    assert wrong not in message and "0123456789" not in message

    env = {**os.environ, "ATTRIB_TEST_KEY": wrong}
    run = subprocess.run(
        [sys.executable, "-m", "attrib", "explain", "x y z", "--backend", "openai", "--base-url", llama_server.url,
         "--model", llama_server.model, "--api-key-env", "ATTRIB_TEST_KEY", "--no-cache", "--quiet"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("attrib: error:") and "401" in run.stderr
    assert wrong not in run.stderr and "Traceback" not in run.stderr


def test_text_only_scoring_says_what_its_scores_are(llama_server, tmp_path: Path) -> None:
    api = backend(llama_server, tmp_path, scoring="text")
    result = attrib.attribute(KEY_PROMPT, backend=api, method="itp", level="sentence", max_new_tokens=4)
    api.close()
    assert result.score_kind == "text-similarity" and result.backend["scoring"] == "text"
    assert np.all(result.scores <= 1.0 + 1e-9) and np.all(result.scores >= -1.0 - 1e-9)
    shown = render_text(result)
    assert "nats" not in shown and "similarity" in shown


HIDDEN = "Staff note: the museum opens at nine and closes at five. Tickets cost twelve euros."
#: A base model continues text, so the audit renders the chat as plain text after a fixed preamble
#: (an empty prompt would leave the first output token without a log-probability).
PLAIN = "Notes:\n{% for m in messages %}{{ m['content'] }}{% endfor %}"
QUESTION = "Visitor question: When does the museum open?\nAnswer: The museum opens at"


@pytest.mark.parametrize("injected", [True, False])
def test_audit_through_an_injecting_proxy(llama_server, tmp_path: Path, injected: bool) -> None:
    """A proxy that prepends a hidden prompt is flagged by the differential audit; the bare server is not."""
    with Proxy(llama_server.root, inject_system=HIDDEN if injected else None) as proxy:
        audited = OpenAIBackend(llama_server.model, base_url=proxy.url, api_key=llama_server.key, cache=tmp_path / "a")
        reference = backend(llama_server, tmp_path / "r")
        result = attrib.audit(
            QUESTION, backend=audited, reference=reference, method="itp", level="sentence",
            max_new_tokens=4, chat_template=PLAIN,
        )  # fmt: skip
        audited.close()
        reference.close()
    verdict = result.hidden_influence
    gain = verdict["indicators"]["differential"]["evidence"]["gain_per_token"]
    assert verdict["method"] == "differential" and verdict["flag"] is injected, gain
    if injected:
        assert result.output.startswith(" nine")  # copied from the hidden note
        assert gain > 1.0
    else:
        assert abs(gain) < 0.1  # same server, same model: only batch-shape noise
    assert result.roles == {"user": 1.0}
    assert result.backend["reference"]["endpoint"] == llama_server.url


@pytest.mark.parametrize("fault", ["429", "500", "drop", "slow", "malformed"])
def test_transport_faults_during_probing_never_downgrade_the_rung(llama_server, tmp_path: Path, fault: str) -> None:
    """Issue 14, item 1: faults outlasting every retry fail the run and leave no verdict; a clean run finds forced."""
    with Proxy(llama_server.root, faults=[fault], retry_after=0, slow_seconds=4.0) as proxy:
        faulty = OpenAIBackend(
            llama_server.model,
            base_url=proxy.url,
            api_key=llama_server.key,
            cache=tmp_path,
            max_retries=2,
            max_wait=0.05,
            timeout=2.0 if fault == "slow" else 120.0,
        )
        with pytest.raises(attrib.EndpointUnavailableError) as caught:
            attrib.attribute(KEY_PROMPT, backend=faulty, level="word", max_new_tokens=2)
        faulty.close()
        message = str(caught.value)
        assert "\n" not in message and "3 attempts" in message and "probing forced scoring" in message
        assert ("timeout" if fault == "slow" else "malformed" if fault == "malformed" else "") in message
        # Never a chat rung's probe (a slow request is recorded only once its wait is over).
        assert {r.path for r in proxy.records} <= {"/v1/completions"}
        assert len(proxy.records) == 3 or fault == "slow"
        with sqlite3.connect(tmp_path / "responses.sqlite3") as db:
            assert not [v for (v,) in db.execute("SELECT value FROM responses") if "scoring" in v]

        proxy.set_faults([])
        clean = OpenAIBackend(llama_server.model, base_url=proxy.url, api_key=llama_server.key, cache=tmp_path)
        assert clean.capabilities().score_kind == "logprob" and clean.describe()["scoring"] == "forced"
        clean.close()

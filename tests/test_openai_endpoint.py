"""The OpenAI-compatible backend against misbehaving endpoints: a real HTTP server on loopback, answering on a script.

Each test starts a loopback server (:mod:`attrib.testing.loopback`) that answers every
request with what the test says (a status, a web page, an escape-laden error, a dropped
connection, a stall), so
the status table, the probe rule and the one-line errors are checked over real HTTP
with the real SDK, without a model.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import attrib
from attrib.backends.openai import OpenAIBackend
from attrib.backends.openai.redaction import clean
from attrib.backends.openai.statuses import STATUS_RULES, NotAnAPIError, rule_for
from attrib.backends.openai.tokenizer import ROUTES
from attrib.errors import AuthenticationError, EndpointUnavailableError, RequestRejectedError
from attrib.testing.loopback import DROP, Loopback, Reply, Request


@dataclass
class Answer:
    """What the stub sends: a status and body, or nothing (``drop``), possibly after ``delay`` seconds."""

    status: int = 200
    body: Any = field(default_factory=dict)
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    delay: float = 0.0


Script = Callable[[str, str, Any], Answer]


class Stub(Loopback):
    """A loopback server (:class:`~attrib.testing.loopback.Loopback`) answering each request by ``script(method, path, body)``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        super().__init__(self._reply)

    def _reply(self, request: Request) -> Reply | None:
        answer = self.script(request.method, request.path, request.body)
        if answer.delay:
            time.sleep(answer.delay)
        if answer.drop:
            return DROP
        return Reply(answer.status, answer.body, {"Content-Type": answer.content_type, **answer.headers})

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)


COMPLETIONS, CHAT, TOKENIZE = "/v1/completions", "/v1/chat/completions", "/extras/tokenize"

ECHO = {
    "choices": [
        {
            "text": "The capital",
            "logprobs": {
                "tokens": ["The", " capital", "."],
                "token_logprobs": [None, -2.0, -1.0],
                "text_offset": [0, 3, 11],
            },
        }
    ],
    "usage": {"prompt_tokens": 2, "completion_tokens": 1},
}
CHAT_LOGPROBS = {
    "choices": [
        {
            "message": {"role": "assistant", "content": " Paris"},
            "logprobs": {"content": [{"token": " Paris", "logprob": -0.1, "top_logprobs": []}]},
        }
    ]
}
CHAT_PLAIN = {"choices": [{"message": {"role": "assistant", "content": " Paris"}}]}
NOT_FOUND = Answer(404, {"detail": "Not Found"})


def error(status: int, message: str, **headers: str) -> Answer:
    return Answer(status, {"error": {"message": message, "type": "invalid_request_error"}}, headers=headers)


def routes(**answers: Answer) -> Script:
    """A script by path (``completions``, ``chat``, ``tokenize``); anything else is 404."""
    table = {COMPLETIONS: answers.get("completions"), CHAT: answers.get("chat"), TOKENIZE: answers.get("tokenize")}

    def script(method: str, path: str, body: Any) -> Answer:
        return table.get(path) or NOT_FOUND

    return script


def backend(stub: Stub, cache: Path | bool, **options: Any) -> OpenAIBackend:
    options = {"max_retries": 1, "max_wait": 0.01, "timeout": 5.0, **options}
    return OpenAIBackend("m", base_url=stub.url, api_key="sk-test-0123456789abcdef", cache=cache, **options)


def stored_values(cache: Path) -> list[str]:
    with sqlite3.connect(cache / "responses.sqlite3") as db:
        return [row[0] for row in db.execute("SELECT value FROM responses")]


# ---------------------------------------------------------------------------- the status table

EXPECTED = {
    400: (False, RequestRejectedError),
    401: (False, AuthenticationError),
    403: (False, AuthenticationError),
    404: (False, RequestRejectedError),
    405: (False, RequestRejectedError),
    408: (True, EndpointUnavailableError),
    409: (True, EndpointUnavailableError),
    413: (False, RequestRejectedError),
    415: (False, RequestRejectedError),
    422: (False, RequestRejectedError),
    425: (True, EndpointUnavailableError),
    429: (True, EndpointUnavailableError),
    500: (True, EndpointUnavailableError),
    501: (False, RequestRejectedError),
    502: (True, EndpointUnavailableError),
    503: (True, EndpointUnavailableError),
    504: (True, EndpointUnavailableError),
    "timeout": (True, EndpointUnavailableError),
    "connection": (True, EndpointUnavailableError),
    "malformed": (True, EndpointUnavailableError),
    "not-json": (False, NotAnAPIError),
}


def test_each_failure_maps_to_one_retry_decision_and_one_error_type() -> None:
    assert set(STATUS_RULES) == set(EXPECTED)
    for failure, (retryable, error_type) in EXPECTED.items():
        rule = rule_for(failure)
        assert (rule.retryable, rule.error) == (retryable, error_type), failure
    # Statuses outside the table: other 4xx are refusals, other 5xx are retried.
    assert (rule_for(418).retryable, rule_for(418).error) == (False, RequestRejectedError)
    assert (rule_for(507).retryable, rule_for(507).error) == (True, EndpointUnavailableError)
    with pytest.raises(KeyError):
        rule_for("gremlins")


@pytest.mark.parametrize("status", [400, 401, 404, 422, 429, 503])
def test_the_error_raised_over_http_is_the_one_the_table_names(tmp_path: Path, status: int) -> None:
    with Stub(routes(completions=error(status, "no", **{"Retry-After": "0"}))) as stub:
        api = backend(stub, False, scoring="forced", tokenizer="words")
        with pytest.raises(attrib.EndpointError) as caught:
            attrib.attribute("a b c", backend=api, level="word", target=" d")
        api.close()
    retryable, error_type = EXPECTED[status]
    assert type(caught.value) is error_type and caught.value.status == status
    assert stub.count(COMPLETIONS) == (2 if retryable else 1)  # max_retries=1
    assert "\n" not in str(caught.value) and f"HTTP {status}" in str(caught.value)


# ---------------------------------------------------------------------------- the probe rule (issue 14, item 1)

RETRYABLE = [failure for failure, rule in STATUS_RULES.items() if rule.retryable]


def fault(failure: int | str) -> Answer:
    if failure == "timeout":
        return Answer(body=ECHO, delay=2.0)
    if failure == "connection":
        return Answer(drop=True)
    if failure == "malformed":
        return Answer(200, b'{"choices": [{"text": "The cap')
    assert isinstance(failure, int)
    return error(failure, f"injected {failure}", **{"Retry-After": "0"})


@pytest.mark.parametrize("failure", RETRYABLE, ids=str)
def test_a_probe_that_meets_only_transport_failures_fails_and_stores_no_verdict(
    tmp_path: Path, failure: int | str
) -> None:
    # The chat rungs would answer: falling through to them is the silent downgrade this test forbids.
    with Stub(routes(completions=fault(failure), chat=Answer(body=CHAT_LOGPROBS))) as stub:
        api = backend(stub, tmp_path, timeout=0.5)
        with pytest.raises(EndpointUnavailableError) as caught:
            api.capabilities()
        api.close()
    message = str(caught.value)
    assert "\n" not in message and "2 attempts" in message and "/v1/completions" in message
    assert "probing forced scoring" in message
    assert stub.count(COMPLETIONS) == 2 and stub.count(CHAT) == 0
    assert not any("scoring" in value for value in stored_values(tmp_path))

    # A later clean run probes again and finds the exact rung.
    with Stub(routes(completions=Answer(body=ECHO), chat=Answer(body=CHAT_LOGPROBS))) as healthy:
        again = backend(healthy, tmp_path)
        assert again.capabilities().score_kind == "logprob" and again.describe()["scoring"] == "forced"
        again.close()
    assert healthy.count(COMPLETIONS) == 1


@pytest.mark.parametrize(
    ("completions", "chat", "scoring"),
    [
        (error(400, "echo is not supported with logprobs for this model"), Answer(body=CHAT_LOGPROBS), "top_logprobs"),
        (NOT_FOUND, Answer(body=CHAT_LOGPROBS), "top_logprobs"),
        (Answer(body={"choices": [{"text": " Paris", "logprobs": None}]}), Answer(body=CHAT_PLAIN), "text"),
        (NOT_FOUND, None, None),  # chat route missing too: no rung at all
    ],
    ids=["400-naming-echo", "404-route", "2xx-without-logprobs", "nothing"],
)
def test_the_ladder_steps_down_only_on_answers_that_say_so(
    tmp_path: Path, completions: Answer, chat: Answer | None, scoring: str | None
) -> None:
    script = routes(completions=completions, chat=chat) if chat else routes(completions=completions)
    with Stub(script) as stub:
        api = backend(stub, tmp_path)
        if scoring is None:
            with pytest.raises(RequestRejectedError, match="offers none of the scoring rungs"):
                api.capabilities()
            api.close()
            return
        assert api.describe()["scoring"] == scoring
        api.close()
        probes = len(stub.requests)
        # The verdict is remembered: another backend on the same cache sends no probe.
        cached = backend(stub, tmp_path)
        assert cached.describe()["scoring"] == scoring
        cached.close()
    assert len(stub.requests) == probes + len(ROUTES)  # only the (uncached) 404s of the tokenizer routes


@pytest.mark.parametrize(
    ("answer", "error_type"),
    [
        (error(400, "prompt must be a string"), RequestRejectedError),  # a refusal that names no probed parameter
        (error(404, "The model 'm' does not exist"), RequestRejectedError),  # the model is missing, not the rung
        (error(401, "Incorrect API key provided: sk-test-0123456789abcdef"), AuthenticationError),
        (Answer(200, b"<!doctype html><title>Login</title>", content_type="text/html"), NotAnAPIError),
    ],
    ids=["400-other", "404-model", "401", "html"],
)
def test_refusals_that_do_not_say_unsupported_fail_the_probe(tmp_path: Path, answer: Answer, error_type: type) -> None:
    with Stub(routes(completions=answer, chat=Answer(body=CHAT_LOGPROBS))) as stub:
        api = backend(stub, tmp_path)
        with pytest.raises(error_type) as caught:
            api.capabilities()
        api.close()
    assert stub.count(CHAT) == 0 and stub.count(COMPLETIONS) == 1  # none of these is retried
    assert "\n" not in str(caught.value) and "0123456789abcdef" not in str(caught.value)
    assert not any("scoring" in value for value in stored_values(tmp_path))


# ---------------------------------------------------------------------------- web pages and hostile error text


def html(method: str, path: str, body: Any) -> Answer:
    return Answer(200, b"<!DOCTYPE html><html><body>Sign in to the network</body></html>", content_type="text/html")


def test_a_web_page_at_the_base_url_is_a_one_line_error_naming_the_url(tmp_path: Path) -> None:
    with Stub(html) as stub:
        api = OpenAIBackend(base_url=stub.url, cache=False, max_retries=3, max_wait=0.01)
        with pytest.raises(NotAnAPIError) as caught:
            attrib.attribute("a b c", backend=api, level="word")
        api.close()
    message = str(caught.value)
    assert f"GET {stub.url}/models" in message and "text/html" in message and "--base-url" in message
    assert "\n" not in message and stub.count("/v1/models") == 1  # not retried

    with Stub(html) as stub:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "attrib",
                "explain",
                "a b c",
                "--backend",
                "openai",
                "--base-url",
                stub.url,
                "--model",
                "m",
                "--no-cache",
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "OPENAI_API_KEY": "none"},
        )
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("attrib: error:") and f"{stub.url}/completions" in run.stderr
    assert "Traceback" not in run.stderr


HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b[H\x1b[31mbad\x1b[0m\r\nrequest \u202edlrow\x9b2J sk-leaked0123456789 \x00!"


def test_server_error_text_reaches_the_message_without_escape_sequences(tmp_path: Path) -> None:
    with Stub(routes(completions=error(400, HOSTILE))) as stub:
        api = backend(stub, False, scoring="forced", tokenizer="words")
        with pytest.raises(RequestRejectedError) as caught:
            attrib.attribute("a b c", backend=api, level="word", target=" d")
        api.close()
        message = str(caught.value)
        assert "bad request dlrow [redacted] !" in message
        assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or c == "\u202e" for c in message), repr(message)
        assert "pwned" not in message and "sk-leaked0123456789" not in message

        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "attrib",
                "explain",
                "a b c",
                "--target",
                " d",
                "--backend",
                "openai",
                "--base-url",
                stub.url,
                "--model",
                "m",
                "--scoring",
                "forced",
                "--tokenizer",
                "words",
                "--no-cache",
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "OPENAI_API_KEY": "none"},
        )
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert "\x1b" not in run.stderr and "\x07" not in run.stderr and "bad request" in run.stderr


def test_clean_keeps_text_and_drops_what_drives_a_terminal() -> None:
    assert clean("plain text, ünïcode ✓") == "plain text, ünïcode ✓"
    assert clean("\x1b[1;31mred\x1b[0m") == "red"
    assert clean("\x1b]0;title\x07after") == "after"
    assert clean("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "link"
    assert clean("line\r\nbreak\ttab") == "line break tab"
    assert clean("a\u202eb\u2066c\x00d\x7fe") == "abcde"
    assert clean("x" * 500) == "x" * 299 + "…"

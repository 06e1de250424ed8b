"""Pure parts of the OpenAI-compatible backend: echo alignment, Retry-After, redaction (no server)."""

from __future__ import annotations

import numpy as np
import pytest

import attrib
from attrib.backends.openai import OpenAIBackend, _echoed_continuation, _retry_after, redact_url


def echo(tokens: list[str], values: list[float | None], generated: int | None = 1) -> dict:
    offsets, at = [], 0
    for token in tokens:
        offsets.append(at)
        at += len(token)
    data = {"choices": [{"logprobs": {"tokens": tokens, "token_logprobs": values, "text_offset": offsets}}]}
    if generated is not None:
        data["usage"] = {"prompt_tokens": len(tokens) - generated, "completion_tokens": generated}
    return data


PROMPT_TOKENS = ["The", " code", " is"]
OUTPUT = [" 4", "8"]


def test_echo_continuation_is_read_before_the_generated_token() -> None:
    data = echo([*PROMPT_TOKENS, *OUTPUT, "."], [None, -1.0, -0.5, -0.25, -0.125, -2.0])
    assert np.array_equal(_echoed_continuation(data, "The code is", OUTPUT), [-0.25, -0.125])
    stopped = echo([*PROMPT_TOKENS, *OUTPUT], [None, -1.0, -0.5, -0.25, -0.125], generated=0)
    assert np.array_equal(_echoed_continuation(stopped, "The code is", OUTPUT), [-0.25, -0.125])
    unknown = echo([*PROMPT_TOKENS, *OUTPUT, "."], [None, -1.0, -0.5, -0.25, -0.125, -2.0], generated=None)
    assert np.array_equal(_echoed_continuation(unknown, "The code is", OUTPUT), [-0.25, -0.125])


def test_special_tokens_that_echo_as_empty_text_do_not_matter() -> None:
    # A chat template's control tokens come back as "" and make offsets useless.
    data = echo(["", "user", "\n", "Hi", "", *OUTPUT, "."], [None, -1.0, -0.1, -2.0, -0.3, -0.25, -0.125, -2.0])
    assert np.array_equal(_echoed_continuation(data, "<start_of_turn>user\nHi<end_of_turn>", OUTPUT), [-0.25, -0.125])


def test_a_shifted_echo_is_a_mismatch_not_a_wrong_score() -> None:
    # A server that drops the generated token but reports one shifts the tail by a token.
    shifted = echo([*PROMPT_TOKENS, *OUTPUT], [None, -1.0, -0.5, -0.25, -0.125], generated=1)
    with pytest.raises(attrib.ResponseMismatchError, match="echo ends with"):
        _echoed_continuation(shifted, "The code is", OUTPUT)


def test_an_echo_that_merges_the_boundary_is_a_mismatch() -> None:
    merged = echo([*PROMPT_TOKENS, " 48", "."], [None, -1.0, -0.5, -0.3, -2.0])
    with pytest.raises(attrib.ResponseMismatchError, match="merge into different tokens"):
        _echoed_continuation(merged, "The code is", OUTPUT)


def test_echo_lists_of_different_lengths_are_a_mismatch() -> None:
    data = echo([*PROMPT_TOKENS, *OUTPUT], [None, -1.0, -0.5, -0.25])
    with pytest.raises(attrib.ResponseMismatchError, match="differ in length"):
        _echoed_continuation(data, "The code is", OUTPUT)
    with pytest.raises(attrib.ResponseMismatchError, match="no echoed"):
        _echoed_continuation({"choices": [{"text": "x"}]}, "The code is", OUTPUT)


def test_a_missing_output_logprob_is_a_mismatch() -> None:
    data = echo([*PROMPT_TOKENS, *OUTPUT, "."], [None, -1.0, -0.5, None, -0.1, -1.0])
    with pytest.raises(attrib.ResponseMismatchError, match="no log-probability"):
        _echoed_continuation(data, "The code is", OUTPUT)


class _Response:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


class _Error(Exception):
    def __init__(self, headers: dict[str, str]) -> None:
        self.response = _Response(headers)


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert _retry_after(_Error({"retry-after": "3"})) == 3.0
    assert _retry_after(_Error({"retry-after": "0.5"})) == 0.5
    assert _retry_after(_Error({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0  # in the past
    assert _retry_after(_Error({})) is None
    assert _retry_after(_Error({"retry-after": "soon"})) is None
    assert _retry_after(ValueError()) is None


def test_urls_lose_credentials_query_and_fragment() -> None:
    assert redact_url("https://user:sk-secret@api.example.com:8443/v1/?key=sk-x#f") == "https://api.example.com:8443/v1"
    assert redact_url("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080/v1"


def test_bad_options_are_input_errors(tmp_path) -> None:
    with pytest.raises(attrib.UnknownNameError, match="did you mean 'forced'"):
        OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", scoring="force", cache=False)
    with pytest.raises(attrib.InputError, match="between 1 and 20"):
        OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", top_logprobs=50, cache=False)
    with pytest.raises(attrib.InputError, match="at least 1"):
        OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", concurrency=0, cache=False)


def test_an_unreachable_endpoint_fails_with_one_line_after_its_retries(tmp_path) -> None:
    backend = OpenAIBackend(
        "m", base_url="http://127.0.0.1:9/v1", api_key="sk-abcdefgh12345678", cache=tmp_path, max_retries=1, max_wait=0.1
    )
    with pytest.raises(attrib.EndpointUnavailableError) as caught:
        attrib.attribute("a b c", backend=backend, level="word")
    backend.close()
    message = str(caught.value)
    assert "127.0.0.1:9" in message and "2 attempts" in message and "\n" not in message
    assert "sk-abcdefgh12345678" not in message

"""Pure parts of the OpenAI-compatible backend: each rung's parsing, Retry-After, redaction, options (no server)."""

from __future__ import annotations

import numpy as np
import pytest

import attrib
from attrib import registry
from attrib.backends.openai import OpenAIBackend, redact_url
from attrib.backends.openai.probe import ladder
from attrib.backends.openai.rungs.base import Rung, chat_body, message_text, prompt_tokens
from attrib.backends.openai.rungs.forced import ForcedRung, echoed_continuation, offers_echo
from attrib.backends.openai.rungs.text import TextRung
from attrib.backends.openai.rungs.top_logprobs import TopLogprobsRung, regenerated_tokens
from attrib.backends.openai.transport import retry_after


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
    assert np.array_equal(echoed_continuation(data, OUTPUT), [-0.25, -0.125])
    stopped = echo([*PROMPT_TOKENS, *OUTPUT], [None, -1.0, -0.5, -0.25, -0.125], generated=0)
    assert np.array_equal(echoed_continuation(stopped, OUTPUT), [-0.25, -0.125])
    unknown = echo([*PROMPT_TOKENS, *OUTPUT, "."], [None, -1.0, -0.5, -0.25, -0.125, -2.0], generated=None)
    assert np.array_equal(echoed_continuation(unknown, OUTPUT), [-0.25, -0.125])


def test_special_tokens_that_echo_as_empty_text_do_not_matter() -> None:
    # A chat template's control tokens come back as "" and make offsets useless.
    data = echo(["", "user", "\n", "Hi", "", *OUTPUT, "."], [None, -1.0, -0.1, -2.0, -0.3, -0.25, -0.125, -2.0])
    assert np.array_equal(echoed_continuation(data, OUTPUT), [-0.25, -0.125])


def test_a_shifted_echo_is_a_mismatch_not_a_wrong_score() -> None:
    # A server that drops the generated token but reports one shifts the tail by a token.
    shifted = echo([*PROMPT_TOKENS, *OUTPUT], [None, -1.0, -0.5, -0.25, -0.125], generated=1)
    with pytest.raises(attrib.ResponseMismatchError, match="echo ends with"):
        echoed_continuation(shifted, OUTPUT)


def test_an_echo_that_merges_the_boundary_is_a_mismatch() -> None:
    merged = echo([*PROMPT_TOKENS, " 48", "."], [None, -1.0, -0.5, -0.3, -2.0])
    with pytest.raises(attrib.ResponseMismatchError, match="merge into different tokens"):
        echoed_continuation(merged, OUTPUT)


def test_echo_lists_of_different_lengths_are_a_mismatch() -> None:
    data = echo([*PROMPT_TOKENS, *OUTPUT], [None, -1.0, -0.5, -0.25])
    with pytest.raises(attrib.ResponseMismatchError, match="differ in length"):
        echoed_continuation(data, OUTPUT)
    with pytest.raises(attrib.ResponseMismatchError, match="no echoed"):
        echoed_continuation({"choices": [{"text": "x"}]}, OUTPUT)


def test_a_missing_output_logprob_is_a_mismatch() -> None:
    data = echo([*PROMPT_TOKENS, *OUTPUT, "."], [None, -1.0, -0.5, None, -0.1, -1.0])
    with pytest.raises(attrib.ResponseMismatchError, match="no log-probability"):
        echoed_continuation(data, OUTPUT)


def test_the_forced_probe_reads_echoed_logprobs_or_their_absence() -> None:
    assert offers_echo(echo([*PROMPT_TOKENS, "."], [None, -1.0, -0.5, -2.0]))
    assert not offers_echo({"choices": [{"text": " Paris", "logprobs": None}]})  # 2xx without log-probabilities
    assert not offers_echo(echo(["The"], [None]))  # nothing scored: the prompt was not echoed
    assert not offers_echo({"choices": [{"logprobs": {"token_logprobs": [None, -1.0, -0.5], "text_offset": [0]}}]})


def chat(content: str, logprobs: list[dict] | None, usage: dict | None = None) -> dict:
    choice: dict = {"message": {"role": "assistant", "content": content}}
    if logprobs is not None:
        choice["logprobs"] = {"content": logprobs}
    return {"choices": [choice], **({"usage": usage} if usage else {})}


def test_top_logprobs_answers_become_generated_tokens_with_alternatives() -> None:
    data = chat(
        " Paris.",
        [
            {
                "token": " Paris",
                "logprob": -0.1,
                "top_logprobs": [{"token": " Paris", "logprob": -0.1}, {"token": " Lyon", "logprob": -3.0}],
            },
            {"token": ".", "logprob": -0.5, "top_logprobs": []},
        ],
    )
    tokens = regenerated_tokens(data)
    assert [t.text for t in tokens] == [" Paris", "."]
    assert tokens[0].lookup(" Lyon") == -3.0 and tokens[0].floor == -3.0
    assert tokens[1].top == {}
    with pytest.raises(attrib.ResponseMismatchError, match="no logprobs"):
        regenerated_tokens(chat(" Paris.", None))
    with pytest.raises(attrib.ResponseMismatchError, match="lacks its token"):
        regenerated_tokens(chat(" Paris.", [{"token": " Paris"}]))


def test_chat_helpers_read_text_usage_and_build_greedy_requests() -> None:
    data = chat(" Paris", [], usage={"prompt_tokens": 7, "completion_tokens": 2})
    assert message_text(data) == " Paris"
    assert message_text({"choices": [{"message": {"content": None}}]}) == ""
    assert prompt_tokens(data) == 7 and prompt_tokens(data, completion=True) == 9
    assert prompt_tokens({"choices": [{}], "usage": {"prompt_tokens": True}}) == 0
    plain = chat_body("Hi", None, model="m", max_tokens=3, top_logprobs=None)
    assert plain["messages"] == [{"role": "user", "content": "Hi"}] and "logprobs" not in plain
    assert plain["temperature"] == 0.0 and plain["model"] == "m"
    empty = chat_body("", (), model="m", max_tokens=3, top_logprobs=5)
    assert empty["messages"] == [{"role": "user", "content": ""}]
    assert empty["logprobs"] is True and empty["top_logprobs"] == 5
    both = chat_body("ignored", (("system", "S"), ("user", "U")), model="m", max_tokens=3, top_logprobs=None)
    assert both["messages"] == [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]


def test_each_rung_declares_its_capabilities_and_identity() -> None:
    kinds = {rung.name: (rung.score_kind, rung.supports_target) for rung in (ForcedRung, TopLogprobsRung, TextRung)}
    assert kinds == {
        "forced": ("logprob", True),
        "top_logprobs": ("logprob", False),
        "text": ("text-similarity", False),
    }
    capabilities = TextRung.capabilities(TextRung.__new__(TextRung), has_tokenizer=True)
    assert capabilities.score_kind == "text-similarity" and not capabilities.exposes_token_ids
    top = TopLogprobsRung.__new__(TopLogprobsRung)
    top.top_logprobs = 7
    assert top.identity() == {"scoring": "top_logprobs", "top_logprobs": 7}


def test_the_ladder_comes_from_the_registry_most_exact_first() -> None:
    assert ladder() == ["sglang", "forced", "top_logprobs", "text"]
    for name in ladder():
        cls = registry.rungs.resolve(name)
        assert issubclass(cls, Rung) and cls.name == name


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after": "0.5"}) == 0.5
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after({}) is None
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after(None) is None


def test_urls_lose_credentials_query_and_fragment() -> None:
    assert (
        redact_url("https://user:sk-secret@api.example.com:8443/v1/?key=sk-x#f")
        == "https://api.example.com:8443/v1?[redacted]"
    )
    assert redact_url("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080/v1"


def test_bad_options_are_input_errors(tmp_path) -> None:
    with pytest.raises(attrib.UnknownNameError, match="did you mean 'forced'"):
        OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", scoring="force", cache=False)
    with pytest.raises(attrib.UnknownNameError, match="did you mean 'words'"):
        OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", tokenizer="word", cache=False)
    with pytest.raises(attrib.InputError, match="between 1 and 20"):
        OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", top_logprobs=50, cache=False)
    with pytest.raises(attrib.InputError, match="at least 1"):
        OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", concurrency=0, cache=False)
    with pytest.raises(attrib.InputError, match="0 or more"):
        OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", max_retries=-1, cache=False)
    with pytest.raises(attrib.InputError, match="positive number of seconds"):
        OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", timeout=float("nan"), cache=False)
    with pytest.raises(attrib.InputError, match="max_wait"):
        OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", max_wait=-1.0, cache=False)


def test_an_unreachable_endpoint_fails_with_one_line_after_its_retries(tmp_path) -> None:
    backend = OpenAIBackend(
        "m",
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-abcdefgh12345678",
        cache=tmp_path,
        max_retries=1,
        max_wait=0.1,
    )
    with pytest.raises(attrib.EndpointUnavailableError) as caught:
        attrib.attribute("a b c", backend=backend, level="word")
    backend.close()
    message = str(caught.value)
    assert "127.0.0.1:9" in message and "2 attempts" in message and "\n" not in message
    assert "sk-abcdefgh12345678" not in message


def test_properties_send_nothing() -> None:
    # Port 9 (discard) refuses connections: any request would fail, so reading these proves none is sent.
    backend = OpenAIBackend(base_url="http://127.0.0.1:9/v1", cache=False, max_retries=0)
    assert backend.model == "" and backend.context_length == 1_000_000
    assert backend.endpoint == "http://127.0.0.1:9/v1"
    assert backend.usage_snapshot() == {
        "requests": 0,
        "retries": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "bounded_tokens": 0,
    }
    backend.close()

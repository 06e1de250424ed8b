"""Request and response shapes of SGLang's native ``/generate`` and OpenAI's chat completions, replayed.

A loopback server (:mod:`attrib.testing.replay`) answers with recorded exchanges
(``tests/data/recorded/*.json``, each naming the documentation its shapes come from);
the tests check what the backend sends against the recorded requests and what it
reads from the recorded answers. No network, no model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attrib.backend import ScoreRequest
from attrib.backends.openai import OpenAIBackend
from attrib.backends.openai.statuses import says_unsupported
from attrib.errors import RequestRejectedError, ResponseMismatchError
from attrib.testing.replay import Replay, load_exchanges

RECORDED = Path(__file__).parent / "data" / "recorded"
SGLANG = load_exchanges(RECORDED / "sglang_generate.json")
OPENAI = load_exchanges(RECORDED / "openai_chat.json")


def _recorded(exchanges: list, method: str, path: str, **match: object) -> object:
    return next(e.request for e in exchanges if (e.method, e.path) == (method, path) and e.match == match)


def _request(backend: OpenAIBackend, prompt: str, continuation: list[str]) -> ScoreRequest:
    return ScoreRequest(prompt_ids=(), continuation_ids=backend.ids_of_pieces(continuation), prompt_text=prompt)


def test_sglang_is_chosen_by_probing_and_scores_from_where_the_output_starts() -> None:
    with Replay(SGLANG) as server:
        backend = OpenAIBackend(None, base_url=server.url, cache=False)
        assert backend.describe()["scoring"] == "sglang"
        assert backend.model == "gemma3-270m"
        [result] = backend.score([_request(backend, "The capital of France is", [" Paris"])])
        usage = backend.usage_snapshot()
        backend.close()
    np.testing.assert_allclose(result.logprobs, [-0.9902])
    assert result.tokens_evaluated == 2  # from logprob_start_len on: the prefix is the radix cache's
    scoring = [b for b in server.bodies("POST", "/generate") if b["logprob_start_len"] != 0]
    # The prompt counts 6 tokens (<bos> included): log-probabilities from token 5, whose logits score token 6.
    assert scoring == [
        _recorded(SGLANG, "POST", "/generate", text="The capital of France is Paris", logprob_start_len=5)
    ]
    assert server.bodies("POST", "/v1/tokenize")[-1] == _recorded(
        SGLANG, "POST", "/v1/tokenize", prompt="The capital of France is"
    )
    assert usage["requests"] == 1 and usage["prompt_tokens"] == 7


def test_sglang_generates_greedily_through_generate() -> None:
    with Replay(SGLANG) as server:
        backend = OpenAIBackend("gemma3-270m", base_url=server.url, cache=False, scoring="sglang", tokenizer="words")
        prompt = backend.tokenize("The capital of France is")
        generation = backend.generate(prompt.ids, max_new_tokens=2)
        text = backend.detokenize(generation.ids)
        backend.close()
    assert text == " Paris."
    assert generation.tokens_evaluated == 8
    assert server.bodies("POST", "/generate") == [
        _recorded(SGLANG, "POST", "/generate", text="The capital of France is")
    ]


def test_sglang_refuses_an_answer_whose_token_count_shows_a_merged_boundary() -> None:
    with Replay(SGLANG) as server:
        backend = OpenAIBackend("gemma3-270m", base_url=server.url, cache=False, scoring="sglang", tokenizer="words")
        with pytest.raises(ResponseMismatchError, match=r"counts 8 tokens .* where 6 \+ 1 were expected"):
            backend.score([_request(backend, "The capital of Italy is", [" Paris"])])
        backend.close()


def test_openai_chat_model_probes_down_to_top_logprobs_and_reads_its_answer() -> None:
    with Replay(OPENAI) as server:
        backend = OpenAIBackend("gpt-4.1-mini", base_url=server.url, api_key="sk-test-recorded-0000", cache=False)
        assert backend.describe()["scoring"] == "top_logprobs"
        prompt = "What is the capital of France? Answer in one word."
        [result] = backend.score([_request(backend, prompt, ["Paris"])])
        backend.close()
    np.testing.assert_allclose(result.logprobs, [-0.0004])
    chats = server.bodies("POST", "/v1/chat/completions")
    assert chats[0] == _recorded(OPENAI, "POST", "/v1/chat/completions", model="gpt-4.1-mini", max_tokens=2)
    assert chats[-1] == _recorded(OPENAI, "POST", "/v1/chat/completions", model="gpt-4.1-mini")
    assert all(body["logprobs"] is True and 1 <= body["top_logprobs"] <= 20 for body in chats)


def test_openai_reasoning_model_gets_max_completion_tokens_and_a_clear_error_for_logprobs() -> None:
    with Replay(OPENAI) as server:
        backend = OpenAIBackend("o4-mini", base_url=server.url, cache=False, scoring="top_logprobs", tokenizer="words")
        with pytest.raises(RequestRejectedError) as caught:
            backend.score([_request(backend, "The capital of France is Paris", [" yes"])])
        backend.close()
    message = str(caught.value)
    assert "gives no log-probabilities" in message and "--scoring text" in message and "\n" not in message
    first, second = server.bodies("POST", "/v1/chat/completions")
    assert "max_tokens" in first and "max_completion_tokens" not in first
    assert second["max_completion_tokens"] == first["max_tokens"] and "max_tokens" not in second


def test_openai_reasoning_model_falls_to_the_text_rung_when_probed() -> None:
    with Replay(OPENAI) as server:
        backend = OpenAIBackend("o4-mini", base_url=server.url, cache=False)
        assert backend.describe()["scoring"] == "text"
        backend.close()
    text_probe = server.bodies("POST", "/v1/chat/completions")[-1]
    assert "logprobs" not in text_probe and text_probe["max_completion_tokens"] == 2


def test_a_chat_model_on_legacy_completions_is_a_missing_route_not_a_missing_model() -> None:
    detail = next(e.response["error"]["message"] for e in OPENAI if e.path == "/v1/completions")
    assert says_unsupported(404, detail, ("echo", "logprobs"))
    assert not says_unsupported(404, "The model 'gpt-9' does not exist or you do not have access to it.", ())

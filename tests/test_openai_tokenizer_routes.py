"""The server's tokenizer, wherever it lives: each engine's routes, as it answers them, over real HTTP.

A loopback stub answers the tokenizer routes with each engine's field names
(llama-cpp-python's ``/extras/*``, vLLM's and SGLang's ``/tokenize`` and
``/detokenize``, SGLang's ``/v1/*`` copies, llama.cpp's ``llama-server``) and 404
elsewhere; a small word tokenizer with BOS stands in for the model's. The real
vLLM server is exercised by ``tests/test_vllm.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import attrib
from attrib.backends.openai import OpenAIBackend
from attrib.backends.openai.tokenizer import ROUTES
from attrib.errors import RequestRejectedError
from tests.test_openai_endpoint import COMPLETIONS, ECHO, NOT_FOUND, Answer, Stub

BOS = 2
TEXT = "The capital of France is"


class WordTokenizer:
    """Ids for whitespace-led words, BOS first, as a server's tokenizer would give them."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def encode(self, text: str) -> list[int]:
        return [BOS, *(self.ids.setdefault(w, 100 + len(self.ids)) for w in re.findall(r"\s*\S+", text))]

    def decode(self, tokens: list[int]) -> str:
        texts = {i: w for w, i in self.ids.items()}
        return "".join(texts.get(t, "") for t in tokens)


# Each engine: its tokenize path, the field it reads, its detokenize path and the field it answers in.
ENGINES = {
    "llama-cpp-python": ("/extras/tokenize", "input", "/extras/detokenize", "text"),
    "vllm": ("/tokenize", "prompt", "/detokenize", "prompt"),
    "sglang": ("/v1/tokenize", "prompt", "/v1/detokenize", "text"),
    "llama-server": ("/tokenize", "content", "/detokenize", "content"),
}


def engine(name: str):
    tokenize, field, detokenize, answer = ENGINES[name]
    words = WordTokenizer()

    def script(method: str, path: str, body: Any) -> Answer:
        if path == COMPLETIONS:
            return Answer(body=ECHO)
        if path == tokenize:
            if name == "llama-server" and field not in body:
                return Answer(body={"tokens": []})  # llama-server's answer to a body without "content"
            if field not in body:
                return Answer(422, {"detail": [{"loc": ["body", field], "msg": "Field required"}]})
            return Answer(body={"tokens": words.encode(body[field]), "count": 0})
        if path == detokenize:
            return Answer(body={answer: words.decode(body["tokens"])})
        return NOT_FOUND

    return script


def backend(stub: Stub, cache: Path | bool, **options: Any) -> OpenAIBackend:
    options = {"max_retries": 1, "max_wait": 0.01, "timeout": 5.0, "scoring": "forced", **options}
    return OpenAIBackend("m", base_url=stub.url, api_key="sk-test-0123456789abcdef", cache=cache, **options)


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_units_come_from_each_engines_own_tokenizer_routes(tmp_path: Path, name: str) -> None:
    tokenize, field, _, _ = ENGINES[name]
    with Stub(engine(name)) as stub:
        api = backend(stub, tmp_path)
        tokens = api.tokenize(TEXT)
        description = api.describe()
        api.close()
    assert [TEXT[a:b] for a, b in tokens.spans] == ["The", " capital", " of", " France", " is"]
    assert description["tokenizer"] == "server"
    assert description["tokenizer_route"] == f"POST {tokenize} {{{field}}}"


def test_bos_is_dropped_and_the_route_is_remembered_across_backends(tmp_path: Path) -> None:
    with Stub(engine("vllm")) as stub:
        first = backend(stub, tmp_path)
        assert len(first.tokenize(TEXT)) == 5  # the BOS the route puts first is not a unit
        first.close()
        probes = stub.count("/extras/tokenize")
        again = backend(stub, tmp_path)
        assert len(again.tokenize(TEXT + " Paris")) == 6
        assert again.describe()["tokenizer_route"] == "POST /tokenize {prompt}"
        again.close()
    assert probes == 1 and stub.count("/extras/tokenize") == 1  # the earlier route is not probed again


def test_no_route_at_all_means_words_or_one_error_naming_the_routes(tmp_path: Path) -> None:
    def script(method: str, path: str, body: Any) -> Answer:
        return Answer(body=ECHO) if path == COMPLETIONS else NOT_FOUND

    with Stub(script) as stub:
        api = backend(stub, False)
        assert api.describe()["tokenizer"] == "words" and api.describe()["tokenizer_route"] is None
        api.close()
        strict = backend(stub, False, tokenizer="server")
        with pytest.raises(RequestRejectedError) as caught:
            strict.capabilities()
        strict.close()
    for routes in ROUTES:
        assert routes.tokenize in str(caught.value)
        assert stub.count(routes.tokenize) >= 1


def echo_of(words: WordTokenizer, prompt: Any) -> Answer:
    """An echo answer for a text or token-id prompt: every token with a log-probability, then one generated."""
    ids = list(prompt) if isinstance(prompt, list) else words.encode(prompt)
    tokens = [words.decode([t]) for t in ids[1:]] + ["."]
    return Answer(
        body={
            "choices": [
                {"text": "", "logprobs": {"tokens": tokens, "token_logprobs": [None] + [-1.0] * (len(tokens) - 1)}}
            ],
            "usage": {"prompt_tokens": len(ids), "completion_tokens": 1},
        }
    )


@pytest.mark.parametrize(("name", "sends_ids"), [("vllm", True), ("sglang", True), ("llama-cpp-python", False)])
def test_forced_scoring_sends_the_servers_token_ids_where_the_server_takes_them(name: str, sends_ids: bool) -> None:
    tokenize, field, detokenize, answer = ENGINES[name]
    words = WordTokenizer()
    prompts: list[Any] = []

    def script(method: str, path: str, body: Any) -> Answer:
        if path == COMPLETIONS:
            prompts.append(body["prompt"])
            return echo_of(words, body["prompt"])
        if path == tokenize and field in body:
            return Answer(body={"tokens": words.encode(body[field])})
        if path == detokenize:
            return Answer(body={answer: words.decode(body["tokens"])})
        return NOT_FOUND

    with Stub(script) as stub:
        api = backend(stub, False)
        attrib.attribute(TEXT, backend=api, method="itp", level="token", target=" Paris")
        api.close()
    scored = prompts  # the rung is named: no probe
    assert len(scored) == 6  # the full prompt and five leave-one-out variants
    if sends_ids:
        # BOS first, then exactly the variant's tokens: a deletion never re-tokenizes the text.
        assert all(isinstance(p, list) and p[0] == BOS for p in scored)
        assert sorted(len(p) for p in scored) == [6, 6, 6, 6, 6, 7]
    else:
        assert all(isinstance(p, str) for p in scored)

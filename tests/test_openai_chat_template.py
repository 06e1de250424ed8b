"""A user's chat template reaches the server's chat route (vLLM and SGLang take ``chat_template`` in the body).

A loopback stub answers chat completions with log-probabilities and keeps every
request body; the checks read what the backend sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrib
from attrib.backends.openai import OpenAIBackend
from attrib.testing.loopback import Loopback, Reply, Request
from tests.test_openai_endpoint import CHAT, CHAT_LOGPROBS, NOT_FOUND, Answer, Stub

TEMPLATE = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]


def chat_server(bodies: list[Any]):
    def script(method: str, path: str, body: Any) -> Answer:
        if path == CHAT:
            bodies.append(body)
            return Answer(body=CHAT_LOGPROBS)
        return NOT_FOUND

    return script


def backend(stub: Stub, **options: Any) -> OpenAIBackend:
    return OpenAIBackend(
        "m", base_url=stub.url, api_key="sk-test-0123456789abcdef", cache=False, max_retries=1, timeout=5.0, **options
    )


def test_the_template_given_is_sent_with_every_chat_request_and_recorded(tmp_path: Path) -> None:
    bodies: list[Any] = []
    with Stub(chat_server(bodies)) as stub:
        api = backend(stub, scoring="top_logprobs", tokenizer="words", chat_template=TEMPLATE)
        result = attrib.attribute(MESSAGES, backend=api, level="word", max_new_tokens=2)
        identity = api.identity()
        api.close()
    assert result.output == " Paris"
    assert len(bodies) > 2 and all(body["chat_template"] == TEMPLATE for body in bodies)
    assert identity["chat_template"] == TEMPLATE  # a template changes the scores: it keys the cache


def test_without_a_template_none_is_sent(tmp_path: Path) -> None:
    bodies: list[Any] = []
    with Stub(chat_server(bodies)) as stub:
        api = backend(stub, scoring="top_logprobs", tokenizer="words")
        attrib.attribute(MESSAGES, backend=api, level="word", max_new_tokens=2)
        identity = api.identity()
        api.close()
    assert bodies and not any("chat_template" in body for body in bodies)
    assert "chat_template" not in identity


def test_the_audit_commands_template_reaches_the_server(tmp_path: Path, monkeypatch) -> None:
    from attrib.cli import main

    template = tmp_path / "template.jinja"
    template.write_text(TEMPLATE, encoding="utf-8")
    bodies: list[Any] = []
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    with Stub(chat_server(bodies)) as stub:
        status = main(
            [
                "audit",
                "--backend",
                "openai",
                "--base-url",
                stub.url,
                "--model",
                "m",
                "--scoring",
                "top_logprobs",
                "--tokenizer",
                "words",
                "--no-cache",
                "--quiet",
                "--chat-template",
                str(template),
                "--system",
                "Be brief.",
                "--max-new-tokens",
                "2",
                "Capital of France?",
            ]
        )
    assert status == 0
    assert bodies and all(body.get("chat_template") == TEMPLATE for body in bodies)


def test_the_batch_commands_template_reaches_the_server(tmp_path: Path, monkeypatch) -> None:
    from attrib.cli import main

    template = tmp_path / "template.jinja"
    template.write_text(TEMPLATE, encoding="utf-8")
    chats = tmp_path / "chats.jsonl"
    chats.write_text(json.dumps({"id": "c1", "messages": MESSAGES}) + "\n", encoding="utf-8")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")

    def answer(request: Request) -> Reply:
        return Reply(body=CHAT_LOGPROBS) if request.route == CHAT else Reply(404, {"detail": "Not Found"})

    with Loopback(answer) as server:
        status = main(
            ["batch", str(chats), "-o", str(tmp_path / "out"), "--backend", "openai", "--base-url", server.url]
            + ["--model", "m", "--scoring", "top_logprobs", "--tokenizer", "words", "--no-cache", "--quiet"]
            + ["--chat-template", str(template), "--max-new-tokens", "2", "--level", "word"]
        )
    bodies = [r.body for r in server.requests if r.route == CHAT]
    assert status == 0
    assert len(bodies) > 2 and all(body.get("chat_template") == TEMPLATE for body in bodies)


def test_the_cite_commands_template_reaches_the_server(tmp_path: Path, monkeypatch) -> None:
    from attrib.cli import main

    template = tmp_path / "template.jinja"
    template.write_text(TEMPLATE, encoding="utf-8")
    sources = tmp_path / "sources.jsonl"
    sources.write_text(json.dumps({"id": "a", "text": "Paris is in France."}) + "\n", encoding="utf-8")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")

    def answer(request: Request) -> Reply:
        return Reply(body=CHAT_LOGPROBS) if request.route == CHAT else Reply(404, {"detail": "Not Found"})

    with Loopback(answer) as server:
        status = main(
            ["cite", "--sources", str(sources), "--question", "Where is Paris?", "--template", "chat"]
            + ["--backend", "openai", "--base-url", server.url, "--model", "m", "--scoring", "top_logprobs"]
            + ["--tokenizer", "words", "--no-cache", "--quiet", "--chat-template", str(template)]
            + ["--max-new-tokens", "2"]
        )
    bodies = [r.body for r in server.requests if r.route == CHAT]
    assert status == 0
    assert len(bodies) > 2 and all(body.get("chat_template") == TEMPLATE for body in bodies)

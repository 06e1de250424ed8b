"""attrib through vLLM (CPU build, on loopback) against the in-process transformers backend on the same weights.

The server serves the embedded Gemma 3 270M as the float32 checkpoint ``bash
.ci/vllm-env`` made; the in-process backend loads that same directory. Both are
float32 on the CPU, so outputs, token units and scores must agree: the output
exactly, the units exactly (vLLM's own tokenizer through its ``/tokenize`` route),
scores within 1e-3 nats.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

import attrib
from attrib.backends.openai import OpenAIBackend

pytestmark = [pytest.mark.vllm, pytest.mark.model, pytest.mark.torch]

ROOT = Path(__file__).resolve().parent.parent
PASSAGE = (ROOT / "examples" / "needle.txt").read_text(encoding="utf-8")
CHAT = [
    {"role": "system", "content": "You are a terse assistant. The vault code is 5190."},
    {"role": "user", "content": "What is the vault code? Reply with the number."},
]
NATS = 1e-3
#: Gemma's turns without the system role: a user's own template.
CHAT_TEMPLATE = (
    "{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
    "{{ m['content'] }}<end_of_turn>\n{% endfor %}<start_of_turn>model\n"
)


@pytest.fixture(scope="module")
def weights():
    """The float32 checkpoint vLLM serves, loaded in process by transformers."""
    from attrib.backends.transformers import TransformersBackend
    from attrib.testing.vllm_env import model_dir

    backend = TransformersBackend(str(model_dir()), device="cpu", dtype="float32")
    yield backend
    backend.close()


def served(server, tmp_path: Path, **options) -> OpenAIBackend:
    return OpenAIBackend(
        server.model, base_url=server.url, api_key=server.key, cache=tmp_path, timeout=600.0, **options
    )


def _same(local: attrib.Attribution, remote: attrib.Attribution) -> None:
    assert remote.output == local.output
    assert remote.output_tokens == local.output_tokens
    assert [(u.text, u.start, u.end) for u in remote.units] == [(u.text, u.start, u.end) for u in local.units]
    assert np.allclose(remote.base_logprobs, local.base_logprobs, atol=NATS, rtol=0)
    assert remote.scores.shape == local.scores.shape
    assert np.allclose(remote.scores, local.scores, atol=NATS, rtol=0)


def test_the_readme_passage_through_vllm_is_the_in_process_attribution(vllm_server, weights, tmp_path: Path) -> None:
    api = served(vllm_server, tmp_path)
    local = attrib.attribute(PASSAGE, backend=weights, level="token", max_new_tokens=5)
    remote = attrib.attribute(PASSAGE, backend=api, level="token", max_new_tokens=5)
    description = api.describe()
    api.close()
    assert description["scoring"] == "forced" and description["tokenizer"] == "server"
    assert description["tokenizer_route"] == "POST /tokenize {prompt}"
    assert remote.method == local.method == "hipe"
    assert len(remote.units) == len(weights.tokenize(PASSAGE))  # token units: the model's own tokens
    _same(local, remote)
    # HiPe through vLLM finds the in-process top unit (a digit of the decisive code).
    assert remote.top(1)[0].unit.text == local.top(1)[0].unit.text
    assert remote.top(1)[0].unit.start == local.top(1)[0].unit.start


def test_a_chat_through_vllm_is_the_in_process_attribution(vllm_server, weights, tmp_path: Path) -> None:
    api = served(vllm_server, tmp_path)
    local = attrib.attribute(CHAT, backend=weights, level="token", max_new_tokens=4, seed=0)
    remote = attrib.attribute(CHAT, backend=api, level="token", max_new_tokens=4, seed=0)
    api.close()
    _same(local, remote)
    assert remote.roles is not None and local.roles is not None
    assert remote.roles.keys() == local.roles.keys()
    assert all(abs(remote.roles[k] - local.roles[k]) <= NATS for k in local.roles)


def test_the_chat_route_has_a_template_and_a_users_template_reaches_it(vllm_server, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {vllm_server.key}"} if vllm_server.key else {}
    body = {"model": vllm_server.model, "messages": CHAT[1:], "max_tokens": 1, "temperature": 0}
    answer = httpx.post(f"{vllm_server.url}/chat/completions", json=body, headers=headers, timeout=300)
    assert answer.status_code == 200, answer.text  # without a template vLLM answers 400
    # A template in the request is the one vLLM applies (it refuses one without --trust-request-chat-template).
    template = "{{ messages[0]['content'] }}"
    rendered = httpx.post(
        f"{vllm_server.root}/tokenize",
        json={"model": vllm_server.model, "messages": CHAT[1:], "chat_template": template},
        headers=headers,
        timeout=60,
    ).json()
    plain = httpx.post(
        f"{vllm_server.root}/tokenize",
        json={"model": vllm_server.model, "prompt": CHAT[1]["content"], "add_special_tokens": False},
        headers=headers,
        timeout=60,
    ).json()
    assert rendered.get("tokens") == plain["tokens"], rendered
    # attrib's chat rung sends the user's template with every chat request, and vLLM takes it.
    api = served(vllm_server, tmp_path, scoring="top_logprobs", chat_template=CHAT_TEMPLATE)
    result = attrib.attribute(CHAT[1:], backend=api, method="itp", level="sentence", max_new_tokens=2)
    api.close()
    assert result.backend["scoring"] == "top_logprobs" and result.backend["chat_template"] == CHAT_TEMPLATE

"""Contrastive attribution through the OpenAI-compatible backend, against llama-cpp-python's server on loopback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import attrib
from attrib.backends.openai import OpenAIBackend
from attrib.errors import InputError
from attrib.metrics import spearman

pytestmark = [pytest.mark.server, pytest.mark.model]

#: Short: the server's echo scoring costs ~0.35 s per token, and a contrast doubles the requests.
PROMPT = "Maria keeps her key under the blue pot. Tom keeps his under the red mat. Where is Maria's key? Under the"


def backend(server, cache, **options) -> OpenAIBackend:
    return OpenAIBackend(server.model, base_url=server.url, api_key=server.key, cache=cache, **options)


def test_forced_scoring_gives_the_local_models_contrastive_scores_with_two_requests_a_call(
    llama_server, llama, tmp_path: Path
) -> None:
    options = {"method": "itp", "level": "sentence", "target": " blue", "contrast": " red"}
    local = attrib.attribute(PROMPT, backend=llama, **options)
    api = backend(llama_server, tmp_path, timeout=1800.0)
    remote = attrib.attribute(PROMPT, backend=api, **options)
    api.close()
    assert remote.backend["scoring"] == "forced"
    assert remote.contrast is not None and remote.contrast.text == " red"
    assert remote.output_tokens == local.output_tokens
    assert remote.stats.calls == local.stats.calls
    assert remote.stats.backend_usage["requests"] == 2 * remote.stats.calls
    assert spearman(local.unit_scores, remote.unit_scores) >= 0.9
    assert remote.top(1)[0].unit.text == local.top(1)[0].unit.text
    assert np.allclose(remote.base_logprobs, local.base_logprobs, atol=0.1)


@pytest.mark.parametrize("scoring", ["text", "top_logprobs"])
def test_rungs_without_forced_log_probabilities_refuse_a_contrast(llama_server, tmp_path: Path, scoring: str) -> None:
    api = backend(llama_server, tmp_path, scoring=scoring)
    with pytest.raises(InputError, match="contrast needs the log-probabilities of a given output"):
        attrib.attribute(PROMPT, backend=api, level="sentence", contrast=" red")
    usage = api.usage_snapshot()
    api.close()
    assert usage.get("completion_tokens", 0) == 0  # refused before anything was generated or scored

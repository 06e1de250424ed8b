"""The in-process llama.cpp backend on the embedded Gemma 3 270M."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from attrib.backend import ScoreRequest

pytestmark = pytest.mark.model

PASSAGE = (
    "Python was created in the early 1990s by Guido van Rossum at Stichting Mathematisch "
    "Centrum in the Netherlands as a successor of a language called ABC. "
)


@pytest.mark.parametrize(
    "text", ["The capital of Japan is", "a  b\n\nPara two. 4817 é日本", "😀 x <start_of_turn>user"]
)
def test_tokenization_maps_every_token_back_onto_the_text(llama, text):
    tokens = llama.tokenize(text)
    assert "".join(text[a:b] for a, b in (tokens.spans[i] for i in range(len(tokens)))) == text
    assert llama.detokenize(tokens.ids) == text


def test_special_token_syntax_in_a_prompt_is_text(llama):
    tokens = llama.tokenize("<start_of_turn>")
    assert len(tokens) > 1  # not the single control token


def test_greedy_generation_knows_a_common_fact(llama):
    generation = llama.generate(llama.tokenize("The capital of Japan is").ids, max_new_tokens=3)
    assert llama.detokenize(generation.ids).startswith(" Tokyo")
    assert generation.tokens_evaluated >= 5


def test_scores_with_prefix_reuse_match_a_fresh_evaluation(llama):
    from attrib.backends.llama import LlamaBackend

    text = PASSAGE * 6 + "The access code for the north gate is 4817. Answer: the north gate code is"
    tokens = llama.tokenize(text)
    continuation = llama.tokenize(" 4817").ids
    requests = [ScoreRequest(tokens.ids, continuation)] + [
        ScoreRequest(tokens.ids[:i] + tokens.ids[i + 3 :], continuation) for i in range(0, len(tokens), 29)
    ]
    reused = llama.score(requests)
    total = sum(r.tokens_evaluated for r in reused)
    full = sum(len(r.prompt_ids) + len(continuation) for r in requests)
    assert total < 0.75 * full  # the shared prefixes were not recomputed
    fresh_backend = LlamaBackend()
    try:
        fresh = []
        for request in requests:
            fresh_backend._free_context()  # a new context: nothing to reuse
            fresh.append(fresh_backend.score([request])[0])
    finally:
        fresh_backend.close()
    # llama.cpp's quantised kernels differ by batch shape (measured: up to ~0.01 nats);
    # a wrong prefix would be off by whole nats.
    for a, b in zip(reused, fresh, strict=True):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=0.05)
    assert reused[0].logprobs.sum() > -1.0  # the model copies the code from context


def test_log_probabilities_are_normalised(llama):
    tokens = llama.tokenize("The capital of Japan is")
    (result,) = llama.score([ScoreRequest(tokens.ids, llama.tokenize(" Tokyo").ids)])
    assert result.logprobs.shape == (1,)
    assert -5.0 < result.logprobs[0] < 0.0


def test_memory_for_a_4000_token_prompt_stays_under_2_gb():
    script = textwrap.dedent(
        """
        import json, resource
        from attrib.backend import ScoreRequest
        from attrib.backends.llama import LlamaBackend
        backend = LlamaBackend()
        sentence = "The museum keeps old maps, letters and tools from the harbour town. "
        tokens = backend.tokenize(sentence * 290)
        continuation = backend.tokenize(" The museum keeps old maps").ids
        requests = [ScoreRequest(tokens.ids, continuation)] + [
            ScoreRequest(tokens.ids[:i] + tokens.ids[i + 8 :], continuation) for i in (3800, 3900)
        ]
        results = backend.score(requests)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps({"tokens": len(tokens), "peak": peak, "evaluated": sum(r.tokens_evaluated for r in results)}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["tokens"] >= 4000
    assert report["peak"] < 2 * 1024**3, f"peak resident memory {report['peak'] / 1e9:.2f} GB"

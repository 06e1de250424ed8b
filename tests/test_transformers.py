"""The transformers backend on the embedded Gemma 3 270M weights (GGUF, dequantized, float32, CPU)."""

from __future__ import annotations

import numpy as np
import pytest

from attrib.backend import ScoreRequest

pytestmark = [pytest.mark.model, pytest.mark.torch]

PASSAGE = (
    "Python was created in the early 1990s by Guido van Rossum at Stichting Mathematisch "
    "Centrum in the Netherlands as a successor of a language called ABC. "
)
QUESTION = "The access code for the north gate is 4817. Answer: the north gate code is"


@pytest.fixture(scope="module")
def hf():
    """The embedded weights through transformers, loaded once for this module."""
    from attrib.backends.transformers import TransformersBackend

    backend = TransformersBackend(device="cpu")
    yield backend
    backend.close()


def _alone(backend, request: ScoreRequest) -> np.ndarray:
    """Score one request from an empty cache, batch size 1."""
    backend._forward.reset()
    return np.asarray(backend.score([request])[0].logprobs)


@pytest.mark.parametrize(
    "text", ["The capital of Japan is", "a  b\n\nPara two. 4817 é日本", "😀 x <start_of_turn>user"]
)
def test_tokens_and_spans_are_the_llama_backends(hf, llama, text):
    ours, theirs = hf.tokenize(text), llama.tokenize(text)
    assert (ours.ids, ours.spans, ours.edges) == (theirs.ids, theirs.spans, theirs.edges)
    assert hf.detokenize(ours.ids) == text


def test_special_token_syntax_is_text_in_prompts_and_markup_in_templates(hf):
    assert len(hf.tokenize("<start_of_turn>")) > 1
    assert len(hf.tokenize_markup("<start_of_turn>")) == 1


def test_greedy_generation_knows_a_common_fact(hf):
    generation = hf.generate(hf.tokenize("The capital of Japan is").ids, max_new_tokens=3)
    assert hf.detokenize(generation.ids).startswith(" Tokyo")
    assert generation.tokens_evaluated == 6 + 2  # BOS + 5 prompt tokens, then two generated tokens fed back


def test_batched_scores_equal_one_at_a_time_scores_within_1e_4_nats(hf):
    ids = hf.tokenize(PASSAGE * 3 + QUESTION).ids
    continuation = hf.tokenize(" 4817.").ids
    # Neighbouring deletions near the end share long prefixes: they are batched.
    requests = [ScoreRequest(ids, continuation)] + [
        ScoreRequest(ids[:i] + ids[i + 1 :], continuation) for i in range(len(ids) - 12, len(ids))
    ]
    requests.append(ScoreRequest(ids[:5] + ids[9:], continuation[:2]))  # a shorter continuation in the same call
    before = hf.usage_snapshot()
    batched = hf.score(requests)
    after = hf.usage_snapshot()
    assert after["largest_batch"] > 1 and after["forward_batches"] - before["forward_batches"] < len(requests)
    for request, result in zip(requests, batched, strict=True):
        np.testing.assert_allclose(result.logprobs, _alone(hf, request), atol=1e-4, rtol=0)
    # The reference without any cache: one plain forward pass with full logits.
    sequence = [2, *requests[3].prompt_ids, *continuation]
    plain = hf.log_probabilities(sequence)[-len(continuation) :]
    np.testing.assert_allclose(batched[3].logprobs, plain, atol=1e-4, rtol=0)
    assert batched[0].logprobs.sum() > -2.0  # the model copies the code from context


def test_cached_scores_past_the_sliding_window_equal_a_plain_forward_pass(hf):
    # Gemma 3's sliding-window layers see 512 positions; the kept cache holds all of them
    # and the mask applies the window, so a prompt of ~800 tokens must score as without a cache.
    ids = hf.tokenize(PASSAGE * 24 + QUESTION).ids
    assert len(ids) > 700
    continuation = hf.tokenize(" 4817.").ids
    requests = [ScoreRequest(ids[:p] + ids[p + 2 :], continuation) for p in (10, len(ids) - 40, len(ids) - 39)]
    hf._forward.reset()
    for request, result in zip(requests, hf.score(requests), strict=True):
        plain = hf.log_probabilities([2, *request.prompt_ids, *continuation])[-len(continuation) :]
        np.testing.assert_allclose(result.logprobs, plain, atol=1e-4, rtol=0)


def test_a_kept_prefix_that_differs_only_in_its_last_token_is_never_reused(hf):
    ids = list(hf.tokenize(PASSAGE * 2 + "The access code for the north gate is 4817. The code for the north gate").ids)
    continuation = hf.tokenize(" is 4817").ids
    # Two groups: prefixes identical except their last token (" gate" / " door"),
    # each followed by two suffixes that are batched over that prefix.
    last = len(ids) - 1
    other = hf.tokenize(" door").ids[0]
    assert other != ids[last]
    tails = [[ids[last]], [other]]
    requests = [
        ScoreRequest(tuple(ids[:last] + tail + extra), continuation) for tail in tails for extra in ([], [ids[last]])
    ]
    hf._forward.reset()
    batched = hf.score(requests)
    for request, result in zip(requests, batched, strict=True):
        np.testing.assert_allclose(result.logprobs, _alone(hf, request), atol=1e-4, rtol=0)
    assert abs(batched[0].logprobs.sum() - batched[2].logprobs.sum()) > 0.05  # the last token matters
    # Across calls too: the cache kept from " gate" must be cut before " door" is scored.
    hf.score([requests[0]])
    np.testing.assert_allclose(hf.score([requests[2]])[0].logprobs, batched[2].logprobs, atol=1e-4, rtol=0)


def test_tokens_evaluated_count_the_prefix_once_and_every_suffix(hf):
    ids = hf.tokenize(PASSAGE * 2 + QUESTION).ids
    continuation = hf.tokenize(" 4817").ids
    requests = [ScoreRequest(ids[:i] + ids[i + 1 :], continuation) for i in range(len(ids) - 6, len(ids))]
    hf._forward.reset()
    before = hf.usage_snapshot()
    results = hf.score(requests)
    after = hf.usage_snapshot()
    counted = sum(r.tokens_evaluated for r in results)
    computed = (after["prefix_tokens"] - before["prefix_tokens"]) + (after["suffix_tokens"] - before["suffix_tokens"])
    assert counted == computed
    full = sum(1 + len(r.prompt_ids) + len(continuation) - 1 for r in requests)
    assert counted < full / 2  # the shared prefix was computed once, not six times


def test_out_of_memory_halves_the_batch_and_retries(hf, monkeypatch):
    import torch

    ids = hf.tokenize(PASSAGE + QUESTION).ids
    continuation = hf.tokenize(" 4817").ids
    requests = [ScoreRequest(ids[:i] + ids[i + 1 :], continuation) for i in range(len(ids) - 8, len(ids))]
    expected = hf.score(requests)
    model = hf._model
    original = type(model).forward

    def failing(self, *args, **kwargs):
        if kwargs["input_ids"].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "forward", failing)
    budget = hf._scorer.budget
    try:
        retried = hf.score(requests)
    finally:
        hf._scorer.budget = budget
    assert hf.usage_snapshot()["out_of_memory_retries"] >= 1
    for a, b in zip(expected, retried, strict=True):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-4, rtol=0)


def test_word_level_leave_one_out_on_the_needle_agrees_with_the_llama_backend(hf, llama):
    import attrib
    from attrib.metrics import spearman

    with open("examples/needle.txt", encoding="utf-8") as handle:
        prompt = handle.read()
    theirs = attrib.attribute(prompt, backend=llama, method="itp", level="word")
    target = "".join(theirs.output_tokens)
    ours = attrib.attribute(prompt, backend=hf, method="itp", level="word", target=target)
    assert [u.text for u in ours.units] == [u.text for u in theirs.units]
    a, b = ours.unit_scores, theirs.unit_scores
    assert ours.top(1)[0].index == theirs.top(1)[0].index
    assert {u.index for u in ours.top(5)} == {u.index for u in theirs.top(5)}
    assert np.corrcoef(a, b)[0, 1] >= 0.99
    # Words whose effect is below the backends' numeric disagreement rank at random;
    # above 0.3 nats the ranking is the same (docs/transformers.md has the measurements).
    clear = (np.abs(a) >= 0.3) | (np.abs(b) >= 0.3)
    assert clear.sum() >= 20 and spearman(a[clear], b[clear]) >= 0.95
    # llama.cpp multiplies with 8-bit-quantized activations, transformers with the
    # dequantized weights in float32: per-token log-probabilities differ a little.
    assert ours.base_logprobs is not None and theirs.base_logprobs is not None
    np.testing.assert_allclose(ours.base_logprobs, theirs.base_logprobs, atol=0.1, rtol=0)


def test_token_level_hipe_finds_the_decisive_fact_at_the_llama_backends_cost(hf, llama):
    import attrib
    from benchmarks.needle import make_needle_case

    case = make_needle_case(300, seed=1, count_tokens=lambda text: len(llama.tokenize(text)))
    ours = attrib.attribute(case.prompt, backend=hf, target=case.target, method="hipe", level="token")
    theirs = attrib.attribute(case.prompt, backend=llama, target=case.target, method="hipe", level="token")
    top = ours.top(1)[0].unit
    assert top.start < case.fact[1] and case.fact[0] < top.end
    assert abs(ours.stats.tokens_evaluated / theirs.stats.tokens_evaluated - 1) <= 0.10

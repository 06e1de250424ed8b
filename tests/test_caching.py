"""The cache wrapper: any backend's scores and generations persist, so re-runs are free and runs resume."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

import attrib
from attrib.backend import Generation, Messages, ScoreRequest, ScoreResult
from attrib.backends.toy import ToyBackend
from attrib.cache.store import ResponseCache
from attrib.cache.wrapper import CachingBackend

PROMPT = "The capital of France is Paris. Berlin is in Germany. The sky is blue today."


class Counting(ToyBackend):
    """The toy model, counting what reaches it; ``fail_after`` makes it die mid-run like a killed process."""

    def __init__(self, *, fail_after: int | None = None, **options: object) -> None:
        super().__init__(sensitivity={"paris": 2.0, "capital": 1.0}, output=" yes it is", **options)  # type: ignore[arg-type]
        self.scored = 0
        self.generated = 0
        self.fail_after = fail_after

    def score(
        self, requests: Sequence[ScoreRequest], *, on_result: Callable[[int, ScoreResult], None] | None = None
    ) -> list[ScoreResult]:
        results = []
        for index, request in enumerate(requests):
            if self.fail_after is not None and self.scored >= self.fail_after:
                raise KeyboardInterrupt
            (result,) = super().score([request])
            self.scored += 1
            results.append(result)
            if on_result is not None:
                on_result(index, result)
        return results

    def generate(
        self, prompt_ids: Sequence[int], *, max_new_tokens: int, messages: Messages | None = None
    ) -> Generation:
        self.generated += 1
        return super().generate(prompt_ids, max_new_tokens=max_new_tokens, messages=messages)


def test_a_rerun_is_answered_from_the_cache_with_the_same_result(tmp_path: Path) -> None:
    first_model = Counting()
    first = attrib.attribute(PROMPT, backend=first_model, method="itp", level="word", cache=tmp_path)
    assert first_model.scored == first.stats.calls and first_model.generated == 1

    again_model = Counting()
    again = attrib.attribute(PROMPT, backend=again_model, method="itp", level="word", cache=tmp_path)
    assert again_model.scored == 0 and again_model.generated == 0
    assert again.stats.calls == first.stats.calls  # calls count cached answers too: the same schedule
    assert again.stats.backend_usage["cache_hits"] == first.stats.calls + 1  # and the generation
    assert again.stats.tokens_evaluated == 0
    np.testing.assert_array_equal(again.scores, first.scores)
    assert again.output == first.output


def test_an_interrupted_run_resumes_without_repeating_calls(tmp_path: Path) -> None:
    reference = attrib.attribute(PROMPT, backend=Counting(), method="itp", level="word")
    with pytest.raises(KeyboardInterrupt):
        attrib.attribute(PROMPT, backend=Counting(fail_after=5), method="itp", level="word", cache=tmp_path)
    resumed_model = Counting()
    resumed = attrib.attribute(PROMPT, backend=resumed_model, method="itp", level="word", cache=tmp_path)
    assert resumed_model.scored == reference.stats.calls - 5
    np.testing.assert_array_equal(resumed.scores, reference.scores)


def test_keys_separate_models_samples_and_chats(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    toy = CachingBackend(Counting(), cache, close_backend=False)
    other = CachingBackend(ToyBackend(sensitivity={"sky": 3.0}, output=" yes it is"), cache, close_backend=False)
    tokens = toy.tokenize(PROMPT)
    output = toy.tokenize(" yes").ids
    plain = ScoreRequest(tokens.ids, output, tokens.text)
    repeat = ScoreRequest(tokens.ids, output, tokens.text, sample=1)
    chat = ScoreRequest(tokens.ids, output, tokens.text, messages=(("user", PROMPT),))
    toy.score([plain, repeat, chat])
    assert toy.hits == 0
    toy.score([plain])
    assert toy.hits == 1
    other.score([plain])  # same request, a model with another identity: not a hit
    assert other.hits == 0


def test_a_backend_passed_in_is_not_closed_by_its_cache(tmp_path: Path) -> None:
    class Closing(Counting):
        closed = False

        def close(self) -> None:
            self.closed = True

    model = Closing()
    attrib.attribute(PROMPT, backend=model, method="itp", level="sentence", cache=tmp_path)
    assert not model.closed
    wrapper = CachingBackend(model, ResponseCache(tmp_path))
    wrapper.close()
    assert model.closed

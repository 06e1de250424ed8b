"""attrib.attribute: argument checking, target handling and import hygiene."""

from __future__ import annotations

import subprocess
import sys

import pytest

import attrib
from attrib.backends.toy import ToyBackend
from attrib.errors import (
    BudgetError,
    EmptyOutputError,
    EmptyPromptError,
    InputError,
    PromptTooLongError,
    UnknownNameError,
)


@pytest.mark.parametrize("prompt", ["", "   \n\t "])
def test_empty_prompt(prompt, toy):
    with pytest.raises(EmptyPromptError):
        attrib.attribute(prompt, backend=toy)


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("method", "hipee", "did you mean 'hipe'"),
        ("level", "sentences", "did you mean 'sentence'"),
        ("perturbation", "remove", "unknown perturbation"),
        ("backend", "lama", "did you mean 'llama'"),
    ],
)
def test_unknown_names_fail_before_any_work(option, value, match):
    with pytest.raises(UnknownNameError, match=match):
        attrib.attribute("some prompt", **{option: value})


def test_prompt_longer_than_the_context_says_how_long_and_the_limit():
    toy = ToyBackend(context_length=64)
    with pytest.raises(PromptTooLongError, match="over the model's context of 64 tokens") as error:
        attrib.attribute("word " * 100, backend=toy)
    assert error.value.limit == 64
    assert error.value.n_tokens > 64


def test_target_is_tokenized_with_the_prompt_and_split_on_a_token_edge(toy):
    result = attrib.attribute("The capital of France is", backend=toy, target=" Paris", method="itp")
    assert result.output == " Paris"
    assert result.output_tokens == [" Pari", "s"]
    assert result.prompt == "The capital of France is"
    assert result.stats.generated_tokens == 0


def test_a_trailing_space_that_merges_with_the_target_moves_to_the_output(toy):
    with pytest.warns(UserWarning, match="merge with the target's first token"):
        result = attrib.attribute("The capital of France is ", backend=toy, target="Paris", method="itp")
    assert result.prompt == "The capital of France is"
    assert result.output == " Paris"


def test_empty_generation_is_an_error_that_points_to_target():
    with pytest.raises(EmptyOutputError, match="target"):
        attrib.attribute("hello there", backend=ToyBackend(output=""))


def test_budget_below_two_is_refused(toy):
    with pytest.raises(BudgetError):
        attrib.attribute("hello there", backend=toy, budget=1)


def test_bad_scheduler_options_are_input_errors():
    with pytest.raises(InputError):
        attrib.HiPe(max_depth=-1)
    with pytest.raises(UnknownNameError, match="threshold"):
        attrib.HiPe(threshold="median")


def test_importing_attrib_loads_no_model_library():
    code = "import sys, attrib; print(sorted(m for m in ('llama_cpp', 'openai') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_stats_count_calls_and_tokens(toy):
    result = attrib.attribute("The capital of France is Paris. " * 4, backend=toy, method="itp", level="word")
    assert result.stats.calls == len(result.units) + 1
    assert 0 < result.stats.tokens_evaluated
    assert result.stats.seconds > 0
    assert result.backend["name"] == "toy"

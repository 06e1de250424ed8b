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
    assert result.stats.tokens_evaluated > 0
    assert result.stats.seconds > 0
    assert result.backend["name"] == "toy"


# ----------------------------------------------------------------- dry run, noise floor, backends by name

PROMPT = "The capital of France is Paris, a large city. The capital question asks about it."


def test_plan_is_exact_for_itp_and_an_upper_bound_for_hipe() -> None:
    toy = ToyBackend(sensitivity={"paris": 2.0, "capital": 1.0}, output=" yes it is")
    exact = attrib.plan(PROMPT, backend=toy, method="itp", level="word", max_new_tokens=3)
    run = attrib.attribute(PROMPT, backend=toy, method="itp", level="word", max_new_tokens=3)
    assert exact.calls_exact and exact.calls == run.stats.calls == len(run.units) + 1
    assert exact.generation_calls == 1 and exact.output_tokens == 3
    assert exact.tokens >= exact.calls * 3
    bound = attrib.plan(PROMPT, backend=toy, method="hipe", level="token", max_new_tokens=3)
    hipe = attrib.attribute(PROMPT, backend=toy, method="hipe", level="token", max_new_tokens=3)
    assert not bound.calls_exact and bound.calls >= hipe.stats.calls
    assert "at most" in bound.describe()
    capped = attrib.plan(PROMPT, backend=toy, method="hipe", level="token", max_new_tokens=3, budget=10)
    assert capped.calls <= 10


def test_noise_floor_marks_units_inside_the_spread() -> None:
    noisy = ToyBackend(sensitivity={"paris": 2.0}, output=" yes", noise=0.05)
    result = attrib.attribute(PROMPT, backend=noisy, method="itp", level="word", noise_samples=6)
    assert result.noise is not None and result.noise["samples"] == 7
    assert 0.0 < result.noise["sd_total"] < 0.2
    flags = result.within_noise
    paris = [i for i, u in enumerate(result.units) if "Paris" in u.text]
    assert not flags[paris[0]]
    assert flags.sum() >= len(result.units) - 3  # units the toy ignores score only noise
    assert result.stats.calls == len(result.units) + 1 + 6
    again = attrib.Attribution.from_json(result.to_json())
    assert list(again.within_noise) == list(flags)


def test_budget_counts_noise_samples() -> None:
    toy = ToyBackend(sensitivity={"paris": 2.0})
    words = len(attrib.attribute(PROMPT, backend=toy, method="itp", level="word").units)
    with pytest.raises(attrib.BudgetError):
        attrib.attribute(PROMPT, backend=toy, method="itp", level="word", budget=words + 1, noise_samples=2)


class _WordsOnly(ToyBackend):
    def capabilities(self) -> attrib.Capabilities:
        return attrib.Capabilities(has_tokenizer=False)


def test_token_level_becomes_word_level_without_a_tokenizer() -> None:
    with pytest.warns(UserWarning, match="no tokenizer"):
        result = attrib.attribute(PROMPT, backend=_WordsOnly(sensitivity={"paris": 1.0}), method="itp")
    assert result.level == "word"


def test_backend_by_name_with_options_is_built_and_closed() -> None:
    result = attrib.attribute(
        PROMPT,
        backend="toy",
        backend_options={"sensitivity": {"paris": 2.0}, "output": " ok"},
        method="itp",
        level="word",
    )
    assert result.top(1)[0].unit.text.strip().startswith("Paris")
    with pytest.raises(attrib.InputError, match="backend_options"):
        attrib.attribute(PROMPT, backend=ToyBackend(), backend_options={"output": " x"})


def test_a_dry_run_of_an_early_stopping_hipe_is_still_an_upper_bound(toy):
    from attrib.methods.hipe import HiPe

    prompt = "The weather was mild. The capital of France is Paris. Markets were busy. " * 4
    bound = attrib.plan(prompt, backend=toy, method=HiPe(order="best", top_k=1), level="word", target=" yes it is")
    plain = attrib.plan(prompt, backend=toy, method=HiPe(order="best"), level="word", target=" yes it is")
    run = attrib.attribute(prompt, backend=toy, method=HiPe(order="best", top_k=1), level="word", target=" yes it is")
    assert bound.calls == plain.calls >= run.stats.calls


def test_a_dry_run_honours_every_hipe_parameter_but_the_early_stop(toy) -> None:
    """plan() derives its scheduler with replace(top_k=None): every other field is kept, so a
    parameter added to HiPe later reaches dry runs without being listed anywhere (it used
    to rebuild HiPe field by field)."""
    import dataclasses

    from attrib.methods.hipe import HiPe

    prompt = "The capital of France is Paris. " * 6 + "\n\nThe capital of Japan is Tokyo. " * 6
    variants = {"max_depth": 2, "leaf_group": 2, "order": "depth", "threshold": "midrange"}
    assert set(variants) | {"top_k"} == {f.name for f in dataclasses.fields(HiPe)}
    for name, value in variants.items():
        stopped = attrib.plan(prompt, backend=toy, method=HiPe(**{name: value}, top_k=2), level="word")
        plain = attrib.plan(prompt, backend=toy, method=HiPe(**{name: value}), level="word")
        assert stopped == plain, name
    default = attrib.plan(prompt, backend=toy, method=HiPe(), level="word")
    assert attrib.plan(prompt, backend=toy, method=HiPe(leaf_group=2), level="word").calls != default.calls
    assert attrib.plan(prompt, backend=toy, method=HiPe(max_depth=1), level="word").calls < default.calls

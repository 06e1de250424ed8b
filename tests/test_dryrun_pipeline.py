"""The dry run (:func:`attrib.plan`) runs the run's own pipeline against a counting stand-in.

Both go through :func:`attrib.pipeline.score` (the budget check, the unperturbed prompt,
noise samples, message coalitions, the regions' reserves) and the same output
resolution (:func:`attrib.target.resolve_output`), so the plan refuses what the run
refuses and its counts bound the run's: equal for a method whose schedule is fixed in
advance, at least the run's for an adaptive one (HiPe's tree, hierarchical).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pytest

import attrib
from attrib import pipeline, registry
from attrib.backend import Capabilities
from attrib.backends.toy import ToyBackend
from attrib.errors import BudgetError, InputError
from attrib.perturbation import Perturbation, Span, Variant, merge_spans
from attrib.segmentation import Tokenization

PROMPT = "The sky is blue. Paris is the capital of France. Cats sleep all day."
CHAT = [
    {"role": "system", "content": "Be brief. Paris is the capital of France."},
    {"role": "user", "content": "Is the sky blue? Cats sleep all day."},
]
SENSITIVITY = {"paris": 2.0, "capital": 1.0, "cats": 0.5, "blue": -0.25}


def _methods() -> list[str]:
    names = registry.methods.names()
    try:
        import sklearn  # noqa: F401
    except ImportError:
        names.remove("surrogate")  # needs attrib[fit]
    return names


def _both(prompt: object, **options: object) -> tuple[attrib.Plan | None, attrib.Attribution | None]:
    """The plan and the run of one case on the toy backend; ``None`` for a refused budget."""
    outcomes: list[object] = []
    for entry in (attrib.plan, attrib.attribute):
        toy = ToyBackend(sensitivity=SENSITIVITY, output=" yes it")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a chat template's cue merging with the target
            try:
                outcomes.append(entry(prompt, backend=toy, **options))
            except BudgetError:
                outcomes.append(None)
    planned, result = outcomes
    assert planned is None or isinstance(planned, attrib.Plan)
    assert result is None or isinstance(result, attrib.Attribution)
    return planned, result


@pytest.mark.parametrize("budget", [None, 12])
@pytest.mark.parametrize("contrast", [None, " no"])
@pytest.mark.parametrize("prompt", [PROMPT, CHAT], ids=["plain", "chat"])
@pytest.mark.parametrize("method", _methods())
def test_the_plan_bounds_the_run_of_every_registered_method(method, prompt, contrast, budget) -> None:
    options = {"method": method, "level": "word", "target": " yes it", "contrast": contrast, "budget": budget}
    planned, result = _both(prompt, **options)
    scheduler = registry.methods.instance(method)
    if result is None:  # hierarchical's check is a lower bound when HiPe picks its region
        assert planned is None or scheduler.adaptive
        return
    assert planned is not None, "plan() refused a budget the run accepted"
    assert planned.calls >= result.stats.calls
    assert planned.contrast_tokens == (1 if contrast else 0)
    if budget is not None:
        assert planned.calls <= budget
    # the plan counts every request's tokens whole; the toy, like llama, reuses a shared prefix
    assert planned.tokens >= result.stats.tokens_evaluated
    assert planned.calls_exact is not scheduler.adaptive
    if not scheduler.adaptive:
        assert planned.calls == result.stats.calls


def test_plan_and_run_go_through_the_same_pipeline_function(monkeypatch) -> None:
    seen: list[str] = []
    real = pipeline.score

    def recording(*args, **kwargs):
        seen.append("score")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "score", recording)
    monkeypatch.setattr(attrib.dryrun, "score", recording)
    toy = ToyBackend(sensitivity=SENSITIVITY, output=" yes it")
    attrib.plan(PROMPT, backend=toy, method="itp", level="word", target=" yes it")
    attrib.attribute(PROMPT, backend=toy, method="itp", level="word", target=" yes it")
    assert seen == ["score", "score"]


class _RegeneratingToy(ToyBackend):
    """The toy as an endpoint that can only regenerate its own output would present itself."""

    def capabilities(self) -> Capabilities:
        return Capabilities(supports_target=False)


@pytest.mark.parametrize("entry", [attrib.attribute, attrib.plan])
def test_a_dry_run_refuses_a_target_the_endpoint_cannot_score_as_the_run_does(entry) -> None:
    # The dry run split the target itself and skipped the run's check, so it planned a run
    # that would fail on its first step.
    with pytest.raises(InputError, match="can only regenerate outputs"):
        entry(PROMPT, backend=_RegeneratingToy(output=" yes"), method="itp", level="word", target=" yes")
    planned = attrib.plan(PROMPT, backend=_RegeneratingToy(output=" yes"), method="itp", level="word")
    assert planned.generation_calls == 1


@dataclass(frozen=True)
class _OneMask(Perturbation):
    """A perturbation of one's own: each ablated span becomes one mask token (neither deletion nor
    replacement token by token), so deleting either of two equal words gives different prompts."""

    name: str = "one-mask"
    token_id: int = 0

    def bind(self, tokenize: Callable[[str], Tokenization]) -> _OneMask:
        return replace(self, token_id=tokenize(" _").ids[0])

    def apply(self, prompt: Tokenization, ablated: Sequence[Span]) -> Variant:
        spans = merge_spans(ablated)
        ids: list[int] = []
        text: list[str] = []
        cursor = 0
        for first, last in spans:
            ids.extend([*prompt.ids[cursor:first], self.token_id])
            text.append(prompt.text[prompt.char_offset(cursor) : prompt.char_offset(first)] + " _")
            cursor = last
        ids.extend(prompt.ids[cursor:])
        text.append(prompt.text[prompt.char_offset(cursor) :])
        return Variant(ablated=spans, ids=tuple(ids), text="".join(text))


def test_a_perturbation_of_ones_own_is_planned_by_the_prompts_it_makes() -> None:
    # The dry run hashed every perturbation but replacement as a deletion: deleting any of the four
    # "the" is one prompt, masking each is another, so it planned 4 calls "exactly" for a run of 7.
    options = {"method": "itp", "level": "word", "target": " yes", "perturbation": _OneMask()}
    planned = attrib.plan("Cats the the the the sleep.", backend=ToyBackend(output=" yes"), **options)
    result = attrib.attribute("Cats the the the the sleep.", backend=ToyBackend(output=" yes"), **options)
    assert result.stats.calls == 7
    assert planned.calls_exact and planned.calls == 7
    assert planned.tokens >= result.stats.tokens_evaluated

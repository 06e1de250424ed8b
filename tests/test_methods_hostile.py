"""Every method on hostile games: outputs that ignore the prompt, a single unit, tight budgets.

A toy backend with no sensitivity gives every coalition the same value (constant
scores), where fit qualities such as the held-out LDS are undefined; each method must
still return a result that is strict JSON and reads back. The dry run
(:func:`attrib.plan`) and the budget check must agree with what the run really does.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import attrib
from attrib import registry
from attrib.backends.toy import ToyBackend
from attrib.errors import BudgetError, InputError, PromptTooLongError, ResultError, UnknownNameError
from attrib.methods.coalitions import LIME, Hierarchical, KernelSHAP, ShapleySampling, Surrogate
from attrib.methods.coalitions.lime import weighted_ridge
from attrib.methods.coalitions.linear import held_out_quality
from attrib.reports.html import render_html
from attrib.reports.method_trace import method_trace_view
from attrib.reports.text import render_text
from attrib.result import Attribution, MethodTrace

PROMPT = "The sky is blue. Paris is the capital of France. Cats sleep all day."


def _methods() -> list[str]:
    names = ["hierarchical", "hipe", "itp", "kernelshap", "lime", "shapley", "surrogate"]
    try:
        import sklearn  # noqa: F401
    except ImportError:
        names.remove("surrogate")  # needs attrib[fit]
    return names


def _strict(value: object) -> None:
    """Fail on any NaN or infinity anywhere in a JSON-shaped value."""
    if isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, dict):
        for item in value.values():
            _strict(item)
    elif isinstance(value, list):
        for item in value:
            _strict(item)


def _round_trip(result: Attribution) -> Attribution:
    text = result.to_json()
    _strict(json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} written to JSON")))
    back = Attribution.from_json(text)
    assert back.to_json() == text
    np.testing.assert_array_equal(back.scores, result.scores)
    return back


# ----------------------------------------------------------------- constant scores, one unit


@pytest.mark.parametrize("level", ["word", "sentence"])
@pytest.mark.parametrize("method", _methods())
def test_every_method_gives_a_strict_json_result_when_the_output_ignores_the_prompt(method: str, level: str) -> None:
    toy = ToyBackend(output=" yes it is")  # no key: every variant scores alike
    result = attrib.attribute(PROMPT, backend=toy, method=method, level=level, target=" yes it is")
    np.testing.assert_allclose(result.scores, 0.0, atol=1e-9)
    back = _round_trip(result)
    render_text(back)  # the report reads the record as written


@pytest.mark.parametrize("method", _methods())
def test_every_method_gives_a_strict_json_result_on_a_chat_that_the_output_ignores(method: str) -> None:
    chat = [
        {"role": "system", "content": "Be brief. Answer well."},
        {"role": "user", "content": "Is Paris big? Tell me."},
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the template's cue merges with the target
        result = attrib.attribute(chat, backend=ToyBackend(), method=method, level="sentence", target=" yes")
    render_text(_round_trip(result))


@pytest.mark.parametrize("method", _methods())
@pytest.mark.parametrize(("prompt", "level"), [("Paris is here.", "sentence"), ("Cat", "token")])
def test_every_method_handles_a_single_unit(method: str, prompt: str, level: str) -> None:
    toy = ToyBackend(sensitivity={"paris": 2.0, "cat": 1.0}, output=" yes")
    result = attrib.attribute(prompt, backend=toy, method=method, level=level, target=" yes")
    assert len(result.units) == 1
    if method != "lime":  # LIME's kernel weighs the one ablated mask by exp(-8): its ridge fit shrinks to ~0
        np.testing.assert_allclose(result.unit_scores, [2.0 if "Paris" in prompt else 1.0], atol=0.2)
    assert result.unit_scores[0] > 0
    _round_trip(result)
    quiet = attrib.attribute(prompt, backend=ToyBackend(output=" yes"), method=method, level=level, target=" yes")
    _round_trip(quiet)


@pytest.mark.parametrize("method", [m for m in _methods() if m in ("lime", "surrogate")])
def test_an_undefined_fit_quality_is_null_with_its_reason_and_the_reports_say_undefined(method: str) -> None:
    result = attrib.attribute(PROMPT, backend=ToyBackend(), method=method, level="word", target=" yes")
    held_out = result.trace["held_out"]
    assert held_out["lds"] is None and held_out["r2"] is None
    assert held_out["undefined"] == "coalition values constant: fit quality undefined"
    back = _round_trip(result)
    assert '"lds": null' in back.to_json()
    text = render_text(back)
    assert "held-out LDS (Spearman, fit vs. measured): undefined (coalition values constant" in text
    rows = {row.key: row.value for _, section in method_trace_view(back).sections for row in section}
    assert rows["r2"].startswith("undefined")
    assert "undefined (coalition values constant: fit quality undefined)" in render_html(back)


def test_held_out_quality_is_finite_or_none_with_a_reason() -> None:
    x = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1]], dtype=float)

    def ridge(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return weighted_ridge(a, b, w, 1.0)

    measured = held_out_quality(ridge, x, x @ np.array([[2.0], [0.5]]), np.ones(6), folds=2, seed=0)
    assert measured is not None and "undefined" not in measured
    assert math.isfinite(measured["lds"]) and math.isfinite(measured["r2"])
    flat = held_out_quality(ridge, x, np.full((6, 1), -0.25), np.ones(6), folds=2, seed=0)
    assert flat == {
        "lds": None,
        "r2": None,
        "folds": 2,
        "masks": 6,
        "undefined": "coalition values constant: fit quality undefined",
    }

    def constant(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((a.shape[1], b.shape[1])), np.zeros(b.shape[1])

    blind = held_out_quality(constant, x, x @ np.array([[2.0], [0.5]]), np.ones(6), folds=2, seed=0)
    assert blind is not None and blind["lds"] is None and math.isfinite(blind["r2"])
    assert blind["undefined"] == "held-out predictions constant: LDS undefined"


def test_a_malformed_method_trace_is_reported_by_its_field_not_as_the_wrong_trace_kind() -> None:
    result = attrib.attribute(PROMPT, backend=ToyBackend(), method="itp", level="sentence", target=" yes")
    bad = MethodTrace(method="lime", record={"held_out": {"lds": 0.5}})
    object.__setattr__(bad, "record", {"held_out": {"lds": float("nan")}})  # as a method could build it
    fields = {name: getattr(result, name) for name in result.__dataclass_fields__}
    with pytest.raises(ResultError) as caught:
        Attribution(**{**fields, "trace": bad})
    assert "trace.record.held_out.lds is nan" in str(caught.value)
    assert "not MethodTrace" not in str(caught.value)
    data = result.to_dict()
    data["trace"] = {"method": "lime", "record": {"held_out": {"lds": float("inf")}}}
    with pytest.raises(ResultError, match=r"trace\.record\.held_out\.lds is inf"):
        Attribution.from_dict(data)


# ----------------------------------------------------------------- messages that name the right thing


@pytest.mark.parametrize("target", [" yes", None])
@pytest.mark.parametrize("call", [attrib.attribute, attrib.plan])
def test_a_contrast_too_long_for_the_context_is_named_as_the_contrast(call, target) -> None:
    toy = ToyBackend(context_length=20)
    with pytest.raises(PromptTooLongError) as caught:
        call(
            "The sky is blue.",
            backend=toy,
            target=target,
            max_new_tokens=2,
            contrast=" no" + " very" * 20,
            method="itp",
            level="word",
        )
    message = str(caught.value)
    assert "the contrast 21" in message and "shorten the prompt or the contrast" in message
    assert "output" not in message


# ----------------------------------------------------------------- plan, budget check and run agree

WORDS = ["paris", "river", "cats", "dogs", "birds", "stone", "green", "seven"]
SENSITIVITY = {"paris": 2.0, ("river", "stone"): 1.0, "cats": 0.5, "seven": -0.25}


def _prompt(n: int, chat: bool = False, repeat: str = "none") -> str | list[dict[str, str]]:
    """``n`` sentences (two words each and a repeated filler), as text or split over a system and a user message.

    ``repeat`` makes identical variants: ``"words"`` doubles each sentence's first word (deleting
    either copy gives the same prompt), ``"sentences"`` uses only two distinct sentences, repeated.
    """
    sentences = [f"The {word} {WORDS[(i + 3) % len(WORDS)]} here." for i, word in enumerate(WORDS[:n])]
    if repeat == "words":
        sentences = [f"The {word} {word} here." for word in WORDS[:n]]
    elif repeat == "sentences":
        sentences = [f"The {WORDS[i % 2]} {WORDS[3]} here." for i in range(n)]
    if not chat:
        return " ".join(sentences)
    half = max(1, n // 2)
    return [
        {"role": "system", "content": " ".join(sentences[:half])},
        {"role": "user", "content": " ".join(sentences[half:]) or "Well?"},
    ]


def _options(n: int, budget: int | None, level: str, chat: bool, noise: int, repeat: str) -> dict[str, object]:
    toy = ToyBackend(sensitivity=SENSITIVITY, output=" yes it", noise=0.01 if noise else 0.0)
    return {
        "prompt": _prompt(n, chat, repeat),
        "backend": toy,
        "level": level,
        "target": " yes it",
        "budget": budget,
        "noise_samples": noise,
    }


def _call(
    entry,
    method: object,
    n: int,
    budget: int | None,
    level: str = "sentence",
    chat: bool = False,
    noise: int = 0,
    repeat: str = "none",
):
    """``entry`` (:func:`attrib.attribute` or :func:`attrib.plan`) on the generated case."""
    options = _options(n, budget, level, chat, noise, repeat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a chat template's cue merging with the target
        return entry(options.pop("prompt"), method=method, **options)


def _run(method: object, n: int, budget: int | None, **case: object):
    return _call(attrib.attribute, method, n, budget, **case)


def _plan(method: object, n: int, budget: int | None, **case: object):
    return _call(attrib.plan, method, n, budget, **case)


def _exact(result: Attribution) -> bool | None:
    """The trace's ``exact`` flag (for a chat: all messages' flags), or ``None`` when it records none."""
    if not isinstance(result.trace, MethodTrace):
        return None
    records = result.trace.record.get("messages", [result.trace.record])
    flags = [record.get("exact") for record in records]
    return all(flags) if flags and all(isinstance(flag, bool) for flag in flags) else None


SCHEDULERS = [
    *_methods(),
    Hierarchical(region=2),
    Hierarchical(region=3, method=KernelSHAP(paired=False)),
    ShapleySampling(permutations=3, exact_limit=3),
    KernelSHAP(samples=6),
    LIME(samples=5),
]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(SCHEDULERS),
    n=st.integers(min_value=1, max_value=6),
    budget=st.one_of(st.none(), st.integers(min_value=1, max_value=40)),
    level=st.sampled_from(["sentence", "word"]),
    chat=st.booleans(),
    noise=st.integers(min_value=0, max_value=2),
    repeat=st.sampled_from(["none", "words", "sentences"]),
)
def test_the_plan_the_budget_check_and_the_run_agree(
    method: object, n: int, budget: int | None, level: str, chat: bool, noise: int, repeat: str
) -> None:
    scheduler = registry.methods.instance(method)
    case = {"level": level, "chat": chat, "noise": noise, "repeat": repeat}
    try:
        planned = _plan(method, n, budget, **case)
    except BudgetError:
        planned = None
    try:
        result = _run(method, n, budget, **case)
    except BudgetError:
        result = None
    # hierarchical's region is HiPe's choice: with more units than the region, its check is a lower bound
    if planned is not None and (not scheduler.adaptive or scheduler.name == "hipe"):
        assert result is not None, "plan() accepted a budget the run refused"
    if result is None:
        return
    assert planned is not None, "plan() refused a budget the run accepted"
    assert result.stats.calls <= planned.calls
    if budget is not None:
        assert result.stats.calls <= budget
    if planned.calls_exact:
        assert result.stats.calls == planned.calls
    if planned.exact is not None:
        assert planned.exact == _exact(result)
    elif not scheduler.adaptive:
        assert _exact(result) is None
    if budget is None:  # the budget check accepts what the run needs
        enough = _run(method, n, result.stats.calls, **case)
        assert enough.stats.calls <= result.stats.calls
        if not noise and not scheduler.adaptive:  # the same schedule: the budget cut nothing
            assert enough.stats.calls == result.stats.calls
            np.testing.assert_allclose(enough.scores, result.scores)
        _plan(method, n, result.stats.calls, **case)


def test_shapley_with_a_budget_below_the_enumeration_is_planned_as_sampled() -> None:
    planned = _plan("shapley", 2, 3)
    result = _run("shapley", 2, 3)
    assert planned.exact is False and _exact(result) is False
    assert planned.calls_exact and planned.calls == result.stats.calls == 3
    assert "values estimated from samples" in planned.describe()
    assert _plan("shapley", 2, 4).exact is True and _exact(_run("shapley", 2, 4)) is True


def test_hierarchical_accepts_the_budget_its_unbudgeted_run_uses() -> None:
    unbudgeted = _run("hierarchical", 2, None)
    assert unbudgeted.stats.calls == 4
    assert _run("hierarchical", 2, 4).stats.calls == 4
    _plan("hierarchical", 2, 4)
    with pytest.raises(BudgetError, match="needs at least 4 calls"):
        _run("hierarchical", 2, 3)


REPEATS = "Cats the the the the sleep."


@pytest.mark.parametrize("method", _methods())
def test_identical_variants_count_once_in_the_budget_check(method: str) -> None:
    # Deleting any one of the four "the" gives the same prompt: ItP makes 4 calls, and the
    # budget check asked for 7 (one per unit) when it counted span sets instead of prompts.
    toy = ToyBackend(sensitivity={"cats": 1.0}, output=" yes")
    options = {"backend": toy, "method": method, "level": "word", "target": " yes"}
    unbudgeted = attrib.attribute(REPEATS, **options)
    calls = unbudgeted.stats.calls
    if method == "itp":
        assert calls == 4 and len(unbudgeted.units) == 6
    budgeted = attrib.attribute(REPEATS, budget=calls, **options)
    assert budgeted.stats.calls == calls
    np.testing.assert_allclose(budgeted.scores, unbudgeted.scores)
    planned = attrib.plan(REPEATS, budget=calls, **options)
    assert planned.calls >= calls and (not planned.calls_exact or planned.calls == calls)


@pytest.mark.parametrize("call", [attrib.attribute, attrib.plan])
def test_itp_refuses_a_budget_below_its_distinct_variants_naming_them(call) -> None:
    toy = ToyBackend(sensitivity={"cats": 1.0}, output=" yes")
    with pytest.raises(BudgetError, match="itp at word level needs at least 4 calls here but the budget is 3"):
        call(REPEATS, backend=toy, method="itp", level="word", target=" yes", budget=3)


def test_the_budget_message_counts_one_message_in_the_singular() -> None:
    toy = ToyBackend(sensitivity={"cats": 1.0}, output=" yes")
    chat = [{"role": "user", "content": "Cats sleep all day. Dogs bark."}]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(BudgetError, match=r"itp over 1 message needs at least \d+ calls"):
            attrib.attribute(chat, backend=toy, method="itp", level="word", target=" yes", budget=2)


def _extreme_methods() -> list[object]:
    methods: list[object] = [
        LIME(width=1e-300),  # every mask but the full prompt weighs 0; once, width**2 underflowed to 0/0
        LIME(width=1e300),
        LIME(samples=2, ridge=0.0),
        KernelSHAP(samples=2, paired=False),
        ShapleySampling(permutations=1, exact_limit=0),
        Hierarchical(region=1),
    ]
    if "surrogate" in _methods():
        methods.append(Surrogate(alpha=1e6))  # every weight shrunk to 0: constant predictions
    return methods


@pytest.mark.parametrize("method", _extreme_methods(), ids=repr)
def test_extreme_parameters_give_a_strict_json_result(method: object) -> None:
    toy = ToyBackend(sensitivity={"paris": 1.0, "cats": 0.5}, output=" yes")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = attrib.attribute(PROMPT, backend=toy, method=method, level="word", target=" yes")
    assert np.all(np.isfinite(result.scores))
    _round_trip(result)


@pytest.mark.parametrize(
    "method", [ShapleySampling(), ShapleySampling(antithetic=False), KernelSHAP(), KernelSHAP(paired=False), LIME()]
)
def test_least_calls_are_the_first_rounds_the_method_plays(method) -> None:
    for n in range(1, 9):
        first = {c for r in method.rounds(n)[: method.minimum_rounds] for c in r}
        assert method.least_calls(n) == sum(1 for c in first if len(c) < n)


@pytest.mark.parametrize("budget", [None, 30])
def test_the_hierarchical_plan_bounds_the_run_whatever_region_hipe_picks(budget: int | None) -> None:
    # The stand-in makes every chunk salient, so its region differs from the run's; the coalition
    # step's calls must be bounded without counting on the variants HiPe shares with it.
    planned = _plan("hierarchical", 3, budget, level="word")
    result = _run("hierarchical", 3, budget, level="word")
    assert not planned.calls_exact and planned.exact is None
    assert result.stats.calls <= planned.calls
    assert "at most" in planned.describe()


def test_hierarchical_takes_its_coalition_method_by_name_and_refuses_what_cannot_play_one_game() -> None:
    by_name = Hierarchical(method="kernelshap")
    assert isinstance(by_name.method, KernelSHAP) and by_name == Hierarchical(method=KernelSHAP())
    _round_trip(_run(by_name, 3, None))
    for wrong in (Hierarchical(), "itp", "hipe", 3):
        with pytest.raises(InputError, match="hierarchical's method must be a method of one coalition game"):
            Hierarchical(method=wrong)
    with pytest.raises(UnknownNameError, match="did you mean 'shapley'"):
        Hierarchical(method="shapely")


@pytest.mark.parametrize("method", ["hipe", "hierarchical", "kernelshap"])
def test_an_early_message_that_refines_everything_leaves_the_later_ones_their_first_round(method: str) -> None:
    # Every word of the system message matters, so HiPe would refine it to the last call of the
    # budget; the budget check counted the user message's first chunks, so the run must keep them.
    chat = [
        {"role": "system", "content": "Paris river cats dogs birds stone green seven. Alpha beta gamma delta."},
        {"role": "user", "content": "Is it big? Tell me now."},
    ]
    words = ["paris", "river", "cats", "dogs", "birds", "stone", "green", "seven", "alpha", "beta", "gamma", "delta"]
    toy = ToyBackend(sensitivity=dict.fromkeys(words, 1.0))
    options = {"backend": toy, "method": method, "level": "word", "target": " yes", "budget": 30}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        planned = attrib.plan(chat, **options)
        result = attrib.attribute(chat, **options)
    assert result.stats.calls <= min(planned.calls, 30)
    user = [i for i, unit in enumerate(result.units) if unit.message == 1]
    assert user and np.all(np.isfinite(result.scores[user]))

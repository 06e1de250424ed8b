"""Shapley values and KernelSHAP against the toy backend, whose coalition values are known by construction.

The toy lowers every output token's log-probability by a key's penalty when the key
is absent from the prompt; a tuple key is absent only when all its words are (an OR
interaction). So the Shapley values have a closed form: a single-word key's penalty
goes to the unit holding it; an OR key's penalty is split equally among the units
holding its words (each is pivotal in the same share of orders).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import attrib
from attrib import registry
from attrib.backends.toy import ToyBackend
from attrib.errors import BudgetError, InputError, UnknownNameError
from attrib.methods.base import Scheduler
from attrib.methods.coalitions import CoalitionMethod, KernelSHAP, ShapleySampling

ADDITIVE = "The capital is Paris. Cats sleep. The river is the Seine. Dogs bark. Birds fly."
FACT = "The capital of France is Paris."
REDUNDANT = f"Birds fly. {FACT} Cats sleep. Dogs bark. {FACT} Question: which city?"
MANY = " ".join(
    f"Filler number {word} here."
    for word in ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
)


def _by_text(result):
    return {u.text.strip(): result.scores[i] for i, u in enumerate(result.units)}


def test_exact_shapley_equals_the_closed_form_on_an_additive_toy():
    toy = ToyBackend(sensitivity={"paris": 2.0, "seine": [0.5, 1.5], "dogs": 0.25}, output=" yes it")
    result = attrib.attribute(ADDITIVE, backend=toy, method=ShapleySampling(), level="sentence")
    rows = _by_text(result)
    np.testing.assert_allclose(rows["The capital is Paris."], [2.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(rows["The river is the Seine."], [0.5, 1.5], atol=1e-12)
    np.testing.assert_allclose(rows["Dogs bark."], [0.25, 0.25], atol=1e-12)
    np.testing.assert_allclose(rows["Cats sleep."], [0.0, 0.0], atol=1e-12)
    assert result.trace["exact"] is True
    assert result.stats.calls == 2 ** len(result.units)  # every coalition; the full one is the base


def test_exact_shapley_splits_an_or_interaction_equally():
    toy = ToyBackend(sensitivity={("rome", "milan", "turin"): [1.2, 0.3], "paris": 1.0}, output=" yes it")
    prompt = "Rome is old. Paris is big. Milan is rich. Cats sleep. Turin is north."
    result = attrib.attribute(prompt, backend=toy, method=ShapleySampling(), level="sentence")
    rows = _by_text(result)
    for sentence in ("Rome is old.", "Milan is rich.", "Turin is north."):
        np.testing.assert_allclose(rows[sentence], [0.4, 0.1], atol=1e-12)
    np.testing.assert_allclose(rows["Paris is big."], [1.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(rows["Cats sleep."], [0.0, 0.0], atol=1e-12)
    # efficiency: the values add up to the drop of removing every unit
    np.testing.assert_allclose(result.scores.sum(axis=0), [2.2, 1.3], atol=1e-12)


def test_a_redundant_pair_gets_half_each_from_shapley_and_nothing_from_leave_one_out():
    toy = ToyBackend(sensitivity={"paris": 2.0}, output=" yes")
    shapley = _by_text(attrib.attribute(REDUNDANT, backend=toy, method=ShapleySampling(), level="sentence"))
    loo = attrib.attribute(REDUNDANT, backend=toy, method="itp", level="sentence")
    copies = [i for i, u in enumerate(loo.units) if u.text.strip() == FACT]
    assert len(copies) == 2
    np.testing.assert_allclose(shapley[FACT], [1.0], atol=1e-12)  # each copy: half of the joint 2 nats
    np.testing.assert_allclose(loo.scores[copies], 0.0, atol=1e-12)


def test_sampled_shapley_is_close_and_efficient_on_many_units():
    toy = ToyBackend(sensitivity={("three", "seven"): 2.0, "five": 1.0}, output=" yes")
    sampled = attrib.attribute(
        MANY, backend=toy, method=ShapleySampling(permutations=40, exact_limit=0), level="sentence"
    )
    totals = sampled.scores.sum(axis=1)
    assert sampled.trace["exact"] is False and sampled.trace["permutations"] == 40
    assert totals.sum() == pytest.approx(3.0)  # every permutation's contributions add up to the total
    assert totals[4] == pytest.approx(1.0)  # an additive key is credited exactly in every order
    assert totals[2] == pytest.approx(1.0, abs=0.35) and totals[6] == pytest.approx(1.0, abs=0.35)
    assert totals[2] + totals[6] == pytest.approx(2.0)
    assert len(sampled.trace["standard_error"]) == 10


def test_antithetic_pairs_are_an_order_and_its_reverse():
    orders = ShapleySampling(permutations=5, seed=3).orders(6)
    assert len(orders) == 5
    assert orders[1] == orders[0][::-1] and orders[3] == orders[2][::-1]
    assert sorted(orders[4]) == list(range(6))
    plain = ShapleySampling(permutations=4, antithetic=False, seed=3).orders(6)
    assert plain[1] != plain[0][::-1]


@pytest.mark.parametrize("method", [ShapleySampling(exact_limit=0, permutations=4), KernelSHAP(samples=12)])
def test_sampling_methods_reproduce_with_a_seed_and_differ_with_another(method):
    toy = ToyBackend(sensitivity={("three", "seven", "nine"): 2.0, ("one", "five"): 1.0}, output=" yes")
    first = attrib.attribute(MANY, backend=toy, method=method, level="sentence")
    again = attrib.attribute(MANY, backend=toy, method=method.replace(seed=0), level="sentence")
    other = attrib.attribute(MANY, backend=toy, method=method.replace(seed=7), level="sentence")
    np.testing.assert_array_equal(first.scores, again.scores)
    assert not np.allclose(first.scores, other.scores)


def test_kernelshap_matches_exact_shapley_on_few_units():
    toy = ToyBackend(sensitivity={("rome", "milan"): [1.5, 0.5], "paris": 1.0, ("cats", "turin"): 0.7}, output=" a b")
    prompt = "Rome is old. Paris is big. Milan is rich. Cats sleep. Turin is north."
    exact = attrib.attribute(prompt, backend=toy, method=ShapleySampling(), level="sentence")
    kernel = attrib.attribute(prompt, backend=toy, method=KernelSHAP(), level="sentence")
    assert kernel.trace["exact"] is True
    np.testing.assert_allclose(kernel.scores, exact.scores, atol=1e-9)
    assert kernel.stats.calls == exact.stats.calls  # both score every coalition once


def test_sampled_kernelshap_is_efficient_and_close_on_many_units():
    toy = ToyBackend(sensitivity={("three", "seven"): 2.0, "five": 1.0}, output=" yes")
    result = attrib.attribute(MANY, backend=toy, method=KernelSHAP(samples=48), level="sentence")
    totals = result.scores.sum(axis=1)
    assert result.trace["exact"] is False
    assert totals.sum() == pytest.approx(3.0)
    assert totals[4] == pytest.approx(1.0, abs=0.2)
    assert totals[2] == pytest.approx(1.0, abs=0.3) and totals[6] == pytest.approx(1.0, abs=0.3)
    assert result.stats.calls <= 48 + 2  # the draws, the empty prompt and the base


@pytest.mark.parametrize(
    "method", [ShapleySampling(exact_limit=0), ShapleySampling(exact_limit=10), KernelSHAP(samples=200)]
)
def test_budgets_are_respected_and_reported(method):
    toy = ToyBackend(sensitivity={("three", "seven"): 2.0, "five": 1.0}, output=" yes")
    result = attrib.attribute(MANY, backend=toy, method=method, level="sentence", budget=40)
    assert result.stats.calls <= 40
    assert result.stats.budget_exhausted
    assert result.scores.shape == (10, 1)
    assert result.scores.sum() == pytest.approx(3.0)  # what was scored still splits the whole drop


def test_a_budget_below_the_first_round_is_refused():
    toy = ToyBackend(sensitivity={"five": 1.0}, output=" yes")
    with pytest.raises(BudgetError, match="raise --budget"):
        attrib.attribute(MANY, backend=toy, method=ShapleySampling(exact_limit=0), level="sentence", budget=5)


def test_every_level_and_chat_messages_work():
    toy = ToyBackend(sensitivity={"paris": [2.0, 0.5], ("rome", "milan"): 1.0}, output=" yes it")
    words = attrib.attribute("Paris, Rome and Milan.", backend=toy, method=ShapleySampling(), level="word")
    rows = {u.text: words.scores[i] for i, u in enumerate(words.units)}
    np.testing.assert_allclose(rows["Paris,"], [2.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(rows[" Rome"], [0.5, 0.5], atol=1e-12)
    np.testing.assert_allclose(rows[" Milan."], [0.5, 0.5], atol=1e-12)
    chat = [
        {"role": "system", "content": "Rome is old. Paris is big."},
        {"role": "user", "content": "Milan is rich. Which city?"},
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the default template's newline merges with the target
        result = attrib.attribute(chat, backend=toy, method=KernelSHAP(), level="sentence", target=" yes it")
    assert result.scores.shape == (len(result.units), 2)
    texts = {u.text.strip(): result.scores[i] for i, u in enumerate(result.units)}
    # inside one message the other messages stay: Milan stays while Rome's message is split, so Rome gets 0
    np.testing.assert_allclose(texts["Paris is big."], [2.0, 0.5], atol=1e-9)
    np.testing.assert_allclose(texts["Rome is old."], [0.0, 0.0], atol=1e-9)


def test_methods_are_selectable_by_name():
    assert {"shapley", "kernelshap"} <= set(registry.methods.names())
    toy = ToyBackend(sensitivity={"paris": 2.0}, output=" yes")
    for name in ("shapley", "kernelshap"):
        result = attrib.attribute(REDUNDANT, backend=toy, method=name, level="sentence", seed=3)
        assert result.method == name
        assert result.parameters["name"] == name
        np.testing.assert_allclose(_by_text(result)[FACT], [1.0], atol=1e-9)


def test_parameters_are_described_replaced_and_checked():
    method = ShapleySampling(permutations=6)
    assert method.describe() == {"name": "shapley", "permutations": 6, "antithetic": True, "exact_limit": 8, "seed": 0}
    changed = method.replace(seed=5)
    assert (changed.seed, changed.permutations, method.seed) == (5, 6, 0)
    assert KernelSHAP().describe()["samples"] == 64
    with pytest.raises(UnknownNameError, match="permutations"):
        method.replace(permutation=3)
    with pytest.raises(InputError, match="permutations"):
        ShapleySampling(permutations=0)
    with pytest.raises(InputError, match="samples"):
        KernelSHAP(samples=1)
    with pytest.raises(InputError, match="seed"):
        method.replace(seed=-1)


def test_the_parameter_plumbing_is_the_scheduler_base_s_alone():
    for name in ("parameters", "describe", "replace"):
        assert getattr(CoalitionMethod, name) is getattr(Scheduler, name), f"CoalitionMethod has its own {name}"

"""Perturbations build variants from the prompt's own tokens and character spans."""

from __future__ import annotations

import pytest

from attrib import registry
from attrib.backends.toy import ToyBackend
from attrib.errors import InputError, UnknownNameError
from attrib.perturbation import Deletion, Replacement, merge_spans


def test_merge_spans_sorts_merges_and_drops_empty():
    assert merge_spans([(5, 7), (0, 2), (2, 3), (6, 9), (4, 4)]) == ((0, 3), (5, 9))


def test_deletion_removes_tokens_and_their_exact_text():
    toy = ToyBackend()
    prompt = toy.tokenize("The capital of France is Paris.")
    variant = Deletion().apply(prompt, [(1, 3)])  # " capi", "tal"
    assert variant.text == "The of France is Paris."
    assert variant.ids == prompt.ids[:1] + prompt.ids[3:]
    assert toy.tokenize(variant.text).ids == variant.ids


def test_replacement_keeps_every_position():
    toy = ToyBackend()
    prompt = toy.tokenize("The capital of France")
    replacement = Replacement(baseline=" _").bind(toy.tokenize)
    variant = replacement.apply(prompt, [(1, 3)])
    assert len(variant.ids) == len(prompt.ids)
    assert variant.ids[1] == variant.ids[2] == replacement.token_id
    assert variant.text == "The _ _ of France"


def test_replacement_baseline_must_be_one_token():
    with pytest.raises(InputError, match="exactly one token"):
        Replacement(baseline=" two words").bind(ToyBackend().tokenize)


def test_unknown_perturbation_name():
    with pytest.raises(UnknownNameError, match="did you mean 'delete'"):
        registry.perturbations.create("deletion")

"""The redundancy task's cases: the fact twice in different words, distractors, a question."""

from __future__ import annotations

import re

import pytest

from benchmarks.redundancy import CHECKED_SEEDS, PARAPHRASES, check_cases, make_redundancy_case


@pytest.mark.parametrize("seed", range(8))
def test_both_copies_state_the_answer_and_are_apart(seed):
    case = make_redundancy_case(seed)
    code = case.target.strip()
    (a0, a1), (b0, b1) = case.copies
    first, second = case.prompt[a0:a1], case.prompt[b0:b1]
    assert first == f"The access code for the {case.place} is {code}."
    assert code in second and case.place in second and second != first
    between = case.prompt[min(a1, b1) : max(a0, b0)]
    assert between.strip().endswith((".", "?", "!")), "a whole sentence stands between the copies"
    assert case.prompt.endswith(f"Answer: The access code for the {case.place} is")
    assert case.prompt.count(code) == 2


@pytest.mark.parametrize("seed", range(8))
def test_distractors_are_other_places_with_other_codes_in_both_forms(seed):
    case = make_redundancy_case(seed)
    code = case.target.strip()
    texts = [case.prompt[s:e] for s, e in case.distractors]
    assert len(texts) == 3
    assert all(code not in t and case.place not in t for t in texts)
    assert any(t.startswith("The access code for the") for t in texts)
    form = PARAPHRASES[seed % len(PARAPHRASES)].split("{place}")[0]
    assert texts[-1].startswith(form)


def test_cases_are_a_pure_function_of_the_seed():
    assert make_redundancy_case(3) == make_redundancy_case(3)
    assert make_redundancy_case(3).prompt != make_redundancy_case(4).prompt


def test_check_cases_keeps_the_seeds_the_model_answers():
    def generate(prompt: str) -> str:
        return " 0000" if "seed-free" in prompt else " " + re.findall(r"is (\d{4})\.", prompt)[0]

    found = check_cases(3, generate)
    assert [seed for seed, _, _ in found] == [0, 1, 2]
    for seed, text, right in found:
        assert right == text.startswith(make_redundancy_case(seed).target)


def test_the_checked_seeds_are_at_least_ten():
    assert len(CHECKED_SEEDS) >= 10 and len(set(CHECKED_SEEDS)) == len(CHECKED_SEEDS)


def test_bad_distractor_count_is_refused():
    with pytest.raises(ValueError, match="n_distractors"):
        make_redundancy_case(0, n_distractors=0)


@pytest.mark.model
def test_the_embedded_model_answers_every_checked_seed(llama):
    def generate(prompt: str) -> str:
        return llama.detokenize(llama.generate(llama.tokenize(prompt).ids, max_new_tokens=5).ids)

    answers = {seed: right for seed, _, right in check_cases(max(CHECKED_SEEDS) + 1, generate)}
    assert all(answers[seed] for seed in CHECKED_SEEDS)
    assert [seed for seed, right in answers.items() if not right] == [4]

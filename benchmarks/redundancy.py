"""Deterministic "redundancy" prompts: the decisive fact is stated twice, in different words.

Leave-one-out's blind spot is redundant evidence: when the answer is stated twice,
removing either statement leaves the other, the answer barely changes, and both
copies score near zero although removing both at once destroys the answer. A
redundancy case is a short passage of real prose (the corpus of
:mod:`benchmarks.prose`) with same-form distractor facts, as in the needle task
(:mod:`benchmarks.needle`, after RULER's multi-key needles, Hsieh et al. 2024),
in which the decisive fact appears twice::

    ... prose ... The access code for the boiler room is 4817. ... prose ...
    The access code for the north gate is 2935. ... prose ...
    Staff open the boiler room with the number 4817. ...
    Question: What is the access code for the boiler room?
    Answer: The access code for the boiler room is

The first copy has the distractors' form ("The access code for the <place> is
<dddd>."); the second is a paraphrase, and one distractor is written in the same
paraphrase, so neither form alone singles out the decisive place. The two copies
are never adjacent. The target is `` 4817``; :func:`check_cases` keeps the seeds
on which the model answers it greedily (a choice by the model's answer, never by
any attribution).

The metric of the task is the copies' share: ``(score(copy A) + score(copy B)) /
drop(both copies removed at once)``, unit scores summed over the output tokens,
in nats over nats. Leave-one-out's copies share only their marginal effects
(about 0 when each copy alone suffices); Shapley values split the joint drop
between the copies, so their share is near 1 (Shapley 1953's efficiency on the
pair's game).

Everything is a pure function of the seed.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from benchmarks import prose
from benchmarks.needle import PLACES, _make_codes, fact_sentence, question_text

__all__ = [
    "PARAPHRASES",
    "RedundancyCase",
    "make_redundancy_case",
    "paraphrase_sentence",
    "check_cases",
    "CHECKED_SEEDS",
]

#: The second copy's wordings, one per case (chosen by the seed).
PARAPHRASES: tuple[str, ...] = (
    "Staff open the {place} with the number {code}.",
    "To get into the {place}, you type {code} on its keypad.",
    "The keypad beside the {place} door accepts {code}.",
    "Whoever needs the {place} unlocks it by entering {code}.",
)

#: Prose sentences used as filler are between these lengths in characters.
_SHORTEST, _LONGEST = 40, 180

_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[A-Z\"(])")

#: Seeds 0.. on which the embedded Gemma 3 270M answers each case with its code
#: greedily (``python -m benchmarks.redundancy --check 16``: 14 of 16 right, seeds 4 and 15
#: wrong; the first 12 right ones are kept).
CHECKED_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12)


@dataclass(frozen=True)
class RedundancyCase:
    """One redundancy prompt and where its facts are.

    Attributes:
        prompt: the passage, the question and the answer's start.
        target: the code with its leading space (the forced continuation).
        copies: ``[start, end)`` character spans of the two statements of the decisive
            fact (the plain one first, then the paraphrase, in prompt order or not).
        distractors: spans of the distractor facts.
        place: the place the question asks about.
    """

    prompt: str
    target: str
    copies: tuple[tuple[int, int], tuple[int, int]]
    distractors: tuple[tuple[int, int], ...]
    place: str


def paraphrase_sentence(place: str, code: str, form: int) -> str:
    """The fact in the ``form``-th paraphrase (modulo the number of paraphrases)."""
    return PARAPHRASES[form % len(PARAPHRASES)].format(place=place, code=code)


def _filler() -> list[str]:
    """The prose corpus's sentences of a moderate length, in corpus order."""
    sentences = [s for paragraph in prose.paragraphs() for s in _SENTENCE_END.split(paragraph)]
    return [s for s in sentences if _SHORTEST <= len(s) <= _LONGEST]


def make_redundancy_case(seed: int, *, n_prose: int = 5, n_distractors: int = 3) -> RedundancyCase:
    """Build the redundancy prompt of ``seed``.

    ``n_prose`` consecutive filler sentences of the corpus (from a seeded start), the
    decisive fact twice (plain and paraphrased), ``n_distractors`` distractor facts
    about other places with other codes (the last in the paraphrase's form, the others
    plain), shuffled into one paragraph with the copies at least one sentence apart,
    then the needle task's question.

    Raises:
        ValueError: for fewer than 1 distractor or more than the places allow.
    """
    if not 1 <= n_distractors < len(PLACES):
        raise ValueError(f"n_distractors must be in 1..{len(PLACES) - 1}, got {n_distractors}")
    rng = random.Random(seed)
    places = rng.sample(PLACES, 1 + n_distractors)
    codes = _make_codes(rng, 1 + n_distractors)
    form = seed % len(PARAPHRASES)
    copy_a = fact_sentence(places[0], codes[0])
    copy_b = paraphrase_sentence(places[0], codes[0], form)
    others = [fact_sentence(p, c) for p, c in zip(places[1:-1], codes[1:-1], strict=True)]
    others.append(paraphrase_sentence(places[-1], codes[-1], form))
    filler = _filler()
    start = rng.randrange(len(filler))
    sentences = [filler[(start + i) % len(filler)] for i in range(n_prose)]
    items = sentences + others + [copy_a, copy_b]
    while True:
        rng.shuffle(items)
        a, b = items.index(copy_a), items.index(copy_b)
        if abs(a - b) > 1:
            break
    passage = " ".join(items)
    prompt = passage + question_text(places[0])

    def span(sentence: str) -> tuple[int, int]:
        at = passage.index(sentence)
        return at, at + len(sentence)

    return RedundancyCase(
        prompt=prompt,
        target=" " + codes[0],
        copies=(span(copy_a), span(copy_b)),
        distractors=tuple(span(s) for s in others),
        place=places[0],
    )


def check_cases(seeds: int, generate: object) -> list[tuple[int, str, bool]]:
    """Which of seeds ``0..seeds-1`` the model answers right.

    Args:
        seeds: how many seeds to try.
        generate: ``prompt -> generated text`` (greedy, a few tokens).

    Returns:
        ``(seed, generated text, right)`` per seed; right when the generated text
        starts with the case's target.
    """
    if not callable(generate):
        raise TypeError("generate must be callable")
    found = []
    for seed in range(seeds):
        case = make_redundancy_case(seed)
        text = str(generate(case.prompt))
        found.append((seed, text, text.startswith(case.target)))
    return found


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.redundancy --check N``: print which seeds the embedded model answers right."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.redundancy", description=main.__doc__)
    parser.add_argument("--check", type=int, default=14, help="seeds to try (default 14)")
    parser.add_argument("--show", type=int, help="print the prompt of this seed and exit")
    args = parser.parse_args(argv)
    if args.show is not None:
        case = make_redundancy_case(args.show)
        print(case.prompt + case.target)
        return 0
    from attrib.loading import default_backend

    backend = default_backend()

    def generate(prompt: str) -> str:
        return backend.detokenize(backend.generate(backend.tokenize(prompt).ids, max_new_tokens=5).ids)

    right = []
    for seed, text, ok in check_cases(args.check, generate):
        print(f"seed {seed}: {text!r} {'right' if ok else 'WRONG'}")
        right.append(seed) if ok else None
    print("right:", tuple(right))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

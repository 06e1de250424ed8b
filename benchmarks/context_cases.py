"""Context-attribution cases with ground truth, made of real prose: which source supports each claim?

A case is what a retrieval-augmented application sends a model: 6-8 numbered sources of
running English prose (the licence texts of :mod:`benchmarks.prose`, a couple of hundred
tokens each), a question asking for two facts, and an answer of two claims::

    [1] ... prose ... The access code for the boiler room is 4817. ... prose ...
    [2] ... prose ... The access code for the chapel is 2935. ... prose ...
    ...
    Question: What are the access codes for the boiler room and the chapel?
    Answer: The access code for the boiler room is 4817. The access code for the chapel is 2935.

Each source holds exactly one fact sentence of the same form ("The access code for the
<place> is <dddd>."), inserted between two of its sentences; the two facts asked for are in
two different sources, every other source states a *distractor* fact of the same form for
another place. So the source that supports a claim is known by construction, and a method
that credits "sentences that look like facts" credits the distractors as much.

Variants (by ``seed % 4``, so any run of four consecutive seeds holds each once):

* 0 ``plain``: the two claims, no markers.
* 1 ``duplicate``: the first fact is also stated in a second source (in place of that
  source's distractor), plus an ``unsupported`` claim.
* 2 ``cited``: citation markers ``[n]`` after each claim (one correct, one naming a
  distractor source), plus an ``unsupported`` claim (cited too: a wrong citation).
* 3 ``duplicate`` and ``cited`` and ``unsupported`` together.

An *unsupported* claim is a third claim, "The access code for the <place> is <dddd>.", about
a place no source mentions (its ground truth: no source supports it). Because the model is
causal, a claim appended after the others changes none of their scores.

Everything is a pure function of the seed (evaluation and calibration splits use
disjoint seeds, :data:`EVALUATION_SEEDS` and :data:`CALIBRATION_SEEDS`). Lengths are
estimated as characters / 4.3 (:func:`benchmarks.needle.estimate_tokens`); records
carry the real token counts. Standard library only.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from benchmarks.needle import CHARS_PER_TOKEN, PLACES, corpus_paragraphs, fact_sentence

__all__ = [
    "CALIBRATION_SEEDS",
    "EVALUATION_SEEDS",
    "ContextCase",
    "ClaimTruth",
    "SourceText",
    "make_context_case",
    "prompt_text",
    "sentences",
    "KINDS",
]

#: The seeds of the evaluation cases (the numbers reported).
EVALUATION_SEEDS: tuple[int, ...] = tuple(range(20))
#: The seeds of the calibration cases (the support threshold is chosen on them, never on the others).
CALIBRATION_SEEDS: tuple[int, ...] = tuple(range(1000, 1016))
#: Variant of ``seed % 4``.
KINDS: tuple[str, ...] = ("plain", "duplicate", "cited", "duplicate+cited")

#: Estimated tokens of all sources together (the prompt adds the question and the answer cue).
CONTEXT_TOKENS = 1000

_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[A-Z\"(])")


def sentences(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` character spans of the sentences of ``text`` (split after ``.?!`` and space before a capital)."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return spans


@dataclass(frozen=True)
class SourceText:
    """One source of a case.

    Attributes:
        id: its id, ``"1"``, ``"2"``, ... in prompt order (what ``[n]`` markers name).
        text: its prose with its fact sentence inside.
        fact: ``[start, end)`` of the fact sentence in ``text``.
        place: the place its fact is about.
        code: the fact's code.
    """

    id: str
    text: str
    fact: tuple[int, int]
    place: str
    code: str


@dataclass(frozen=True)
class ClaimTruth:
    """One claim of the answer and what supports it.

    Attributes:
        text: the claim, a sentence of the answer (its marker included).
        start, end: its span in the answer.
        fact_end: where its fact ends in the answer (before the marker and the full stop):
            ``answer[start:fact_end]`` is the span a span-only attributor (ContextCite) gets.
        support: ids of the sources stating its fact (empty: unsupported).
        cited: the ids its marker names (empty: no marker).
    """

    text: str
    start: int
    end: int
    fact_end: int
    support: tuple[str, ...]
    cited: tuple[str, ...] = ()

    @property
    def supported(self) -> bool:
        """Whether some source states the claim's fact."""
        return bool(self.support)

    @property
    def citation_correct(self) -> bool | None:
        """Whether the marker names a supporting source (``None`` without a marker)."""
        if not self.cited:
            return None
        return all(c in self.support for c in self.cited)


@dataclass(frozen=True)
class ContextCase:
    """One context-attribution case.

    Attributes:
        seed: the case's seed.
        kind: its variant (:data:`KINDS`).
        sources: the sources in prompt order.
        question: the question (fixed: never ablated).
        answer: the answer, with a leading space (it follows the cue ``"Answer:"``).
        claims: the answer's claims in order, with their ground truth.
    """

    seed: int
    kind: str
    sources: tuple[SourceText, ...]
    question: str
    answer: str
    claims: tuple[ClaimTruth, ...] = field(default_factory=tuple)

    def source(self, ident: str) -> SourceText:
        """The source with id ``ident``."""
        return next(s for s in self.sources if s.id == ident)


def prompt_text(case: ContextCase) -> tuple[str, list[tuple[int, int]]]:
    """The plain prompt both sides score, and each source's ``[start, end)`` span in it (its ``[n] `` header included).

    attrib's default plain template: ``"[1] text\n\n[2] text\n\n...Question: ...\nAnswer:"``;
    the answer follows it.
    """
    pieces, spans, pos = [], [], 0
    for source in case.sources:
        block = f"[{source.id}] {source.text}"
        spans.append((pos, pos + len(block)))
        pieces.append(block + "\n\n")
        pos += len(block) + 2
    pieces.append(f"Question: {case.question}\nAnswer:")
    return "".join(pieces), spans


def _codes(rng: random.Random, n: int) -> list[str]:
    """``n`` four-digit codes, no repeated digit, pairwise different first digits (n <= 9)."""
    codes = []
    for first in rng.sample("123456789", n):
        codes.append(first + "".join(rng.sample([d for d in "0123456789" if d != first], 3)))
    return codes


def _prose(pool: list[str], chars: int) -> list[str]:
    """Sentences of the paragraphs of ``pool`` (consumed from its end), in order, until about ``chars`` characters.

    A sentence that would pass ``chars`` by more than 10% ends the prose when three quarters
    are there, and is passed over otherwise.
    """
    taken: list[str] = []
    length = 0
    while length < chars and pool:
        paragraph = pool.pop()
        for start, end in sentences(paragraph):
            sentence = paragraph[start:end]
            if length and length + len(sentence) > chars * 1.1:
                if length >= 0.75 * chars:
                    return taken
                continue
            taken.append(sentence)
            length += len(sentence) + 1
            if length >= chars:
                break
    return taken


def make_context_case(seed: int) -> ContextCase:
    """The case of ``seed``: 6-8 sources, a two-fact question, an answer of 2-3 claims (module docstring).

    The same seed always gives the same case.
    """
    rng = random.Random(f"context-{seed}")
    kind = KINDS[seed % 4]
    duplicate, cited = "duplicate" in kind, "cited" in kind
    unsupported = kind != "plain"
    n = rng.choice((6, 7, 8))
    places = rng.sample(PLACES, n + 1)
    codes = _codes(rng, n + 1)
    # places[0], places[1]: asked for; places[2:n]: distractors; places[n]: in no source.
    facts = list(range(n))
    if duplicate:
        facts[n - 1] = 0  # the last distractor's source restates the first fact
    order = list(range(n))
    rng.shuffle(order)  # order[k]: which fact the k-th source states
    pool = list(corpus_paragraphs())
    rng.shuffle(pool)
    chars = int(CONTEXT_TOKENS / n * CHARS_PER_TOKEN)
    sources = []
    for position, slot in enumerate(order):
        fact_index = facts[slot]
        body = _prose(pool, chars - 45)
        sentence = fact_sentence(places[fact_index], codes[fact_index])
        at = rng.randrange(1, len(body)) if len(body) > 1 else 1
        before = " ".join(body[:at])
        text = " ".join(body[:at] + [sentence] + body[at:])
        start = len(before) + 1 if before else 0
        sources.append(
            SourceText(str(position + 1), text, (start, start + len(sentence)), places[fact_index], codes[fact_index])
        )

    def holding(fact_index: int) -> tuple[str, ...]:
        return tuple(s.id for s in sources if s.place == places[fact_index])

    asked = [0, 1]
    question = f"What are the access codes for the {places[0]} and the {places[1]}?"
    claim_facts: list[tuple[int, tuple[str, ...]]] = [(i, holding(i)) for i in asked]
    if unsupported:
        claim_facts.append((n, ()))
    wrong_first = rng.random() < 0.5
    answer, claims = "", []
    for number, (fact_index, support) in enumerate(claim_facts):
        marker: tuple[str, ...] = ()
        if cited:
            others = [s.id for s in sources if s.id not in support]
            correct = number == 1 if wrong_first else number == 0
            marker = (rng.choice(support),) if support and correct else (rng.choice(others),)
        fact = f"The access code for the {places[fact_index]} is {codes[fact_index]}"
        text = fact + (f" [{marker[0]}]." if marker else ".")
        start = len(answer) + 1
        answer += " " + text
        claims.append(ClaimTruth(text, start, start + len(text), start + len(fact), support, marker))
    return ContextCase(seed, kind, tuple(sources), question, answer, tuple(claims))

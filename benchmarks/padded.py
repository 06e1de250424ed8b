"""Short factual prompts padded with neutral prose, so that the key words are a chosen share of the prompt.

The design follows the evaluation of Leap Labs' PIZZA prompt-attribution tool
(hierarchical perturbation over OpenAI chat models), where a short factual prompt
is padded with neutral text until its *key words* (the words the answer depends
on) make up about 50%, 10% or 1% of the prompt, and an attribution counts as
correct when the mean score of the key words is larger than the mean score of
all the prompt's words. There, hierarchical perturbation needed about 24-48
calls on ~210-word prompts where exhaustive leave-one-out needed 211. Nothing
of PIZZA's code or data is used here: the facts below are written for this
benchmark and the padding is the real prose of :mod:`benchmarks.prose`.

Each :class:`Fact` is a statement cut before its last word (the answer), e.g.
"The capital of Japan is" -> " Tokyo", with its key words marked. A padded
prompt is ``padding + "\\n\\n" + statement``: the padding is consecutive
words of the prose corpus, from a word chosen by ``seed``, exactly as many as
make the key words the requested share of the prompt's words (200 words at 1%),
ended with a full stop where the cut leaves none. The answer is scored by
forced decoding, so the case does not depend on the model answering it.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from benchmarks import prose

__all__ = ["Fact", "FACTS", "PaddedCase", "make_padded_case", "SHARES"]

#: Key-word shares of the benchmark (PIZZA's three settings).
SHARES: tuple[float, ...] = (0.5, 0.1, 0.01)

_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[A-Z\"(])")


@dataclass(frozen=True)
class Fact:
    """A factual statement without its last word.

    Attributes:
        statement: the text the model continues, e.g. ``"The capital of Japan is"``.
        answer: the expected continuation, with its leading space (``" Tokyo"``).
        key_words: the words of ``statement`` the answer depends on.
    """

    statement: str
    answer: str
    key_words: tuple[str, ...]


FACTS: tuple[Fact, ...] = (
    Fact("The capital of Japan is", " Tokyo", ("capital", "Japan")),
    Fact("The Eiffel Tower stands in", " Paris", ("Eiffel", "Tower")),
    Fact("The largest planet of the solar system is", " Jupiter", ("largest", "planet")),
    Fact("Hamlet was written by William", " Shakespeare", ("Hamlet", "William")),
    Fact("The first man on the Moon was Neil", " Armstrong", ("Moon", "Neil")),
    Fact("The currency of Japan is the", " yen", ("currency", "Japan")),
    Fact("Water is made of hydrogen and", " oxygen", ("Water", "hydrogen")),
    Fact("The Great Wall is in", " China", ("Great", "Wall")),
    Fact("After Monday and Tuesday comes", " Wednesday", ("Monday", "Tuesday")),
    Fact("The opposite of hot is", " cold", ("opposite", "hot")),
)


@dataclass(frozen=True)
class PaddedCase:
    """One padded prompt.

    Attributes:
        prompt: the padded prompt.
        target: the answer to score (leading space included).
        key_spans: ``[start, end)`` character spans of the key words in ``prompt``.
        share: the key words' share of the prompt's words.
        n_words: words in the prompt (whitespace-separated).
    """

    prompt: str
    target: str
    key_spans: tuple[tuple[int, int], ...]
    share: float
    n_words: int


def _sentences() -> list[str]:
    return [s for paragraph in prose.paragraphs() for s in _SENTENCE_END.split(paragraph)]


def make_padded_case(fact: Fact, share: float, *, seed: int = 0) -> PaddedCase:
    """Pad ``fact`` with neutral prose until its key words are at most ``share`` of the prompt's words.

    Args:
        fact: the statement to pad.
        share: target key-word share, in (0, 1]; a share the bare statement already
            meets gives the bare statement.
        seed: chooses where in the prose corpus the padding starts.

    Returns:
        A :class:`PaddedCase`; the same arguments always give the same case.

    Raises:
        ValueError: for a share outside (0, 1].
    """
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share}")
    words = len(fact.statement.split())
    needed = max(words, round(len(fact.key_words) / share))
    stream = " ".join(_sentences()).split()
    start = random.Random(seed).randrange(len(stream))
    padding = [stream[(start + i) % len(stream)] for i in range(needed - words)]
    if padding and padding[-1][-1] not in ".?!":
        padding[-1] += "."
    prefix = " ".join(padding) + "\n\n" if padding else ""
    prompt = prefix + fact.statement
    spans = []
    for word in fact.key_words:
        match = re.search(rf"\b{re.escape(word)}\b", fact.statement)
        if match is None:
            raise ValueError(f"key word {word!r} is not in {fact.statement!r}")
        spans.append((len(prefix) + match.start(), len(prefix) + match.end()))
    n_words = len(prompt.split())
    return PaddedCase(prompt, fact.answer, tuple(spans), len(fact.key_words) / n_words, n_words)

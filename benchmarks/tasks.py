"""Benchmark tasks: each yields cases with an id, a prompt, a target, the level, the decisive spans and a judge.

A :class:`Task` first lays out its case ids cheaply (:meth:`Task.grid`: size, seed,
and which methods and measurements apply), and builds a case's prompt only when
the runner needs it (:meth:`Task.build`), so resuming a long run costs nothing for
the finished cases. A :class:`Case` carries how a hit is judged: a judge maps the
attribution and the case to the record fields of the task's hit criterion.

Two tasks:

* :class:`NeedleTask`: :mod:`benchmarks.needle` prompts of a given number of tokens
  at token level. hit@1 / hit@3: the top unit / one of the top three units lies
  inside the decisive fact sentence (Kamradt 2023's needle in a haystack, with
  RULER's same-form distractors, Hsieh et al. 2024).
* :class:`PaddedTask`: :mod:`benchmarks.padded` factual prompts whose key words are
  a given share of the words, at word level. A hit is PIZZA's criterion (Leap Labs):
  the key words' mean score beats the mean score of all the prompt's words.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from benchmarks.padded import SHARES

if TYPE_CHECKING:
    from attrib.backend import Backend
    from attrib.result import Attribution
    from attrib.segmentation import Unit

__all__ = [
    "Span",
    "CaseId",
    "Case",
    "Judge",
    "SpanHit",
    "KeyWordsBeatMean",
    "Task",
    "NeedleTask",
    "PaddedTask",
    "inside",
    "overlaps",
]

#: A ``[start, end)`` character span of a prompt.
Span = tuple[int, int]


def inside(unit: Unit, spans: Iterable[Span]) -> bool:
    """Whether ``unit``'s characters lie wholly inside one of ``spans``."""
    return any(start <= unit.start and unit.end <= end for start, end in spans)


def overlaps(unit: Unit, spans: Iterable[Span]) -> bool:
    """Whether ``unit`` shares at least one character with one of ``spans``."""
    return any(unit.start < end and start < unit.end for start, end in spans)


@dataclass(frozen=True)
class CaseId:
    """Where a case sits in its task's grid, before its prompt is built.

    Attributes:
        task: the task's name (``"needle"``, ``"padded"``).
        size: needle length in tokens (int) or key-word share (float).
        seed: the case's seed within its size.
        faithful: whether the faithfulness metrics are measured on it.
        exhaustive: whether exhaustive leave-one-out (``itp``) runs on it.
    """

    task: str
    size: int | float
    seed: int
    faithful: bool = True
    exhaustive: bool = True

    def key(self, method: str) -> tuple[Any, ...]:
        """The record key of this case attributed with ``method``."""
        return (self.task, self.size, self.seed, method)

    def runs(self, method: str) -> bool:
        """Whether ``method`` is run on this case (``itp`` only where exhaustive)."""
        return self.exhaustive or method != "itp"


class Judge(Protocol):
    """How a hit is judged: the attribution and its case -> the record's hit fields."""

    def __call__(self, result: Attribution, case: Case, /) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Case:
    """One prompt to attribute, with what a good attribution finds.

    Attributes:
        id: the case's id in its task's grid.
        prompt: the prompt text.
        target: the continuation scored by forced decoding (leading space included).
        level: the unit level of the attribution (``"token"``, ``"word"``).
        spans: the decisive ``[start, end)`` character spans of ``prompt``.
        judge: how a hit is judged.
        fields: extra facts the judge records (e.g. the key-word share).
    """

    id: CaseId
    prompt: str
    target: str
    level: str
    spans: tuple[Span, ...]
    judge: Judge
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SpanHit:
    """hit@k: whether the top unit (``hit1``) and one of the top ``k`` units lie inside a decisive span."""

    k: int = 3

    def __call__(self, result: Attribution, case: Case, /) -> dict[str, Any]:
        top = [item.unit for item in result.top(self.k)]
        return {"hit1": inside(top[0], case.spans), f"hit{self.k}": any(inside(u, case.spans) for u in top)}


@dataclass(frozen=True)
class KeyWordsBeatMean:
    """PIZZA's criterion: the mean score of the units overlapping a key word beats the mean of all units.

    Records ``hit`` and the case's ``fields`` (key-word share and word count).
    """

    def __call__(self, result: Attribution, case: Case, /) -> dict[str, Any]:
        scores = result.unit_scores
        keys = [i for i, unit in enumerate(result.units) if overlaps(unit, case.spans)]
        return {"hit": bool(scores[keys].mean() > scores.mean()), **case.fields}


class Task(ABC):
    """A set of benchmark cases."""

    #: The task's name, the first part of every record key.
    name: str

    @abstractmethod
    def grid(self) -> Iterator[CaseId]:
        """Every case id, in run order; builds no prompt."""

    @abstractmethod
    def build(self, case: CaseId, backend: Backend) -> Case:
        """The case's prompt, target, spans and judge; ``backend`` may count tokens."""


@dataclass(frozen=True)
class NeedleTask(Task):
    """Needle prompts of :mod:`benchmarks.needle`, token level, judged by hit@1 and hit@3.

    Args:
        sizes: prompt lengths in tokens (counted with the backend's tokenizer).
        seeds: cases per length up to 1,000 tokens.
        long_seeds: cases per longer length.
        itp_max_tokens: exhaustive leave-one-out only up to this length.
        faithfulness_max_tokens: faithfulness metrics only up to this length.
    """

    sizes: Sequence[int] = (250, 1000, 2000, 4000)
    seeds: int = 10
    long_seeds: int = 3
    itp_max_tokens: int = 1000
    faithfulness_max_tokens: int = 1000
    name: str = "needle"

    def grid(self) -> Iterator[CaseId]:
        for size in self.sizes:
            for seed in range(self.seeds if size <= 1000 else self.long_seeds):
                yield CaseId(
                    self.name,
                    size,
                    seed,
                    faithful=size <= self.faithfulness_max_tokens,
                    exhaustive=size <= self.itp_max_tokens,
                )

    def build(self, case: CaseId, backend: Backend) -> Case:
        from benchmarks.needle import make_needle_case

        def count(text: str) -> int:
            return len(backend.tokenize(text))

        needle = make_needle_case(int(case.size), seed=case.seed, count_tokens=count)
        return Case(case, needle.prompt, needle.target, "token", (needle.fact,), SpanHit(3))


@dataclass(frozen=True)
class PaddedTask(Task):
    """Padded factual prompts of :mod:`benchmarks.padded`, word level, judged by PIZZA's criterion.

    Args:
        shares: key-word shares of the prompt's words (default PIZZA's 50%, 10%, 1%).
        facts: how many of :data:`benchmarks.padded.FACTS` (one case each per share; None: all).
    """

    shares: Sequence[float] = SHARES
    facts: int | None = None
    name: str = "padded"

    def grid(self) -> Iterator[CaseId]:
        from benchmarks.padded import FACTS

        for share in self.shares:
            for seed in range(len(FACTS) if self.facts is None else self.facts):
                yield CaseId(self.name, share, seed)

    def build(self, case: CaseId, backend: Backend) -> Case:
        from benchmarks.padded import FACTS, make_padded_case

        padded = make_padded_case(FACTS[case.seed], float(case.size), seed=case.seed)
        fields = {"key_share": padded.share, "words": padded.n_words}
        return Case(case, padded.prompt, padded.target, "word", padded.key_spans, KeyWordsBeatMean(), fields)

"""Segmentation of a prompt into units at four nested levels.

A prompt is tokenized once by the backend's own tokenizer (:class:`Tokenization`),
then split into units at the levels ``token`` < ``word`` < ``sentence`` <
``paragraph``. Every unit is a run of whole tokens and keeps its character span
``[start, end)`` in the original text, so scores map back to the text exactly.

Boundaries are chosen at character positions by simple, language-agnostic rules
and then snapped to the nearest token edge that falls on a character boundary.
Coarser boundaries are a subset of finer ones before snapping, and snapping is
one monotone function, so the levels nest: a sentence is a run of words, a word
a run of tokens.

Rules (at character level):

* word: a run of non-whitespace characters together with the whitespace before it
  (``" Paris."``); whitespace at the very end of the text is a unit of its own.
* sentence: starts at the first word, and at any word whose preceding whitespace
  holds a newline, or that follows a word ending in ``.``, ``!``, ``?`` or ``…``
  (optionally followed by closing quotes or brackets) and does not start lowercase.
* paragraph: starts at the first word, and at any word preceded by a blank line.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from attrib.errors import TokenizationError, UnknownNameError

__all__ = ["LEVELS", "Tokenization", "Unit", "Segmentation", "check_level"]

#: Unit levels from finest to coarsest.
LEVELS: tuple[str, ...] = ("token", "word", "sentence", "paragraph")

_WORD = re.compile(r"\s*\S+")
_SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*$")
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")


def check_level(level: str) -> str:
    """Return ``level`` if it is one of :data:`LEVELS`.

    Raises:
        UnknownNameError: for any other value.
    """
    if level not in LEVELS:
        raise UnknownNameError.for_choice("level", level, LEVELS)
    return level


@dataclass(frozen=True)
class Tokenization:
    """A text's token ids with the character span of every token.

    Attributes:
        text: the tokenized text.
        ids: token ids, shape (n_tokens,), without BOS or other special tokens.
        spans: ``(start, end)`` character offsets of each token in ``text``. A token
            holding only part of a multi-byte character gets the span of the whole
            character, so neighbouring spans can overlap there.
        edges: sorted token positions ``i`` (0..n_tokens) at which the text can be cut
            between token ``i-1`` and token ``i`` on a character boundary.
    """

    text: str
    ids: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]
    edges: tuple[int, ...]

    @classmethod
    def from_pieces(cls, text: str, ids: Sequence[int], pieces: Sequence[bytes]) -> Tokenization:
        """Build a tokenization from token ids and the UTF-8 bytes each token stands for.

        Raises:
            TokenizationError: if the pieces do not concatenate to ``text`` exactly.
        """
        data = text.encode("utf-8")
        if len(ids) != len(pieces) or b"".join(pieces) != data:
            raise TokenizationError(
                "the tokenizer does not reproduce the prompt byte for byte; "
                "character offsets cannot be mapped (use another backend or model)"
            )
        # char_at[b] = index of the character that contains byte b (b may be len(data)).
        char_at = [0] * (len(data) + 1)
        is_boundary = [False] * (len(data) + 1)
        pos = 0
        for index, char in enumerate(text):
            width = len(char.encode("utf-8"))
            is_boundary[pos] = True
            for k in range(width):
                char_at[pos + k] = index
            pos += width
        char_at[pos] = len(text)
        is_boundary[pos] = True

        spans: list[tuple[int, int]] = []
        edges: list[int] = []
        offset = 0
        for i, piece in enumerate(pieces):
            if is_boundary[offset]:
                edges.append(i)
            end = offset + len(piece)
            start_char = char_at[offset]
            end_char = char_at[end] if is_boundary[end] else char_at[end] + 1
            spans.append((start_char, end_char))
            offset = end
        edges.append(len(pieces))
        return cls(text=text, ids=tuple(int(t) for t in ids), spans=tuple(spans), edges=tuple(edges))

    def __len__(self) -> int:
        return len(self.ids)

    def head(self, cut: int) -> Tokenization:
        """The first ``cut`` tokens as a tokenization of the text before them.

        Raises:
            ValueError: if ``cut`` is not a character-aligned edge (see ``edges``).
        """
        if cut not in self.edges:
            raise ValueError(f"token position {cut} is not on a character boundary")
        end = self.char_offset(cut)
        return Tokenization(
            text=self.text[:end],
            ids=self.ids[:cut],
            spans=self.spans[:cut],
            edges=tuple(e for e in self.edges if e <= cut),
        )

    def char_offset(self, position: int) -> int:
        """Character offset of token edge ``position`` (0..n_tokens)."""
        if position >= len(self.ids):
            return len(self.text)
        return self.spans[position][0]


@dataclass(frozen=True)
class Unit:
    """One input unit: a span of the prompt, made of whole tokens.

    Attributes:
        text: the unit's text, ``prompt[start:end]``.
        start: character offset where the unit starts (inclusive).
        end: character offset where it ends (exclusive).
        role: the role of the message the unit belongs to (``"prompt"`` for plain text).
        message: index of that message (0 for plain text).
        tokens: ``(first, last)`` token positions, half-open, in the prompt's tokenization.
    """

    text: str
    start: int
    end: int
    role: str = "prompt"
    message: int = 0
    tokens: tuple[int, int] = (0, 0)

    @property
    def n_tokens(self) -> int:
        """Number of tokens in the unit."""
        return self.tokens[1] - self.tokens[0]


class Segmentation:
    """A tokenized prompt split into units at every level of :data:`LEVELS`.

    Args:
        tokenization: the prompt's tokens with their character spans.
        role: role recorded on every unit (``"prompt"`` for plain text).
        message: message index recorded on every unit.

    Use :meth:`boundaries` for token positions where units of a level start, and
    :meth:`units` for the units themselves.
    """

    def __init__(self, tokenization: Tokenization, *, role: str = "prompt", message: int = 0) -> None:
        self.tokenization = tokenization
        self.role = role
        self.message = message
        self._boundary_cache: dict[str, tuple[int, ...]] = {}

    @property
    def n_tokens(self) -> int:
        return len(self.tokenization)

    @cached_property
    def _char_boundaries(self) -> dict[str, list[int]]:
        text = self.tokenization.text
        words = list(_WORD.finditer(text))
        word_starts = [m.start() for m in words]
        if words and words[-1].end() < len(text):
            word_starts.append(words[-1].end())  # trailing whitespace unit
        sentence_starts: list[int] = []
        paragraph_starts: list[int] = []
        for i, match in enumerate(words):
            if i == 0:
                sentence_starts.append(match.start())
                paragraph_starts.append(match.start())
                continue
            token = match.group()
            body = token.lstrip()
            space = token[: len(token) - len(body)]
            previous = words[i - 1].group().strip()
            if _BLANK_LINE.search(space):
                paragraph_starts.append(match.start())
            if "\n" in space or (_SENTENCE_END.search(previous) and not body[:1].islower()):
                sentence_starts.append(match.start())
        return {"word": word_starts, "sentence": sentence_starts, "paragraph": paragraph_starts}

    @cached_property
    def _edge_chars(self) -> list[int]:
        tok = self.tokenization
        return [tok.char_offset(p) for p in tok.edges]

    def _snap(self, char: int) -> int:
        """Token position of the character-aligned token edge nearest to ``char`` (ties: earlier)."""
        chars = self._edge_chars
        i = bisect.bisect_left(chars, char)
        if i < len(chars) and chars[i] == char:
            return self.tokenization.edges[i]
        if i == 0:
            return self.tokenization.edges[0]
        if i == len(chars):
            return self.tokenization.edges[-1]
        before, after = chars[i - 1], chars[i]
        return self.tokenization.edges[i - 1 if char - before <= after - char else i]

    def boundaries(self, level: str) -> tuple[int, ...]:
        """Token positions where units of ``level`` start, plus ``n_tokens`` at the end.

        Returns:
            Sorted, unique positions, always beginning with 0 and ending with ``n_tokens``.

        Raises:
            UnknownNameError: if ``level`` is not in :data:`LEVELS`.
        """
        return self._boundaries(check_level(level))

    def _boundaries(self, level: str) -> tuple[int, ...]:
        cache = self._boundary_cache
        if level not in cache:
            if level == "token":
                points = set(self.tokenization.edges)
            else:
                points = {self._snap(c) for c in self._char_boundaries[level]}
            points.update((0, self.n_tokens))
            cache[level] = tuple(sorted(points))
        return cache[level]

    def units(self, level: str) -> list[Unit]:
        """The prompt's units at ``level``, in order, covering the whole text.

        Raises:
            UnknownNameError: if ``level`` is not in :data:`LEVELS`.
        """
        bounds = self.boundaries(level)
        return [self.unit(a, b) for a, b in itertools.pairwise(bounds)]

    def unit(self, first: int, last: int) -> Unit:
        """The unit made of tokens ``[first, last)`` (any run between character-aligned edges)."""
        tok = self.tokenization
        start, end = tok.char_offset(first), tok.char_offset(last)
        return Unit(
            text=tok.text[start:end],
            start=start,
            end=end,
            role=self.role,
            message=self.message,
            tokens=(first, last),
        )

    def roots(self, level: str) -> list[tuple[int, int]] | None:
        """The token spans a hierarchical method starts its tree from, or ``None``: the whole
        text, cut once (a prompt assembled from sources starts from its sources instead)."""
        return None

    def hierarchy(self, level: str) -> list[tuple[int, ...]]:
        """Boundaries of ``level`` and every coarser level, coarsest first.

        Used by the hierarchical scheduler to cut chunks along paragraph, then
        sentence, then word, then token edges, never below ``level``.
        """
        index = LEVELS.index(check_level(level))
        return [self._boundaries(name) for name in reversed(LEVELS[index:])]

"""Perturbations: how a set of ablated token spans turns a prompt into a variant.

A variant is built from the prompt's own token ids and character spans, never
from a re-typed string, so the unperturbed parts are exactly the original tokens
and the variant's text is exactly the original text with the ablated spans cut out
(or replaced).

* :class:`Deletion` (default, leave-one-out by removal): the ablated tokens are removed.
* :class:`Replacement`: each ablated token is replaced by one baseline token, which
  keeps every other token at its position (the "baseline" ablation of occlusion
  methods; Zeiler & Fergus 2014, and captum's ``FeatureAblation`` baselines).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace

from attrib.errors import InputError
from attrib.segmentation import Tokenization

__all__ = [
    "Span",
    "Variant",
    "Perturbation",
    "Deletion",
    "Replacement",
    "merge_spans",
    "VariantHashes",
]

#: A variant's identity (equal for equal token ids) and its length in tokens.
Identity = tuple[Hashable, int]

#: A half-open run of token positions ``(first, last)``.
Span = tuple[int, int]


def merge_spans(spans: Sequence[Span]) -> tuple[Span, ...]:
    """Sort token spans and merge the ones that overlap or touch; drop empty spans."""
    merged: list[list[int]] = []
    for first, last in sorted(s for s in spans if s[1] > s[0]):
        if merged and first <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return tuple((a, b) for a, b in merged)


@dataclass(frozen=True)
class Variant:
    """A perturbed prompt.

    Attributes:
        ablated: merged token spans that were ablated; the variant's identity.
        ids: token ids of the perturbed prompt (no BOS).
        text: its text, cut from the original text by character spans.
    """

    ablated: tuple[Span, ...]
    ids: tuple[int, ...]
    text: str


class Perturbation:
    """Base class of perturbations. Subclasses implement :meth:`apply`."""

    name: str = ""

    def bind(self, tokenize: Callable[[str], Tokenization]) -> Perturbation:
        """Return a copy ready to apply with a backend's tokenizer (resolves baselines)."""
        return self

    def apply(self, prompt: Tokenization, ablated: Sequence[Span]) -> Variant:
        """Build the variant of ``prompt`` with the token spans ``ablated`` perturbed."""
        raise NotImplementedError

    def identify(self, prompt: Tokenization) -> Callable[[tuple[Span, ...]], Identity]:
        """For a dry run (:func:`attrib.plan`): a function giving the variant of ``prompt`` with the
        merged spans it is passed perturbed as ``(identity, length in tokens)``, where two variants
        share an identity when they have the same token ids. The default builds the variant (its
        ids are its identity); a perturbation that can tell without building overrides it.
        """

        def built(spans: tuple[Span, ...]) -> Identity:
            ids = self.apply(prompt, spans).ids
            return ids, len(ids)

        return built

    def describe(self) -> dict[str, object]:
        """JSON-ready description recorded in results."""
        return {"name": self.name}


@dataclass(frozen=True)
class Deletion(Perturbation):
    """Remove the ablated tokens (and their text) from the prompt."""

    name: str = "delete"

    def apply(self, prompt: Tokenization, ablated: Sequence[Span]) -> Variant:
        spans = merge_spans(ablated)
        ids: list[int] = []
        text: list[str] = []
        cursor = 0
        for first, last in spans:
            ids.extend(prompt.ids[cursor:first])
            text.append(prompt.text[prompt.char_offset(cursor) : prompt.char_offset(first)])
            cursor = last
        ids.extend(prompt.ids[cursor:])
        text.append(prompt.text[prompt.char_offset(cursor) :])
        return Variant(ablated=spans, ids=tuple(ids), text="".join(text))

    def identify(self, prompt: Tokenization) -> VariantHashes:
        """Each variant's identity and length by hashes (:class:`VariantHashes`), none built."""
        return VariantHashes(prompt.ids, None)


@dataclass(frozen=True)
class Replacement(Perturbation):
    """Replace every ablated token by one baseline token; positions are kept.

    Args:
        baseline: text that the backend tokenizes to exactly one token
            (default ``" _"``; for Gemma's tokenizer that is one token).
    """

    baseline: str = " _"
    name: str = "replace"
    token_id: int | None = None

    def bind(self, tokenize: Callable[[str], Tokenization]) -> Replacement:
        """Resolve the baseline to its token id.

        Raises:
            InputError: if the baseline is not exactly one token for this tokenizer.
        """
        tokens = tokenize(self.baseline)
        if len(tokens) != 1:
            raise InputError(
                f"baseline {self.baseline!r} is {len(tokens)} tokens for this model; "
                "choose a baseline that is exactly one token"
            )
        return replace(self, token_id=tokens.ids[0])

    def apply(self, prompt: Tokenization, ablated: Sequence[Span]) -> Variant:
        if self.token_id is None:
            raise InputError("Replacement must be bound to a tokenizer before use (call bind)")
        spans = merge_spans(ablated)
        ids = list(prompt.ids)
        text: list[str] = []
        cursor = 0
        for first, last in spans:
            ids[first:last] = [self.token_id] * (last - first)
            text.append(prompt.text[prompt.char_offset(cursor) : prompt.char_offset(first)])
            text.append(self.baseline * (last - first))
            cursor = last
        text.append(prompt.text[prompt.char_offset(cursor) :])
        return Variant(ablated=spans, ids=tuple(ids), text="".join(text))

    def identify(self, prompt: Tokenization) -> VariantHashes:
        """Each variant's identity and length by hashes (:class:`VariantHashes`), none built.

        Raises:
            InputError: if the perturbation is not bound to a tokenizer.
        """
        if self.token_id is None:
            raise InputError("Replacement must be bound to a tokenizer before use (call bind)")
        return VariantHashes(prompt.ids, self.token_id)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "baseline": self.baseline}


_MODULUS = (1 << 61) - 1
_BASE = 1_000_003


class VariantHashes:
    """Identities of perturbed prompts in O(spans) each, without building them: polynomial hashes
    of their token ids from prefix hashes of the prompt's ids (Karp & Rabin 1987), so two
    ablations that yield the same token ids (deleting either copy of a repeated word) get one
    identity. What :meth:`Deletion.identify` and :meth:`Replacement.identify` return.

    Args:
        ids: the prompt's token ids.
        baseline: the replacement token id, or ``None`` for deletion.
    """

    def __init__(self, ids: Sequence[int], baseline: int | None) -> None:
        self.prefix = [0]
        self.power = [1]
        for token in ids:
            self.prefix.append((self.prefix[-1] * _BASE + token + 1) % _MODULUS)
            self.power.append(self.power[-1] * _BASE % _MODULUS)
        self.baseline = baseline
        self.run = [0]  # hash of r baseline tokens in a row
        if baseline is not None:
            for _ in ids:
                self.run.append((self.run[-1] * _BASE + baseline + 1) % _MODULUS)

    def _append(self, value: int, start: int, end: int) -> int:
        piece = (self.prefix[end] - self.prefix[start] * self.power[end - start]) % _MODULUS
        return (value * self.power[end - start] + piece) % _MODULUS

    def __call__(self, spans: tuple[Span, ...]) -> tuple[int, int]:
        """``(hash, length in tokens)`` of the variant with ``spans`` (merged, sorted) perturbed."""
        value, cursor, length = 0, 0, 0
        for start, end in spans:
            value = self._append(value, cursor, start)
            length += start - cursor
            if self.baseline is not None:
                value = (value * self.power[end - start] + self.run[end - start]) % _MODULUS
                length += end - start
            cursor = end
        value = self._append(value, cursor, len(self.prefix) - 1)
        return value, length + len(self.prefix) - 1 - cursor

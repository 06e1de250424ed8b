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

from collections.abc import Callable, Sequence
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
]

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

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "baseline": self.baseline}

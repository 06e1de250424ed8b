"""Claims: the answer cut into the statements that are judged one by one.

By default a claim is a sentence of the answer: a sentence ends after ``.``, ``!``,
``?`` or ``…`` (closing quotes or brackets included) followed by whitespace and a word
that does not start lowercase, or at a line break; citation markers right after a
sentence's end (``... in 1889. [2]``) stay with that sentence. Each claim's span is
trimmed of surrounding whitespace, and a stretch holding nothing but markers,
whitespace and punctuation is no claim. Character spans can be given instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from attrib.context.citations import Marker
from attrib.errors import InputError

__all__ = ["split_claims", "check_spans"]

_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*")


def _has_words(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def split_claims(answer: str, markers: Sequence[Marker] = ()) -> list[tuple[int, int]]:
    """The answer's sentences as ``(start, end)`` character spans, in order (see the module's rules)."""
    masked = list(answer)
    for marker in markers:  # a marker's own brackets and dots are not sentence ends
        masked[marker.start : marker.end] = ["\0"] * (marker.end - marker.start)
    text = "".join(masked)
    cuts = [0]
    position = 0
    while position < len(text):
        char = text[position]
        if char == "\n":
            cuts.append(position + 1)
            position += 1
            continue
        match = _END.match(text, position)
        if match is None:
            position += 1
            continue
        end = match.end()
        after = end
        while after < len(text) and (text[after] in " \t" or text[after] == "\0"):
            after += 1
        # the cut goes after the markers that follow the end, before the next word
        cut = end
        scan = end
        while scan < len(text) and (text[scan] in " \t" or text[scan] == "\0"):
            scan += 1
            if text[scan - 1] == "\0":
                cut = scan
        if after < len(text) and (text[after] == "\n" or (after > end and not text[after].islower())):
            cuts.append(cut)
        position = max(end, position + 1)
    cuts.append(len(text))
    spans = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        piece = answer[start:end]
        inner = "".join(ch for ch, m in zip(piece, text[start:end], strict=True) if m != "\0")
        if not _has_words(inner):
            continue
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        spans.append((start + lead, end - trail))
    return spans


def check_spans(spans: object, answer: str) -> list[tuple[int, int]]:
    """Claim spans given by the caller, checked against the answer.

    Raises:
        InputError: for spans that are not pairs of whole numbers, or lie outside the answer
            (``0 <= start < end <= len(answer)``).
    """
    if not isinstance(spans, Sequence) or isinstance(spans, str) or not spans:
        raise InputError("claims must be a non-empty list of (start, end) character spans of the answer")
    checked = []
    for index, span in enumerate(spans):
        if (
            not isinstance(span, Sequence)
            or isinstance(span, str)
            or len(span) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) for v in span)
        ):
            raise InputError(f"claim {index} is {span!r}; give each claim as (start, end), two whole numbers")
        start, end = span
        if not 0 <= start < end <= len(answer):
            raise InputError(
                f"claim {index} spans {start}-{end}, outside the answer's {len(answer)} characters; "
                "give 0 <= start < end <= len(answer)"
            )
        checked.append((start, end))
    return checked

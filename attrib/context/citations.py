"""Citation markers in an answer: where they are and which source ids they name.

A marker is a match of a regular expression (:data:`DEFAULT_MARKERS` by default:
``[2]``, ``[S3]``, ``[1, 3]``, ``(source 1)``). The ids are its first non-empty
capture group (the whole match without groups), split at commas and semicolons; each
is matched to a source id as written, else with a leading ``S``/``source``/``src``
taken off (``[S3]`` names source ``"3"`` when there is no source ``"S3"``). An item
that names no source counts as a citation of an unknown source only when it looks like
one (digits, optionally after that prefix), so a bracketed word (``[sic]``) is no marker.

Markers are part of the answer: they are scored with it (the answer is what the model
said), but their tokens are left out of every claim's attribution, so a citation cannot
verify itself (the cited source's header predicts its own marker).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from attrib.errors import InputError

__all__ = ["DEFAULT_MARKERS", "Marker", "find_markers", "compile_markers"]

#: The default marker syntax: ``[2]``, ``[S3]``, ``[source 2]``, ``[1, 3]``, ``(source 1)``, ``(src 2)``.
DEFAULT_MARKERS = r"\[((?:source\s*|src\s*|S)?[\w.\-]+(?:\s*[,;]\s*(?:source\s*|src\s*|S)?[\w.\-]+)*)\]|\((?:source|src)\s+([\w.\-]+(?:\s*[,;]\s*[\w.\-]+)*)\)"

_PREFIX = re.compile(r"^(?:source\s*|src\s*|s)", re.IGNORECASE)
_ID_LIKE = re.compile(r"^(?:source\s*|src\s*|s)?\d+$", re.IGNORECASE)


@dataclass(frozen=True)
class Marker:
    """A citation marker in the answer: its character span and the ids it names, in order."""

    start: int
    end: int
    ids: tuple[str, ...]


def compile_markers(pattern: str) -> re.Pattern[str]:
    """The marker pattern compiled (case-insensitive).

    Raises:
        InputError: if it is not a valid regular expression, or matches the empty string.
    """
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error as error:
        raise InputError(f"markers is not a valid regular expression ({error}); fix the pattern") from None
    if compiled.fullmatch(""):
        raise InputError("the markers pattern matches empty text; give a pattern that matches a marker such as [2]")
    return compiled


def _resolve(item: str, ids: Sequence[str]) -> str | None:
    item = item.strip()
    if item in ids:
        return item
    bare = _PREFIX.sub("", item, count=1).strip()
    if bare in ids:
        return bare
    return (bare or item) if _ID_LIKE.match(item) else None


def find_markers(answer: str, pattern: str, ids: Sequence[str]) -> list[Marker]:
    """The citation markers in ``answer``, in order.

    Args:
        answer: the answer text.
        pattern: the marker pattern (see the module's docstring).
        ids: the source ids.

    Raises:
        InputError: for an invalid pattern (:func:`compile_markers`).
    """
    found = []
    for match in compile_markers(pattern).finditer(answer):
        groups = [g for g in match.groups() if g]
        inside = groups[0] if groups else match.group()
        named = [_resolve(item, ids) for item in re.split(r"[,;]", inside)]
        resolved = tuple(dict.fromkeys(n for n in named if n is not None))
        if resolved and match.end() > match.start():
            found.append(Marker(match.start(), match.end(), resolved))
    return found

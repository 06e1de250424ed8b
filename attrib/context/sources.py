"""Sources: the parts of an assembled prompt that are attributed (retrieved chunks, documents, tool results).

A source has an id (what citation markers name), its text and optional metadata. Sources
are given as strings (ids ``"1"``, ``"2"``, ... in order) or as mappings with ``id`` and
``text`` (every other key is metadata, kept in the result).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from attrib.errors import InputError

__all__ = ["Source", "as_sources"]


@dataclass(frozen=True)
class Source:
    """One source of an assembled prompt.

    Attributes:
        id: the source's id, non-empty text without line breaks (citation markers name it).
        text: the source's text, not empty.
        metadata: anything else about it (JSON values: a title, a URL, a retrieval score).
    """

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _check_metadata(metadata: dict[str, Any], where: str) -> dict[str, Any]:
    """Metadata must be JSON (it is recorded in the result, which must never fail to save)."""
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InputError(
            f"{where} metadata must be JSON values (strings, finite numbers, lists, objects): {error}"
        ) from None
    for value in metadata.values():
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{where} metadata holds {value}; give finite numbers")
    return metadata


def _one(item: object, index: int) -> Source:
    where = f"source {index}"
    if isinstance(item, Source):
        item = {"id": item.id, "text": item.text, **item.metadata}
    if isinstance(item, str):
        if not item.strip():
            raise InputError(f"{where} is empty; give its text, or leave it out")
        return Source(str(index + 1), item)
    if not isinstance(item, Mapping):
        raise InputError(f"{where} must be a string or a mapping with 'id' and 'text', got {type(item).__name__}")
    if "text" not in item:
        raise InputError(f"{where} has no 'text'; give each source as {{'id': ..., 'text': ...}}")
    if "id" not in item:
        raise InputError(f"{where} has no 'id'; give each source an id (what citation markers name)")
    ident, text = item["id"], item["text"]
    if not isinstance(ident, str):
        raise InputError(f"{where} has id {ident!r}, a {type(ident).__name__}; source ids must be strings")
    if not ident.strip() or ident != ident.strip() or "\n" in ident:
        raise InputError(f"{where} has id {ident!r}; ids must be non-empty text without surrounding spaces or newlines")
    if not isinstance(text, str):
        raise InputError(f"source {ident!r} has text of type {type(text).__name__}; give a string")
    if not text.strip():
        raise InputError(f"source {ident!r} is empty; give its text, or leave it out")
    metadata = {str(key): value for key, value in item.items() if key not in ("id", "text")}
    return Source(ident, text, _check_metadata(metadata, f"source {ident!r}"))


def as_sources(sources: object) -> tuple[Source, ...]:
    """Check ``sources`` and return them as :class:`Source` objects, in order.

    Args:
        sources: a non-empty sequence of strings (ids ``"1"``, ``"2"``, ... by position) or of
            mappings with a string ``id`` and a ``text`` (other keys are metadata), or of
            :class:`Source`.

    Raises:
        InputError: for an empty list, a source that is empty or not a string or mapping, a
            missing, non-string or blank id, duplicate ids, or metadata that is not JSON.
    """
    if isinstance(sources, str | bytes | Mapping) or not isinstance(sources, Sequence):
        raise InputError("sources must be a list of strings or of {'id', 'text'} mappings")
    if not sources:
        raise InputError("the source list is empty; give at least one source to attribute the answer to")
    checked = tuple(_one(item, index) for index, item in enumerate(sources))
    seen: set[str] = set()
    for source in checked:
        if source.id in seen:
            raise InputError(f"source id {source.id!r} is given twice; every source needs its own id")
        seen.add(source.id)
    return checked

"""Reading results written by earlier attrib versions: each older layout is upgraded to the current one.

Schema version 1 (attrib 0.1) wrote the same keys as version 2 with the parts as
free-form objects; its reader filled absent keys with defaults and ignored unknown
``stats`` counters. Version 2 types every part and publishes a JSON Schema. Upgrading
a version-1 file keeps that leniency and then reads it as version 2. Version 3 added
the optional ``context`` of a context attribution (:func:`attrib.cite`): a version-2
file is a version-3 file without one.
"""

from __future__ import annotations

from typing import Any

from attrib.errors import ResultError

__all__ = ["upgrade"]


def _from_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 result as version 2: unknown ``stats`` counters and unknown top-level keys dropped."""
    from attrib.result.attribution import Attribution
    from attrib.result.parts import Stats

    known = {f for f in Attribution.__dataclass_fields__} | {"schema", "unit_scores"}
    upgraded = {key: value for key, value in data.items() if key in known}
    stats = upgraded.get("stats")
    if isinstance(stats, dict):
        upgraded["stats"] = {key: value for key, value in stats.items() if key in Stats.__dataclass_fields__}
    for key in (
        "trace",
        "noise",
        "shapley",
        "hidden_influence",
        "roles",
        "messages",
        "output_token_ids",
        "base_logprobs",
    ):
        upgraded.setdefault(key, None)
    upgraded["schema_version"] = 2
    return upgraded


def _from_v2(data: dict[str, Any]) -> dict[str, Any]:
    """A version-2 result as version 3: the same keys (``context`` is absent: no sources)."""
    if "context" in data:
        raise ResultError("a version-2 result has no 'context'; the file is damaged or mislabelled")
    return {**data, "schema_version": 3}


_UPGRADES = {1: _from_v1, 2: _from_v2}


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` in the current layout (version 3), upgraded from versions 1 and 2 if need be.

    Raises:
        ResultError: for a schema version this attrib does not read.
    """
    from attrib.result.attribution import SCHEMA_VERSION

    version = data.get("schema_version")
    while type(version) is int and version in _UPGRADES:
        data = _UPGRADES[version](data)
        version = data["schema_version"]
    if type(version) is not int or version != SCHEMA_VERSION:
        raise ResultError(f"result has schema version {version!r}; this attrib reads versions 1 to {SCHEMA_VERSION}")
    return data

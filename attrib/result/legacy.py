"""Reading results written by earlier attrib versions: each older layout is upgraded to the current one.

Schema version 1 (attrib 0.1) wrote the same keys as version 2 with the parts as
free-form objects; its reader filled absent keys with defaults and ignored unknown
keys (at the top, in ``stats`` and in each unit). Version 2 types every part and
publishes a JSON Schema. Upgrading a version-1 file keeps that leniency and then
reads it as version 2. Version 3 added
the optional ``context`` of a context attribution (:func:`attrib.cite`): a version-2
file is a version-3 file without one.

The version-1 layout is written down here, frozen, as attrib 0.1 wrote and read it
(:data:`V1_DEFAULTS`, :data:`V1_REQUIRED`, :data:`V1_STATS`, :data:`V1_UNIT_DEFAULTS`):
it is never derived from today's classes, so a field added to :class:`~attrib.result.Attribution`
changes what version 2 holds, not what a version-1 file is read as. This module imports
no other module of :mod:`attrib.result`.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

__all__ = ["V1_REQUIRED", "V1_DEFAULTS", "V1_STATS", "V1_UNIT_DEFAULTS", "V1_KEYS", "OLDEST_VERSION", "upgrade"]

#: The top-level keys every version-1 result holds.
V1_REQUIRED = ("prompt", "units", "output", "output_tokens", "scores", "method", "level")
#: The other top-level keys of version 1, with the value attrib 0.1's reader gave an absent one
#: (``stats`` absent: every counter at its default).
V1_DEFAULTS: MappingProxyType[str, Any] = MappingProxyType(
    {
        "backend": {},
        "stats": {},
        "output_token_ids": None,
        "base_logprobs": None,
        "perturbation": {"name": "delete"},
        "parameters": {},
        "trace": None,
        "messages": None,
        "score_kind": "logprob",
        "noise": None,
        "roles": None,
        "shapley": None,
        "hidden_influence": None,
    }
)
#: Every top-level key of a version-1 file (``unit_scores`` is derived, and checked by the reader).
V1_KEYS = frozenset({"schema", "schema_version", "unit_scores", *V1_REQUIRED, *V1_DEFAULTS})
#: The ``stats`` counters of version 1; any other counter was ignored.
V1_STATS = frozenset(
    {
        "calls",
        "tokens_evaluated",
        "seconds",
        "generated_tokens",
        "reused",
        "budget",
        "budget_exhausted",
        "backend_usage",
    }
)
#: A unit's keys in version 1 (``text``, ``start`` and ``end`` required), with the defaults of the others.
V1_UNIT_DEFAULTS: MappingProxyType[str, Any] = MappingProxyType({"role": "prompt", "message": 0, "tokens": [0, 0]})
_V1_UNIT_KEYS = frozenset({"text", "start", "end", *V1_UNIT_DEFAULTS})


def _from_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 result as version 2: keys version 1 did not have dropped, absent ones given
    version 1's defaults (a missing required key is left for the version-2 reader to name)."""
    upgraded = {key: value for key, value in data.items() if key in V1_KEYS}
    for key, value in V1_DEFAULTS.items():
        upgraded.setdefault(key, value)
    stats = upgraded["stats"]
    if isinstance(stats, dict):
        upgraded["stats"] = {key: value for key, value in stats.items() if key in V1_STATS}
    units = upgraded.get("units")
    if isinstance(units, list):
        upgraded["units"] = [
            {**V1_UNIT_DEFAULTS, **{k: v for k, v in unit.items() if k in _V1_UNIT_KEYS}}
            if isinstance(unit, dict)
            else unit
            for unit in units
        ]
    upgraded["schema_version"] = 2
    return upgraded


def _from_v2(data: dict[str, Any]) -> dict[str, Any]:
    """A version-2 result as version 3: the same keys (``context`` is absent: no sources; the
    reader refuses a version-2 file that holds one)."""
    return {**data, "schema_version": 3}


#: The upgrade that reads each older version, to the next version.
_UPGRADES = {1: _from_v1, 2: _from_v2}
#: The oldest schema version this attrib reads.
OLDEST_VERSION = min(_UPGRADES)


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` upgraded through every older version it is in, to the first version without an
    upgrade (the current one, or one this attrib does not know: the caller checks it).
    """
    version = data.get("schema_version")
    while type(version) is int and version in _UPGRADES:
        data = _UPGRADES[version](data)
        version = data["schema_version"]
    return data

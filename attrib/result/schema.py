"""The JSON Schema (draft 2020-12) of a result file, derived from the result's typed fields.

The schema shipped with the package (:data:`SCHEMA_PATH`) is this module's output;
the tests check that the two agree and that every result they produce validates.
Regenerate the file after changing a part::

    python -m attrib.result.schema > attrib/result/attribution.schema.json

Source: JSON Schema 2020-12, https://json-schema.org/draft/2020-12 (``$defs``,
``$ref``, ``prefixItems``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from attrib.result.codec import MATRIX, field_hints

__all__ = ["SCHEMA_PATH", "SCHEMA_ID", "build_schema", "load_schema"]

#: The schema file shipped with the package.
SCHEMA_PATH = Path(__file__).resolve().parent / "attribution.schema.json"
#: The schema's ``$id``.
SCHEMA_ID = "urn:attrib:schema:attribution:3"

_SCALARS: dict[Any, dict[str, Any]] = {
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    type(None): {"type": "null"},
}


def _describe(cls: type) -> str:
    return (cls.__doc__ or cls.__name__).strip().splitlines()[0]


def _type(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """The schema of one type hint; dataclasses go into ``defs`` and are referenced."""
    origin = get_origin(hint)
    if origin is Annotated:
        tag = get_args(hint)[1]
        if tag == "json":
            return {}
        vector = {"type": "array", "items": {"type": "number"}}
        return {"type": "array", "items": vector} if tag == MATRIX else vector
    if origin in (Union, types.UnionType):
        return {"anyOf": [_type(option, defs) for option in get_args(hint)]}
    if origin is Literal:
        return {"enum": list(get_args(hint))}
    if origin is list:
        return {"type": "array", "items": _type(get_args(hint)[0], defs)}
    if origin is tuple:
        items = [_type(item, defs) for item in get_args(hint)]
        return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type(get_args(hint)[1], defs)}
    if hint in _SCALARS:
        return dict(_SCALARS[hint])
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        name = hint.__name__
        if name not in defs:
            defs[name] = {}  # placeholder: parts may refer to each other
            defs[name] = _object(hint, defs)
        return {"$ref": f"#/$defs/{name}"}
    raise TypeError(f"no schema rule for {hint!r}")


def _object(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    hints = field_hints(cls)
    fields = dataclasses.fields(cls)
    return {
        "description": _describe(cls),
        "type": "object",
        "properties": {f.name: _type(hints[f.name], defs) for f in fields},
        "required": [
            f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ],
        "additionalProperties": False,
    }


def build_schema() -> dict[str, Any]:
    """The JSON Schema of a result file of the current schema version, from the fields of ``Attribution``."""
    from attrib.result.attribution import SCHEMA, SCHEMA_VERSION, Attribution

    defs: dict[str, Any] = {}
    top = _object(Attribution, defs)
    top["properties"] = {
        "schema": {"const": SCHEMA},
        "schema_version": {"const": SCHEMA_VERSION},
        **top["properties"],
        "unit_scores": {"type": "array", "items": {"type": "number"}},
    }
    top["required"] = ["schema", "schema_version", *top["required"]]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"attrib attribution result, schema version {SCHEMA_VERSION}",
        **top,
        "$defs": dict(sorted(defs.items())),
    }


def load_schema() -> dict[str, Any]:
    """The schema file shipped with the package, parsed.

    Raises:
        OSError: if the file is missing from the installation.
    """
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


if __name__ == "__main__":
    sys.stdout.write(json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n")

"""The JSON Schema (draft 2020-12) of a dataset summary, ``attrib summarize --json``
(:meth:`attrib.summary.DatasetSummary.to_dict`).

The schema ships with the package (:data:`SUMMARY_SCHEMA_PATH`); its ``cite`` part is
stated field by field, the older sections by their keys. The tests validate every
summary they produce against it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["SUMMARY_SCHEMA_PATH", "load_summary_schema"]

#: The schema file shipped with the package.
SUMMARY_SCHEMA_PATH = Path(__file__).resolve().parent / "summary.schema.json"


def load_summary_schema() -> dict[str, Any]:
    """The summary's JSON Schema, as a dict."""
    schema: dict[str, Any] = json.loads(SUMMARY_SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema

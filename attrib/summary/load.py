"""Reading a batch OUT_DIR: the records of ``records.jsonl`` and the results of ``items/``.

The layout is the batch contract's (``docs/batch.md``): ``records.jsonl`` holds one
compact JSON object per finished item, appended line by line; ``items/<key>.json``
holds each ok item's full :class:`~attrib.result.Attribution`. A run killed
mid-write can leave a torn last line: it is skipped (the batch run rewrites it on
resume), as is a line a resumed run superseded (the last record of an id wins).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attrib.errors import InputError, ResultError
from attrib.result import Attribution

__all__ = ["Item", "Records", "iter_items", "read_item", "read_records"]


@dataclass(frozen=True)
class Records:
    """The records of an OUT_DIR.

    Attributes:
        ok: the ok records, in file order (one per id; the last written wins).
        errors: the error records, in file order (an id retried successfully is not here).
        torn: True when the last line was cut (a run killed mid-write) and skipped.
    """

    ok: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    torn: bool


@dataclass(frozen=True)
class Item:
    """One ok record with its full result."""

    record: dict[str, Any]
    result: Attribution

    @property
    def id(self) -> str:
        """The record's id."""
        return str(self.record["id"])

    @property
    def meta(self) -> dict[str, Any]:
        """The input record's extra keys (``label``, ...), ``{}`` when none."""
        meta = self.record.get("meta")
        return meta if isinstance(meta, dict) else {}


def read_records(out_dir: str | Path) -> Records:
    """The records of ``out_dir/records.jsonl``.

    Raises:
        InputError: if ``out_dir`` has no ``records.jsonl`` (not a batch OUT_DIR), or it
            is not a file or cannot be read.
        ResultError: if a line other than the last is not a JSON object with an ``id``
            and a ``status`` (the file was edited or is not a batch record file).
    """
    path = Path(out_dir) / "records.jsonl"
    if path.exists() and not path.is_file():
        raise InputError(f"{path} is not a file; {out_dir} is not the OUT_DIR of an attrib batch run, or was damaged")
    if not path.is_file():
        raise InputError(f"{out_dir} holds no records.jsonl; give the OUT_DIR of an attrib batch run")
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from None
    if lines and lines[-1] == "":
        lines.pop()
    latest: dict[str, dict[str, Any]] = {}
    torn = False
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        record = _parse(line)
        if record is None:
            if number == len(lines):
                torn = True
                continue
            raise ResultError(f"{path} line {number} is not a batch record; the file was edited or is not attrib's")
        latest.pop(str(record["id"]), None)  # re-insert: order follows the last write
        latest[str(record["id"])] = record
    ok = [r for r in latest.values() if r["status"] == "ok"]
    errors = [r for r in latest.values() if r["status"] != "ok"]
    return Records(ok, errors, torn)


def _parse(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or "id" not in value or value.get("status") not in ("ok", "error"):
        return None
    return value


def iter_items(out_dir: str | Path, records: Records) -> Iterator[Item]:
    """Each ok record with its result, read from the file the record names (:func:`read_item`).

    Raises:
        ResultError: as :func:`read_item`.
    """
    for record in records.ok:
        yield Item(record, read_item(out_dir, record))


def read_item(out_dir: str | Path, record: dict[str, Any]) -> Attribution:
    """The result of one ok record, read from the file the record names.

    The one reader of item files: ``attrib summarize`` refuses what it refuses, and the
    batch's units table leaves those items out (:meth:`attrib.batch.outdir.OutDir.unit_rows`).

    Raises:
        ResultError: if the record names no file, a file outside ``out_dir/items``, or a
            file that is missing, not a file, unreadable or not a valid attrib result;
            the message names the record and says how to redo it.
    """
    name = record.get("file")
    shown = repr(str(record.get("id")))
    if not isinstance(name, str):
        raise ResultError(f"record {shown} names no result file")
    root = (Path(out_dir) / "items").resolve()
    path = (Path(out_dir) / name).resolve()
    if path.parent != root:
        raise ResultError(f"record {shown} names {name!r}, outside the OUT_DIR's items/")
    redo = "re-run the attrib batch command that wrote this OUT_DIR to redo it"
    if not path.exists():
        raise ResultError(f"record {shown}: its result file {name} is missing; {redo}")
    if not path.is_file():
        raise ResultError(f"record {shown}: its result file {name} is not a file; move it away and {redo}")
    try:
        return Attribution.from_json(path)
    except OSError as error:
        raise ResultError(f"record {shown}: cannot read {name}: {error.strerror or error}") from None
    except ResultError as error:
        raise ResultError(f"record {shown}: {name}: {error}; delete that file and {redo}") from None

"""Hostile datasets for ``attrib batch``: write them, say what each record must become, check an OUT_DIR.

A hostile record is one a careless or hostile user could hand to ``attrib batch``:
ids such as ``..``, ``/``, NUL, markup, 300 characters, two ids equal in their first
120 characters, ``line-N`` (a fallback id's form), lone surrogates, numbers;
metadata holding NaN, Infinity, huge integers, nesting (and, in Parquet, dates,
decimals, bytes); valid and invalid per-record options; empty prompts, chats,
targets. Every prompt carries a marker ``[rK]`` (K the record's index) so an item
file can be traced back to the record it belongs to.

The module has three parts, shared with ``tests/test_batch_properties.py``:

* :func:`write_dataset`: records as JSON Lines, CSV or Parquet, and what attrib
  should read back from each (:class:`Row`);
* :func:`check_out_dir`: the invariants of a finished run (every record exactly
  once in ``records.jsonl``, every ok record's file holding that record's result,
  strict JSON only, no temporary or stray file, ``run.json`` describing the input);
* the scale run (``python -m benchmarks.hostile_batch``): 1,000 hostile records
  through ``python -m attrib batch --backend toy --skip-bad-lines``, SIGKILLed at
  random moments and resumed 20 times, then run to the end and checked; the numbers
  go to ``benchmarks/results/hostile_batch.md``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import decimal
import hashlib
import importlib.util
import io
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Placeholder in generated prompts and message contents, replaced by the record's marker.
MARK = "\u00a7M\u00a7"

#: Per-record option keys and values attrib documents (docs/batch.md); anything else is a bad record.
OPTION_KEYS = frozenset({"level", "method", "budget", "max_new_tokens", "seed"})
LEVELS = ("token", "word", "sentence", "paragraph")
METHODS = ("hierarchical", "hipe", "itp", "kernelshap", "lime", "shapley", "surrogate")

#: Ids no file system or report should be surprised by.
HOSTILE_IDS = (
    "..",
    ".",
    "/",
    "../../etc/passwd",
    "a/b",
    "a\\b",
    "a\x00b",
    "\x00",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "-rf",
    "--help",
    ".hidden",
    "CON",
    "nul",
    "~",
    " spaced ",
    "%2E%2E",
    "id%00",
    "a_h12345678",
    "tab\there",
    "new\nline",
    "\u202eevil",
    "\u2028",
    "é",
    "e\u0301",
    "日本語",
    "😀",
    "x" * 300,
)

#: Two ids of 127 and 128 characters, equal in their first 120, whose sha256 digests share
#: their first 8 hex digits (found by a birthday search over ``"collide-" + "c" * 115 + str(n)``):
#: a file name of 120 characters and 8 hex digits of the hash cannot tell them apart.
COLLIDING_IDS = ("collide-" + "c" * 115 + "2481", "collide-" + "c" * 115 + "13899")

#: Ids holding a lone surrogate (valid in JSON's ``\\ud800`` escape, not in UTF-8).
SURROGATE_IDS = ("sur\ud800rogate", "\udfff", "a\udc80b")

_WORDS = (
    "The capital of France is Paris.",
    "Otters swim.",
    "It rains\u2028today.",
    "Line\u2029break.",
    "Next\u0085line.",
    'Quote " and back\\slash.',
    "Comma, semicolon; tab\there.",
    "Émile lit un livre.",
    "東京は首都です。",
    "😀 emoji.",
    "<b>markup</b> &amp;",
    "new\nline inside",
    "a\r\nwindows line",
)


class Garbage(str):
    """A JSON Lines line that is not a valid JSON record (written as is)."""


@dataclass
class Row:
    """One record of a written dataset and what attrib must make of it.

    Attributes:
        index: the record's position in the dataset (its marker is ``[r<index>]``).
        read: the record as attrib reads it back (CSV cells as strings, Parquet nulls
            dropped), or a :class:`Garbage` line.
        line: its line number in the input when known in advance (JSON Lines, Parquet),
            else ``None`` (CSV, where quoted cells may span lines).
        status: ``"ok"``, ``"error"``, or ``None`` when either is right (a value that is
            not strict JSON, which attrib may convert or refuse).
        explicit: the id attrib must keep, or ``None`` (a fallback id, or an id attrib may convert).
        fallback: whether the record gets a fallback id (``line-N``, or ``line-N.2`` when a record's
            own id is ``line-N``): it has none, or an unusable one, or a duplicate, or is no record at all.
        target: the output the item file must hold, when given.
    """

    index: int
    read: object
    line: int | None
    status: str | None
    explicit: str | None
    fallback: bool = False
    target: str | None = None


# --------------------------------------------------------------------------- generating


def marker(index: int) -> str:
    return f"[r{index}]"


def placed(value: object, index: int) -> object:
    """``value`` with :data:`MARK` replaced by record ``index``'s marker, in every string inside it."""
    if isinstance(value, str) and not isinstance(value, Garbage):
        return value.replace(MARK, marker(index))
    if isinstance(value, dict):
        return {key: placed(item, index) for key, item in value.items()}
    if isinstance(value, list):
        return [placed(item, index) for item in value]
    return value


def hostile_records(count: int, rng: random.Random) -> list[object]:
    """``count`` hostile JSON Lines records (dicts, or :class:`Garbage` lines), markers placed."""
    records: list[object] = []
    for index in range(count):
        records.append(placed(_hostile_record(rng, count), index))
    if count >= 4:  # ids equal in their first 120+ characters, two of them with the same 8 hex digits
        stem = "k" * rng.randint(118, 200)
        for index, new_id in zip(
            rng.sample(range(count), 4), (stem + "-one", stem + "-two", *COLLIDING_IDS), strict=True
        ):
            if isinstance(records[index], dict):
                records[index]["id"] = new_id  # type: ignore[index]
    return records


def _hostile_record(rng: random.Random, count: int) -> object:
    roll = rng.random()
    if roll < 0.03:
        return Garbage(rng.choice(['{"id": "torn", "prompt": ', "[1, 2]", "null", '"just a string"', "{bad json}"]))
    record: dict[str, object] = {}
    kind = rng.random()
    text = " ".join(rng.sample(_WORDS, rng.randint(1, 3)))
    if kind < 0.7:
        record["prompt"] = f"{MARK} {text}" if rng.random() > 0.03 else rng.choice(["", "   "])
    elif kind < 0.85:
        record["system"] = "You are terse. " + rng.choice(_WORDS)
        record["prompt"] = f"{MARK} {text}"
    elif kind < 0.97:
        record["messages"] = [
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": f"{MARK} {text}"},
        ]
    else:
        record["messages"] = [{"role": "wizard", "content": MARK}]
    id_roll = rng.random()
    if id_roll < 0.45:
        record["id"] = f"q{rng.randrange(10 * count)}"  # sometimes a duplicate
    elif id_roll < 0.55:
        record["id"] = rng.choice(HOSTILE_IDS)  # as is: the second holder of each is a duplicate
    elif id_roll < 0.7:
        record["id"] = rng.choice(HOSTILE_IDS) + str(rng.randrange(10 * count))  # mostly unique
    elif id_roll < 0.75:
        record["id"] = rng.choice(SURROGATE_IDS)
    elif id_roll < 0.8:
        record["id"] = f"line-{rng.randint(1, count)}"
    elif id_roll < 0.87:
        record["id"] = rng.choice([0, -7, 10**30, rng.randrange(10 * count), rng.randrange(10**12)])
    elif id_roll < 0.9:
        record["id"] = rng.choice([True, 1.5, "", "  ", [], {"a": 1}])
    # else: no id (a fallback id)
    if rng.random() < 0.2:
        record["target"] = rng.choice([" yes", " no it is not", "", 5])
    if rng.random() < 0.3:
        record["options"] = rng.choice(
            [
                {"level": rng.choice(LEVELS)},
                {"method": rng.choice(METHODS), "level": "word"},
                {"budget": 64},
                {"max_new_tokens": rng.randint(1, 4), "seed": rng.choice([0, 7, 2**40])},
                {"level": "nonsense"},
                {"budget": 1},
                {"colour": "red"},
                "word",
            ]
        )
    for _ in range(rng.randint(0, 3)):
        key = rng.choice(["label", "score", "nested", "big", "note", "file", "status"])
        if rng.random() < 0.15:  # a value JSON cannot hold (attrib refuses the record), or a key that UTF-8 cannot
            key = rng.choice([key, key, "sur\udc00key"])
            record[key] = rng.choice([math.nan, math.inf, -math.inf, {"deep": [1, {"x": math.nan}]}, "lone \ud800"])
        else:
            record[key] = rng.choice(
                [10**40, -(2**63), 1e308, [[[["nested"]]]], "text\u2028with separator", None, True, "</script>"]
            )
    return record


# --------------------------------------------------------------------------- writing


def write_dataset(
    path: Path,
    records: Sequence[object],
    *,
    ascii_json: bool = False,
    bom: bool = False,
    int_ids: bool = False,
    crlf: bool = False,
    blank_lines: bool = False,
) -> list[Row]:
    """Write ``records`` in the format of ``path``'s suffix; return each record's :class:`Row`.

    JSON Lines: one record a line (``json.dumps``, NaN and Infinity as their
    JavaScript tokens; records holding a lone surrogate always ``\\u``-escaped), a
    :class:`Garbage` record as its raw text; with ``crlf`` lines end in ``\\r\\n``,
    with ``blank_lines`` an empty line (not a record, but counted) precedes every
    third record. CSV: a header of every key, each cell a string (``messages`` and
    ``options`` as JSON, lone surrogates dropped, which UTF-8 cannot hold), and a
    last :class:`Garbage` record as a row whose quote is never closed. Parquet: see
    :func:`write_parquet`. ``bom`` starts a text file with a UTF-8 byte-order mark.
    """
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return write_parquet(path, records, int_ids=int_ids)
    if suffix == ".csv":
        return _write_csv(path, records, bom=bom)
    lines: list[str] = []
    numbers: list[int] = []
    for index, record in enumerate(records):
        if blank_lines and index % 3 == 2:
            lines.append("")
        if isinstance(record, Garbage):
            lines.append(str(record))
        else:
            lines.append(json.dumps(record, ensure_ascii=ascii_json or _has_surrogate(record)))
        numbers.append(len(lines))
    end = "\r\n" if crlf else "\n"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + "".join(line + end for line in lines).encode("utf-8"))
    return expectations(records, lines=numbers)


def _write_csv(path: Path, records: Sequence[object], *, bom: bool) -> list[Row]:
    unclosed = bool(records) and isinstance(records[-1], Garbage)  # written as a row whose quote never closes
    cleaned: list[dict[str, object]] = []
    for given in records[:-1] if unclosed else records:  # other garbage: a record without a prompt, as bad
        record = _no_surrogates({"note": str(given)} if isinstance(given, Garbage) else given)
        cleaned.append(record if isinstance(record, dict) else {"note": str(record)})
    keys: list[str] = []
    for record in cleaned:
        for key in record:
            if key not in keys:
                keys.append(key)
    if not keys:
        keys = ["prompt"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(keys)
    read: list[object] = []
    for record in cleaned:
        cells = [_cell(key, record[key]) if key in record else "" for key in keys]
        writer.writerow(cells)
        read.append({key: _cell_read(key, cell) for key, cell in zip(keys, cells, strict=True) if cell != ""})
    if unclosed:
        buffer.write('"a quote never closed,' + str(records[-1]).replace('"', "") + "\r\n")
        read.append(records[-1])
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode("utf-8"))
    return expectations(read, lines=None)


def _cell(key: str, value: object) -> str:
    if key in ("messages", "options") or isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return ""
    return str(value)


def _cell_read(key: str, cell: str) -> object:
    if key in ("messages", "options"):
        try:
            return json.loads(cell)
        except ValueError:
            return Garbage(cell)
    return cell


def write_parquet(path: Path, records: Sequence[object], *, int_ids: bool = False) -> list[Row]:
    """Write ``records`` as Parquet with one typed column per key; return their rows.

    Columns take the types Parquet users have: ``id`` as strings (or int64 with
    ``int_ids``), ``options`` as a struct whose keys differ from row to row (a row's
    missing keys are nulls), ``messages`` as a list of structs, and metadata columns
    as float64 (NaN, Infinity), int64, timestamps, dates, decimals, binary and lists
    (every third row plain, the others hostile). A record's own metadata is not
    written; lone surrogates are dropped (Parquet strings are UTF-8); a value of
    the wrong type for its column is written as null. What attrib must read is what
    pyarrow reads back, nulls dropped (inside ``options`` too).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    struct = {
        "level": pa.string(),
        "method": pa.string(),
        "budget": pa.int64(),
        "max_new_tokens": pa.int64(),
        "seed": pa.int64(),
        "colour": pa.string(),
    }

    def fits(key: str, value: object) -> bool:
        if struct[key] == pa.string():
            return isinstance(value, str)
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63

    rows: list[dict[str, object]] = []
    for index, given in enumerate(records):
        record = _no_surrogates(given) if isinstance(given, dict) and not isinstance(given, Garbage) else {}
        assert isinstance(record, dict)
        row: dict[str, object] = {}
        raw_id = record.get("id")
        if int_ids:
            whole = isinstance(raw_id, int) and not isinstance(raw_id, bool) and abs(raw_id) < 2**63
            row["id"] = raw_id if whole else None
        else:
            row["id"] = raw_id if isinstance(raw_id, str) else None
        for key in ("prompt", "system", "target"):
            value = record.get(key)
            row[key] = value if isinstance(value, str) else None
        messages = record.get("messages")
        good = isinstance(messages, list) and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages
        )
        row["messages"] = messages if good else None
        options = record.get("options")
        if isinstance(options, dict):
            row["options"] = {key: value for key, value in options.items() if key in struct and fits(key, value)}
        else:
            row["options"] = None
        plain = index % 3 == 0
        row["score"] = 0.5 if plain else [math.nan, math.inf, -math.inf][index % 3 - 1]
        row["big"] = 2**63 - 1 if plain else -(2**63)
        row["nested"] = [1, 2, 3] if plain else []
        if not plain:
            row["when"] = datetime.datetime(2024, 2, 29, 23, 59, 59, 999999)
            row["day"] = datetime.date(9999, 12, 31)
            row["price"] = decimal.Decimal("-0.001")
            row["blob"] = b"\x00\xff\xfe"
        rows.append(row)
    schema = pa.schema(
        [
            ("id", pa.int64() if int_ids else pa.string()),
            ("prompt", pa.string()),
            ("system", pa.string()),
            ("target", pa.string()),
            ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("options", pa.struct(list(struct.items()))),
            ("score", pa.float64()),
            ("big", pa.int64()),
            ("nested", pa.list_(pa.int64())),
            ("when", pa.timestamp("us")),
            ("day", pa.date32()),
            ("price", pa.decimal128(10, 3)),
            ("blob", pa.binary()),
        ]
    )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    read: list[object] = []
    for back in pq.read_table(path).to_pylist():
        got = {key: value for key, value in back.items() if value is not None}
        if isinstance(got.get("options"), dict):  # a struct's missing keys are absent, not null
            got["options"] = {key: value for key, value in got["options"].items() if value is not None}
        read.append(got)
    return expectations(read, lines=list(range(1, len(read) + 1)))


def _has_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def _no_surrogates(value: object) -> object:
    if isinstance(value, str):
        return "".join(c for c in value if not "\ud800" <= c <= "\udfff")
    if isinstance(value, dict):
        return {_no_surrogates(k): _no_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_surrogates(v) for v in value]
    return value


# --------------------------------------------------------------------------- what each record must become


def _strict(value: object) -> bool:
    """Whether ``value`` is plain, strict JSON (no NaN/Infinity, no surrogate, no foreign type)."""
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return not _has_surrogate(value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _strict(k) and _strict(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_strict(v) for v in value)
    return False  # dates, decimals, bytes


def _problem(record: Mapping[str, object]) -> bool:
    """Whether a record (with a usable id) is bad: the checks docs/batch.md lists."""
    prompt, messages, system = record.get("prompt"), record.get("messages"), record.get("system")
    if (prompt is None) == (messages is None):
        return True
    if system is not None and (messages is not None or not isinstance(system, str)):
        return True
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
        return True
    if messages is not None:
        if not isinstance(messages, list) or not messages:
            return True
        for message in messages:
            if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
                return True
            if not isinstance(message.get("content"), str):
                return True
    target = record.get("target")
    if target is not None and (not isinstance(target, str) or not target):
        return True
    contrast = record.get("contrast")
    if contrast is not None and (not isinstance(contrast, str) or not contrast.strip() or contrast == target):
        return True
    options = record.get("options", {})
    if not isinstance(options, Mapping) or set(options) - OPTION_KEYS:
        return True
    return not _options_valid(options, generating=target is None)


def _options_valid(options: Mapping[str, object], *, generating: bool) -> bool:
    """Whether per-record option values are valid (``max_new_tokens`` counts only when generating)."""

    def whole(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    checks = {
        "level": lambda v: v in LEVELS,
        "method": lambda v: v in METHODS,
        "budget": lambda v: whole(v) and int(v) >= 2,
        "max_new_tokens": lambda v: not generating or (whole(v) and int(v) >= 1),
        "seed": whole,
    }
    return all(checks[key](value) for key, value in options.items())


def _contrast_may_split(record: Mapping[str, object]) -> bool:
    """Whether a contrast may split the prompt's end unlike the target (a run-time error attrib explains).

    A target that does not start with a space may merge with the prompt's last word
    while the contrast (``" ..."``) does not; which happens depends on the tokenizer.
    """
    target = record.get("target")
    return record.get("contrast") is not None and isinstance(target, str) and not target.startswith(" ")


def _runs_on_toy(record: Mapping[str, object]) -> bool:
    """Whether a good record also succeeds on the toy backend (the surrogate method needs scikit-learn,
    and some of the prompt must stay before the target: :func:`_prompt_survives`)."""
    options = record.get("options", {})
    method = options.get("method") if isinstance(options, Mapping) else None
    if method == "surrogate" and importlib.util.find_spec("sklearn") is None:
        return False
    return _prompt_survives(record)


def _prompt_survives(record: Mapping[str, object]) -> bool:
    """Whether text of a plain prompt is left before its target on the toy's tokenizer.

    ``prompt + target`` is tokenized together and the prompt ends at the last token edge at or
    before its own end; a target whose first token swallows the whole prompt (``"42"`` then
    ``"5"`` make one number) leaves nothing to attribute, which attrib refuses by design
    (:func:`attrib.prompt.split_target`). Computed from the toy's token edges, not by running attrib.
    """
    from attrib.backends.toy import ToyBackend

    prompt, target = record.get("prompt"), record.get("target")
    if not isinstance(prompt, str) or not isinstance(target, str) or not target:
        return True
    whole = ToyBackend().tokenize(prompt + target)
    edges = [whole.char_offset(i) for i in range(len(whole.ids) + 1)]
    kept = max(edge for edge in edges if edge <= len(prompt))
    return bool(prompt[:kept].strip())


def expectations(read: Sequence[object], *, lines: list[int] | None) -> list[Row]:
    """What attrib must make of each record as read: its status and the id it must keep.

    A record whose values are not strict JSON (NaN, Infinity, a lone surrogate, a date,
    a decimal, bytes) may be converted or refused: either status is right, and an id
    holding a surrogate may change. Ids are checked as attrib documents them: a string
    or an integer, unique; the first holder of an id keeps it, a later one is a bad record.
    """
    rows: list[Row] = []
    seen: set[str] = set()
    for index, record in enumerate(read):
        line = None if lines is None else lines[index]
        if isinstance(record, Garbage) or not isinstance(record, dict):
            rows.append(Row(index, record, line, "error", None, fallback=True))
            continue
        raw_id = record.get("id")
        hazard = not _strict(record)
        explicit: str | None = None
        bad_id = False
        if raw_id is not None:
            if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) and str(raw_id).strip():
                explicit = str(raw_id)
            else:
                bad_id = True
        if explicit is not None and _has_surrogate(explicit):
            explicit = None  # converted or refused: either may happen, so no id is promised
        elif explicit is not None and explicit in seen:
            explicit, bad_id = None, True  # a duplicate: a bad record with a fallback id
        if explicit is not None:
            seen.add(explicit)
        if bad_id or _problem(record):
            status: str | None = "error"
        elif hazard or _contrast_may_split(record):
            status = None
        else:
            status = "ok" if _runs_on_toy(record) else "error"
        target = record.get("target") if isinstance(record.get("target"), str) else None
        fallback = raw_id is None or bad_id
        rows.append(Row(index, record, line, status, explicit, fallback, target))
    return rows


# --------------------------------------------------------------------------- checking an OUT_DIR


@dataclass
class Findings:
    """What :func:`check_out_dir` found wrong; empty lists when the run holds."""

    problems: list[str] = field(default_factory=list)
    duplicates: int = 0
    stray: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.problems.append(message)


def _reject_constant(name: str) -> object:
    raise ValueError(f"non-standard JSON constant {name}")


def strict_json(text: str) -> Any:
    """``json.loads`` that refuses NaN and Infinity (what a strict JSON reader does)."""
    return json.loads(text, parse_constant=_reject_constant)


def read_journal(out: Path, findings: Findings) -> list[dict[str, Any]]:
    """Every line of ``records.jsonl``, each checked to be one strict-JSON object in UTF-8."""
    path = out / "records.jsonl"
    if not path.exists():
        return []
    records: list[dict[str, Any]] = []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        findings.fail("records.jsonl ends in a partial line")
    for number, raw in enumerate(data.split(b"\n")[:-1], start=1):
        try:
            record = strict_json(raw.decode("utf-8"))
        except ValueError as error:
            findings.fail(f"records.jsonl line {number} is not strict JSON in UTF-8: {error}")
            continue
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            findings.fail(f"records.jsonl line {number} is not a record with a string id")
            continue
        if _has_surrogate(record):
            findings.fail(f"records.jsonl line {number} holds a lone surrogate")
        records.append(record)
    return records


def check_out_dir(out: Path, rows: Sequence[Row], *, source: Path | None = None, task: str = "explain") -> Findings:
    """Check a finished run's OUT_DIR against the rows of its input.

    Invariants: ``records.jsonl`` holds exactly one record per input record (each at its
    own line, ids unique, strict JSON); each record has the status and id its row
    promises; every ok record's ``file`` is its own (the item file's prompt carries the
    record's marker, and its output is the record's target when it gave one); ``items/``
    holds the ok records' files and nothing else; no ``.*.tmp`` file anywhere;
    ``run.json`` names the input by path, size and sha256.
    """
    findings = Findings()
    journal = read_journal(out, findings)
    counts: dict[str, int] = {}
    for record in journal:
        counts[record["id"]] = counts.get(record["id"], 0) + 1
    findings.duplicates = sum(n - 1 for n in counts.values() if n > 1)
    for item_id, n in counts.items():
        if n > 1:
            findings.fail(f"id {item_id!r} has {n} records")
    by_line = sorted(journal, key=lambda r: r["line"] if isinstance(r.get("line"), int) else -1)
    lines = [r.get("line") for r in by_line]
    if len(set(lines)) != len(lines):
        findings.fail(f"two records share an input line: {sorted(lines)}")  # type: ignore[type-var]
    if len(journal) != len(rows):
        findings.fail(f"{len(rows)} input records but {len(journal)} records in records.jsonl")
    explicit_ids = {row.explicit for row in rows if row.explicit is not None}
    files: dict[str, str] = {}
    for row, record in zip(rows, by_line, strict=False):
        where = f"record {row.index} ({_show(row.read)})"
        if row.line is not None and record.get("line") != row.line:
            findings.fail(f"{where}: at line {row.line} but its record says line {record.get('line')}")
            continue
        if row.status is not None and record.get("status") != row.status:
            findings.fail(f"{where}: status {record.get('status')!r}, expected {row.status!r}: {record.get('error')}")
        fallback = f"line-{record.get('line')}"
        if row.explicit is not None and record["id"] != row.explicit and not _fallback_form(row.explicit):
            findings.fail(f"{where}: id {record['id']!r}, expected {row.explicit!r}")
        if row.fallback and fallback not in explicit_ids and record["id"] != fallback:
            findings.fail(f"{where}: id {record['id']!r}, expected the fallback {fallback!r}")
        elif row.fallback and not re.fullmatch(rf"{re.escape(fallback)}(\.\d+)?", record["id"]):
            findings.fail(f"{where}: id {record['id']!r}, expected {fallback!r} or, that being taken, {fallback}.2")
        if record.get("status") == "ok":
            _check_item(out, row, record, findings, where)
            if isinstance(record.get("file"), str):
                if record["file"] in files:
                    findings.fail(f"{where}: file {record['file']} is also {files[record['file']]!r}'s")
                files[record["file"]] = record["id"]
    items = out / "items"
    if items.is_dir():
        for path in sorted(items.iterdir()):
            name = f"items/{path.name}"
            if name not in files:
                findings.stray.append(name)
    for path in sorted(out.rglob(".*.tmp")):
        findings.stray.append(str(path.relative_to(out)))
    if findings.stray:
        findings.fail(f"stray files in OUT_DIR: {findings.stray[:5]}")
    _check_run_json(out, source, task, findings)
    return findings


def _fallback_form(item_id: str) -> bool:
    """Whether an explicit id looks like a fallback id (``line-N``): attrib may keep or refuse it."""
    return re.fullmatch(r"line-\d+", item_id) is not None


def _check_item(out: Path, row: Row, record: dict[str, Any], findings: Findings, where: str) -> None:
    file = record.get("file")
    if not isinstance(file, str) or not file.startswith("items/") or "/" in file[6:] or file[6:].startswith("."):
        findings.fail(f"{where}: ok record with file {file!r}")
        return
    path = out / file
    try:
        data = strict_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        findings.fail(f"{where}: its file {file} does not read as strict JSON: {error}")
        return
    texts = [data.get("prompt") or ""] + [m.get("content", "") for m in data.get("messages") or []]
    carried = marker(row.index) in json.dumps(row.read, ensure_ascii=False, default=str)  # a CSV cell "42" has none
    if carried and not any(marker(row.index) in text for text in texts):
        findings.fail(f"{where}: its file {file} holds another record's result ({str(texts)[:80]})")
    output = data.get("output")
    if row.target is not None and not (isinstance(output, str) and output.endswith(row.target)):
        # the prompt's trailing characters that merge with the target's first token lead the output
        findings.fail(f"{where}: its file's output is {output!r}, the record's target {row.target!r}")
    if record.get("output") != data.get("output"):
        findings.fail(f"{where}: the record's output differs from its file's")


def _check_run_json(out: Path, source: Path | None, task: str, findings: Findings) -> None:
    try:
        run = strict_json((out / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        findings.fail(f"run.json does not read as strict JSON: {error}")
        return
    if run.get("task") != task:
        findings.fail(f"run.json task {run.get('task')!r}, expected {task!r}")
    if source is not None:
        data = source.read_bytes()
        described = {"path": os.path.abspath(source), "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        if run.get("input") != described:
            findings.fail(f"run.json input {run.get('input')}, expected {described}")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


# --------------------------------------------------------------------------- the scale run


@dataclass
class ScaleRun:
    """The numbers of one scale run."""

    records: int
    kills: int = 0
    resumes: int = 0
    items_run: int = 0
    duplicates: int = 0
    stray: int = 0
    tracebacks: int = 0
    seconds: float = 0.0
    exit_statuses: list[int] = field(default_factory=list)
    written: list[int] = field(default_factory=list)
    ok: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)


def _command(source: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "attrib", "batch", str(source), "-o", str(out), "--backend", "toy"]


def _journal_lines(out: Path) -> int:
    try:
        return (out / "records.jsonl").read_bytes().count(b"\n")
    except OSError:
        return 0


def scale_run(
    workdir: Path, *, records: int = 1000, kills: int = 20, seed: int = 0, level: str = "word"
) -> tuple[ScaleRun, Iterator[str]]:
    """Run ``records`` hostile records through the CLI, SIGKILLed ``kills`` times, then to the end.

    Each killed run is killed at a random moment: once it has written a random number of
    new records (between 1 and the records left divided by the kills left, plus one, so
    that every kill lands mid-run), then 0 to 20 ms later (inside an item, while its file
    or record line is written, or between items); the run after the last kill goes to the end.

    Returns:
        The numbers, and the progress lines printed while it ran.
    """
    rng = random.Random(seed)
    source = workdir / "hostile.jsonl"
    out = workdir / "out"
    rows = write_dataset(source, hostile_records(records, rng))
    argv = [*_command(source, out), "--skip-bad-lines", "--quiet", "--level", level, "--no-cache"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = ScaleRun(records=len(rows))
    log: list[str] = []
    start = time.perf_counter()
    while True:
        before = _journal_lines(out)
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        to_kill = result.kills < kills
        if to_kill:  # after a random share of what is left, so every kill lands mid-run
            share = max(1, (len(rows) - before) // (kills - result.kills + 1))
            target = before + rng.randint(1, share)
            while process.poll() is None and _journal_lines(out) < target:
                time.sleep(0.001)
            time.sleep(rng.uniform(0.0, 0.02))  # then anywhere in an item: scoring, its file, its record line
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                result.kills += 1
        _, err = process.communicate()
        stderr = err.decode("utf-8", "replace")
        written = _journal_lines(out) - before
        result.items_run += written
        result.written.append(written)
        result.exit_statuses.append(process.returncode)
        run = len(result.exit_statuses)
        result.resumes = run - 1
        log.append(f"run {run}: exit {process.returncode}, {written} records written")
        if "Traceback" in stderr:
            result.tracebacks += 1
            result.problems.append(f"run {run}: traceback: {stderr[-600:]}")
        if process.returncode == -signal.SIGKILL:
            continue
        if process.returncode not in (0, 1):
            result.problems.append(f"run {run} exited {process.returncode}: {stderr[-600:]}")
        elif to_kill:
            result.problems.append(f"run {run} ended before its kill: too few records for {kills} kills")
        break
    result.seconds = time.perf_counter() - start
    findings = check_out_dir(out, rows, source=source)
    finished = read_journal(out, Findings())
    result.ok = sum(1 for record in finished if record.get("status") == "ok")
    result.failed = len(finished) - result.ok
    result.duplicates = findings.duplicates
    result.stray = len(findings.stray)
    result.problems.extend(findings.problems)
    return result, iter(log)


def report(result: ScaleRun, *, level: str, seed: int, kills: int) -> str:
    """The markdown page of a scale run."""
    lines = [
        "# Hostile batch: SIGKILLed and resumed",
        "",
        f"`python -m benchmarks.hostile_batch --records {result.records} --kills {kills} --seed {seed}`"
        f"{_revision()}: hostile JSON Lines records (see the module's docstring) through `python -m attrib batch "
        f"--backend toy --level {level} --skip-bad-lines --no-cache`, each run SIGKILLed at a random moment "
        "(after a random number of new records, at most the records left over the kills left plus one, then 0 to "
        "20 ms later), then resumed; the run after the last kill went to the end. The end state is checked with "
        "`benchmarks.hostile_batch.check_out_dir`.",
        "",
        "| records | kills | resumes | items run | duplicates found | stray files | tracebacks | seconds |",
        "|---|---|---|---|---|---|---|---|",
        f"| {result.records} | {result.kills} | {result.resumes} | {result.items_run} | {result.duplicates} | "
        f"{result.stray} | {result.tracebacks} | {result.seconds:.1f} |",
        "",
        "Items run: records written over all runs (an item killed before its record line was written ran",
        "again and is counted once). Stray files: temporary files (`.*.tmp`) anywhere in OUT_DIR and files",
        "in `items/` that no ok record names. Seconds: wall time of all runs, this machine (2 cores shared",
        "with other jobs), each run paying Python's and attrib's start-up.",
        "",
        f"End state: {result.ok} ok records, {result.failed} error records (bad records: a bad field, an id "
        "taken or unusable, a value JSON cannot hold such as NaN or a lone surrogate).",
        f"Records written per run: {', '.join(map(str, result.written))}.",
        f"Exit statuses in order: {', '.join(map(str, result.exit_statuses))} (-9: SIGKILL).",
        "",
    ]
    if result.problems:
        lines += ["Problems found:", ""] + [f"- {' '.join(p.split())[:300]}" for p in result.problems[:30]]
        if len(result.problems) > 30:
            lines.append(f"- ... and {len(result.problems) - 30} more")
    else:
        lines.append(
            "Every input record has exactly one record, at its own line, with the status and id it must have; "
            "every ok record's file holds its own result."
        )
    return "\n".join(lines) + "\n"


def _revision() -> str:
    """`` on attrib <commit>`` when run from a git checkout, else nothing."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except OSError:
        return ""
    return f" on attrib {done.stdout.strip()}" if done.returncode == 0 else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hostile_batch", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000, help="hostile records (default 1000)")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs, each followed by a resume (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the records and kill times (default 0)")
    parser.add_argument("--level", default="word", help="unit level of every record without its own (default word)")
    parser.add_argument("--workdir", type=Path, help="where the input and OUT_DIR go (default: a temporary directory)")
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "hostile_batch.md", help="the markdown table"
    )
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="hostile-batch-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        result, log = scale_run(workdir, records=args.records, kills=args.kills, seed=args.seed, level=args.level)
        for line in log:
            print(line)
    text = report(result, level=args.level, seed=args.seed, kills=args.kills)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(text, end="")
    return 0 if not result.problems else 1


if __name__ == "__main__":
    raise SystemExit(main())

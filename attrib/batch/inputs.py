"""A batch's input: records read from JSON Lines, CSV or Parquet, and checked up front with line numbers.

Each record is a plain prompt (``prompt``), a chat (``messages``) or a system +
user shorthand (``system`` + ``prompt``), with an optional ``id``, ``target``,
``contrast`` and per-record ``options``; or, by its shape, a context-attribution
(``cite``) record: ``sources`` and ``question``, with an optional ``answer``,
``instructions``, ``template`` and ``claims`` (the arguments of :func:`attrib.cite`).
Every other key is kept as metadata (see ``docs/batch.md`` and the batch contract). The whole input is checked before any
model is loaded, so a malformed line 3,712 is reported before hours of work.

**Every value is made strict JSON here, once.** Each record's values (id, prompt,
messages, target, contrast, options, metadata; keys included) go through
:func:`json_safe` when the record is checked, whether it came from a file or from
dicts in memory, so the OUT_DIR writer and every reader after it only ever meet
strict JSON. By kind (:data:`KINDS`, in this order):

==========================================  ================================================
value                                       becomes
==========================================  ================================================
``None``, ``bool``                          itself
``str``                                     itself; a lone surrogate (U+D800 to U+DFFF, from
                                            a ``\\ud800`` escape without its pair) refuses the
                                            record: UTF-8 cannot encode it
integers (``int``, numpy integers)          ``int``; one too long for Python to write
                                            (over ``sys.get_int_max_str_digits()`` digits)
                                            refuses the record
reals (``float``, numpy floats)             ``float`` when finite; NaN and ±Infinity (also
                                            ``1e400``, read as Infinity) refuse the record
``decimal.Decimal`` (Parquet decimal)       its exact text, ``"12.50"``; a NaN or infinite
                                            one refuses the record
``datetime``, ``date``, ``time``            ISO 8601 text, ``"2026-12-04T09:00:00+00:00"``
(Parquet timestamp, date, time)             (the offset kept when there is one)
``timedelta`` (Parquet duration)            ISO 8601 duration in seconds, ``"PT90.5S"``
``uuid.UUID``                               its text
mappings                                    objects; a key that is not a string refuses the
                                            record
lists, tuples                               lists
``bytes`` (Parquet binary) and anything     refuses the record
else (sets, arrays, objects)
==========================================  ================================================

A refused value makes its record a :class:`Problem` naming the line and the value
(``line 7: 'prompt' holds a lone surrogate (U+D800) ...``), reported before any
work or, with ``skip_bad``, written as an error record whose id and metadata are
themselves strict JSON (the fallback id when the id is what was refused).

Why refuse rather than convert: a non-finite number written as ``null`` would be
read back as "missing", silently; base64 text for bytes cannot be told from text
that happens to look like base64 (and decoding them as UTF-8 would guess). The
line and the remedy are named instead: write ``null`` or a string, decode the
binary column to text (or base64 it yourself) before the batch.

Ids are unique by construction: a record without an id gets ``line-N``, or, when
another record's explicit id is already ``line-N``, ``line-N.2`` (``.3``, ...); a
record repeating an earlier explicit id is a problem under its fallback id.
"""

from __future__ import annotations

import collections
import csv
import datetime
import decimal
import io
import json
import math
import numbers
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attrib.chat import check_messages
from attrib.errors import AttribError, EmptyPromptError, InputError
from attrib.options import record_names

__all__ = [
    "Item",
    "CITE_KEYS",
    "Problem",
    "BadInputError",
    "OPTION_KEYS",
    "KINDS",
    "read_records",
    "read_input",
    "STDIN",
    "from_dicts",
    "fingerprint",
    "json_safe",
    "check_records",
]

#: Per-record options a record may set (every other option is run-wide): declared in :mod:`attrib.options`.
OPTION_KEYS = record_names()

#: Keys with a meaning; every other key of a record is metadata.
_KEYS = frozenset({"id", "prompt", "messages", "system", "target", "contrast", "options"})

#: The keys of a cite record (a record with ``sources``) beside ``id`` and ``options``: the
#: arguments of :func:`attrib.cite` of the same names. In any other record they are metadata.
CITE_KEYS = ("question", "sources", "answer", "instructions", "template", "claims")

#: The keys of a prompt or chat record that a cite record does not take, and why.
_NOT_CITE = {
    "prompt": "its prompt is assembled from 'sources' and 'question'",
    "messages": "its prompt is assembled from 'sources' and 'question' (a chat layout: \"template\": \"chat\")",
    "system": "its fixed text goes in 'instructions'",
    "target": "the answer to explain is its 'answer'",
    "contrast": "its claims are judged on the answer alone",
}

#: The CSV cells that hold JSON (the fields whose values are lists or objects).
_JSON_CELLS = ("messages", "options", "sources", "claims")

#: Problems listed in full before the rest are only counted.
SHOWN_PROBLEMS = 20


@dataclass(frozen=True)
class Item:
    """One checked record, ready to run.

    Attributes:
        id: the record's id (``"line-N"`` when it had none, ``"line-N.2"`` when another
            record's explicit id is ``"line-N"``).
        line: its line number in the input (1-based; for CSV the file's line, for Parquet the row).
        prompt: the plain prompt, or ``None`` for a chat.
        messages: the chat as ``{"role", "content"}`` dicts, or ``None`` for a plain prompt.
        target: the output to explain, or ``None`` to generate it.
        contrast: the alternative output to explain it against (contrastive attribution),
            or ``None`` for the run-wide one (if any).
        options: the record's own options (keys of :data:`OPTION_KEYS`).
        meta: every other key of the record, as strict JSON (:data:`KINDS`).
        cite: for a cite record, the arguments of :func:`attrib.cite` it gives (keys of
            :data:`CITE_KEYS`, ``question`` and ``sources`` always), as read; ``None`` for a
            prompt or a chat. :func:`attrib.cite`'s own checks judge their values.
    """

    id: str
    line: int
    prompt: str | None
    messages: list[dict[str, str]] | None
    target: str | None = None
    contrast: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    cite: dict[str, Any] | None = None

    def task(self, run_task: str) -> str:
        """The item's task in a run of ``run_task``: ``"cite"`` for a cite record, else the run's."""
        return "cite" if self.cite is not None else run_task


@dataclass(frozen=True)
class Problem:
    """A record that cannot run, found before any model work.

    Attributes:
        line: its line number.
        id: the id its error record gets (its own id when usable and not taken, else its
            fallback id, as an item's).
        message: what is wrong, one line.
        error_type: the :mod:`attrib.errors` class name (``"InputError"``, ``"EmptyPromptError"``).
        meta: the record's metadata when it could be read (the values JSON can hold).
    """

    line: int
    id: str
    message: str
    error_type: str = "InputError"
    meta: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"line {self.line}: {self.message}"


class BadInputError(InputError):
    """Some records of a batch's input cannot run; nothing was run.

    Attributes:
        problems: every problem found, in line order.
    """

    def __init__(self, problems: list[Problem], source: str) -> None:
        count = len(problems)
        super().__init__(
            f"{count} bad record{'s' if count != 1 else ''} in {source} (first: {problems[0].describe()}); "
            "fix them, or pass --skip-bad-lines (skip_bad=True) to record them as errors and run the rest"
        )
        self.problems = problems

    def listing(self) -> list[str]:
        """The first :data:`SHOWN_PROBLEMS` problems, one line each, and how many more there are."""
        lines = [problem.describe() for problem in self.problems[:SHOWN_PROBLEMS]]
        if len(self.problems) > SHOWN_PROBLEMS:
            lines.append(f"... and {len(self.problems) - SHOWN_PROBLEMS} more")
        return lines


#: A raw record: its line number and the parsed object, or the reason it could not be parsed.
Raw = tuple[int, object, str | None]

#: The input name that reads JSON Lines from standard input.
STDIN = "-"

#: Input kinds by file suffix (no suffix, as ``/dev/stdin``: JSON Lines).
_KIND_OF_SUFFIX = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    "": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
}


def read_records(path: str | os.PathLike[str]) -> list[Raw]:
    """The raw records of a JSON Lines (``.jsonl``, ``.json``, ``.ndjson``), CSV or Parquet file.

    As :func:`read_input`, without the bytes.
    """
    return read_input(path)[0]


def read_input(path: str | os.PathLike[str]) -> tuple[list[Raw], bytes]:
    """The raw records of a JSON Lines, CSV or Parquet file (``"-"``: JSON Lines from standard
    input), and the bytes they were parsed from.

    The input is read once, so a pipe (``-``, ``/dev/stdin``, a FIFO) gives the parser and the
    caller (who hashes it for ``run.json``) the same bytes. JSON Lines: a line ends at
    ``\\n`` (or ``\\r\\n``) only, so U+2028, U+2029 and U+0085 stay inside their strings;
    blank lines are not records. CSV: the header is line 1, empty cells are absent keys,
    the ``messages``, ``options``, ``sources`` and ``claims`` cells hold JSON; a cell that cannot be parsed (a
    quote never closed) or a row with more non-empty cells than the header names is a
    bad record. Parquet: null cells are absent keys, and so are null fields of an
    ``options`` struct (a struct column has every key any row has, null where a row
    has none). Of the options only ``budget`` gives null a meaning (no budget), which
    a struct cannot tell from a key the row does not set; a JSON-text ``options``
    column can still say ``{"budget": null}``.

    Raises:
        InputError: if the file is missing, unreadable, not UTF-8, of an unknown kind,
            a CSV file whose header names a column twice, or not a readable Parquet file.
    """
    if os.fspath(path) == STDIN:
        data = _read_stdin()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise InputError(f"the batch input on standard input is not UTF-8 text (byte {error.start})") from None
        return _parse_jsonl(text), data
    source = Path(path)
    kind = _KIND_OF_SUFFIX.get(source.suffix.lower())
    if kind is None:
        raise InputError(f"unknown batch input kind {source.suffix!r} for {source}; use .jsonl, .csv or .parquet")
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise InputError(f"batch input not found: {source}") from None
    except IsADirectoryError:
        raise InputError(f"batch input is a directory: {source}; give a .jsonl, .csv or .parquet file") from None
    except OSError as error:
        raise InputError(f"cannot read batch input {source}: {error.strerror}") from None
    if kind == "parquet":
        return _parse_parquet(data, source), data
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"batch input {source} is not UTF-8 text (byte {error.start})") from None
    return (_parse_csv(text, source) if kind == "csv" else _parse_jsonl(text)), data


def _read_stdin() -> bytes:
    """All of standard input, as bytes.

    Raises:
        InputError: if there is no standard input, or it cannot be read.
    """
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise InputError("the batch input is '-' but there is no standard input to read; give a file")
    try:
        data: bytes = stream.read()
    except OSError as error:
        raise InputError(f"cannot read the batch input from standard input: {error.strerror}") from None
    return data


def _loads(text: str) -> tuple[object, str | None]:
    """``text`` parsed as JSON, or ``None`` and why it is not JSON."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as error:
        return None, f"{error.msg} at column {error.colno}"
    except RecursionError:
        return None, "nested too deeply"
    except ValueError:  # an integer longer than sys.get_int_max_str_digits()
        return None, "a number too long to read; write it as a string"


def _parse_jsonl(text: str) -> list[Raw]:
    raws: list[Raw] = []
    # Not str.splitlines(): it also ends lines at U+2028, U+2029 and U+0085, legal raw inside JSON strings.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        record, reason = _loads(line)
        raws.append((number, record, None if reason is None else f"not valid JSON ({reason})"))
    return raws


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _parse_csv(text: str, source: Path) -> list[Raw]:
    """CSV records with the file's line numbers; ``strict`` parsing, so a quote never closed is an error.

    Raises:
        InputError: if the header names a column twice (which cell would be which is unknowable).
    """
    lines = io.StringIO(text, newline="").readlines()  # ends lines at \r, \n, \r\n only, as csv expects
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))  # a long document in a cell is a prompt, not an error
    try:
        return _csv_rows(csv.reader(lines, strict=True), lines, source)
    finally:
        csv.field_size_limit(limit)


def _csv_rows(reader: Any, lines: list[str], source: Path) -> list[Raw]:
    """The records of ``reader`` (over ``lines``) after the header, with their first lines."""
    header: list[str] | None = None
    raws: list[Raw] = []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:  # the reader goes on at the next line
            problem = _csv_error(str(error), lines, start, reader.line_num)
            if header is None:
                raise InputError(f"{source}: line {start}: the header is not valid CSV ({problem})") from None
            raws.append((start, None, problem))
            continue
        if not row:  # a blank line
            continue
        if header is None:
            counts = collections.Counter(name for name in row if name)
            repeated = sorted(name for name, count in counts.items() if count > 1)
            if repeated:
                raise InputError(
                    f"{source}: line {start}: the header names column {repeated[0]!r} twice; "
                    "rename or remove one (which cell is which cannot be known)"
                )
            header = row
            continue
        raws.append((start, *_csv_record(header, row)))
    return raws


def _csv_record(header: list[str], row: list[str]) -> tuple[object, str | None]:
    """One CSV row as a record, or why it is not one.

    A non-empty cell beyond the header's columns is a problem, and so is one under an
    unnamed column when the header has several (one unnamed column, such as the index
    pandas writes, is metadata under the key ``""``).
    """
    unnamed = header.count("") > 1
    for index, cell in enumerate(row):
        if not cell:
            continue
        if index >= len(header):
            return None, (
                f"{len(row)} cells but the header names {len(header)} columns; "
                "quote a cell that holds a comma, or name the extra column in the header"
            )
        if unnamed and not header[index]:
            return None, f"cell {index + 1} is under a column the header does not name; name it in the header"
    record: dict[str, object] = {}
    for key, value in zip(header, row, strict=False):  # a short row: its missing cells are absent
        if value == "":
            continue
        if key in _JSON_CELLS:
            parsed, reason = _loads(value)
            if reason is not None:
                return None, f"column {key!r} is not valid JSON ({reason})"
            record[key] = parsed
        else:
            record[key] = value
    return record, None


def _csv_error(message: str, lines: list[str], start: int, end: int) -> str:
    """What is wrong with the CSV record starting on line ``start``, ended by an error on line ``end``."""
    if message == "unexpected end of data":  # in a quoted cell at the end of the file
        rest = "".join(lines[start - 1 :])
        cells = next(csv.reader(io.StringIO(rest, newline="")), [""])
        opened = start + len(_LINE_BREAK.findall(rest)) - len(_LINE_BREAK.findall(cells[-1] if cells else ""))
        return (
            f"a quote opened on line {opened} is never closed, so lines {opened} to {end} would be one cell; "
            'close it (a quote inside a quoted cell is written "")'
        )
    where = f" on line {end}" if end != start else ""
    hint = "; is a quote in this record not closed, or not doubled?" if '"' in message else ""
    return f"not valid CSV{where} ({message}){hint}"


def _parse_parquet(data: bytes, source: Path) -> list[Raw]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("reading Parquet needs pyarrow; pip install pyarrow, or give JSON Lines") from None
    try:
        rows = pq.read_table(pa.BufferReader(data)).to_pylist()
    except Exception as error:  # pyarrow's own errors: not a Parquet file, damaged file
        raise InputError(f"cannot read Parquet file {source}: {' '.join(str(error).split())}") from None
    raws: list[Raw] = []
    for number, row in enumerate(rows, start=1):
        record = {key: value for key, value in row.items() if value is not None}
        options = record.get("options")
        if isinstance(options, str):
            options, reason = _loads(options)
            if reason is not None:
                raws.append((number, None, f"column 'options' is not valid JSON ({reason})"))
                continue
            record["options"] = options
        elif isinstance(options, dict):  # a struct: a key this row does not set is null
            record["options"] = {key: value for key, value in options.items() if value is not None}
        raws.append((number, record, None))
    return raws


def from_dicts(records: Iterable[object]) -> list[Raw]:
    """Raw records from objects already in memory (numbered from 1 like lines)."""
    return [(number, record, None) for number, record in enumerate(records, start=1)]


def fingerprint(records: Sequence[object]) -> bytes:
    """Bytes standing for records in memory, for ``run.json``'s sha256: their JSON text, keys sorted.

    Records JSON cannot hold whole (a lone surrogate, keys of mixed types, a cycle) fall
    back to their ``repr``; the checks report them as bad records.
    """
    try:
        text = json.dumps(records, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        try:
            text = repr(records)
        except RecursionError:
            text = f"{len(records)} records nested too deeply"
    return text.encode("utf-8", "surrogatepass")


# --------------------------------------------------------------------------- strict JSON values


class _Refused(Exception):
    """A value strict JSON cannot hold: what is wrong (``message``), and where (``where``,
    its path in the record, filled in by the innermost walker that knows it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.where: str | None = None

    def __str__(self) -> str:
        if not self.where:
            return f"the value {self.message}"
        shown = self.where if len(self.where) <= 60 else self.where[:57] + "..."
        return f"{shown!r} {self.message}"


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: str) -> str:
    found = _SURROGATE.search(value)
    if found is not None:
        raise _Refused(
            f"holds a lone surrogate (U+{ord(found.group()):04X}), which UTF-8 cannot encode; "
            "fix the text (a \\u escape of half a surrogate pair?)"
        )
    return str.__str__(value)  # a str subclass (an enum) as plain text


def _integer(value: Any) -> int:
    number = int(value)
    try:
        str(number)
    except ValueError:  # longer than sys.get_int_max_str_digits()
        raise _Refused("is an integer too long to write; write it as a string") from None
    return number


def _not_finite(shown: str) -> _Refused:
    return _Refused(f"is not a finite number ({shown}), which JSON cannot hold; write null, a number or a string")


def _real(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise _not_finite(str(number).replace("inf", "Infinity").replace("nan", "NaN"))
    return number


def _decimal(value: decimal.Decimal) -> str:
    if not value.is_finite():
        raise _not_finite(str(value))
    return str(value)


def _duration(value: datetime.timedelta) -> str:
    micro = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    seconds, fraction = divmod(abs(micro), 1_000_000)
    shown = f"{seconds}.{fraction:06d}".rstrip("0").rstrip(".") if fraction else str(seconds)
    return f"{'-' if micro < 0 else ''}PT{shown}S"


def _refuse_bytes(value: object) -> object:
    raise _Refused(
        "holds bytes (a binary column?), which JSON cannot hold; decode them to text, "
        "or encode them as base64 text, before the batch"
    )


#: How each kind of value becomes strict JSON, tried in order after ``None``, ``bool``,
#: ``str``, mappings and lists (which :func:`json_safe` walks itself); a converter raises
#: ``_Refused`` for a value it cannot convert. Any other kind is refused.
KINDS: tuple[tuple[type | tuple[type, ...], Callable[[Any], object]], ...] = (
    (numbers.Integral, _integer),  # int, numpy integers (bool is handled before)
    (numbers.Real, _real),  # float, numpy floats, fractions
    (decimal.Decimal, _decimal),
    ((datetime.date, datetime.time), lambda value: value.isoformat()),  # datetime is a date
    (datetime.timedelta, _duration),
    (uuid.UUID, str),
    ((bytes, bytearray, memoryview), _refuse_bytes),
)


def json_safe(value: object) -> object:
    """``value`` as strict JSON (:data:`KINDS`): what ``json.dumps(allow_nan=False)`` writes and UTF-8 encodes.

    Raises:
        InputError: naming where in ``value`` the first value JSON cannot hold is
            (``'a[2].b' is not a finite number (NaN) ...``).
    """
    try:
        return _json_safe(value, "", set())
    except _Refused as error:
        raise InputError(str(error)) from None


def _json_safe(value: object, where: str, open_containers: set[int]) -> object:
    """``value`` as strict JSON; ``where`` is its path for messages (``'meta.a[2]'``),
    ``open_containers`` the containers being walked (a container inside itself is refused).

    Raises:
        _Refused: for the first value JSON cannot hold.
    """
    try:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return _text(value)
        if isinstance(value, Mapping | list | tuple):
            if id(value) in open_containers:
                raise _Refused("contains itself")
            open_containers.add(id(value))
            try:
                if isinstance(value, Mapping):
                    return _object(value, where, open_containers)
                return [_json_safe(inner, f"{where}[{index}]", open_containers) for index, inner in enumerate(value)]
            finally:
                open_containers.discard(id(value))
        for kinds, convert in KINDS:
            if isinstance(value, kinds):
                return convert(value)
        raise _Refused(f"holds a {type(value).__name__}, which JSON cannot hold; give text, a number or a list")
    except _Refused as error:
        if error.where is None:
            error.where = where
        raise
    except RecursionError:
        refused = _Refused("is nested too deeply")
        refused.where = where
        raise refused from None


def _object(value: Mapping[Any, Any], where: str, open_containers: set[int]) -> dict[str, object]:
    """A mapping as a JSON object: string keys (checked as text), values walked."""
    converted: dict[str, object] = {}
    for key, inner in value.items():
        name = _key(key)
        converted[name] = _json_safe(inner, f"{where}.{name}" if where else name, open_containers)
    return converted


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise _Refused(f"has a key that is not a string ({key!r}); JSON keys are text")
    try:
        return _text(key)
    except _Refused as error:
        raise _Refused(f"has a key that {error.message}") from None


# --------------------------------------------------------------------------- checking


@dataclass
class _Read:
    """One raw record made strict JSON, before its fields are checked.

    Attributes:
        line: its line number.
        fields: its keys and values that are strict JSON (``{}`` when it is not an object).
        own_id: its explicit id when usable, else ``None``.
        problem: the first reason it cannot run found so far (not JSON, not an object,
            a value JSON cannot hold, an unusable id), else ``None``.
    """

    line: int
    fields: dict[str, object] = field(default_factory=dict)
    own_id: str | None = None
    problem: str | None = None

    @property
    def meta(self) -> dict[str, Any]:
        """Its metadata: every key without a meaning (strict JSON, as every field); a cite
        record's arguments (:data:`CITE_KEYS`) have one."""
        meaningful = _KEYS | set(CITE_KEYS) if "sources" in self.fields else _KEYS
        return {key: value for key, value in self.fields.items() if key not in meaningful}


def _read(line: int, record: object, parse_error: str | None) -> _Read:
    """A raw record with every key and value made strict JSON (:func:`json_safe`), once."""
    if parse_error is not None:
        return _Read(line, problem=parse_error)
    if not isinstance(record, Mapping):
        return _Read(line, problem=f"a record must be a JSON object, got {type(record).__name__}")
    read = _Read(line)
    refused: list[str] = []
    for key, value in record.items():
        try:
            name = _key(key)
        except _Refused as error:
            refused.append(f"a key of the record {error.message.removeprefix('has a key that ')}")
            continue
        try:
            read.fields[name] = _json_safe(value, name, set())
        except _Refused as error:
            refused.append(str(error))
    own_id = read.fields.get("id")
    if isinstance(own_id, str | int) and not isinstance(own_id, bool) and str(own_id).strip():
        read.own_id = str(own_id)
    elif own_id is not None:
        shown = repr(own_id)
        read.problem = f"id must be a non-empty string, got {shown if len(shown) <= 60 else shown[:57] + '...'}"
    if refused and read.problem is None:
        more = len(refused) - 1
        read.problem = refused[0] + (
            f" (and {more} more value{'s' if more > 1 else ''} JSON cannot hold)" if more else ""
        )
    return read


def _fallback_id(line: int, taken: set[str]) -> str:
    """``line-N``, or ``line-N.2`` (``.3``, ...) when an explicit id of the input is ``line-N``."""
    candidate, copy = f"line-{line}", 1
    while candidate in taken:
        copy += 1
        candidate = f"line-{line}.{copy}"
    return candidate


def check_records(
    raws: Iterable[Raw],
    *,
    system: str | None = None,
    check_options: Callable[[dict[str, Any]], None] | None = None,
    task: str = "explain",
    check_item: Callable[[Item], None] | None = None,
) -> tuple[list[Item], list[Problem]]:
    """Check every raw record; return the items that can run and the problems, both in line order.

    Every key and value is made strict JSON first (:func:`json_safe`; a value it refuses
    makes the record a problem), and every item and problem gets an id no other has:
    its own when usable and not taken by an earlier record, else its fallback id
    (``line-N``, kept clear of every explicit id of the input).

    Args:
        raws: ``(line, record, parse error)`` triples from :func:`read_records` (or built from dicts).
        system: a system prompt for every record that has none (records then are chats).
        check_options: called with each prompt or chat record's merged options; raises
            :class:`~attrib.errors.AttribError` for a bad value (an unknown level, a budget of 1).
        task: the run's task: ``"explain"`` runs prompt, chat and cite records (a record's
            shape chooses), ``"audit"`` prompt and chat records, ``"cite"`` cite records.
        check_item: called with each cite item once built; raises
            :class:`~attrib.errors.AttribError` for what :func:`attrib.cite` would refuse
            (an empty source list, duplicate ids, a bad option).

    Raises:
        Nothing: every problem is returned, none raised.
    """
    reads = [_read(*raw) for raw in raws]
    claimed = {read.own_id for read in reads if read.own_id is not None}
    items: list[Item] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for read in reads:
        fallback = _fallback_id(read.line, claimed)
        if read.own_id is not None and read.own_id in seen:
            message = f"duplicate id {read.own_id!r} (first on line {seen[read.own_id]})"
            problems.append(Problem(read.line, fallback, message, meta=read.meta))
            continue
        if read.own_id is not None:
            seen[read.own_id] = read.line
        item_id = read.own_id if read.own_id is not None else fallback
        if read.problem is not None:
            problems.append(Problem(read.line, item_id, read.problem, meta=read.meta))
            continue
        try:
            if "sources" in read.fields:
                item = _cite_item(read.fields, item_id, read.line, read.meta, task)
                if check_item is not None:
                    check_item(item)
            else:
                if task == "cite":
                    raise InputError("a cite run's records give 'sources' and 'question'; this one has no 'sources'")
                item = _item(read.fields, item_id, read.line, read.meta, system, check_options)
            items.append(item)
        except AttribError as error:
            problems.append(Problem(read.line, item_id, " ".join(str(error).split()), type(error).__name__, read.meta))
    return items, problems


def _cite_item(record: Mapping[str, object], item_id: str, line: int, meta: dict[str, Any], task: str) -> Item:
    """A cite record (one with ``sources``) as an :class:`Item`: its shape checked here, its
    values by :func:`attrib.cite`'s own checks (the ``check_item`` of :func:`check_records`).

    Raises:
        InputError: for a cite record in an audit run, one without ``question``, with a key
            of a prompt record (``prompt``, ``target``, ...), or with ``options`` that is not
            an object or names an unknown option.
    """
    if task == "audit":
        raise InputError(
            "a record with 'sources' is a cite item, which an audit does not run; use --task cite or explain"
        )
    if "question" not in record:
        raise InputError("a cite record needs a 'question' beside its 'sources'")
    for key, why in _NOT_CITE.items():
        if key in record:
            raise InputError(f"a cite record takes no {key!r}: {why}")
    arguments = {key: record[key] for key in CITE_KEYS if key in record}
    return Item(
        id=item_id, line=line, prompt=None, messages=None, options=_own_options(record), meta=meta, cite=arguments
    )


def _own_options(record: Mapping[str, object]) -> dict[str, Any]:
    """A record's ``options``, checked: an object naming only per-record options (:data:`OPTION_KEYS`).

    Raises:
        InputError: for anything else.
    """
    options = record.get("options", {})
    if not isinstance(options, Mapping):
        raise InputError(f"'options' must be an object, got {type(options).__name__}")
    unknown = sorted(str(key) for key in options if key not in OPTION_KEYS)
    if unknown:
        raise InputError(
            f"unknown option {', '.join(map(repr, unknown))} (per-record options: {', '.join(sorted(OPTION_KEYS))})"
        )
    return dict(options)


def _item(
    record: Mapping[str, object],
    item_id: str,
    line: int,
    meta: dict[str, Any],
    system: str | None,
    check_options: Callable[[dict[str, Any]], None] | None,
) -> Item:
    """One record as an :class:`Item`.

    Raises:
        EmptyPromptError: for an empty prompt.
        InputError: for anything else that cannot run.
    """
    prompt, messages, own_system = record.get("prompt"), record.get("messages"), record.get("system")
    if (prompt is None) == (messages is None):
        raise InputError("give either 'prompt' or 'messages'")
    if own_system is not None and messages is not None:
        raise InputError("'system' goes with 'prompt'; put the system message inside 'messages'")
    if own_system is not None and not isinstance(own_system, str):
        raise InputError(f"'system' must be a string, got {type(own_system).__name__}")
    if prompt is not None:
        if not isinstance(prompt, str):
            raise InputError(f"'prompt' must be a string, got {type(prompt).__name__}")
        if not prompt.strip():
            raise EmptyPromptError("empty prompt")
    target = record.get("target")
    if target is not None and (not isinstance(target, str) or not target):
        raise InputError("'target' must be a non-empty string; omit it to generate the output")
    contrast = record.get("contrast")
    if contrast is not None and (not isinstance(contrast, str) or not contrast.strip()):
        raise InputError("'contrast' must be a non-empty string (the alternative output); omit it for none")
    options = _own_options(record)
    if check_options is not None:
        named = {"target": target, "contrast": contrast}
        check_options({**options, **{key: value for key, value in named.items() if value is not None}})
    chat: list[dict[str, str]] | None = None
    system_text = own_system if own_system is not None else system
    if messages is not None:
        checked = check_messages(messages)
        if system is not None and not any(m["role"] == "system" for m in checked):
            checked = [{"role": "system", "content": system}, *checked]
        chat = checked
    elif system_text:
        chat = [{"role": "system", "content": system_text}, {"role": "user", "content": str(prompt)}]
    return Item(
        id=item_id,
        line=line,
        prompt=None if chat is not None else str(prompt),
        messages=chat,
        target=target,
        contrast=contrast,
        options=options,
        meta=meta,
    )

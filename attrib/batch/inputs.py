"""A batch's input: records read from JSON Lines, CSV or Parquet, and checked up front with line numbers.

Each record is a plain prompt (``prompt``), a chat (``messages``) or a system +
user shorthand (``system`` + ``prompt``), with an optional ``id``, ``target``,
``contrast`` and per-record ``options``; every other key is kept as metadata (see
``docs/batch.md`` and the batch contract). The whole input is checked before any
model is loaded, so a malformed line 3,712 is reported before hours of work.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attrib.chat import check_messages
from attrib.errors import AttribError, EmptyPromptError, InputError

__all__ = ["Item", "Problem", "BadInputError", "OPTION_KEYS", "read_records", "from_dicts", "check_records"]

#: Per-record options a record may set (every other option is run-wide).
OPTION_KEYS = frozenset({"level", "method", "budget", "max_new_tokens", "seed"})

#: Keys with a meaning; every other key of a record is metadata.
_KEYS = frozenset({"id", "prompt", "messages", "system", "target", "contrast", "options"})

#: Problems listed in full before the rest are only counted.
SHOWN_PROBLEMS = 20


@dataclass(frozen=True)
class Item:
    """One checked record, ready to run.

    Attributes:
        id: the record's id (``"line-N"`` when it had none).
        line: its line number in the input (1-based; for CSV the file's line, for Parquet the row).
        prompt: the plain prompt, or ``None`` for a chat.
        messages: the chat as ``{"role", "content"}`` dicts, or ``None`` for a plain prompt.
        target: the output to explain, or ``None`` to generate it.
        contrast: the alternative output to explain it against (contrastive attribution),
            or ``None`` for the run-wide one (if any).
        options: the record's own options (keys of :data:`OPTION_KEYS`).
        meta: every other key of the record, as given.
    """

    id: str
    line: int
    prompt: str | None
    messages: list[dict[str, str]] | None
    target: str | None = None
    contrast: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    """A record that cannot run, found before any model work.

    Attributes:
        line: its line number.
        id: the id its error record gets (its own id when usable, else ``"line-N"``).
        message: what is wrong, one line.
        error_type: the :mod:`attrib.errors` class name (``"InputError"``, ``"EmptyPromptError"``).
        meta: the record's metadata when it could be read.
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


def read_records(path: str | os.PathLike[str]) -> list[Raw]:
    """The raw records of a JSON Lines (``.jsonl``, ``.json``, ``.ndjson``), CSV or Parquet file.

    Blank JSON Lines lines are not records. In CSV, empty cells are absent keys and the
    ``messages`` and ``options`` cells hold JSON.

    Raises:
        InputError: if the file is missing, unreadable, not UTF-8, or of an unknown kind.
    """
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(source)
    try:
        text = source.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"batch input not found: {source}") from None
    except IsADirectoryError:
        raise InputError(f"batch input is a directory: {source}; give a .jsonl, .csv or .parquet file") from None
    except OSError as error:
        raise InputError(f"cannot read batch input {source}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise InputError(f"batch input {source} is not UTF-8 text (byte {error.start})") from None
    if suffix == ".csv":
        return _parse_csv(text)
    if suffix in (".jsonl", ".json", ".ndjson", ""):
        return _parse_jsonl(text)
    raise InputError(f"unknown batch input kind {suffix!r} for {source}; use .jsonl, .csv or .parquet")


def _parse_jsonl(text: str) -> list[Raw]:
    raws: list[Raw] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raws.append((number, json.loads(line), None))
        except json.JSONDecodeError as error:
            raws.append((number, None, f"not valid JSON ({error.msg} at column {error.colno})"))
        except RecursionError:
            raws.append((number, None, "not valid JSON (nested too deeply)"))
    return raws


def _parse_csv(text: str) -> list[Raw]:
    reader = csv.DictReader(text.splitlines(keepends=True))
    raws: list[Raw] = []
    start = 2
    try:
        for row in reader:
            record: dict[str, object] = {}
            problem = None
            for key, value in row.items():
                if key is None or value in (None, ""):
                    continue
                if key in ("messages", "options"):
                    try:
                        record[key] = json.loads(value)
                    except json.JSONDecodeError as error:
                        problem = f"column {key!r} is not valid JSON ({error.msg})"
                else:
                    record[key] = value
            raws.append((start, None if problem else record, problem))
            start = reader.line_num + 1
    except csv.Error as error:
        raws.append((reader.line_num, None, f"not valid CSV ({error})"))
    return raws


def _read_parquet(source: Path) -> list[Raw]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("reading Parquet needs pyarrow; pip install pyarrow, or give JSON Lines") from None
    try:
        rows = pq.read_table(source).to_pylist()
    except FileNotFoundError:
        raise InputError(f"batch input not found: {source}") from None
    except Exception as error:  # pyarrow's own errors: not a Parquet file, damaged file
        raise InputError(f"cannot read Parquet file {source}: {' '.join(str(error).split())}") from None
    raws: list[Raw] = []
    for number, row in enumerate(rows, start=1):
        record = {key: value for key, value in row.items() if value is not None}
        if isinstance(record.get("options"), str):
            try:
                record["options"] = json.loads(record["options"])
            except json.JSONDecodeError as error:
                raws.append((number, None, f"column 'options' is not valid JSON ({error.msg})"))
                continue
        raws.append((number, record, None))
    return raws


def from_dicts(records: Iterable[object]) -> list[Raw]:
    """Raw records from objects already in memory (numbered from 1 like lines)."""
    return [(number, record, None) for number, record in enumerate(records, start=1)]


def check_records(
    raws: Iterable[Raw],
    *,
    system: str | None = None,
    check_options: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[list[Item], list[Problem]]:
    """Check every raw record; return the items that can run and the problems, both in line order.

    Args:
        raws: ``(line, record, parse error)`` triples from :func:`read_records` (or built from dicts).
        system: a system prompt for every record that has none (records then are chats).
        check_options: called with each record's merged options; raises
            :class:`~attrib.errors.AttribError` for a bad value (an unknown level, a budget of 1).

    Raises:
        Nothing: every problem is returned, none raised.
    """
    items: list[Item] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for line, record, parse_error in raws:
        fallback = f"line-{line}"
        if parse_error is not None:
            problems.append(Problem(line, fallback, parse_error))
            continue
        if not isinstance(record, Mapping):
            problems.append(Problem(line, fallback, f"a record must be a JSON object, got {type(record).__name__}"))
            continue
        meta = {str(key): value for key, value in record.items() if key not in _KEYS}
        raw_id = record.get("id")
        if raw_id is None:
            item_id = fallback
        elif isinstance(raw_id, str | int) and not isinstance(raw_id, bool) and str(raw_id).strip():
            item_id = str(raw_id)
        else:
            problems.append(Problem(line, fallback, f"id must be a non-empty string, got {raw_id!r}", meta=meta))
            continue
        if item_id in seen:
            message = f"duplicate id {item_id!r} (first on line {seen[item_id]})"
            problems.append(Problem(line, fallback, message, meta=meta))
            continue
        seen[item_id] = line
        try:
            items.append(_item(record, item_id, line, meta, system, check_options))
        except AttribError as error:
            problems.append(Problem(line, item_id, " ".join(str(error).split()), type(error).__name__, meta))
    return items, problems


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
    options = record.get("options", {})
    if not isinstance(options, Mapping):
        raise InputError(f"'options' must be an object, got {type(options).__name__}")
    unknown = sorted(str(key) for key in options if key not in OPTION_KEYS)
    if unknown:
        raise InputError(
            f"unknown option {', '.join(map(repr, unknown))} (per-record options: {', '.join(sorted(OPTION_KEYS))})"
        )
    options = dict(options)
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

"""Result files: parse untrusted JSON without a traceback, write without leaving a partial file.

Reading refuses what Python's ``json`` module would accept or crash on but a result
never holds: ``NaN``/``Infinity`` and numbers too large for a float, bytes that are
not UTF-8, nesting deep enough to exhaust the interpreter's stack, integers too long
to convert. Writing goes to a temporary file in the target's directory that is
renamed over the target only once complete (``os.replace`` is atomic on POSIX and
Windows), so a failed write leaves the old file, or none, never a 0-byte or cut one.
"""

from __future__ import annotations

import json
import math
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attrib.errors import ResultError

__all__ = ["parse_json", "read_json", "write_atomic", "temporary_name", "remove_temporaries"]

#: The temporary files :func:`write_atomic` writes beside its target: ``.<name>.<12 hex digits>.tmp``.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{12}\.tmp")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ResultError(
            f"result holds the number {text[:40]}, too large for a float; results hold finite numbers only"
        )
    return value


def _constant(name: str) -> float:
    raise ResultError(
        f"result holds {name}; results hold finite numbers only (re-create it with attrib explain --json)"
    )


def parse_json(text: str) -> Any:
    """The JSON value of ``text``, refusing non-finite numbers.

    Raises:
        ResultError: if the text is not JSON, holds ``NaN``/``Infinity``/overflowing
            numbers, or is nested too deeply to parse.
    """
    try:
        return json.loads(text, parse_float=_finite, parse_constant=_constant)
    except json.JSONDecodeError as error:
        raise ResultError(f"result is not valid JSON: {error}") from None
    except RecursionError:
        raise ResultError("result is not valid JSON: it is nested too deeply to read") from None
    except ValueError as error:  # integers past sys.get_int_max_str_digits()
        if isinstance(error, ResultError):
            raise
        raise ResultError(f"result is not valid JSON: {error}") from None


def read_json(path: str | Path) -> Any:
    """The JSON value of the UTF-8 file at ``path``.

    Raises:
        ResultError: if the file is not UTF-8 or not a result's JSON (see :func:`parse_json`).
        OSError: if the file cannot be read.
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ResultError(
            f"{path} is not UTF-8 text (byte {error.start} is 0x{data[error.start]:02x}); give a result written by attrib"
        ) from None
    return parse_json(text)


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` through a temporary file renamed into place.

    The temporary file sits beside the target (so the rename never crosses file
    systems) and gets the permissions a new file would get (``0o666`` less the umask).

    Raises:
        ResultError: if ``text`` cannot be encoded as UTF-8 (a lone surrogate); nothing is written.
        OSError: if the directory cannot be written; nothing is left behind.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ResultError(f"cannot write {path}: the text holds a lone surrogate at {error.start}") from None
    target = Path(path)
    temporary = target.with_name(temporary_name(target.name))
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def temporary_name(name: str) -> str:
    """A fresh name for :func:`write_atomic`'s temporary copy of the file ``name``: ``.<name>.<12 hex>.tmp``."""
    return f".{name}.{uuid.uuid4().hex[:12]}.tmp"


def remove_temporaries(directory: str | Path, targets: Callable[[str], bool]) -> int:
    """Delete the temporary files that an interrupted :func:`write_atomic` left in ``directory``.

    A process killed between creating its temporary copy and renaming it (SIGKILL, a
    power cut) leaves ``.<name>.<12 hex>.tmp`` behind. Only names of that form whose
    target ``<name>`` satisfies ``targets`` are removed. Call it only while no other
    process can be writing there (for a batch OUT_DIR: while holding its lock).

    Returns:
        How many files were removed (0 when ``directory`` does not exist).

    Raises:
        OSError: if a stale temporary cannot be removed.
    """
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name)
        if match is None or not targets(match.group("name")) or entry.is_dir(follow_symlinks=False):
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        removed += 1
    return removed

"""A batch's OUT_DIR: written by the driver alone, so that no finished item is ever lost.

Layout (the batch contract, ``docs/batch.md``):

* ``run.json``: the run's task, options, input (size, sha256); a re-run with
  other options or another input is refused (unless forced);
* ``records.jsonl``: one compact record per finished item, appended, flushed and
  fsync'ed line by line; a torn last line (a killed driver) is dropped on resume;
* ``items/<key>.json``: the full result, written atomically *before* its record;
* ``units.csv`` (and ``units.parquet`` with pyarrow): one row per (item, unit),
  rebuilt from ``items/`` at the end of every run.

The append-and-fsync journal is the write-ahead-log idea (a record is durable
once its line is on disk; a partial line is discarded), as in SQLite's WAL and
classic database recovery; atomic files are written to a temporary name in the
same directory and renamed (POSIX ``rename`` is atomic).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from attrib.batch.records import error_record
from attrib.batch.worker import Done
from attrib.errors import InputError, ResultError
from attrib.paths import RUN_FILES
from attrib.result.files import remove_temporaries, write_atomic
from attrib.summary.load import read_item
from attrib.urls import safe_url

__all__ = ["OutDir", "item_key", "file_key", "UNIT_COLUMNS", "RUN_FILES"]

#: Columns of the units table.
UNIT_COLUMNS = ("id", "message", "role", "unit", "text", "start", "end", "score")

_SAFE = re.compile(r"[A-Za-z0-9._-]")
_KEY_LENGTH = 120

#: The item files a record may name: ``items/<key>.json``, the key without a slash or a leading dot.
_ITEM_FILE = re.compile(r"items/([^/\\\x00.][^/\\\x00]*)\.json")


def item_key(item_id: str) -> str:
    """A filesystem-safe file stem for ``item_id``, distinct for distinct ids.

    ``[A-Za-z0-9._-]`` are kept and every other character is percent-encoded (its
    UTF-8 bytes). An id that is kept whole (at most 120 characters, not led by ``.`` or
    ``-``) is its own key. Any other id (altered, long, ``.``-led or ``-``-led) gets the
    first 120 characters of its encoding, then ``_h`` and the id's full sha256 (64 hex
    digits). So the map is injective by construction: an unaltered key has no ``%`` and
    at most 120 characters, while an altered one has a ``%`` or more than 120
    characters; two altered keys are equal only if their ids' sha256 are, i.e. only for
    a SHA-256 collision (the full digest is kept because a 32-bit suffix was found to
    collide in under a second; 256 bits need no argument). A key has at most 188
    characters, so ``items/<key>.json`` and its temporary copy stay under the usual
    255-byte name limit; it never starts with ``.`` (no hidden files, never ``.`` or
    ``..``) or ``-``.

    A filesystem that ignores case can still map two keys to one file (``A`` and
    ``a``): :class:`OutDir` refuses the second id (:meth:`OutDir.reserve`).
    """
    raw = item_id.encode("utf-8", "surrogatepass")  # a lone surrogate still gets a key
    encoded = "".join(
        c if _SAFE.fullmatch(c) else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass")) for c in item_id
    )
    if encoded == item_id and len(item_id) <= _KEY_LENGTH and not item_id.startswith((".", "-")):
        return item_id
    if encoded.startswith("."):  # never a hidden file, never "." or ".."
        encoded = "%2E" + encoded[1:]
    if encoded.startswith("-"):  # never read as a command-line option
        encoded = "%2D" + encoded[1:]
    return f"{encoded[:_KEY_LENGTH]}_h{hashlib.sha256(raw).hexdigest()}"


def file_key(file: object) -> str | None:
    """The ``<key>`` of a record's ``file`` (``items/<key>.json``), ``None`` for anything else."""
    match = _ITEM_FILE.fullmatch(file) if isinstance(file, str) else None
    return None if match is None else match.group(1)


class OutDir:
    """The OUT_DIR of one batch run.

    Args:
        path: the directory (created if missing).

    Attributes:
        stale: after :meth:`scan`, ids whose ok record no longer stands: its item file is
            missing (or not a file), or a later record of another id was written to the
            same file (an OUT_DIR of the former 8-digit key scheme). They are to be run again.
        unreadable: after :meth:`unit_rows`, ``(id, file, reason)`` of the ok items whose
            result file could not be read (left out of the units table).

    Raises:
        InputError: if ``path`` is empty, a file, a dangling symbolic link, or cannot be
            created; if its ``items`` is not a directory or one of its run files is not a file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not os.fspath(path):
            raise InputError("the output directory is empty; give a directory name (-o OUT_DIR)")
        self.path = Path(path)
        if self.path.is_symlink() and not self.path.exists():
            raise InputError(
                f"output directory {self.path} is a symbolic link to {os.readlink(self.path)}, which does not exist; "
                "create that directory or give another one"
            )
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"output directory {self.path} is a file; give a directory")
        items = self.path / "items"
        if (items.exists() or items.is_symlink()) and not items.is_dir():
            raise InputError(
                f"{items} is not a directory, so {self.path} is not an attrib batch output directory "
                "(or was damaged); give another directory, or move that file away"
            )
        try:
            items.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"cannot create output directory {self.path}: {error.strerror}") from None
        for name in RUN_FILES:
            if (self.path / name).is_dir():
                raise InputError(
                    f"{self.path / name} is a directory, not the run's {name}; {self.path} was damaged: "
                    "move that directory away, or give another output directory"
                )
        self.records_path = self.path / "records.jsonl"
        self._lock: int | None = None
        self._pending: dict[str, Any] | None = None
        self._owners: dict[str, str] = {}
        self._fold = _ignores_case(items)
        self.stale: set[str] = set()
        self.unreadable: list[tuple[str, str, str]] = []

    # ----------------------------------------------------------------- the lock

    def lock(self) -> None:
        """Hold OUT_DIR for this run: a second batch into the same directory is refused.

        An advisory ``flock`` on ``OUT_DIR/.lock``: the operating system releases it when
        the process ends, however it ends (SIGKILL included), so a killed run never leaves
        a stale lock. On systems without ``fcntl`` (Windows) nothing is locked. Once
        held, the temporary files a killed run left (``.<name>.<hex>.tmp``) are removed:
        the lock proves that no other run is writing them.

        Raises:
            InputError: if another process holds it.
        """
        if self._lock is not None:
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return
        with self._writing():
            handle = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(handle)
            raise InputError(
                f"{self.path} is in use by another attrib batch run; wait for it to end, or use another "
                "output directory"
            ) from None
        self._lock = handle
        with self._writing():
            remove_temporaries(self.path, lambda name: name in ("run.json", "records.jsonl", "units.csv"))
            remove_temporaries(self.path / "items", lambda name: name.endswith(".json"))
            (self.path / ".units.parquet.tmp").unlink(missing_ok=True)

    def release(self) -> None:
        """Let another run use OUT_DIR (the end of this one)."""
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor drops the flock
            self._lock = None

    # ----------------------------------------------------------------- run.json

    def claim(self, run: dict[str, Any], *, force: bool = False) -> None:
        """Check that an existing ``run.json`` describes the same run; else keep ``run`` to write.

        The task, options and the input's sha256 must match; the version, paths and start
        time may differ (an upgraded attrib or a moved input resumes). A new (or forced)
        ``run.json`` is written by :meth:`begin`, once the run has really started, so a
        run whose backend does not open leaves none behind.

        Raises:
            InputError: naming each setting that differs with both values (unless ``force``,
                then ``run.json`` is replaced at :meth:`begin`); if another run holds
                OUT_DIR (:meth:`lock`).
        """
        self.lock()
        path = self.path / "run.json"
        self._pending = None
        if path.exists() and not force:
            try:
                before = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError):
                raise InputError(f"{path} is not readable JSON; remove it, or pass --force") from None
            differs = _differences(before, run)
            if differs:
                shown = "; ".join(differs[:_SHOWN_DIFFERENCES])
                if len(differs) > _SHOWN_DIFFERENCES:
                    shown += f"; and {len(differs) - _SHOWN_DIFFERENCES} more"
                raise InputError(
                    f"{self.path} holds another run ({shown}); "
                    "use a new output directory, or --force to continue it with these settings"
                )
            return
        self._pending = dict(run)

    def begin(self) -> None:
        """Write the ``run.json`` that :meth:`claim` kept: the run has started (its backend opened).

        Raises:
            InputError: if it cannot be written.
        """
        if self._pending is not None:
            with self._writing():
                write_atomic(self.path / "run.json", json.dumps(self._pending, indent=1, ensure_ascii=False) + "\n")
            self._pending = None

    @property
    def started(self) -> bool:
        """False while a claimed ``run.json`` waits for :meth:`begin` (nothing of this run is on disk)."""
        return self._pending is None

    # ----------------------------------------------------------------- records

    def scan(self) -> dict[str, dict[str, Any]]:
        """The last record of every id in ``records.jsonl``; a torn last line is cut off the file.

        Lines that are not JSON objects with a string ``id`` are skipped. The ids of
        :attr:`stale` records are left out (they are to be run again), and every id's item
        file is reserved for it (:meth:`reserve`).

        Raises:
            InputError: if ``records.jsonl`` cannot be read or its torn line cut.
        """
        self.stale = set()
        self._owners = {}
        if not self.records_path.exists():
            return {}
        with self._reading(self.records_path):
            data = self.records_path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # killed mid-write: drop the partial line so the next append starts clean
            with self._writing(), self.records_path.open("r+b") as stream:
                stream.truncate(end)
                os.fsync(stream.fileno())
        found: dict[str, dict[str, Any]] = {}
        writer: dict[str, str] = {}  # item file -> the id of the last ok record naming it
        for line in data[:end].split(b"\n"):
            record = _record(line)
            if record is None:
                continue
            found[record["id"]] = record
            key = file_key(record.get("file")) if record.get("status") == "ok" else None
            if key is not None:
                writer[self._folded(key)] = record["id"]
        for item_id, record in list(found.items()):
            key = file_key(record.get("file")) if record.get("status") == "ok" else None
            if key is None:
                continue
            if writer[self._folded(key)] != item_id or not (self.path / "items" / f"{key}.json").is_file():
                self.stale.add(item_id)  # its result was overwritten by another id's, or is gone
                del found[item_id]
        for item_id, record in found.items():
            key = file_key(record.get("file"))
            if key is not None:
                self._owners.setdefault(self._folded(key), item_id)
        for item_id in [*found, *self.stale]:
            self._owners.setdefault(self._folded(item_key(item_id)), item_id)
        return found

    def reserve(self, ids: Iterable[str]) -> dict[str, str]:
        """Reserve each id's item file, in order; return ``{id: message}`` for the ids refused.

        An id is refused when its file (:func:`item_key`; compared without case on a
        filesystem that ignores case) is already another id's: one of ``records.jsonl``
        (after :meth:`scan`) or one reserved before. Its result would overwrite the
        other's, so it must not run under that id.
        """
        refused: dict[str, str] = {}
        for item_id in ids:
            key = item_key(item_id)
            owner = self._owners.setdefault(self._folded(key), item_id)
            if owner != item_id:
                refused[item_id] = (
                    f"id {_short(item_id)} would be written to items/{_short(key, quote=False)}.json, "
                    f"the file of id {_short(owner)}; give one of them another id"
                )
        return refused

    def forget(self, ids: set[str]) -> None:
        """Rewrite ``records.jsonl`` without the records of ``ids`` (items about to be run again)."""
        if not ids or not self.records_path.exists():
            return
        with self._reading(self.records_path):
            data = self.records_path.read_bytes()
        kept = [line for line in data.splitlines(keepends=True) if (_record(line) or {}).get("id") not in ids]
        with self._writing():
            write_atomic(self.records_path, b"".join(kept).decode("utf-8", "replace"))

    def write(self, done: Done) -> dict[str, Any]:
        """Keep one finished item: its result file first (atomically), then its record line (fsync'ed).

        ``run.json`` is written first if it is still pending (:meth:`begin`). An ok item
        whose file is another id's (:meth:`reserve`) is kept as an error record instead:
        no file is ever overwritten with another id's result.

        Returns:
            The record as written (with ``file`` for an ok item).

        Raises:
            InputError: if OUT_DIR cannot be written (full disk, permissions); what was
                written before stays, and a re-run resumes.
        """
        record = dict(done.record)
        result_json = done.result_json
        if result_json is not None:
            refused = self.reserve([str(record["id"])])
            if refused:
                record = error_record(
                    str(record["id"]), record.get("line", 0), record.get("meta", {}), "InputError", *refused.values()
                )
                result_json = None
        self.begin()
        with self._writing():
            if result_json is not None:
                name = f"items/{item_key(record['id'])}.json"
                write_atomic(self.path / name, result_json + "\n")
                record["file"] = name
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"
            with self.records_path.open("ab") as stream:
                stream.write(line.encode("utf-8"))
                stream.flush()
                os.fsync(stream.fileno())
        return record

    def _folded(self, key: str) -> str:
        return key.lower() if self._fold else key

    def _reading(self, path: Path) -> contextlib.AbstractContextManager[None]:
        """Turn a failed read of one of the run's files into one line (:meth:`_one_line`)."""
        return self._one_line(f"cannot read {path}")

    def _writing(self) -> contextlib.AbstractContextManager[None]:
        """Turn a failed write (full disk, permissions) into one line (:meth:`_one_line`)."""
        return self._one_line(f"cannot write to {self.path}")

    @staticmethod
    @contextlib.contextmanager
    def _one_line(failed: str) -> Iterator[None]:
        """Turn any ``OSError`` inside the block into one line that says how to resume.

        Raises:
            InputError: ``"<failed>: <reason>; fix that and re-run the same command to resume"``.
        """
        try:
            yield
        except OSError as error:
            reason = error.strerror or str(error)
            raise InputError(f"{failed}: {reason}; fix that and re-run the same command to resume") from None

    # ----------------------------------------------------------------- units table

    def unit_rows(self) -> list[dict[str, Any]]:
        """One row per (ok item, unit), in ``records.jsonl`` order, read from ``items/``.

        An item file that cannot be read as a result (missing, a directory, damaged) is
        left out and listed in :attr:`unreadable`, as :func:`attrib.summary.summarize`
        would refuse it (both read through :func:`attrib.summary.load.read_item`).
        """
        rows: list[dict[str, Any]] = []
        self.unreadable = []
        for item_id, record in self.scan().items():
            if record.get("status") != "ok":
                continue
            try:
                result = read_item(self.path, record)
            except ResultError as error:
                self.unreadable.append((item_id, str(record.get("file")), str(error)))
                continue
            chat = result.messages is not None
            for index, (unit, score) in enumerate(zip(result.units, result.unit_scores.tolist(), strict=True)):
                rows.append(
                    {
                        "id": item_id,
                        "message": unit.message if chat else None,
                        "role": unit.role if chat else None,
                        "unit": index,
                        "text": unit.text,
                        "start": unit.start,
                        "end": unit.end,
                        "score": score,
                    }
                )
        return rows

    def write_units(self) -> list[str]:
        """Rebuild ``units.csv`` (and ``units.parquet`` when pyarrow is importable); return the files written."""
        with self._writing():
            return self._write_units(self.unit_rows())

    def _write_units(self, rows: list[dict[str, Any]]) -> list[str]:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=UNIT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(self.path / "units.csv", buffer.getvalue())
        written = ["units.csv"]
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            return written
        schema = pa.schema(
            [
                ("id", pa.string()),
                ("message", pa.int64()),
                ("role", pa.string()),
                ("unit", pa.int64()),
                ("text", pa.string()),
                ("start", pa.int64()),
                ("end", pa.int64()),
                ("score", pa.float64()),
            ]
        )
        table = pa.Table.from_pylist(rows, schema=schema)
        temporary = self.path / ".units.parquet.tmp"
        pq.write_table(table, temporary)
        os.replace(temporary, self.path / "units.parquet")
        written.append("units.parquet")
        return written


def _ignores_case(directory: Path) -> bool:
    """Whether the filesystem holding ``directory`` treats names that differ in case as one."""
    other = directory.with_name(directory.name.swapcase())
    try:
        return other != directory and other.exists() and os.path.samefile(directory, other)
    except OSError:
        return False


def _record(line: bytes) -> dict[str, Any] | None:
    """The journal line as a record with a string id, ``None`` for anything else."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("id"), str) else None


#: Differences of run.json listed in the refusal before the rest are only counted.
_SHOWN_DIFFERENCES = 5

#: Option keys whose values are never shown in a message.
_SECRET = re.compile(r"(^|_)(api_?key|key|token|secret|password|passwd|auth|authorization|headers?|cookies?)$", re.I)


def _differences(before: object, run: dict[str, Any]) -> list[str]:
    """What differs between an OUT_DIR's ``run.json`` and this run's, one phrase each.

    Settings are named by their command-line flag (``--level``; a backend's option by its
    own name) and shown with both values, shortened; a URL without its user-info, query
    and fragment, and a secret-looking option's value never.
    """
    old = before if isinstance(before, dict) else {}
    found: list[str] = []
    if old.get("task") != run["task"]:
        found.append(f"--task: run.json has {_value(old.get('task'))}, this run {_value(run['task'])}")
    old_options: dict[str, Any] = old["options"] if isinstance(old.get("options"), dict) else {}
    for name, was, now in _option_pairs(old_options, run["options"]):
        if was != now:
            if _SECRET.search(name.rsplit(".", 1)[-1]):
                found.append(f"{_flag(name)}: differs (its values are not shown)")
            else:
                found.append(f"{_flag(name)}: run.json has {_value(was)}, this run {_value(now)}")
    source: dict[str, Any] = old["input"] if isinstance(old.get("input"), dict) else {}
    if source.get("sha256") != run["input"]["sha256"]:
        found.append(
            f"input: run.json has {_digest(source.get('sha256'))} ({_value(source.get('path'))}), "
            f"this run {_digest(run['input']['sha256'])} ({_value(run['input'].get('path'))})"
        )
    return found


def _option_pairs(old: dict[str, Any], new: dict[str, Any]) -> Iterator[tuple[str, object, object]]:
    """``(dotted name, old value, new value)`` of every option, one level into a dict of options."""
    absent = _Absent()
    for key in sorted(set(old) | set(new), key=str):
        was, now = old.get(key, absent), new.get(key, absent)
        if isinstance(was, dict) and isinstance(now, dict) and was != now:
            for inner in sorted(set(was) | set(now), key=str):
                yield f"{key}.{inner}", was.get(inner, absent), now.get(inner, absent)
        else:
            yield key, was, now


class _Absent:
    """An option one of the two runs does not have."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Absent)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "nothing"


def _flag(name: str) -> str:
    """The command-line flag of a run.json option (``method.max_depth`` -> ``--max-depth``)."""
    parent, _, key = name.rpartition(".")
    if key == "name" and parent:
        key = parent
    elif parent == "reference_options":
        key = f"reference_{key}"
    return "--" + key.replace("_", "-")


def _value(value: object) -> str:
    """A value for a message: short, secrets and a URL's user-info, query and fragment left out."""
    if isinstance(value, _Absent):
        return "nothing"
    value = _clean(value)
    if isinstance(value, str):
        shown = repr(value if len(value) <= 40 else value[:40] + "…")
        return shown if len(value) <= 40 else f"{shown} ({len(value)} characters)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:60] + "…"


def _clean(value: object) -> object:
    """``value`` with every URL in its shown form (:func:`attrib.urls.safe_url`: no user-info,
    query value or fragment), and secret-looking keys' values hidden."""
    if isinstance(value, str) and "://" in value:
        return safe_url(value)
    if isinstance(value, dict):
        return {k: "(hidden)" if _SECRET.search(str(k)) else _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _digest(value: object) -> str:
    return f"sha256 {value[:12]}…" if isinstance(value, str) else "no sha256"


def _short(text: str, *, quote: bool = True) -> str:
    """``text`` for a one-line message: at most 60 characters."""
    cut = text if len(text) <= 60 else text[:60] + "…"
    return repr(cut) if quote else cut

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from attrib.batch.worker import Done
from attrib.errors import InputError
from attrib.result.files import write_atomic

__all__ = ["OutDir", "item_key", "UNIT_COLUMNS"]

#: Columns of the units table.
UNIT_COLUMNS = ("id", "message", "role", "unit", "text", "start", "end", "score")

_SAFE = re.compile(r"[A-Za-z0-9._-]")
_KEY_LENGTH = 120


def item_key(item_id: str) -> str:
    """A filesystem-safe file stem for ``item_id``: ``[A-Za-z0-9._-]`` kept, others percent-encoded.

    An altered id (or a very long, ``.``-led or ``-``-led one) gets ``_h`` and 8 hex digits
    of the id's sha256 as a suffix, so it cannot meet an unaltered id's key; the key never
    starts with ``.`` (no hidden files, never ``.`` or ``..``) or ``-``.
    """
    encoded = "".join(c if _SAFE.fullmatch(c) else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in item_id)
    if encoded == item_id and len(item_id) <= _KEY_LENGTH and not item_id.startswith((".", "-")):
        return item_id
    if encoded.startswith("."):  # never a hidden file, never "." or ".."
        encoded = "%2E" + encoded[1:]
    if encoded.startswith("-"):  # never read as a command-line option
        encoded = "%2D" + encoded[1:]
    digest = hashlib.sha256(item_id.encode("utf-8")).hexdigest()[:8]
    return f"{encoded[:_KEY_LENGTH]}_h{digest}"


class OutDir:
    """The OUT_DIR of one batch run.

    Args:
        path: the directory (created if missing).

    Raises:
        InputError: if ``path`` is a file or cannot be created.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            (self.path / "items").mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise InputError(f"output directory {self.path} is a file; give a directory") from None
        except OSError as error:
            raise InputError(f"cannot create output directory {self.path}: {error.strerror}") from None
        self.records_path = self.path / "records.jsonl"
        self._lock: int | None = None

    # ----------------------------------------------------------------- the lock

    def lock(self) -> None:
        """Hold OUT_DIR for this run: a second batch into the same directory is refused.

        An advisory ``flock`` on ``OUT_DIR/.lock``: the operating system releases it when
        the process ends, however it ends (SIGKILL included), so a killed run never leaves
        a stale lock. On systems without ``fcntl`` (Windows) nothing is locked.

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

    def release(self) -> None:
        """Let another run use OUT_DIR (the end of this one)."""
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor drops the flock
            self._lock = None

    # ----------------------------------------------------------------- run.json

    def claim(self, run: dict[str, Any], *, force: bool = False) -> None:
        """Write ``run.json``, or check that an existing one describes the same run.

        The task, options and the input's sha256 must match; the version, paths and start
        time may differ (an upgraded attrib or a moved input resumes).

        Raises:
            InputError: naming what differs, unless ``force`` (then ``run.json`` is replaced);
                if another run holds OUT_DIR (:meth:`lock`).
        """
        self.lock()
        path = self.path / "run.json"
        if path.exists() and not force:
            try:
                before = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise InputError(f"{path} is not readable JSON; remove it, or pass --force") from None
            differs = [
                key
                for key, value in (
                    ("task", run["task"]),
                    ("options", run["options"]),
                    ("input sha256", run["input"]["sha256"]),
                )
                if _get(before, key) != value
            ]
            if differs:
                raise InputError(
                    f"{self.path} holds a run with another {' and '.join(differs)}; "
                    "use a new output directory, or --force to continue it with these settings"
                )
            return
        with self._writing():
            write_atomic(path, json.dumps(run, indent=1, ensure_ascii=False) + "\n")

    # ----------------------------------------------------------------- records

    def scan(self) -> dict[str, dict[str, Any]]:
        """The last record of every id in ``records.jsonl``; a torn last line is cut off the file.

        Lines that are not JSON objects elsewhere in the file are skipped.
        """
        if not self.records_path.exists():
            return {}
        data = self.records_path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # killed mid-write: drop the partial line so the next append starts clean
            with self._writing(), self.records_path.open("r+b") as stream:
                stream.truncate(end)
                os.fsync(stream.fileno())
        found: dict[str, dict[str, Any]] = {}
        for line in data[:end].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                found[record["id"]] = record
        return found

    def forget(self, ids: set[str]) -> None:
        """Rewrite ``records.jsonl`` without the records of ``ids`` (failed items about to be retried)."""
        if not ids or not self.records_path.exists():
            return
        kept = []
        for line in self.records_path.read_bytes().splitlines(keepends=True):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not (isinstance(record, dict) and record.get("id") in ids):
                kept.append(line)
        with self._writing():
            write_atomic(self.records_path, b"".join(kept).decode("utf-8"))

    def write(self, done: Done) -> dict[str, Any]:
        """Keep one finished item: its result file first (atomically), then its record line (fsync'ed).

        Returns:
            The record as written (with ``file`` for an ok item).

        Raises:
            InputError: if OUT_DIR cannot be written (full disk, permissions); what was
                written before stays, and a re-run resumes.
        """
        record = dict(done.record)
        with self._writing():
            if done.result_json is not None:
                name = f"items/{item_key(record['id'])}.json"
                write_atomic(self.path / name, done.result_json + "\n")
                record["file"] = name
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"
            with self.records_path.open("ab") as stream:
                stream.write(line.encode("utf-8"))
                stream.flush()
                os.fsync(stream.fileno())
        return record

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn a failed write (full disk, permissions) into one line that says how to resume.

        Raises:
            InputError: for any ``OSError`` inside the block.
        """
        try:
            yield
        except OSError as error:
            reason = error.strerror or str(error)
            raise InputError(
                f"cannot write to {self.path}: {reason}; fix that and re-run the same command to resume"
            ) from None

    # ----------------------------------------------------------------- units table

    def unit_rows(self) -> list[dict[str, Any]]:
        """One row per (ok item, unit), in ``records.jsonl`` order, read from ``items/``."""
        rows: list[dict[str, Any]] = []
        for item_id, record in self.scan().items():
            if record.get("status") != "ok" or not isinstance(record.get("file"), str):
                continue
            try:
                data = json.loads((self.path / record["file"]).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            chat = data.get("messages") is not None
            for index, (unit, score) in enumerate(zip(data["units"], data["unit_scores"], strict=True)):
                rows.append(
                    {
                        "id": item_id,
                        "message": unit.get("message", 0) if chat else None,
                        "role": unit.get("role") if chat else None,
                        "unit": index,
                        "text": unit["text"],
                        "start": unit["start"],
                        "end": unit["end"],
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


def _get(run: object, key: str) -> object:
    if not isinstance(run, dict):
        return None
    if key == "input sha256":
        source = run.get("input")
        return source.get("sha256") if isinstance(source, dict) else None
    return run.get(key)

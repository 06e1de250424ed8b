"""A persistent on-disk cache of endpoint responses, in SQLite.

Every model request an API backend sends is keyed by a SHA-256 hash of what
determines its answer: the backend kind, the endpoint, the model, the route and
the request body (prompt, continuation, scoring mode and its parameters). The
response body is stored under that key as JSON as soon as it arrives, one
committed transaction per response, so a run that is interrupted (Ctrl-C, a
crash, the endpoint going down) loses at most the requests in flight, and a run
started again answers everything already seen from disk.

API keys are never part of a key or a value: the backend builds keys from the
request body and the endpoint URL with any credentials stripped, and refuses to
store a response that contains its key.

The default location follows each platform's convention for caches:
``$ATTRIB_CACHE_DIR``, else ``$XDG_CACHE_HOME/attrib``, else ``~/.cache/attrib``
(``~/Library/Caches/attrib`` on macOS, ``%LOCALAPPDATA%\\attrib\\Cache`` on Windows).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["ResponseCache", "default_cache_dir", "request_key"]

_FILE_NAME = "responses.sqlite3"


def default_cache_dir() -> Path:
    """The directory attrib caches responses in (see the module docstring for the rule)."""
    configured = os.environ.get("ATTRIB_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "attrib" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "attrib"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "attrib"


def request_key(**parts: Any) -> str:
    """SHA-256 (hex) of the parts as canonical JSON (sorted keys, no whitespace).

    Raises:
        TypeError: if a part is not JSON-serialisable.
    """
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """Responses by request key, in one SQLite file (WAL mode, safe across processes).

    Args:
        directory: where ``responses.sqlite3`` lives (created if missing);
            ``None`` for :func:`default_cache_dir`.

    Attributes:
        path: the database file.

    Raises:
        OSError: if the directory cannot be created.
        sqlite3.Error: if the file exists but is not an SQLite database.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        folder = Path(directory).expanduser() if directory is not None else default_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / _FILE_NAME
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses ("
            " key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
        )

    def get(self, key: str) -> Any | None:
        """The stored response for ``key``, or ``None``."""
        with self._lock:
            row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable) under ``key``, committed at once."""
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)",
                (key, text, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone() is not None

    def clear(self) -> None:
        """Delete every stored response."""
        with self._lock:
            self._db.execute("DELETE FROM responses")

    def close(self) -> None:
        """Close the database; the cache is unusable afterwards."""
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"

"""The cache's store: response bodies on disk, in SQLite, by request key.

:class:`ResponseCache` maps a request key (:func:`request_key`, a SHA-256 hash of
what determines the answer) to a JSON body. It knows nothing of backends: its
callers build the keys. :class:`~attrib.cache.wrapper.CachingBackend`, the wrapper
around any backend, keys scores and generations by the backend's identity and the
request; the OpenAI-compatible backend keeps endpoint metadata (probe verdicts,
tokenizer routes) keyed by the endpoint and what was asked.
Each body is stored as soon as it arrives, one committed transaction per response,
so a run that is interrupted (Ctrl-C, a crash, the endpoint going down) loses at
most the requests in flight, and a run started again answers everything already
seen from disk.

API keys are never part of a key or a value: keys are built from request bodies,
backend identities and endpoint URLs with any credentials stripped, and the
OpenAI-compatible backend refuses to store an answer that contains its key.

The default location is ``$ATTRIB_CACHE_DIR``, else the platform's user cache
directory as platformdirs gives it: ``$XDG_CACHE_HOME/attrib`` (an absolute
``$XDG_CACHE_HOME`` only, as the XDG specification says), else ``~/.cache/attrib``
(``~/Library/Caches/attrib`` on macOS, ``%LOCALAPPDATA%\\attrib\\Cache`` on Windows).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import platformdirs

from attrib.errors import CacheError

__all__ = ["ResponseCache", "default_cache_dir", "request_key"]

_FILE_NAME = "responses.sqlite3"


def default_cache_dir() -> Path:
    """The directory attrib caches responses in: ``$ATTRIB_CACHE_DIR``, else the platform's
    user cache directory for ``attrib`` (platformdirs' ``user_cache_dir``, see the module docstring)."""
    configured = os.environ.get("ATTRIB_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("attrib", appauthor=False))


def request_key(**parts: Any) -> str:
    """SHA-256 (hex) of the parts as canonical JSON (sorted keys, no whitespace).

    Raises:
        TypeError: if a part is not JSON-serialisable.
    """
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """Responses by request key, in one SQLite file (WAL mode, safe across processes).

    A file that is not a readable SQLite database (corrupt, truncated, or something
    else under the cache's name) is moved aside to ``responses.sqlite3.unreadable-<time>``
    with a warning, and a new cache is started: a cache only saves work, so losing one
    must never stop a run.

    Args:
        directory: where ``responses.sqlite3`` lives (created if missing);
            ``None`` for :func:`default_cache_dir`.

    Attributes:
        path: the database file.
        moved_aside: where an unreadable database was moved, or ``None``.

    Raises:
        CacheError: if the directory cannot be created or written (a file stands where
            it should be, no permission), naming the path and the fix.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        folder = Path(directory).expanduser() if directory is not None else default_cache_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise CacheError(
                f"the cache directory {folder} is a file; give --cache-dir a directory, or use --no-cache"
            ) from None
        except OSError as error:
            raise CacheError(
                f"cannot create the cache directory {folder} ({error.strerror}); give another --cache-dir, "
                "or use --no-cache"
            ) from None
        self.path = folder / _FILE_NAME
        self.moved_aside: Path | None = None
        self._lock = threading.Lock()
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.OperationalError) and not self._is_unreadable(error):
                raise CacheError(f"cannot open the cache {self.path} ({error}); use --no-cache") from None
            self.moved_aside = self.path.with_name(f"{_FILE_NAME}.unreadable-{int(time.time())}")
            for suffix in ("", "-wal", "-shm"):
                source = Path(str(self.path) + suffix)
                if source.exists():
                    source.replace(Path(str(self.moved_aside) + suffix))
            warnings.warn(
                f"the cache {self.path} was not a readable SQLite database ({error}); moved it to "
                f"{self.moved_aside} and started a new cache",
                stacklevel=2,
            )
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as again:
                raise CacheError(f"cannot open the cache {self.path} ({again}); use --no-cache") from None

    @staticmethod
    def _is_unreadable(error: sqlite3.DatabaseError) -> bool:
        text = str(error).lower()
        return any(sign in text for sign in ("not a database", "malformed", "file is encrypted", "disk image"))

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
            )
            db.execute("SELECT COUNT(*) FROM responses").fetchone()  # reads every page: finds truncation now
        except BaseException:
            db.close()
            raise
        return db

    def _fail(self, error: sqlite3.Error) -> CacheError:
        return CacheError(
            f"the cache {self.path} failed mid-run ({error}); delete it or use --no-cache (finished work is kept "
            "in the cache up to the failure)"
        )

    def get(self, key: str) -> Any | None:
        """The stored response for ``key``, or ``None``.

        Raises:
            CacheError: if the database fails.
        """
        try:
            with self._lock:
                row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as error:
            raise self._fail(error) from None
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable) under ``key``, committed at once.

        Raises:
            CacheError: if the database fails (the disk is full, the file was removed).
        """
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)",
                    (key, text, time.time()),
                )
        except sqlite3.Error as error:
            raise self._fail(error) from None

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

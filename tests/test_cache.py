"""The persistent SQLite response cache."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from attrib.cache import ResponseCache, default_cache_dir, request_key


def test_responses_persist_across_instances(tmp_path: Path) -> None:
    first = ResponseCache(tmp_path)
    key = request_key(kind="openai", endpoint="http://h/v1", body={"prompt": "a"})
    first.put(key, {"choices": [{"text": "é"}]})
    first.close()
    second = ResponseCache(tmp_path)
    assert second.get(key) == {"choices": [{"text": "é"}]}
    assert key in second and len(second) == 1
    assert second.get("0" * 64) is None
    second.clear()
    assert len(second) == 0
    second.close()


def test_key_is_canonical_and_separates_every_part() -> None:
    a = request_key(kind="openai", endpoint="e", body={"x": 1, "y": [1, 2]}, sample=0)
    b = request_key(sample=0, body={"y": [1, 2], "x": 1}, endpoint="e", kind="openai")
    assert a == b and len(a) == 64
    assert a != request_key(kind="openai", endpoint="e", body={"x": 1, "y": [1, 2]}, sample=1)
    assert a != request_key(kind="openai", endpoint="f", body={"x": 1, "y": [1, 2]}, sample=0)


def test_default_directory_follows_attrib_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATTRIB_CACHE_DIR", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    cache = ResponseCache()
    assert cache.path == tmp_path / "here" / "responses.sqlite3" and cache.path.exists()
    cache.close()
    monkeypatch.delenv("ATTRIB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "attrib"


def test_a_file_that_is_not_sqlite_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "responses.sqlite3").write_text("not a database " * 100)
    with pytest.raises(sqlite3.DatabaseError):
        ResponseCache(tmp_path)

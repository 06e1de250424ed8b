"""The persistent SQLite response cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from attrib.cache.store import ResponseCache, default_cache_dir, request_key
from attrib.errors import CacheError


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


@pytest.mark.parametrize("xdg", ["relative/cache", "  ", ""])
def test_a_relative_or_blank_xdg_cache_home_is_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, xdg: str
) -> None:
    # The XDG specification: a relative path is invalid and is ignored (it must not
    # put the cache under whatever directory a run happens to start in).
    monkeypatch.delenv("ATTRIB_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    assert default_cache_dir() == tmp_path / ".cache" / "attrib"
    assert default_cache_dir().is_absolute()


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_text("not a database " * 100),
        lambda path: path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3]),
    ],
    ids=["garbage", "truncated"],
)
def test_an_unreadable_cache_is_moved_aside_and_the_run_goes_on(tmp_path: Path, damage) -> None:
    cache = ResponseCache(tmp_path)
    for i in range(300):
        cache.put(f"k{i}", {"value": "x" * 200})
    cache.close()
    for leftover in tmp_path.glob("responses.sqlite3-*"):
        leftover.unlink()
    damage(tmp_path / "responses.sqlite3")
    with pytest.warns(UserWarning, match="moved it to"):
        fresh = ResponseCache(tmp_path)
    assert fresh.moved_aside is not None and fresh.moved_aside.exists()
    assert fresh.get("k1") is None
    fresh.put("k1", 1)
    assert fresh.get("k1") == 1


def test_a_cache_directory_that_is_a_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(CacheError, match="is a file; give --cache-dir a directory, or use --no-cache"):
        ResponseCache(tmp_path / "file")

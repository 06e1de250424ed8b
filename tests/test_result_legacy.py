"""The version-1 reader reads the version-1 format as attrib 0.1 wrote it, whatever today's classes hold."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest

import attrib.result.legacy as legacy
from attrib.errors import ResultError
from attrib.result import Attribution
from attrib.result.attribution import SCHEMA_VERSION

DATA = Path(__file__).resolve().parent / "data"


def _v1(name: str = "result-v1-hipe.json") -> dict[str, object]:
    loaded: dict[str, object] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return loaded


def test_the_version_1_layout_is_written_down_frozen() -> None:
    # attrib 0.1's to_dict wrote exactly these keys, and its from_dict read these defaults:
    # a change here is a change to a published format, never a side effect of a new field.
    assert legacy.V1_REQUIRED == ("prompt", "units", "output", "output_tokens", "scores", "method", "level")
    assert dict(legacy.V1_DEFAULTS) == {
        "backend": {},
        "stats": {},
        "output_token_ids": None,
        "base_logprobs": None,
        "perturbation": {"name": "delete"},
        "parameters": {},
        "trace": None,
        "messages": None,
        "score_kind": "logprob",
        "noise": None,
        "roles": None,
        "shapley": None,
        "hidden_influence": None,
    }
    assert sorted(legacy.V1_STATS) == [
        "backend_usage", "budget", "budget_exhausted", "calls", "generated_tokens", "reused", "seconds",
        "tokens_evaluated",
    ]  # fmt: skip
    assert dict(legacy.V1_UNIT_DEFAULTS) == {"role": "prompt", "message": 0, "tokens": [0, 0]}
    for name in ("result-v1-hipe.json", "result-v1-audit.json"):  # the fixtures hold exactly that layout
        data = _v1(name)
        assert set(data) == legacy.V1_KEYS
        assert set(data["stats"]) == legacy.V1_STATS  # type: ignore[arg-type]


def test_the_reader_imports_nothing_of_todays_result() -> None:
    tree = ast.parse(Path(legacy.__file__).read_text(encoding="utf-8"))
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    assert not [name for name in imported if name.startswith("attrib")], imported


@pytest.mark.parametrize("name", ["result-v1-hipe.json", "result-v1-audit.json"])
def test_the_version_1_fixtures_still_read(name: str) -> None:
    data = _v1(name)
    result = Attribution.from_dict(data)
    assert result.to_dict()["schema_version"] == SCHEMA_VERSION
    assert result.to_dict()["unit_scores"] == data["unit_scores"]
    assert result.contrast is None


def test_a_key_todays_result_has_but_version_1_did_not_is_ignored_in_a_version_1_file() -> None:
    # `contrast` is a field of today's result (schema 2), not of schema 1: a version-1 file that
    # happens to carry such a key is read as attrib 0.1 read it, the key ignored.
    assert "contrast" in {f.name for f in dataclasses.fields(Attribution)}
    data = _v1()
    data["contrast"] = {"text": " no", "start": 1}
    assert Attribution.from_dict(data).contrast is None
    data["schema_version"] = 2  # the same key in a version-2 file is read
    assert Attribution.from_dict(data).contrast is not None


def test_absent_keys_take_version_1_defaults_and_unknown_unit_keys_are_ignored() -> None:
    data = _v1()
    for key in ("perturbation", "parameters", "stats", "score_kind", "noise", "trace", "backend"):
        del data[key]
    data["units"] = [
        {"text": unit["text"], "start": unit["start"], "end": unit["end"], "colour": "red"}
        for unit in data["units"]  # type: ignore[attr-defined]
    ]
    result = Attribution.from_dict(data)
    assert result.perturbation == {"name": "delete"} and result.parameters == {} and result.stats.calls == 0
    assert result.score_kind == "logprob" and result.noise is None and result.trace is None
    assert [(u.role, u.message, u.tokens) for u in result.units] == [("prompt", 0, (0, 0))] * len(result.units)


def test_a_version_1_file_without_a_required_key_is_refused_by_name() -> None:
    data = _v1()
    del data["output"]
    with pytest.raises(ResultError, match="lacks the field 'output'"):
        Attribution.from_dict(data)


@pytest.mark.parametrize("version", [0, SCHEMA_VERSION + 1, "1", None])
def test_an_unknown_version_is_refused_naming_the_versions_read(version: object) -> None:
    data = _v1()
    data["schema_version"] = version
    with pytest.raises(ResultError, match=rf"this attrib reads versions 1 to {SCHEMA_VERSION}"):
        Attribution.from_dict(data)

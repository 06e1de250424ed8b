"""Loading tampered, hand-edited and hostile result files: one ResultError line each, never a traceback or a partial file."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import attrib
from attrib.backends.toy import ToyBackend
from attrib.errors import ResultError
from attrib.reports.text import render_audit, render_text
from attrib.result import Attribution
from attrib.result.files import write_atomic

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def plain() -> dict[str, Any]:
    toy = ToyBackend(sensitivity={"paris": 2.0, "capital": 1.0}, output=" yes it is")
    result = attrib.attribute("The capital of France is Paris. It is a fine city.", backend=toy, noise_samples=2)
    return result.to_dict()


@pytest.fixture(scope="module")
def chat() -> dict[str, Any]:
    """A toy audit with a reference endpoint (hidden influence, Shapley values, chat trace), recorded by attrib 0.1."""
    return Attribution.from_json(DATA / "result-v1-audit.json").to_dict()


def mutate(data: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    node: Any = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


PLAIN_MUTATIONS = {
    "stats is text": (("stats",), "many"),
    "stats.calls is text": (("stats", "calls"), "12"),
    "stats.calls is a fraction": (("stats", "calls"), 1.5),
    "stats.budget_exhausted is a number": (("stats", "budget_exhausted"), 1),
    "stats.backend_usage holds text": (("stats", "backend_usage"), {"requests": "x"}),
    "parameters is an array": (("parameters",), [1, 2]),
    "backend is text": (("backend",), "toy"),
    "perturbation is null": (("perturbation",), None),
    "noise is an array": (("noise",), [0.1]),
    "noise.within_noise is text": (("noise", "within_noise"), "yes"),
    "noise.within_noise is short": (("noise", "within_noise"), [True]),
    "trace is text": (("trace",), "chunks"),
    "trace.chunks is an object": (("trace", "chunks"), {"0": 1}),
    "trace.chunks[0] is an array": (("trace", "chunks", 0), [0, 5]),
    "trace.chunks[0] lacks its depth": (("trace", "chunks", 0), {"start": 0, "end": 1}),
    "trace.chunks[0].depth is text": (("trace", "chunks", 0, "depth"), "0"),
    "trace.chunks[0] ends past the prompt": (("trace", "chunks", 0, "char_end"), 10**6),
    "trace.chunks[0] has a missing parent": (("trace", "chunks", 0, "parent"), 999),
    "trace.chunks[0] has a negative start": (("trace", "chunks", 0, "start"), -4),
    "trace.early_stop is text": (("trace", "early_stop"), "soon"),
    "output_tokens hold numbers": (("output_tokens",), [1, 2, 3]),
    "output_tokens hold nulls": (("output_tokens",), [None, None, None]),
    "prompt is a number": (("prompt",), 42),
    "output is an array": (("output",), [" yes"]),
    "units[0].start is text": (("units", 0, "start"), "0"),
    "units[0].tokens has three items": (("units", 0, "tokens"), [0, 1, 2]),
    "units is an object": (("units",), {"text": "The"}),
    "scores are ragged": (("scores",), [[1.0], [1.0, 2.0]]),
    "scores hold text": (("scores", 0, 0), "1.0"),
    "base_logprobs hold booleans": (("base_logprobs",), [True, False, True]),
    "score_kind is unknown": (("score_kind",), "bits"),
    "an unknown field": (("colour",), "red"),
    "schema_version is text": (("schema_version",), "2"),
    "schema_version is an array": (("schema_version",), [2]),
    "unit_scores hold text": (("unit_scores",), ["a"]),
}
CHAT_MUTATIONS = {
    "messages is an object": (("messages",), {"role": "user"}),
    "messages[0] is an array": (("messages", 0), ["system", "x"]),
    "messages[0].content is a number": (("messages", 0, "content"), 7),
    "messages[0] has an extra key": (("messages", 0, "name"), "x"),
    "shapley is a number": (("shapley",), 1.5),
    "shapley.values hold text": (("shapley", "values"), [["a"]]),
    "shapley.exact is text": (("shapley", "exact"), "yes"),
    "roles hold text": (("roles",), {"system": "half"}),
    "hidden_influence is text": (("hidden_influence",), "yes"),
    "hidden_influence.flag is text": (("hidden_influence", "flag"), "true"),
    "an indicator is an array": (("hidden_influence", "indicators", "differential"), [1]),
    "evidence of no known kind": (("hidden_influence", "indicators", "differential", "evidence"), {"gain": 1}),
    "a disagreement's token is a number": (
        ("hidden_influence", "indicators", "differential", "evidence", "top_disagreements", 0, "token"),
        5,
    ),
    "trace.chunks[0].message is missing": (("trace", "chunks", 0, "message"), 9),
}


def refused(text: str, tmp_path: Path) -> ResultError:
    """Load ``text`` from a file and from a string; both must raise one ResultError line."""
    path = tmp_path / "result.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with pytest.raises(ResultError) as from_file:
        Attribution.from_json(path)
    message = str(from_file.value)
    assert message and "\n" not in message
    with pytest.raises(ResultError):
        Attribution.from_json(text)
    return from_file.value


@pytest.mark.parametrize("case", sorted(PLAIN_MUTATIONS))
def test_wrong_types_anywhere_in_a_plain_result_are_one_line_errors(plain, case, tmp_path):
    path, value = PLAIN_MUTATIONS[case]
    error = refused(json.dumps(mutate(plain, path, value)), tmp_path)
    assert str(path[0]) in str(error) or "schema" in str(error) or "unit" in str(error)


@pytest.mark.parametrize("case", sorted(CHAT_MUTATIONS))
def test_wrong_types_anywhere_in_an_audit_are_one_line_errors(chat, case, tmp_path):
    path, value = CHAT_MUTATIONS[case]
    error = refused(json.dumps(mutate(chat, path, value)), tmp_path)
    assert str(path[0]) in str(error) or "unit" in str(error)


def test_the_untouched_results_load(plain, chat):
    assert Attribution.from_dict(plain).to_dict() == plain
    assert Attribution.from_dict(chat).to_dict() == chat


@pytest.mark.parametrize(
    "path, value",
    [
        (("stats", "seconds"), math.nan),
        (("parameters", "seed"), math.inf),
        (("noise", "sd_total"), -math.inf),
        (("scores", 0, 0), math.nan),
        (("backend", "context_length"), math.nan),
    ],
)
def test_nan_and_infinity_are_refused_in_and_outside_the_score_arrays(plain, path, value, tmp_path):
    text = json.dumps(mutate(plain, path, value), allow_nan=True)
    assert "NaN" in text or "Infinity" in text
    assert "finite numbers only" in str(refused(text, tmp_path))


def test_a_number_too_large_for_a_float_is_refused(plain, tmp_path):
    text = json.dumps(mutate(plain, ("stats", "seconds"), 12345.5)).replace("12345.5", "1e400")
    assert "too large for a float" in str(refused(text, tmp_path))
    text = json.dumps(mutate(plain, ("stats", "calls"), 7)).replace('"calls": 7', '"calls": ' + "9" * 5000)
    refused(text, tmp_path)


def test_deep_nesting_is_an_error_not_a_recursion_error(plain, tmp_path):
    text = '{"schema": "attrib.attribution", "schema_version": 2, "parameters": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert "nested too deeply" in str(refused(text, tmp_path))
    nested: object = 0
    for _ in range(200):  # parseable, but deeper than any result needs
        nested = [nested]
    assert "nested deeper than" in str(refused(json.dumps(mutate(plain, ("parameters", "seed"), nested)), tmp_path))


def test_a_lone_surrogate_is_refused_and_leaves_no_file(plain, tmp_path):
    text = json.dumps(mutate(plain, ("output",), "\ud800 yes"), ensure_ascii=True)
    assert "\\ud800" in text
    assert "lone surrogate" in str(refused(text, tmp_path))
    text = json.dumps(mutate(plain, ("backend", "\udfff"), "x"), ensure_ascii=True)
    assert "lone surrogate" in str(refused(text, tmp_path))


def test_a_latin_1_file_is_a_result_error(plain, tmp_path):
    data = mutate(plain, ("parameters", "note"), "café")
    path = tmp_path / "latin1.json"
    path.write_bytes(json.dumps(data, ensure_ascii=False).encode("latin-1"))
    with pytest.raises(ResultError, match="is not UTF-8 text"):
        Attribution.from_json(path)


def test_atomic_writes_leave_the_old_file_or_nothing(tmp_path):
    target = tmp_path / "report.html"
    with pytest.raises(ResultError, match="lone surrogate"):
        write_atomic(target, "<p>\ud800</p>")
    assert list(tmp_path.iterdir()) == []
    target.write_text("old", encoding="utf-8")
    with pytest.raises(ResultError):
        write_atomic(target, "new \udc80")
    assert target.read_text(encoding="utf-8") == "old" and list(tmp_path.iterdir()) == [target]
    write_atomic(target, "new")
    assert target.read_text(encoding="utf-8") == "new" and list(tmp_path.iterdir()) == [target]
    with pytest.raises(OSError):
        write_atomic(tmp_path / "missing" / "report.html", "x")
    assert list(tmp_path.iterdir()) == [target]


def test_a_result_that_cannot_be_written_leaves_no_file(plain, tmp_path):
    result = Attribution.from_dict(plain)
    broken = type(result)(
        **{**{f: getattr(result, f) for f in result.__dataclass_fields__}, "scores": result.scores * np.nan}
    )
    for write in (broken.to_json, broken.to_html):
        with pytest.raises(ResultError, match="non-finite"):
            write(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_hostile_text_in_a_result_reaches_the_terminal_as_escapes(chat):
    escape = "\x1b]0;pwned\x07\x1b[2J\u202e\x9b"
    data = mutate(chat, ("messages", 1, "role"), "user" + escape)
    data = mutate(data, ("hidden_influence", "method"), "differential" + escape)
    data = mutate(data, ("roles",), {"system": 0.5, "user" + escape: 0.5})
    data["units"] = [{**u, "role": data["messages"][u["message"]]["role"]} for u in data["units"]]
    result = Attribution.from_dict(data)
    for text in (render_text(result), render_audit(result)):
        assert not any(c in text for c in "\x1b\x07\u202e\x9b"), text
        assert "\\x1b" in text


@pytest.mark.parametrize(
    "case",
    [
        "types",
        "nan",
        "nesting",
        "surrogate",
        "latin-1",
    ],
)
def test_attrib_report_prints_one_error_line_and_writes_nothing(plain, case, tmp_path):
    source = tmp_path / "bad.json"
    if case == "types":
        source.write_text(json.dumps(mutate(plain, ("output_tokens",), [1, None, 3])), encoding="utf-8")
    elif case == "nan":
        source.write_text(json.dumps(mutate(plain, ("stats", "seconds"), math.nan)), encoding="utf-8")
    elif case == "nesting":
        source.write_text('{"schema": "attrib.attribution", "a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    elif case == "surrogate":
        source.write_text(json.dumps(mutate(plain, ("prompt",), "\udc00")), encoding="utf-8")
    else:
        source.write_bytes(
            json.dumps(mutate(plain, ("output",), " café")).replace("\\u00e9", "\u00e9").encode("latin-1")
        )
    out = tmp_path / "report.html"
    run = subprocess.run(
        [sys.executable, "-m", "attrib", "report", str(source), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert run.returncode == 1, run.stderr
    assert run.stderr.startswith("attrib: error:") and run.stderr.count("\n") == 1, run.stderr
    assert not out.exists()

"""The Attribution result: shapes, ranking, JSON round trip and schema."""

from __future__ import annotations

import json

import numpy as np
import pytest

import attrib
from attrib.errors import ResultError
from attrib.result import SCHEMA_VERSION, Attribution
from attrib.segmentation import Unit


def _result(scores=None) -> Attribution:
    units = [Unit("The", 0, 3, tokens=(0, 1)), Unit(" capital", 3, 11, tokens=(1, 3)), Unit(" is", 11, 14, tokens=(3, 4))]
    return Attribution(
        prompt="The capital is",
        units=units,
        output=" Paris.",
        output_tokens=[" Paris", "."],
        scores=np.array([[0.1, 0.0], [2.0, 0.5], [-0.3, 0.1]]) if scores is None else scores,
        method="itp",
        level="word",
        base_logprobs=np.array([-0.5, -0.1]),
        output_token_ids=[11, 12],
    )


def test_unit_scores_sum_over_output_tokens_and_top_ranks_them():
    result = _result()
    np.testing.assert_allclose(result.unit_scores, [0.1, 2.5, -0.2])
    assert [item.unit.text for item in result.top(2)] == [" capital", "The"]
    assert [item.unit.text for item in result.top(3, absolute=True)] == [" capital", " is", "The"]
    assert result.top(2)[0].index == 1
    assert result.output_logprob == pytest.approx(-0.6)


def test_shape_mismatch_is_a_typed_error():
    with pytest.raises(ResultError, match="expected \\(3, 2\\)"):
        _result(scores=np.zeros((2, 2)))


def test_json_round_trip_keeps_everything(tmp_path, toy):
    result = attrib.attribute("The capital of France is Paris. " * 3, backend=toy, method="hipe", level="word")
    path = tmp_path / "result.json"
    result.to_json(path)
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    for key in ("units", "output", "output_tokens", "scores", "unit_scores", "method", "level", "stats"):
        assert key in data
    assert set(data["units"][0]) >= {"text", "start", "end", "role"}
    assert set(data["stats"]) >= {"calls", "tokens_evaluated", "seconds"}
    assert len(data["scores"]) == len(result.units)
    loaded = Attribution.from_json(path)
    np.testing.assert_array_equal(loaded.scores, result.scores)
    np.testing.assert_array_equal(loaded.base_logprobs, result.base_logprobs)
    assert loaded.units == result.units
    assert loaded.stats == result.stats
    assert loaded.trace == result.trace
    assert loaded.to_dict() == result.to_dict()


def test_other_json_is_refused_with_a_clear_error(tmp_path):
    with pytest.raises(ResultError, match="not an attrib attribution"):
        Attribution.from_json('{"hello": 1}')
    data = _result().to_dict()
    data["schema_version"] = 99
    with pytest.raises(ResultError, match="schema version 99"):
        Attribution.from_dict(data)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ResultError, match="not valid JSON"):
        Attribution.from_json(bad)


def test_non_finite_scores_are_not_written_as_json():
    result = _result(scores=np.array([[np.inf, 0.0], [0.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ResultError, match="non-finite"):
        result.to_json()


def test_chat_results_index_units_into_their_own_message():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of Japan?"}]
    units = [Unit("Be brief.", 0, 9, role="system", message=0), Unit(" Japan?", 10, 17, role="user", message=1)]
    result = Attribution(
        prompt="", units=units, output=" Tokyo", output_tokens=[" Tokyo"],
        scores=np.array([[0.2], [3.0]]), method="itp", level="sentence", messages=messages,
    )
    assert Attribution.from_json(result.to_json()).messages == messages
    wrong = [Unit("Be brief.", 0, 9, role="system", message=1)] + units[1:]
    with pytest.raises(ResultError, match="does not match the text"):
        Attribution(
            prompt="", units=wrong, output=" Tokyo", output_tokens=[" Tokyo"],
            scores=np.array([[0.2], [3.0]]), method="itp", level="sentence", messages=messages,
        )
    with pytest.raises(ResultError, match="belongs to message 5"):
        Attribution(
            prompt="", units=[Unit("x", 0, 1, message=5)], output="y", output_tokens=["y"],
            scores=np.array([[0.0]]), method="itp", level="word", messages=messages,
        )

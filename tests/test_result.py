"""The Attribution result: shapes, ranking, JSON round trip and schema."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import attrib
from attrib.errors import ResultError
from attrib.result import SCHEMA_VERSION, Attribution, HiddenInfluence, MessageShapley, NoiseFloor, Stats, Trace
from attrib.result.parts import DifferentialEvidence, ReferenceFreeEvidence
from attrib.segmentation import Unit

DATA = Path(__file__).resolve().parent / "data"


def _result(scores=None) -> Attribution:
    units = [
        Unit("The", 0, 3, tokens=(0, 1)),
        Unit(" capital", 3, 11, tokens=(1, 3)),
        Unit(" is", 11, 14, tokens=(3, 4)),
    ]
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
    with pytest.raises(ResultError, match="schema version 99; this attrib reads versions 1 to 3"):
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
        prompt="",
        units=units,
        output=" Tokyo",
        output_tokens=[" Tokyo"],
        scores=np.array([[0.2], [3.0]]),
        method="itp",
        level="sentence",
        messages=messages,
    )
    assert Attribution.from_json(result.to_json()).messages == messages
    wrong = [Unit("Be brief.", 0, 9, role="system", message=1)] + units[1:]
    with pytest.raises(ResultError, match="does not match the text"):
        Attribution(
            prompt="",
            units=wrong,
            output=" Tokyo",
            output_tokens=[" Tokyo"],
            scores=np.array([[0.2], [3.0]]),
            method="itp",
            level="sentence",
            messages=messages,
        )
    with pytest.raises(ResultError, match="belongs to message 5"):
        Attribution(
            prompt="",
            units=[Unit("x", 0, 1, message=5)],
            output="y",
            output_tokens=["y"],
            scores=np.array([[0.0]]),
            method="itp",
            level="word",
            messages=messages,
        )


def test_a_result_is_frozen_and_replace_validates_the_copy():
    result = _result()
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.__setattr__("method", "hipe")
    changed = dataclasses.replace(result, stats=Stats(calls=7))
    assert changed.stats.calls == 7 and result.stats.calls == 0
    with pytest.raises(ResultError, match="expected \\(3, 1\\)"):
        dataclasses.replace(result, output_tokens=[" Paris"])


def test_parts_given_as_dicts_become_typed_parts_with_the_same_keys():
    noise: dict[str, Any] = {
        "samples": 3,
        "sd_per_token": [0.1, 0.2],
        "sd_total": 0.2,
        "range_total": 0.4,
        "threshold": 0.5,
        "within_noise": [True, False, True],
    }
    parts: dict[str, Any] = {"noise": noise, "stats": {"calls": 4, "budget": None}}  # as the pipeline builds them
    result = dataclasses.replace(_result(), **parts)
    assert isinstance(result.noise, NoiseFloor) and result.noise.threshold == 0.5
    assert result.noise["samples"] == 3 and result.noise.get("missing", "x") == "x"  # schema-1 readers keep working
    assert isinstance(result.stats, Stats) and result.stats.calls == 4
    assert result.within_noise is not None and result.within_noise.tolist() == [True, False, True]
    with pytest.raises(KeyError):
        result.noise["nope"]
    assert "within_noise" in result.noise and "nope" not in result.noise and "get" not in result.noise
    with pytest.raises(ResultError, match="noise.within_noise holds 2 values, expected 3"):
        dataclasses.replace(_result(), **{**parts, "noise": {**noise, "within_noise": [True, False]}})


def test_the_version_1_files_written_by_attrib_0_1_still_load():
    plain = Attribution.from_json(DATA / "result-v1-hipe.json")
    assert isinstance(plain.trace, Trace) and plain.trace.order == "best" and plain.trace.chunks[0].message is None
    assert plain.trace.threshold == {"name": "relative", "fraction": 0.1, "floor": 0.5}
    assert isinstance(plain.noise, NoiseFloor) and plain.noise.samples == 4
    raw = json.loads((DATA / "result-v1-hipe.json").read_text(encoding="utf-8"))
    np.testing.assert_array_equal(plain.scores, np.asarray(raw["scores"]))
    assert plain.to_dict()["unit_scores"] == raw["unit_scores"]
    assert {k: v for k, v in plain.to_dict().items() if k not in ("schema_version", "trace")} == {
        k: v for k, v in raw.items() if k not in ("schema_version", "trace")
    }
    assert plain.to_dict()["schema_version"] == SCHEMA_VERSION

    chat = Attribution.from_json(DATA / "result-v1-audit.json")
    assert isinstance(chat.shapley, MessageShapley) and chat.shapley.exact and chat.shapley.coalitions == 4
    assert isinstance(chat.hidden_influence, HiddenInfluence) and chat.hidden_influence.method == "differential"
    indicators = chat.hidden_influence.indicators
    assert isinstance(indicators["reference_free"].evidence, ReferenceFreeEvidence)
    evidence = indicators["differential"].evidence
    assert isinstance(evidence, DifferentialEvidence) and evidence.top_disagreements[0].token == " oui"
    assert chat.trace is not None
    assert [c.message for c in chat.trace.chunks] == [c["message"] for c in raw_chunks(DATA / "result-v1-audit.json")]
    again = Attribution.from_json(chat.to_json())
    assert again.to_dict() == chat.to_dict() and again.hidden_influence == chat.hidden_influence


def raw_chunks(path: Path) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["trace"]["chunks"]
    return chunks


def test_a_version_1_reader_ignores_counters_it_does_not_know_but_version_2_refuses_them():
    data = json.loads((DATA / "result-v1-hipe.json").read_text(encoding="utf-8"))
    data["stats"]["gpu_seconds"] = 1.5
    assert Attribution.from_dict(data).stats.calls == data["stats"]["calls"]
    for version in (2, 3):
        data["schema_version"] = version
        with pytest.raises(ResultError, match="stats has no field 'gpu_seconds'"):
            Attribution.from_dict(data)


def test_the_version_2_files_written_before_context_attribution_still_load():
    raw = json.loads((DATA / "result-v2-hipe.json").read_text(encoding="utf-8"))
    assert raw["schema_version"] == 2
    loaded = Attribution.from_dict(raw)
    assert loaded.context is None and loaded.claims == [] and loaded.noise is not None
    written = loaded.to_dict()
    assert written["schema_version"] == 3 and "context" not in written
    assert {k: v for k, v in written.items() if k != "schema_version"} == {
        k: v for k, v in raw.items() if k != "schema_version"
    }


def test_a_version_2_file_cannot_carry_a_context():
    raw = json.loads((DATA / "result-v2-hipe.json").read_text(encoding="utf-8"))
    raw["context"] = None
    with pytest.raises(ResultError, match="version-2 result has no 'context'"):
        Attribution.from_dict(raw)


def test_score_unit_follows_the_score_kind():
    assert _result().score_unit == "nats"
    assert dataclasses.replace(_result(), score_kind="text-similarity").score_unit == "similarity"
    unknown: dict[str, Any] = {"score_kind": "bits"}
    with pytest.raises(ResultError, match="score_kind is 'bits'"):
        dataclasses.replace(_result(), **unknown)

"""Property-based: any mutation of a valid result file either loads and renders, or is one ResultError line (Hypothesis)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import attrib
from attrib.backends.toy import ToyBackend
from attrib.errors import ResultError
from attrib.reports.html import render_html
from attrib.reports.text import render_audit, render_text
from attrib.result import Attribution

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")
given, settings, HealthCheck = hypothesis.given, hypothesis.settings, hypothesis.HealthCheck


def _audit() -> dict[str, Any]:
    """A toy audit with a reference endpoint (hidden influence, Shapley values, chat trace), recorded by attrib 0.1."""
    return Attribution.from_json(Path(__file__).resolve().parent / "data" / "result-v1-audit.json").to_dict()


def _plain() -> dict[str, Any]:
    toy = ToyBackend(sensitivity={"paris": 2.0}, output=" yes")
    return attrib.attribute("The capital is Paris. Fine.", backend=toy, level="word", noise_samples=1).to_dict()


VALID = [_plain(), _audit()]


def paths(node: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path to a value inside ``node`` (the root excluded)."""
    found: list[tuple[str | int, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        found.append((*prefix, key))
        found.extend(paths(value, (*prefix, key)))
    return found


PATHS = [paths(data) for data in VALID]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def mutations(draw: Any) -> dict[str, Any]:
    which = draw(st.integers(0, len(VALID) - 1))
    data = copy.deepcopy(VALID[which])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS[which]))
        parent = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                parent[path[-1]] = draw(json_values)
            elif action == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(st.text(max_size=6))] = draw(json_values)
            else:
                parent.append(draw(json_values))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    return data


def _loads_or_refuses(text: str) -> Attribution | None:
    try:
        return Attribution.from_json(text)
    except ResultError as error:
        assert str(error) and "\n" not in str(error)
        return None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_a_mutated_result_loads_and_renders_or_is_one_error_line(data):
    result = _loads_or_refuses(json.dumps(data))
    if result is None:
        return
    render_text(result)
    render_audit(result)
    page = render_html(result)
    again = Attribution.from_json(result.to_json())
    assert again.to_dict() == result.to_dict()
    assert '<script type="application/json" id="attrib-data">' in page


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_any_text_is_a_result_or_one_error_line(text):
    _loads_or_refuses("{" + text)

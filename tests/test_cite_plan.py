"""The dry run of ``cite`` (:func:`attrib.plan_cite`, ``attrib cite --dry-run``): the assembled
prompt planned by :func:`attrib.plan`'s machinery, bounding the run's counts on the toy backend."""

from __future__ import annotations

import json

import pytest

import attrib
from attrib import registry
from attrib.backends.toy import ToyBackend
from attrib.cli import main
from attrib.errors import BudgetError, InputError

SOURCES = [
    {"id": "a", "text": "The tower was finished in 1889. Gustave built it."},
    {"id": "b", "text": "Bridges cross the river. The river floods in spring."},
    {"id": "c", "text": "Museums open at nine. Tickets cost ten euros."},
]
QUESTION = "When was the tower finished?"
ANSWER = " The tower was finished in 1889 [a]. The river floods in spring [b]."
SENSITIVITY = {"gustave": 1.5, "floods": 1.0, "museums": -0.25}


def _methods() -> list[str]:
    names = registry.methods.names()
    try:
        import sklearn  # noqa: F401
    except ImportError:
        names.remove("surrogate")  # needs attrib[fit]
    return names


@pytest.mark.parametrize("level", ["source", "sentence"])
@pytest.mark.parametrize("method", _methods())
def test_the_cite_plan_bounds_the_cite_run_of_every_method(method, level) -> None:
    options = {"method": method, "level": level}
    outcomes: list[object] = []
    for entry in (attrib.plan_cite, attrib.cite):
        toy = ToyBackend(sensitivity=SENSITIVITY, output=ANSWER)
        try:
            outcomes.append(entry(QUESTION, SOURCES, answer=ANSWER, backend=toy, **options))
        except BudgetError:
            outcomes.append(None)
    planned, result = outcomes
    if result is None:
        assert planned is None or registry.methods.instance(method).adaptive
        return
    assert isinstance(planned, attrib.Plan), "plan_cite refused what cite ran"
    assert isinstance(result, attrib.Attribution)
    assert planned.calls >= result.stats.calls
    assert planned.tokens >= result.stats.tokens_evaluated
    assert planned.level == level
    if planned.calls_exact:
        assert planned.calls == result.stats.calls
    assert planned.calls_exact == (level == "source" and not registry.methods.instance(method).adaptive)


def test_the_cite_plan_refuses_what_cite_refuses() -> None:
    with pytest.raises(InputError, match="answer="):
        attrib.plan_cite(QUESTION, SOURCES, backend=ToyBackend(), target=" x")  # type: ignore[call-arg]


def test_cite_dry_run_prints_the_plan_and_sends_nothing(tmp_path, capsys) -> None:
    path = tmp_path / "sources.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in SOURCES), encoding="utf-8")
    argv = ["cite", "--backend", "toy", "--quiet", "--no-cache", "--sources", str(path)]
    argv += ["--question", QUESTION, "--answer", ANSWER, "--method", "itp", "--dry-run"]
    code = main(argv)
    out = capsys.readouterr().out
    planned = attrib.plan_cite(QUESTION, SOURCES, answer=ANSWER, backend=ToyBackend(output=ANSWER), method="itp")
    assert code == 0
    assert out == f"dry run: {planned.describe()}; nothing was sent to the model\n"
    assert "itp at source level over 3 units" in out

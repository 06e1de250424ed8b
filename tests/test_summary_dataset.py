"""The support example dataset: reproducible, labelled, and its labels name attrib's sentence units."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

import attrib
from attrib.backends.toy import ToyBackend

DATA = Path(__file__).resolve().parent.parent / "examples" / "support"


def _make():
    spec = importlib.util.spec_from_file_location("support_make", DATA / "make.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _questions() -> list[dict]:
    return [json.loads(line) for line in (DATA / "questions.jsonl").read_text(encoding="utf-8").splitlines()]


def test_the_file_is_what_make_py_writes():
    assert _make().records() == _questions()


def test_every_question_is_unique_labelled_and_names_its_fact():
    questions = _questions()
    facts = (DATA / "system.txt").read_text(encoding="utf-8").splitlines()
    answers = _make().ANSWERS
    assert 200 <= len(questions) <= 300
    assert len({q["id"] for q in questions}) == len(questions)
    assert len({q["prompt"] for q in questions}) == len(questions)
    counts = Counter(q["label"] for q in questions)
    assert sorted(counts) == list(range(1, 11)) and len(set(counts.values())) == 1
    for q in questions:
        assert q["fact"] == facts[q["label"] - 1]
        assert set(q) == {"id", "prompt", "target", "label", "fact"}
        assert q["target"] in answers[q["label"]]


@pytest.mark.filterwarnings("ignore:the prompt's last")  # the toy tokenizer joins the turn's newline
def test_labels_index_the_sentence_units_attrib_makes_of_the_system_prompt():
    system = (DATA / "system.txt").read_text(encoding="utf-8").strip()
    result = attrib.audit(
        "How long does shipping take?", system=system, backend=ToyBackend(), target=" 3 to 5 days", level="sentence"
    )
    units = [u.text.strip() for u in result.units if u.role == "system"]
    assert units == system.splitlines()

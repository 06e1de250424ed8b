"""attribute_many with the embedded model (Gemma 3 270M through llama.cpp): a few short items."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import attrib
from attrib.batch import attribute_many

pytestmark = pytest.mark.model

RECORDS = [
    {"id": "japan", "prompt": "The capital of Japan is", "label": "geo"},
    {
        "id": "chat",
        "system": "Be terse. The wifi password is otter-42.",
        "prompt": "Wifi password?",
    },
    {"id": "too-long", "prompt": "x " * 40_000},
]


def test_items_match_single_calls_and_an_overlong_prompt_is_an_error_record(llama, tmp_path: Path) -> None:
    summary = attribute_many(RECORDS, backend=llama, level="word", max_new_tokens=3, out_dir=tmp_path, cache=False)
    assert (summary.ok, summary.failed) == (2, 1)
    by_id = {o.id: o for o in summary.outcomes}
    alone = attrib.attribute("The capital of Japan is", backend=llama, level="word", max_new_tokens=3)
    batched = by_id["japan"].result
    assert batched.output == alone.output
    assert np.allclose(batched.scores, alone.scores, atol=1e-6)
    assert by_id["japan"].record["top"][0]["text"] == alone.top(1)[0].unit.text
    chat = by_id["chat"].record
    assert chat["roles"] is not None and set(chat["roles"]) == {"system", "user"}
    assert chat["system_top"]["text"] in RECORDS[1]["system"]
    error = by_id["too-long"].record
    assert error["error_type"] == "PromptTooLongError" and "context" in error["error"]
    journal = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert [r["id"] for r in journal] == ["japan", "chat", "too-long"]

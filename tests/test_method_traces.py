"""Every method's trace in the result, plain prompt and chat, byte for byte as recorded.

The files under ``tests/data/method-traces/`` are the results (``to_json``, seconds
set to 0) that the tree before the methods' typed traces wrote for these runs on the
toy backend. A method's trace (HiPe's chunks, shifted into the rendered chat and tagged
with their message; another method's own record, one per message) must serialise as
it did, and each file must still load and write back unchanged.

Regenerate (only when a change to a result is intended)::

    python tests/test_method_traces.py tests/data/method-traces
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

import attrib
from attrib import registry
from attrib.backends.toy import ToyBackend

DATA = Path(__file__).parent / "data" / "method-traces"

PROMPT = (
    "Birds fly over the hills. The capital of France is Paris. Cats sleep all day.\n\n"
    "Dogs bark at night. Paris lies on the Seine. Question: which city is the capital?"
)
CHAT = [
    {"role": "system", "content": "You know geography. The capital of France is Paris. Cats sleep all day."},
    {"role": "user", "content": "Dogs bark at night. Paris lies on the Seine. Question: which city is the capital?"},
]
#: a chat whose middle message holds no unit
EMPTY_MESSAGE = [CHAT[0], {"role": "assistant", "content": ""}, CHAT[1]]
METHODS = ["itp", "hipe", "shapley", "kernelshap", "lime", "surrogate", "hierarchical"]

#: case name -> (method name, its parameters, the run's options)
CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    **{f"{name}-plain": (name, {}, {"level": "sentence"}) for name in METHODS},
    **{f"{name}-chat": (name, {}, {"level": "sentence"}) for name in METHODS},
    "hipe-word-plain": ("hipe", {}, {"level": "word"}),
    "hipe-word-chat": ("hipe", {}, {"level": "word"}),
    "hipe-top-k-plain": ("hipe", {"top_k": 1}, {"level": "word"}),
    "hipe-depth-chat": ("hipe", {"order": "depth"}, {"level": "word"}),
    "hipe-budget-chat": ("hipe", {}, {"level": "word", "budget": 20}),
    "hipe-top-k-chat": ("hipe", {"top_k": 1}, {"level": "token"}),
    "shapley-word-chat": ("shapley", {}, {"level": "word"}),
    "kernelshap-budget-chat": ("kernelshap", {}, {"level": "word", "budget": 40}),
    "surrogate-word-chat": ("surrogate", {}, {"level": "word"}),
    "hierarchical-word-chat": ("hierarchical", {}, {"level": "word"}),
    "hipe-empty-message-chat": ("hipe", {}, {"level": "word"}),
    "shapley-empty-message-chat": ("shapley", {}, {"level": "word"}),
    "itp-empty-message-chat": ("itp", {}, {"level": "word"}),
}


def result_text(case: str) -> str:
    """The case's result as JSON text, its run time set to 0 (the only field that varies)."""
    name, parameters, options = CASES[case]
    method = registry.methods.resolve(name)(**parameters)
    toy = ToyBackend(sensitivity={"paris": 2.0, "capital": [1.0, 0.5, 0.25], "question": 0.25}, output=" yes it is")
    prompt = (EMPTY_MESSAGE if "empty-message" in case else CHAT) if case.endswith("-chat") else PROMPT
    result = attrib.attribute(prompt, backend=toy, method=method, **options)
    result = dataclasses.replace(result, stats=dataclasses.replace(result.stats, seconds=0.0))
    return result.to_json(indent=1)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_trace_serialises_as_before(case: str) -> None:
    expected = (DATA / f"{case}.json").read_text(encoding="utf-8")
    assert result_text(case) + "\n" == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_recorded_result_loads_and_writes_back_unchanged(case: str) -> None:
    text = (DATA / f"{case}.json").read_text(encoding="utf-8")
    assert attrib.Attribution.from_json(text).to_json(indent=1) + "\n" == text


def test_every_method_is_covered_plain_and_chat() -> None:
    assert set(METHODS) == set(registry.methods.names())
    assert {case for case in CASES if case.endswith("-chat")} >= {f"{name}-chat" for name in METHODS}


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        (out / f"{case}.json").write_text(result_text(case) + "\n", encoding="utf-8")

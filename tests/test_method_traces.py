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

import ast
import dataclasses
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import attrib
from attrib import registry
from attrib.backends.toy import ToyBackend
from attrib.methods.base import Schedule, Scheduler, SpanScorer
from attrib.result import MethodTrace, Trace, TraceChunk
from attrib.segmentation import Segmentation

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


@dataclasses.dataclass(frozen=True)
class Place:
    """Where a chat region lies (the fields of :class:`attrib.prompt.Region` a trace reads)."""

    offset: int
    char_offset: int
    message: int | None


def _chunk(start: int, end: int, parent: int | None, depth: int = 0) -> TraceChunk:
    return TraceChunk(
        start=start,
        end=end,
        char_start=3 * start,
        char_end=3 * end,
        depth=depth,
        parent=parent,
        score=0.5,
        refined=parent is None,
        leaf=parent is not None,
    )


def test_a_hipe_trace_is_placed_in_the_chat_and_parents_move_past_earlier_messages() -> None:
    first = Trace(
        threshold={"name": "relative"}, order="best", depths=2, chunks=[_chunk(0, 4, None), _chunk(0, 2, 0, 1)]
    )
    second = Trace(depths=1, chunks=[_chunk(0, 3, None), _chunk(1, 3, 0)])
    placed = [first.shifted(Place(5, 20, 0)), second.shifted(Place(12, 50, 2))]
    assert [(c.start, c.end, c.char_start, c.char_end, c.message) for c in placed[1].chunks] == [
        (12, 15, 50, 59, 2),
        (13, 15, 53, 59, 2),
    ]
    assert first.chunks[0].message is None and first.chunks[0].start == 0, "shifted is a copy"
    whole = Trace.combined(placed)
    assert whole is not None
    assert [c.parent for c in whole.chunks] == [None, 0, None, 2]
    assert [c.message for c in whole.chunks] == [0, 0, 2, 2]
    assert (whole.depths, whole.threshold, whole.order) == (2, None, None)
    assert Trace.combined([Trace(depths=1, chunks=[])]) is None


def test_another_method_s_record_is_kept_as_written_one_per_message() -> None:
    one = MethodTrace(method="shapley", record={"units": 3, "exact": True})
    two = MethodTrace(method="shapley", record={"units": 2, "exact": False})
    assert one.shifted(Place(5, 20, 0)) is one
    whole = MethodTrace.combined([one, two])
    assert whole == MethodTrace(method="shapley", record={"messages": [one.record, two.record]})
    assert MethodTrace.combined([]) is None


def test_traces_of_two_kinds_are_not_combined() -> None:
    with pytest.raises(TypeError, match="got a MethodTrace"):
        Trace.combined([Trace(depths=1, chunks=[_chunk(0, 1, None)]), MethodTrace(method="x", record={})])


def test_a_plain_record_is_refused_as_a_schedule_s_trace() -> None:
    with pytest.raises(TypeError, match="method_trace"):
        Schedule(scores=np.zeros((1, 1)), trace={"units": 1})  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class Halves(Scheduler):
    """A method of another package: two halves of the units, each ablated, with its own record."""

    name: ClassVar[str] = "halves"
    adaptive: ClassVar[bool] = False

    def min_calls(self, segmentation: Segmentation, level: str) -> int:
        return 2

    def run(
        self,
        scorer: SpanScorer,
        segmentation: Segmentation,
        level: str,
        *,
        on_phase: Callable[[str, int | None], None] | None = None,
    ) -> Schedule:
        bounds = segmentation.boundaries(level)
        middle = bounds[len(bounds) // 2]
        drops = scorer.drops([[(bounds[0], middle)], [(middle, bounds[-1])]])
        n = len(bounds) - 1
        scores = np.stack([drops[0] if bounds[i] < middle else drops[1] for i in range(n)]) / n
        return Schedule(scores=scores, trace=self.method_trace({"middle": middle, "units": n}))


def test_a_method_s_own_record_reaches_the_result_plain_and_chat() -> None:
    toy = ToyBackend(sensitivity={"paris": 2.0}, output=" yes")
    plain = attrib.attribute(PROMPT, backend=toy, method=Halves(), level="sentence")
    assert plain.trace == MethodTrace(method="halves", record={"middle": plain.trace["middle"], "units": 6})
    chat = attrib.attribute(CHAT, backend=toy, method=Halves(), level="sentence")
    assert isinstance(chat.trace, MethodTrace) and chat.trace.method == "halves"
    assert [record["units"] for record in chat.trace.record["messages"]] == [3, 3]
    assert attrib.Attribution.from_json(chat.to_json()).trace == chat.trace


def test_the_pipeline_names_no_method() -> None:
    """The pipeline reaches methods only through the Scheduler contract and their typed traces."""
    tree = ast.parse(Path(attrib.pipeline.__file__).read_text(encoding="utf-8"))
    imported = [
        getattr(importlib.import_module(node.module), alias.name)
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("attrib")
        for alias in node.names
        if hasattr(importlib.import_module(node.module), alias.name)
    ]
    methods = [obj for obj in imported if isinstance(obj, type) and issubclass(obj, Scheduler) and obj is not Scheduler]
    assert not methods


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        (out / f"{case}.json").write_text(result_text(case) + "\n", encoding="utf-8")

"""Test helpers for dataset summaries: OUT_DIRs in the batch layout, written with the toy backend.

The OUT_DIRs are written by ``attrib.attribute_many`` (through ``benchmarks.support.run``),
so the summary is tested on what ``attrib batch`` writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attrib.backends.toy import ToyBackend
from benchmarks.support import run

SYSTEM = "Rule one is red. Rule two is blue. Rule three is green."
#: Deleting "red" costs 2 nats per output token, "blue" 1, "green" 0.5: unit 1 always ranks first.
SENSITIVITY: dict[str | tuple[str, ...], float | Sequence[float]] = {"red": 2.0, "blue": 1.0, "green": 0.5}
PAYLOAD = (
    "<script>window.__pwned = 1; alert(1)</script> "
    '<img src=x onerror="window.__pwned = 2"> </textarea> {{ 7*7 }} '
    '<svg onload="window.__pwned = 3"></svg>'
)


def toy() -> ToyBackend:
    return ToyBackend(sensitivity=SENSITIVITY, output=" yes it is")


def write_out_dir(out: Path) -> Path:
    """An OUT_DIR with 4 labelled audits (3 hits of label 1, one miss), 2 plain prompts and 1 failure."""
    audits: list[dict[str, Any]] = [
        {"id": "a1", "prompt": "What is rule one?", "label": 1},
        {"id": "a2", "prompt": "Which rule comes first?", "label": "Rule one is red."},
        {"id": "a/3", "prompt": PAYLOAD, "label": 1},
        {"id": "a4", "prompt": "And the second rule?", "label": 2, "topic": "rules"},
    ]
    run(audits, out, system=SYSTEM, backend=toy(), cache=False)
    plain: list[dict[str, Any]] = [
        {"id": "p1", "prompt": "The cat sat on the mat. The dog ran red."},
        {"id": "p2", "prompt": "Red sky at night. Blue sea."},
        {"id": "p3", "prompt": ""},
    ]
    run(plain, out, system=None, task="explain", backend=toy(), cache=False, force=True)
    return out


# ----------------------------------------------------------------- cite items (attrib.cite records)

CITE_QUESTION = "When was the tower finished, and what happens in spring?"
#: Three claims: the first needs "gustave" (source a), the second "floods" (source b, or c in
#: item c3), the third no source; each cites a source by marker.
CITE_ANSWER = " The tower was finished in 1889 [a]. The river floods in spring [b]. Cats rule the city [c]."
CITE_SOURCES = {
    "a": {"id": "a", "text": "The tower was finished in 1889. Gustave built it.", "title": "Tower"},
    "b": {"id": "b", "text": "Bridges cross the river. The river floods in spring."},
    "c": {"id": "c", "text": "Museums open at nine. Tickets cost ten euros."},
}


def cite_toy_options() -> dict[str, Any]:
    """``backend_options`` of a toy whose first claim of :data:`CITE_ANSWER` loses 1.5 nats per
    token without "gustave" and whose second loses 1 nat per token without "floods"."""
    spans = ToyBackend(output=CITE_ANSWER).tokenize(CITE_ANSWER).spans

    def penalty(start: int, end: int, value: float) -> list[float]:
        return [value if a < end and b > start else 0.0 for a, b in spans]

    first = penalty(0, CITE_ANSWER.index("[a]"), 1.5)
    second = penalty(CITE_ANSWER.index("The river"), CITE_ANSWER.index("[b]"), 1.0)
    return {"sensitivity": {"gustave": first, "floods": second}, "output": CITE_ANSWER}


def cite_records(payload: str = "") -> list[dict[str, Any]]:
    """Three cite items (c1: sources a, b, c; c2: b, a, c; c3: "floods" moved from b to c, so
    the second claim's citation of b is wrong), a bad one (no source), and a plain prompt."""
    a, b, c = CITE_SOURCES["a"], CITE_SOURCES["b"], CITE_SOURCES["c"]
    moved_b = {"id": "b", "text": "Bridges cross the river."}
    moved_c = {"id": "c", "text": "Museums open at nine. The river floods in spring."}
    return [
        {"id": "c1", "question": CITE_QUESTION + payload, "sources": [a, b, c], "answer": CITE_ANSWER},
        {"id": "c2", "question": CITE_QUESTION, "sources": [b, a, c], "answer": CITE_ANSWER, "topic": "t"},
        {"id": "c3", "question": CITE_QUESTION, "sources": [a, moved_b, moved_c], "answer": CITE_ANSWER},
        {"id": "c4", "question": CITE_QUESTION, "sources": []},
        {"id": "p1", "prompt": "Gustave built the tower.", "target": CITE_ANSWER},
    ]


def write_cite_out_dir(out: Path, payload: str = "") -> Path:
    """An OUT_DIR of :func:`cite_records` (an explain run: the records' shapes choose), written by
    ``attrib.attribute_many`` with the toy of :func:`cite_toy_options`."""
    from attrib.batch import attribute_many

    attribute_many(
        cite_records(payload),
        out_dir=out,
        backend="toy",
        backend_options=cite_toy_options(),
        skip_bad=True,
        cache=False,
    )
    return out

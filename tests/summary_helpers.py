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

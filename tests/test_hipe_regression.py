"""HiPe gives the same calls, chunks and scores as before it became a package (issue 13, part 4).

The expected values were recorded with the single-module implementation (commit
717665a) on a noisy toy model (deterministic noise, so no two chunks tie); the
chunk digest covers every scored chunk's span, parent and refined flag in order.
"""

from __future__ import annotations

import hashlib
import json

import pytest

import attrib
from attrib.backends.toy import ToyBackend
from attrib.methods.hipe import HiPe

FILLER = (
    "The weather was mild that spring and the farmers planted early. Markets in the valley were busy every morning. "
)
PROMPT = (
    FILLER * 4
    + "\n\nThe capital of France is Paris, a city on the Seine.\n\n"
    + FILLER * 5
    + "Question: which city? Answer:"
)
SENSITIVITY = {"paris": 3.0, "capital": 2.0, "seine": 0.6, "question": 0.8, ("valley", "farmers"): 0.5}

# (order, threshold, top_k, budget, level): (calls, budget exhausted, depths, top 3, sum of unit scores, chunk digest)
RECORDED = {
    ("best", "relative", None, None, "token"): (102, False, 7, [" Pari", "s", "tal"], 34.372929, "29399a483927f34b"),
    ("depth", "relative", None, None, "token"): (123, False, 8, [" Pari", "s", "tal"], 34.736391, "151fefec5fd7ceeb"),
    ("depth", "midrange", None, None, "token"): (92, False, 8, [" Pari", "s", "tal"], 31.402784, "5c23d4dc7fa5b64a"),
    ("best", 0.5, None, None, "word"): (
        72,
        False,
        6,
        [" Paris,", " capital", " Question:"],
        16.131147,
        "c00e6f235cf6a5c8",
    ),
    ("depth", 0.5, None, None, "word"): (
        91,
        False,
        7,
        [" Paris,", " capital", " Question:"],
        16.435302,
        "43e77ddcb400b4e0",
    ),
    ("best", "relative", 3, None, "token"): (60, False, 7, [" Pari", "s", "tal"], 30.104423, "73ade8a883ab93d5"),
    ("depth", "relative", 3, None, "word"): (
        91,
        False,
        7,
        [" Paris,", " capital", " Question:"],
        16.435302,
        "43e77ddcb400b4e0",
    ),
    ("best", "relative", None, 20, "token"): (19, True, 6, [" Pari", "s", ","], 29.285977, "4ac17b713369af24"),
    ("depth", "relative", None, 20, "token"): (
        18,
        True,
        3,
        [" \n\nThe", " capi", "tal"],
        15.373678,
        "dcba44d9da3e8e71",
    ),
    ("depth", "midrange", None, 25, "word"): (
        25,
        True,
        4,
        [" Seine.", " Paris,", " capital"],
        16.301975,
        "3e69599f2c7ea916",
    ),
}


@pytest.mark.parametrize("case", list(RECORDED), ids=lambda case: "-".join(map(str, case)))
def test_hipe_repeats_the_recorded_run(case):
    order, threshold, top_k, budget, level = case
    toy = ToyBackend(sensitivity=SENSITIVITY, output=" yes it is", noise=0.05)
    method = HiPe(order=order, threshold=threshold, top_k=top_k)
    result = attrib.attribute(PROMPT, backend=toy, method=method, level=level, budget=budget)
    spans = [(c["start"], c["end"], c["parent"], c["refined"]) for c in result.trace["chunks"]]
    digest = hashlib.sha256(json.dumps(spans).encode()).hexdigest()[:16]
    calls, exhausted, depths, top, total, chunks = RECORDED[case]
    assert result.stats.calls == calls
    assert result.stats.budget_exhausted is exhausted
    assert result.trace["depths"] == depths
    assert [item.unit.text for item in result.top(3)] == top
    assert float(result.unit_scores.sum()) == pytest.approx(total, abs=1e-6)
    assert digest == chunks

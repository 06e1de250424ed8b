"""Properties of HiPe on random toy prompts: budget, no repeated variant, whole families, exact leaves."""

from __future__ import annotations

import numpy as np
import pytest

import attrib
from attrib.backends.toy import ToyBackend
from attrib.errors import BudgetError
from attrib.methods.hipe import HiPe

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")

FILL = ["the", "a", "of", "is", "mild", "spring", "morning", "market", "valley", "busy", "every"]
KEYS = ["paris", "capital", "seine", "question", "answer", "seat"]


class CountingToy(ToyBackend):
    """Toy backend that remembers every prompt it was asked to score."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen: list[tuple[int, ...]] = []

    def score(self, requests, *, on_result=None):
        self.seen.extend(r.prompt_ids for r in requests)
        return super().score(requests, on_result=on_result)


@st.composite
def cases(draw):
    paragraphs = []
    for _ in range(draw(st.integers(1, 3))):
        sentences = [
            draw(st.lists(st.sampled_from(FILL), min_size=3, max_size=10)) for _ in range(draw(st.integers(2, 6)))
        ]
        paragraphs.append(sentences)
    keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=4, unique=True))
    for key in keys:
        sentence = draw(st.sampled_from([s for p in paragraphs for s in p]))
        sentence.insert(draw(st.integers(0, len(sentence))), key)
    prompt = "\n\n".join(" ".join(" ".join(s).capitalize() + "." for s in p) for p in paragraphs)
    sensitivity = {key: draw(st.floats(0.0, 5.0)) for key in keys}
    method = HiPe(
        order=draw(st.sampled_from(["best", "depth"])),
        threshold=draw(st.sampled_from(["relative", "midrange", 0.5])),
        top_k=draw(st.sampled_from([None, 1, 3])),
    )
    return prompt, sensitivity, method, draw(st.sampled_from([None, 8, 20])), draw(st.sampled_from(["token", "word"]))


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(cases())
def test_hipe_keeps_its_promises_on_random_prompts(case):
    prompt, sensitivity, method, budget, level = case
    toy = CountingToy(sensitivity=sensitivity, output=" yes it is")
    try:
        result = attrib.attribute(prompt, backend=toy, method=method, level=level, budget=budget)
    except BudgetError:
        assert budget is not None
        return
    assert budget is None or result.stats.calls <= budget
    assert len(toy.seen) == len(set(toy.seen)) == result.stats.calls
    chunks = result.trace["chunks"]
    for index, chunk in enumerate(chunks):
        kids = [c for c in chunks if c["parent"] == index]
        # children are cut from a refined parent, inside it (children two parents share
        # are scored once, under the first)
        assert not kids or chunk["refined"]
        assert all(chunk["start"] <= k["start"] < k["end"] <= chunk["end"] for k in kids)
        assert all(k["depth"] == chunk["depth"] + 1 for k in kids)
    if not any(c["leaf"] for c in chunks):
        return
    exact = attrib.attribute(
        prompt, backend=ToyBackend(sensitivity=sensitivity, output=" yes it is"), method="itp", level=level
    )
    rows = {(u.tokens[0], u.tokens[1]): i for i, u in enumerate(result.units)}
    for leaf in (c for c in chunks if c["leaf"]):
        row = rows[(leaf["start"], leaf["end"])]
        # a leaf unit carries its exact leave-one-out drop
        np.testing.assert_allclose(result.scores[row], exact.scores[row], atol=1e-9)

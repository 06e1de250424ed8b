"""Refinement orders hand every threshold one quantity: chunk drops in depth order, ceilings in best-first."""

from __future__ import annotations

import numpy as np
import pytest

import attrib
from attrib.backends.toy import ToyBackend
from attrib.methods.hipe import BestFirst, DepthOrder, HiPe, MidRange, Relative, token_map
from attrib.methods.hipe.chunks import Chunk

FILLER = (
    "The weather was mild that spring and the farmers planted early. Markets in the valley were busy every morning. "
)
PROMPT = (
    FILLER * 4
    + "\n\nThe capital of France is Paris, a city on the Seine.\n\n"
    + FILLER * 5
    + "Question: which city? Answer:"
)
SENSITIVITIES = [
    {"paris": 2.0, "capital": 1.0},
    {"paris": 5.0, "seine": 0.6, "question": 0.8},
    {"paris": 1.5, "question": 3.0, "answer": 2.0},
]


def _chunks(trace: dict) -> list[Chunk]:
    return [
        Chunk(c["start"], c["end"], c["depth"], c["parent"], np.array([c["score"]]), c["leaf"], c["refined"])
        for c in trace["chunks"]
    ]


def _decisions(trace: dict) -> list[tuple[int, list[Chunk]]]:
    """Each refined parent with the chunks scored before its children (the state it was judged in)."""
    chunks = _chunks(trace)
    decisions = []
    for index, chunk in enumerate(chunks):
        first_child = next((i for i, c in enumerate(chunks) if c.parent == index), None)
        if chunk.refined and first_child is not None:
            decisions.append((index, chunks[:first_child]))
    return decisions


def _bound(chunks: list[Chunk], n_tokens: int) -> np.ndarray:
    bound = np.full(n_tokens, np.inf)
    for c in chunks:
        np.minimum(bound[c.start : c.end], c.score, out=bound[c.start : c.end])
    return bound


@pytest.mark.parametrize("sensitivity", SENSITIVITIES)
@pytest.mark.parametrize("level", ["token", "word"])
def test_midrange_in_best_first_judges_ceilings_against_the_mid_range_of_the_bounds(sensitivity, level):
    toy = ToyBackend(sensitivity=sensitivity, output=" yes it is")
    result = attrib.attribute(PROMPT, backend=toy, method=HiPe(threshold="midrange", order="best"), level=level)
    n_tokens = result.units[-1].tokens[1]
    decisions = _decisions(result.trace)
    assert decisions
    for index, before in decisions:
        bound = _bound(before, n_tokens)
        parent = before[index]
        ceiling = bound[parent.start : parent.end].max()
        assert ceiling >= (bound.max() + bound.min()) / 2.0


@pytest.mark.parametrize("sensitivity", SENSITIVITIES)
def test_midrange_in_depth_order_keeps_hipes_rule_on_the_token_map(sensitivity):
    toy = ToyBackend(sensitivity=sensitivity, output=" yes it is")
    result = attrib.attribute(PROMPT, backend=toy, method=HiPe(threshold="midrange", order="depth"), level="token")
    n_tokens = result.units[-1].tokens[1]
    chunks = _chunks(result.trace)
    refined = [c for c in chunks if c.refined]
    assert refined
    for parent in refined:
        # depth order judges a whole depth at once, on the chunks scored down to it
        before = [c for c in chunks if c.depth <= parent.depth]
        current = token_map(before, n_tokens, 1).sum(axis=1)
        assert current[parent.start : parent.end].max() >= (current.max() + current.min()) / 2.0


def test_midrange_in_best_first_finds_what_leave_one_out_finds():
    # Judged on the token map, best-first refined the question's neighbourhood and
    # ranked a paragraph break above "capital"; judged on ceilings it does not.
    toy = ToyBackend(sensitivity={"paris": 2.0, "capital": 1.0}, output=" yes it is")
    hipe = attrib.attribute(PROMPT, backend=toy, method=HiPe(threshold="midrange", order="best"), level="token")
    itp = attrib.attribute(PROMPT, backend=toy, method="itp", level="token")
    assert [i.unit.text for i in hipe.top(3)] == [i.unit.text for i in itp.top(3)]
    np.testing.assert_allclose([i.score for i in hipe.top(3)], [i.score for i in itp.top(3)])


def test_each_order_names_the_quantity_it_judges_and_its_leaf_group():
    assert (DepthOrder().judges, DepthOrder.leaf_group) == ("drop", 4)
    assert (BestFirst().judges, BestFirst.leaf_group) == ("ceiling", 8)
    assert HiPe(order="depth").describe()["leaf_group"] == 4
    assert HiPe().describe()["leaf_group"] == 8


def test_relative_judges_ceilings_in_best_first_and_drops_in_depth_order():
    # A chunk's ceiling is at most its drop; a wide chunk whose tokens are all held by
    # weaker, smaller chunks has a low ceiling and is not passed in best-first.
    from attrib.methods.hipe import ChunkTree

    hierarchy = [tuple(range(0, 17))]
    tree = ChunkTree(hierarchy, 16, 1, leaf_group=2)
    wide = tree.add((0, 16), 0, None, np.array([4.0]))
    tree.add((0, 8), 1, 0, np.array([1.0]))
    tree.add((8, 16), 1, 0, np.array([1.0]))
    other = tree.add((4, 12), 0, None, np.array([3.0]))
    assert tree.ceiling(wide) == 1.0 and tree.ceiling(other) == 1.0
    peers = tree.peers(0)
    assert BestFirst().quantity(tree, peers).values == [1.0, 1.0]
    assert DepthOrder().quantity(tree, peers).values == [4.0, 3.0]
    threshold = Relative(fraction=0.9, floor=0.0)
    assert threshold.select(DepthOrder().quantity(tree, peers)) == [wide]
    assert threshold.select(BestFirst().quantity(tree, peers)) == [wide, other]
    np.testing.assert_allclose(BestFirst().quantity(tree, peers).per_token, np.ones(16))
    assert MidRange().select(BestFirst().quantity(tree, peers)) == [wide, other]


def test_an_order_instance_is_accepted_and_recorded_by_name():
    toy = ToyBackend(sensitivity={"paris": 2.0})
    result = attrib.attribute(PROMPT, backend=toy, method=HiPe(order=DepthOrder()), level="word")
    assert result.trace["order"] == "depth"
    assert result.parameters["order"] == "depth"

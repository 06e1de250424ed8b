"""Planning batched forced decoding (pure Python: no torch, no model)."""

from __future__ import annotations

import random

import pytest

from attrib.backend import common_prefix_length, prefix_sharing_order
from attrib.backends.transformers.plan import Budget, plan_groups


def _leave_one_out(n: int, positions: range) -> tuple[list[list[int]], list[int]]:
    base = [1] + list(range(100, 100 + n))
    sequences = [base] + [base[:p] + base[p + 1 :] for p in positions]
    return sequences, [len(s) - 1 for s in sequences]


def _sequential_cost(sequences: list[list[int]], logits_from: list[int]) -> int:
    """Tokens computed one at a time with the previous sequence's cache kept (llama.cpp's reuse)."""
    total, previous = 0, list[int]()
    for i in prefix_sharing_order(sequences):
        total += len(sequences[i]) - min(common_prefix_length(previous, sequences[i]), logits_from[i])
        previous = sequences[i]
    return total


def _planned_cost(sequences: list[list[int]], logits_from: list[int], budget: Budget) -> int:
    total, kept = 0, list[int]()
    for group in plan_groups(sequences, logits_from, budget):
        first = sequences[group.members[0]]
        reused = min(common_prefix_length(kept, first), group.prefix)
        total += group.prefix - reused + sum(len(sequences[i]) - group.prefix for i in group.members)
        kept = first if len(group.members) == 1 else first[: group.prefix]
    return total


def test_every_variant_is_planned_once_with_a_prefix_all_members_share():
    rng = random.Random(7)
    sequences = [[1] + [rng.randrange(5) for _ in range(rng.randrange(3, 30))] for _ in range(200)]
    logits_from = [len(s) - 2 for s in sequences]
    groups = plan_groups(sequences, logits_from, Budget(kv_bytes=1, slack=0.5))
    assert sorted(i for g in groups for i in g.members) == list(range(200))
    assert any(len(g.members) > 1 for g in groups)
    for group in groups:
        first = sequences[group.members[0]]
        for i in group.members:
            assert sequences[i][: group.prefix] == first[: group.prefix]
            assert group.prefix <= logits_from[i]


def test_adjacent_deletions_are_batched_after_their_shared_prefix():
    sequences, logits_from = _leave_one_out(600, range(200, 232))
    groups = plan_groups(sequences, logits_from, Budget(kv_bytes=1, batch_tokens=10**5))
    batched = [g for g in groups if len(g.members) > 1]
    assert batched, "neighbouring leave-one-out variants share almost everything"
    assert max(len(g.members) for g in groups) >= 8


def test_tokens_stay_within_the_slack_of_one_at_a_time_evaluation():
    sequences, logits_from = _leave_one_out(800, range(1, 801, 3))
    budget = Budget(kv_bytes=1, slack=0.05, overhead=0)
    assert _planned_cost(sequences, logits_from, budget) <= 1.05 * _sequential_cost(sequences, logits_from)


@pytest.mark.parametrize(
    ("budget", "limit"),
    [
        (Budget(kv_bytes=1, max_rows=4, overhead=10**6), "rows"),
        (Budget(kv_bytes=1, batch_tokens=300, overhead=10**6), "tokens"),
    ],
)
def test_batches_respect_the_budget(budget, limit):
    sequences, logits_from = _leave_one_out(200, range(100, 200))
    for group in plan_groups(sequences, logits_from, budget):
        rows = len(group.members)
        longest = max(len(sequences[i]) - group.prefix for i in group.members)
        if limit == "rows":
            assert rows <= 4
        elif rows > 1:
            assert rows * longest <= 300


def test_the_cache_budget_limits_rows_by_memory():
    sequences, logits_from = _leave_one_out(400, range(380, 400))
    tight = Budget(kv_bytes=1000, cache_bytes=1000 * 401 * 2, overhead=10**6)
    assert max(len(g.members) for g in plan_groups(sequences, logits_from, tight)) <= 2


def test_halving_a_budget_after_out_of_memory_reaches_one_row():
    budget = Budget(batch_tokens=8, max_rows=4, cache_bytes=16)
    for _ in range(5):
        budget = budget.halved()
    assert (budget.batch_tokens, budget.max_rows, budget.cache_bytes) == (1, 1, 1)

"""Planning batched forced decoding: which variants share one prefix pass and one batch.

Given the token sequences of many perturbed variants (each ``BOS + prompt +
continuation[:-1]``, with log-probabilities wanted from position ``logits_from``
on), the planner walks them in lexicographic order (the pre-order of their
prefix trie, :func:`attrib.backend.prefix_sharing_order`) and cuts that order
into *groups*. A group's members share a prefix of ``prefix`` tokens, evaluated
once with batch size 1 (and kept, so the next group reuses what it shares with
it); each member's *suffix* ``sequence[prefix:]`` is then evaluated in one
batch over a copy of that prefix's key/value cache, right-padded to the longest
suffix.

Batching is paid for in tokens: a member whose sequence shares ``c`` tokens with
its predecessor would cost ``len - c`` tokens one at a time (llama.cpp's
sequential reuse), but ``len - prefix`` inside a group whose prefix is shorter.
A variant joins the current group only while

* the extra tokens over one-at-a-time evaluation stay within ``slack`` times
  the group's one-at-a-time cost plus ``overhead`` tokens for every forward pass
  the merge saves (a forward pass has a fixed cost, reading all weights, worth
  ``overhead`` tokens of compute), and
* the batch fits the budgets: ``rows * longest suffix <= batch_tokens``,
  ``rows <= max_rows``, and ``rows * (prefix + longest suffix) * kv_bytes <=
  cache_bytes`` (the copied key/value cache).

Everything here is pure Python on token ids, so it is tested without a model.

Sources: AttriBoT (Liu et al., 2024, "AttriBoT: A Bag of Tricks for Efficiently
Approximating Leave-One-Out Context Attribution") for key/value cache reuse
across leave-one-out variants; EleutherAI lm-evaluation-harness for sorting
requests so that neighbours share work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from attrib.backend import common_prefix_length, prefix_sharing_order

__all__ = ["Budget", "Group", "plan_groups"]


@dataclass(frozen=True)
class Budget:
    """Limits and prices for one batched forward pass.

    Attributes:
        batch_tokens: most suffix positions (rows x padded length) evaluated in one pass;
            longer suffixes are evaluated in chunks of this many positions.
        max_rows: most variants in one batch.
        cache_bytes: most bytes of copied key/value cache for one batch.
        kv_bytes: key/value cache bytes per position and row (from the model's config).
        slack: tolerated extra tokens, as a fraction of one-at-a-time evaluation.
        overhead: the fixed cost of one forward pass, in tokens.
    """

    batch_tokens: int = 2048
    max_rows: int = 64
    cache_bytes: int = 2 * 1024**3
    kv_bytes: int = 0
    slack: float = 0.02
    overhead: int = 16

    def halved(self) -> Budget:
        """The same budget with half the batch and cache sizes (after an out-of-memory error)."""
        return Budget(
            batch_tokens=max(1, self.batch_tokens // 2),
            max_rows=max(1, self.max_rows // 2),
            cache_bytes=max(1, self.cache_bytes // 2),
            kv_bytes=self.kv_bytes,
            slack=self.slack,
            overhead=self.overhead,
        )

    def fits(self, rows: int, prefix: int, longest: int) -> bool:
        """Whether ``rows`` suffixes of at most ``longest`` tokens after ``prefix`` fit one batch."""
        if rows == 1:
            return True  # a single variant always runs (in chunks if it is long)
        return (
            rows <= self.max_rows
            and rows * longest <= self.batch_tokens
            and rows * (prefix + longest) * self.kv_bytes <= self.cache_bytes
        )


@dataclass(frozen=True)
class Group:
    """Variants evaluated as one batch after one shared prefix.

    Attributes:
        members: indices into the planned sequences, in prefix-sharing order.
        prefix: length of the shared prefix, at most every member's ``logits_from``.
    """

    members: tuple[int, ...]
    prefix: int


def plan_groups(sequences: Sequence[Sequence[int]], logits_from: Sequence[int], budget: Budget) -> list[Group]:
    """Cut the prefix-sharing order of ``sequences`` into groups (see the module docstring).

    Args:
        sequences: the token sequences to evaluate, one per variant.
        logits_from: per variant, the first position whose logits are needed (>= 0).

    Returns:
        Groups covering every index once, in evaluation order. A single-member group's
        prefix is its ``logits_from``: everything before the scored positions.
    """
    order = prefix_sharing_order(sequences)
    groups: list[Group] = []
    members: list[int] = []
    prefix = 0
    longest = 0
    alone = 0  # one-at-a-time cost of the members after the first
    extra = 0  # tokens computed beyond that
    for index in order:
        sequence = sequences[index]
        if not members:
            members, prefix, longest, alone, extra = [index], logits_from[index], 0, 0, 0
            longest = len(sequence) - prefix
            continue
        shared = min(common_prefix_length(sequences[members[-1]], sequence), logits_from[index])
        new_prefix = min(prefix, shared)
        rows = len(members) + 1
        new_longest = max(longest + prefix - new_prefix, len(sequence) - new_prefix)
        # Shrinking the prefix costs every present member (prefix - new_prefix) more tokens.
        new_extra = extra + (len(members) - 1) * (prefix - new_prefix) + (shared - new_prefix)
        # The first member's own cost does not change; the others' one-at-a-time cost grows.
        new_alone = alone + len(sequence) - shared
        first_cost = len(sequences[members[0]]) - new_prefix
        affordable = new_extra <= budget.slack * (new_alone + first_cost) + budget.overhead * (rows - 1)
        if affordable and budget.fits(rows, new_prefix, new_longest):
            members.append(index)
            prefix, longest, alone, extra = new_prefix, new_longest, new_alone, new_extra
        else:
            groups.append(Group(tuple(members), prefix))
            members, prefix = [index], logits_from[index]
            longest, alone, extra = len(sequence) - prefix, 0, 0
    if members:
        groups.append(Group(tuple(members), prefix))
    return groups

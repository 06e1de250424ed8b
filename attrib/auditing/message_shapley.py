"""Role-level attribution: Shapley values of a chat's messages for the output's log-probability.

Removing one message at a time (leave-one-out) misreads messages that back each
other up: a system prompt and a user message that both state a fact each look
unimportant. The Shapley value (L. S. Shapley, "A Value for n-Person Games",
1953) averages a message's marginal contribution over every order of adding the
messages, and its shares add up exactly to the whole effect:

    v(S)  = log p(y | messages in S)          (nats, per output token)
    phi_i = sum over S not containing i of |S|! (k-|S|-1)! / k! * (v(S + i) - v(S))
    sum_i phi_i = v(all) - v(none)

With ``k <= exact_limit`` messages every one of the ``2^k`` coalitions is scored
(64 calls for 6 messages). Beyond that, random permutations estimate the values
(S. Castro, D. Gomez, J. Tejada, "Polynomial calculation of the Shapley value based
on sampling", Computers & Operations Research 36(5), 2009): each permutation adds
messages one by one and credits each with its marginal contribution; the seed
makes it reproducible. Values are per output token, so they also say which
message drives which token.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

__all__ = ["coalitions", "shapley_values", "role_shares"]

Coalition = frozenset[int]


def _permutations(k: int, samples: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [list(rng.permutation(k)) for _ in range(samples)]


def coalitions(k: int, *, exact_limit: int = 6, samples: int = 64, seed: int = 0) -> list[Coalition]:
    """The coalitions (subsets of message indices) whose values the Shapley computation needs.

    Returns:
        Distinct coalitions, the empty and the full one always included: all ``2^k``
        when ``k <= exact_limit``, otherwise the prefixes of ``samples`` seeded permutations.
    """
    if k <= exact_limit:
        return [frozenset(c) for size in range(k + 1) for c in itertools.combinations(range(k), size)]
    needed: dict[Coalition, None] = {frozenset(): None, frozenset(range(k)): None}
    for order in _permutations(k, samples, seed):
        for stop in range(1, k + 1):
            needed[frozenset(order[:stop])] = None
    return list(needed)


def shapley_values(
    values: dict[Coalition, np.ndarray], k: int, *, exact_limit: int = 6, samples: int = 64, seed: int = 0
) -> tuple[np.ndarray, bool]:
    """Shapley value of each message for each output token.

    Args:
        values: ``v(S)`` for every coalition :func:`coalitions` returned with the same
            arguments, each of shape (m,), nats.
        k: number of messages.

    Returns:
        ``(phi, exact)``: ``phi`` of shape (k, m), nats; ``exact`` is False when sampled.

    Raises:
        KeyError: if a needed coalition's value is missing.
    """
    m = len(next(iter(values.values())))
    phi = np.zeros((k, m))
    if k <= exact_limit:
        for i in range(k):
            others = [j for j in range(k) if j != i]
            for size in range(k):
                weight = math.factorial(size) * math.factorial(k - size - 1) / math.factorial(k)
                for subset in itertools.combinations(others, size):
                    s = frozenset(subset)
                    phi[i] += weight * (values[s | {i}] - values[s])
        return phi, True
    orders = _permutations(k, samples, seed)
    for order in orders:
        previous = values[frozenset()]
        for stop in range(1, k + 1):
            current = values[frozenset(order[:stop])]
            phi[order[stop - 1]] += current - previous
            previous = current
    return phi / len(orders), False


def role_shares(phi: np.ndarray, roles: Sequence[str]) -> dict[str, float]:
    """Each role's share of the messages' total effect (sums to 1 when the total is not zero).

    Args:
        phi: Shapley values, shape (k, m), nats.
        roles: the role of each message, length k.

    Returns:
        role -> share of ``sum(phi)``; a share is negative when that role's messages
        make the output less likely on balance. All zeros when the total is zero.
    """
    totals = phi.sum(axis=1)
    whole = float(totals.sum())
    shares: dict[str, float] = {}
    for role, value in zip(roles, totals, strict=True):
        shares[role] = shares.get(role, 0.0) + float(value)
    if whole == 0.0:
        return {role: 0.0 for role in shares}
    return {role: value / whole for role, value in shares.items()}

"""Batched forced decoding with each group's shared prefix evaluated once.

The requests' sequences (``BOS + prompt + continuation[:-1]``) are planned into
groups (:mod:`.plan`); for each group the kept key/value cache is cut back to
what it shares with the group's prefix and extended to it (batch size 1), then
the members' suffixes run as one right-padded batch over a copy of that cache.
A group of one runs on the kept cache itself, so the next group can reuse its
whole sequence, exactly as llama.cpp's sequential reuse would.

Counting (``tokens_evaluated``, honest): the prefix tokens a group computes are
charged to its first member; every member is charged its own suffix. Padding is
not charged to anyone; it is counted in :attr:`BatchScorer.usage` instead.

On an out-of-memory error (CUDA, MPS or host) the scorer halves its batch and
cache budgets, keeps what it has finished, re-plans the rest and retries; after
the budget reaches one row it gives up with :class:`~attrib.errors.BackendError`.

Log-probabilities are ``logit[target] - logsumexp(logits)`` in float32 on the
model's device, returned as float64 nats.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from attrib.backend import ScoreResult
from attrib.backends.transformers.forward import CachedForward
from attrib.backends.transformers.plan import Budget, plan_groups
from attrib.errors import BackendError, ResponseMismatchError

__all__ = ["Variant", "BatchScorer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variant:
    """One sequence to score.

    Attributes:
        sequence: ``BOS + prompt + continuation[:-1]`` token ids.
        targets: the continuation's token ids, shape (m,), m >= 1.
    """

    sequence: tuple[int, ...]
    targets: tuple[int, ...]

    @property
    def logits_from(self) -> int:
        """The first position whose logits are needed (it predicts ``targets[0]``)."""
        return len(self.sequence) - len(self.targets)


class BatchScorer:
    """Score many variants on one :class:`CachedForward` within a :class:`Budget`.

    Args:
        forward: the model runner with its kept cache.
        torch: the torch module.
        budget: batch and cache limits; halved on out-of-memory errors.
        pad: token id used to right-pad short suffixes.
    """

    def __init__(self, forward: CachedForward, torch: Any, budget: Budget, *, pad: int) -> None:
        self._forward = forward
        self._torch = torch
        self.budget = budget
        self._pad = pad
        self.usage: dict[str, int] = {
            "score_calls": 0,
            "variants": 0,
            "forward_batches": 0,
            "largest_batch": 0,
            "prefix_tokens": 0,
            "suffix_tokens": 0,
            "padding_tokens": 0,
            "out_of_memory_retries": 0,
        }

    def score(
        self, variants: Sequence[Variant], *, on_result: Callable[[int, ScoreResult], None] | None = None
    ) -> list[ScoreResult]:
        """Log-probabilities of every variant's targets, in variant order.

        Raises:
            BackendError: if a single variant does not fit in memory even alone, or the
                model produces non-finite log-probabilities (float16 overflow).
            ResponseMismatchError: if the model returns the wrong number of logit rows.
        """
        self.usage["score_calls"] += 1
        self.usage["variants"] += len(variants)
        results: dict[int, ScoreResult] = {}
        pending = list(range(len(variants)))
        while pending:
            subset = [variants[i] for i in pending]
            groups = plan_groups([v.sequence for v in subset], [v.logits_from for v in subset], self.budget)
            try:
                for group in groups:
                    members = [pending[i] for i in group.members]
                    for index, result in zip(members, self._run_group(variants, members, group.prefix), strict=True):
                        results[index] = result
                        if on_result is not None:
                            on_result(index, result)
            except Exception as error:
                if not _is_out_of_memory(self._torch, error):
                    raise
                self._recover(error)
            pending = [i for i in range(len(variants)) if i not in results]
        return [results[i] for i in range(len(variants))]

    def _recover(self, error: BaseException) -> None:
        """Release memory and halve the budget after an out-of-memory error.

        Raises:
            BackendError: if the budget is already at one row and one token.
        """
        self._forward.reset()
        _empty_device_cache(self._torch)
        if self.budget.max_rows == 1 and self.budget.batch_tokens == 1:
            raise BackendError(
                "out of memory even for one variant at a time; use a smaller model, a shorter prompt or --dtype bfloat16"
            ) from error
        self.budget = self.budget.halved()
        self.usage["out_of_memory_retries"] += 1
        log.warning(
            "out of memory; retrying with batch_tokens=%d, max_rows=%d", self.budget.batch_tokens, self.budget.max_rows
        )

    def _run_group(self, variants: Sequence[Variant], members: Sequence[int], prefix: int) -> list[ScoreResult]:
        """Evaluate one group; returns the members' results in member order."""
        forward = self._forward
        first = variants[members[0]]
        chunk = self.budget.batch_tokens
        reused = forward.keep(first.sequence, prefix)
        if len(members) == 1:
            # Alone: run on the kept cache itself, logits at the scored positions.
            wanted = range(first.logits_from, len(first.sequence))
            logits = forward.extend(first.sequence, chunk=chunk, wanted=wanted)
            computed = len(first.sequence) - reused
            self.usage["prefix_tokens"] += max(0, first.logits_from - reused)
            self.usage["suffix_tokens"] += computed - max(0, first.logits_from - reused)
            self.usage["forward_batches"] += 1
            self.usage["largest_batch"] = max(self.usage["largest_batch"], 1)
            return [self._result(logits, first.targets, computed)]
        forward.extend(first.sequence[:prefix], chunk=chunk)
        suffixes = [variants[i].sequence[prefix:] for i in members]
        wanted_rows = [range(variants[i].logits_from - prefix, len(variants[i].sequence) - prefix) for i in members]
        logits = forward.batch(suffixes, wanted_rows, pad=self._pad, chunk=chunk)
        longest = max(len(s) for s in suffixes)
        self.usage["prefix_tokens"] += prefix - reused
        self.usage["suffix_tokens"] += sum(len(s) for s in suffixes)
        self.usage["padding_tokens"] += sum(longest - len(s) for s in suffixes)
        self.usage["forward_batches"] += 1
        self.usage["largest_batch"] = max(self.usage["largest_batch"], len(members))
        results = []
        offset = 0
        for position, index in enumerate(members):
            variant = variants[index]
            m = len(variant.targets)
            computed = len(variant.sequence) - prefix + (prefix - reused if position == 0 else 0)
            results.append(self._result(logits[offset : offset + m], variant.targets, computed))
            offset += m
        if offset != logits.shape[0]:
            raise ResponseMismatchError(f"the model produced {logits.shape[0]} rows of logits for {offset} tokens")
        return results

    def _result(self, logits: Any, targets: Sequence[int], computed: int) -> ScoreResult:
        """``log p(target)`` per row of ``logits`` (float32, shape (m, vocab)) as float64 nats."""
        torch = self._torch
        if logits.shape[0] != len(targets):
            raise ResponseMismatchError(
                f"the model produced {logits.shape[0]} rows of logits for {len(targets)} tokens"
            )
        index = torch.tensor(list(targets), dtype=torch.long, device=logits.device)
        chosen = logits.gather(1, index[:, None])[:, 0] - torch.logsumexp(logits, dim=1)
        values = np.asarray(chosen.detach().cpu().numpy(), dtype=np.float64)
        if not np.isfinite(values).all():
            raise BackendError(
                "the model produced non-finite log-probabilities (float16 overflow?); use --dtype float32 or bfloat16"
            )
        return ScoreResult(logprobs=values, tokens_evaluated=int(computed))


def _is_out_of_memory(torch: Any, error: BaseException) -> bool:
    """Whether ``error`` is an out-of-memory error of torch (CUDA, MPS) or of the host allocator."""
    kind = getattr(torch, "OutOfMemoryError", None)
    if kind is not None and isinstance(error, kind):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def _empty_device_cache(torch: Any) -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and hasattr(mps, "empty_cache") and torch.backends.mps.is_available():
        mps.empty_cache()

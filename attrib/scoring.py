"""Forced-decoding scores of perturbed prompts against one fixed output.

The output ``y`` (generated once, or given) is held fixed. For every variant
``x~`` of the prompt the backend scores the original output tokens,
``log p(y_t | x~, y_<t)``, and the attribution of the ablated span to output
token ``t`` is the drop

    a_t = log p(y_t | x, y_<t) - log p(y_t | x~, y_<t)        (nats)

positive when removing the span makes the output less likely. This is
leave-one-out occlusion applied to token log-probabilities (Zeiler & Fergus 2014;
Li, Monroe & Jurafsky 2016, "Understanding Neural Networks through Representation
Erasure").

:class:`Scorer` owns the cost accounting: every distinct variant is scored once
(memoised by its ablated spans and by its token ids, so ablations that give the
same tokens are one call), calls and tokens evaluated are counted, and a call
budget is enforced.

Contrastive attribution (Yin & Neubig 2022, "Interpreting Language Models with
Contrastive Explanations", EMNLP) asks why the model gives the target ``y``
rather than a foil ``c``. Given ``contrast_ids``, every variant is scored on both
continuations (two requests with the same prompt, so a backend that keeps its
prefix cache pays the prompt once) and its row is
``[log p(y_1 ...), ..., -log p(c_1 ...), ...]``: the drops of a row then sum to
the drop of ``log p(y | x) - log p(c | x)``, and every method works unchanged on
the longer rows. One variant is one call for the budget, whatever the number of
requests behind it; tokens evaluated count both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from attrib.backend import Messages, ScoreRequest, ScoreResult, ScoringModel
from attrib.chat import ChatLayout
from attrib.errors import BudgetError, ResponseMismatchError
from attrib.methods.base import ScorerView, SpanScorer
from attrib.perturbation import Perturbation, Span, Variant, merge_spans
from attrib.segmentation import Tokenization

__all__ = ["Scorer", "RegionScorer", "SpanScorer"]


class Scorer:
    """Scores variants of one prompt by forced decoding of one fixed output.

    Args:
        backend: the model to query (anything with a batched ``score``, see
            :class:`~attrib.backend.ScoringModel`).
        prompt: the prompt's tokenization.
        output_ids: the output tokens to score, shape (m,).
        perturbation: how ablated spans become variants (bound to the backend).
        budget: maximum number of scoring calls, the unperturbed prompt included;
            ``None`` for no limit.
        on_call: called after each call that reached the backend, with the number of
            calls so far (for progress display).
        chat: for a chat prompt, its layout; each request then also carries the
            variant as messages (for backends that send chats as messages).
        contrast_ids: a contrast's token ids (split jointly with the prompt like the
            output); each variant is then also scored on them, and its row holds the
            output's log-probabilities followed by the contrast's, negated:
            shape (m + len(contrast_ids),).

    Attributes:
        calls: scoring calls sent to the backend (distinct variants, base included; with a
            contrast, each call is two requests sharing the prompt).
        tokens_evaluated: tokens the backend computed for them (after prefix reuse).
        reused: requests answered from the memo instead of the backend.
    """

    def __init__(
        self,
        backend: ScoringModel,
        prompt: Tokenization,
        output_ids: Sequence[int],
        perturbation: Perturbation,
        *,
        budget: int | None = None,
        on_call: Callable[[int], None] | None = None,
        chat: ChatLayout | None = None,
        contrast_ids: Sequence[int] = (),
    ) -> None:
        if not output_ids:
            raise ValueError("output_ids must hold at least one token")
        self.backend = backend
        self.prompt = prompt
        self.output_ids = tuple(int(t) for t in output_ids)
        self.perturbation = perturbation
        self.budget = budget
        self.on_call = on_call
        self.chat = chat
        self.contrast_ids = tuple(int(t) for t in contrast_ids)
        self.calls = 0
        self.tokens_evaluated = 0
        self.reused = 0
        self._by_spans: dict[tuple[Span, ...], np.ndarray] = {}
        self._by_ids: dict[tuple[int, ...], np.ndarray] = {}
        self._base: np.ndarray | None = None

    @property
    def n_output(self) -> int:
        """Columns of every row: output tokens, then the contrast's tokens (if any)."""
        return len(self.output_ids) + len(self.contrast_ids)

    @property
    def contrast_start(self) -> int | None:
        """The first contrast column of every row, or ``None`` without a contrast."""
        return len(self.output_ids) if self.contrast_ids else None

    @property
    def remaining(self) -> int | None:
        """Calls left under the budget, or ``None`` without a budget."""
        return None if self.budget is None else max(0, self.budget - self.calls)

    @property
    def base_logprobs(self) -> np.ndarray:
        """``log p(y_t | x, y_<t)`` of the unperturbed prompt, nats, shape (m,)."""
        if self._base is None:
            self._base = self._logprobs([()])[0]
        return self._base

    def repeat_base(self, samples: int) -> np.ndarray:
        """Score the unperturbed prompt ``samples`` more times as independent requests.

        For endpoints that are not deterministic, the spread of these repeats is the
        noise floor of every attribution in the run. From then on the base score is
        the mean of all samples, so its own noise does not shift every attribution
        alike. The repeats count as calls; call this before scoring any variant.

        Returns:
            Log-probabilities in nats, shape (samples + 1, m); row 0 is the first base score.

        Raises:
            BudgetError: if the repeats exceed the remaining budget.
        """
        base = self.base_logprobs
        if samples <= 0:
            return base[None, :]
        requests = [
            ScoreRequest(self.prompt.ids, self.output_ids, self.prompt.text, sample=k, messages=self._messages(()))
            for k in range(1, samples + 1)
        ]
        rows = self._call(requests, what=f"{samples} noise samples")
        stacked = np.stack([base, *rows])
        self._base = stacked.mean(axis=0)
        return stacked

    def _messages(self, ablated: Sequence[Span]) -> Messages | None:
        """The variant as chat messages: each message's content with its share of ``ablated`` perturbed."""
        if self.chat is None:
            return None
        out = []
        for index, message in enumerate(self.chat.messages):
            content = self.chat.contents[index]
            start, stop = self.chat.offsets[index], self.chat.offsets[index] + len(content)
            local = [(max(a, start) - start, min(b, stop) - start) for a, b in ablated if a < stop and b > start]
            text = self.perturbation.apply(content, local).text if local else content.text
            out.append((message["role"], text))
        return tuple(out)

    def count_new(self, ablations: Sequence[Sequence[Span]]) -> int:
        """How many calls scoring ``ablations`` would make: their distinct perturbed prompts (token
        ids after the perturbation) not scored yet, as :meth:`drops` sends them. Ablations that
        give the same tokens (deleting either copy of a repeated word) are one call, and the
        unperturbed prompt's tokens none (every run scores them first). Makes no call.
        """
        new: set[tuple[int, ...]] = set()
        for key in {merge_spans(a) for a in ablations}:
            if key in self._by_spans:
                continue
            ids = self.perturbation.apply(self.prompt, key).ids
            if ids not in self._by_ids and ids != self.prompt.ids:
                new.add(ids)
        return len(new)

    def drops(self, ablations: Sequence[Sequence[Span]]) -> np.ndarray:
        """Attribution of each ablation to each output token.

        Args:
            ablations: for each variant, the token spans to ablate together.

        Returns:
            ``base - perturbed`` log-probabilities, nats, shape (len(ablations), m).

        Raises:
            BudgetError: if the variants not yet scored exceed the remaining budget.
            ResponseMismatchError: if the backend returns the wrong number of scores.
        """
        base = self.base_logprobs
        if not ablations:
            return np.zeros((0, self.n_output))
        drops: np.ndarray = base[None, :] - self._logprobs(ablations)
        return drops

    def logprobs(self, ablations: Sequence[Sequence[Span]]) -> np.ndarray:
        """Log-probabilities of the output under each ablation, as scoring calls like :meth:`drops`'s.

        Args:
            ablations: for each variant, the token spans to ablate together.

        Returns:
            ``log p(y_t | perturbed x, y_<t)``, nats, shape (len(ablations), m).

        Raises:
            BudgetError: if the variants not yet scored exceed the remaining budget.
            ResponseMismatchError: if the backend returns the wrong number of scores.
        """
        if not ablations:
            return np.zeros((0, self.n_output))
        return self._logprobs(ablations)

    def _logprobs(self, ablations: Sequence[Sequence[Span]]) -> np.ndarray:
        keys = [merge_spans(a) for a in ablations]
        pending: dict[tuple[Span, ...], Variant] = {}
        for key in keys:
            if key in self._by_spans or key in pending:
                continue
            variant = self.perturbation.apply(self.prompt, key)
            if variant.ids in self._by_ids:
                self._by_spans[key] = self._by_ids[variant.ids]
            else:
                pending[key] = variant
        requests = {
            v.ids: ScoreRequest(v.ids, self.output_ids, v.text, messages=self._messages(v.ablated))
            for v in pending.values()
        }
        self.reused += len(keys) - len(requests)
        if pending:
            self._send(list(requests.values()))
            for key, variant in pending.items():
                self._by_spans[key] = self._by_ids[variant.ids]
        return np.stack([self._by_spans[k] for k in keys])

    def score_prompts(self, requests: Sequence[ScoreRequest]) -> np.ndarray:
        """Score other prompts than span ablations of this one (e.g. a chat rendered with
        only some of its messages) as ordinary scoring calls: counted, budgeted, shown in
        the progress, memoised by token ids, and sent through the same backend.

        Args:
            requests: the prompts to score; their continuations must be this scorer's output.

        Returns:
            ``log p(y_t | prompt, y_<t)``, nats, shape (len(requests), m).

        Raises:
            BudgetError: if the prompts not yet scored exceed the remaining budget.
            ResponseMismatchError: if the backend returns the wrong number of scores.
        """
        for request in requests:
            if request.continuation_ids != self.output_ids:
                raise ValueError("score_prompts scores this scorer's output only")
        new: dict[tuple[int, ...], ScoreRequest] = {}
        for request in requests:
            if request.prompt_ids not in self._by_ids and request.prompt_ids not in new:
                new[request.prompt_ids] = request
        self.reused += len(requests) - len(new)
        if new:
            self._send(list(new.values()))
        if not requests:
            return np.zeros((0, self.n_output))
        return np.stack([self._by_ids[r.prompt_ids] for r in requests])

    def _send(self, requests: list[ScoreRequest]) -> None:
        """Score distinct, not yet scored prompts and memoise them by token ids."""
        for request, logprobs in zip(requests, self._call(requests), strict=True):
            self._by_ids[request.prompt_ids] = logprobs

    def _call(self, requests: list[ScoreRequest], *, what: str | None = None) -> list[np.ndarray]:
        """Send ``requests`` to the backend as scoring calls: budgeted, counted, shown in the progress.

        Returns:
            Each request's log-probabilities, nats, shape (m,).

        Raises:
            BudgetError: if the requests exceed the remaining budget.
            ResponseMismatchError: if the backend returns the wrong number of results or scores.
        """
        if self.remaining is not None and len(requests) > self.remaining:
            raise BudgetError(
                f"{what or f'{len(requests)} more calls'} need {len(requests)} calls but only {self.remaining} are "
                f"left of the budget of {self.budget}; raise --budget"
            )
        per_call = 2 if self.contrast_ids else 1
        sent = list(requests)
        if self.contrast_ids:  # each variant twice, adjacent: the output, then the contrast
            sent = [r for request in requests for r in (request, replace(request, continuation_ids=self.contrast_ids))]
        done, answered = self.calls, 0

        def progress(index: int, result: ScoreResult) -> None:
            nonlocal answered
            answered += 1
            if self.on_call is not None and answered % per_call == 0:
                self.on_call(done + answered // per_call)

        results = self.backend.score(sent, on_result=progress)
        if len(results) != len(sent):
            raise ResponseMismatchError(f"backend returned {len(results)} results for {len(sent)} requests")
        rows = []
        for index in range(0, len(sent), per_call):
            logprobs = self._row(results[index], len(self.output_ids), "output")
            if self.contrast_ids:
                logprobs = np.concatenate(
                    [logprobs, -self._row(results[index + 1], len(self.contrast_ids), "contrast")]
                )
            rows.append(logprobs)
        self.calls += len(requests)
        self.tokens_evaluated += sum(int(r.tokens_evaluated) for r in results)
        return rows

    @staticmethod
    def _row(result: ScoreResult, size: int, what: str) -> np.ndarray:
        """A result's log-probabilities as float64, shape (size,).

        Raises:
            ResponseMismatchError: if the backend returned another number of scores.
        """
        logprobs = np.asarray(result.logprobs, dtype=np.float64)
        if logprobs.shape != (size,):
            raise ResponseMismatchError(f"backend returned {logprobs.size} log-probabilities for {size} {what} tokens")
        return logprobs


class RegionScorer(ScorerView):
    """A :class:`Scorer` seen through a window: spans are relative to one region of the prompt.

    Used for chat prompts, where each message's content is attributed by its own
    schedule while the other messages and the template stay intact.

    Args:
        scorer: the scorer of the whole prompt.
        offset: token position of the region's first token in the whole prompt.
    """

    def __init__(self, scorer: SpanScorer, offset: int) -> None:
        super().__init__(scorer)
        self.offset = offset

    def _shift(self, ablations: Sequence[Sequence[Span]]) -> list[list[Span]]:
        return [[(a + self.offset, b + self.offset) for a, b in spans] for spans in ablations]

    def count_new(self, ablations: Sequence[Sequence[Span]]) -> int:
        return self.scorer.count_new(self._shift(ablations))

    def drops(self, ablations: Sequence[Sequence[Span]]) -> np.ndarray:
        """Like :meth:`Scorer.drops`, with spans relative to the region; shape (len(ablations), m), nats."""
        return self.scorer.drops(self._shift(ablations))

"""Dry runs: what an attribution would cost, computed without any model call.

:func:`plan` lays the prompt out with the backend's tokenizer (the only thing it
asks of the backend), checks everything the real run checks before its first
call (options, context length, budget), and runs the method's schedule against a
stand-in model that makes every chunk look salient, so HiPe refines everything:
an upper bound on the calls and tokens of the real run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from attrib.backend import Backend, ScoreRequest, ScoreResult
from attrib.errors import BudgetError
from attrib.loading import open_backend
from attrib.options import RunOptions
from attrib.perturbation import Perturbation
from attrib.pipeline import unit_level
from attrib.prompt import ChatPrompt, as_prompt, coalition_requests
from attrib.roles import coalitions
from attrib.scheduler import Scheduler
from attrib.scoring import RegionScorer, Scorer
from attrib.target import check_fits

__all__ = ["Plan", "plan"]


@dataclass(frozen=True)
class Plan:
    """What a run would cost, computed without querying the model (``attrib explain --dry-run``).

    Attributes:
        method: the method's name.
        level: the unit level.
        units: number of units at that level.
        prompt_tokens: tokens in the prompt.
        output_tokens: tokens in the output (``max_new_tokens`` when it would be generated).
        generation_calls: 1 if the output would be generated, else 0.
        calls: scoring calls, the unperturbed prompt, noise samples and message coalitions included.
        tokens: prompt plus output tokens sent over all scoring calls (before any
            prefix reuse or caching).
        exact: True when ``calls`` is exact (``itp``); False for an upper bound
            (``hipe`` refining every chunk).
    """

    method: str
    level: str
    units: int
    prompt_tokens: int
    output_tokens: int
    generation_calls: int
    calls: int
    tokens: int
    exact: bool

    def describe(self) -> str:
        """One line for people: ``"hipe at token level over 251 units: at most ..."``."""
        bound = "" if self.exact else "at most "
        generation = "1 generation call + " if self.generation_calls else ""
        return (
            f"{self.method} at {self.level} level over {self.units:,} units: {bound}{generation}"
            f"{self.calls:,} scoring calls, {bound}{self.tokens:,} prompt tokens "
            f"({self.prompt_tokens:,}-token prompt, {self.output_tokens:,}-token output)"
        )


class _EverythingMatters:
    """A stand-in model: every variant drops the output by 1,000 nats, so every chunk is refined."""

    def __init__(self, base: tuple[int, ...]) -> None:
        self.base = base

    def score(
        self,
        requests: Sequence[ScoreRequest],
        *,
        on_result: Callable[[int, ScoreResult], None] | None = None,
    ) -> list[ScoreResult]:
        return [
            ScoreResult(
                logprobs=np.full(len(r.continuation_ids), 0.0 if r.prompt_ids == self.base else -1e3),
                tokens_evaluated=len(r.prompt_ids) + len(r.continuation_ids),
            )
            for r in requests
        ]


def plan(
    prompt: str | list[dict[str, str]],
    *,
    backend: Backend | str | None = None,
    backend_options: dict[str, Any] | None = None,
    method: str | Scheduler = "hipe",
    level: str = "token",
    target: str | None = None,
    max_new_tokens: int = 16,
    budget: int | None = None,
    seed: int = 0,
    perturbation: str | Perturbation = "delete",
    noise_samples: int = 0,
    chat_template: str | None = None,
) -> Plan:
    """The calls and tokens :func:`attrib.attribute` would need, without any model call.

    Only the prompt is tokenized (locally, or by an endpoint's tokenizer route). For
    ``hipe`` the numbers are an upper bound: the schedule is run against a stand-in
    that makes every chunk pass the threshold, capped by ``budget``; the early stop is
    left out (all the stand-in's drops are equal, which would stop at once), every
    other parameter of the method is honoured.

    Returns:
        A :class:`Plan`.

    Raises:
        The input errors of :func:`attrib.attribute`, including
        :class:`~attrib.errors.PromptTooLongError` and :class:`~attrib.errors.BudgetError`.
    """
    options = RunOptions.build(
        method=method,
        level=level,
        target=target,
        max_new_tokens=max_new_tokens,
        budget=budget,
        seed=seed,
        perturbation=perturbation,
        noise_samples=noise_samples,
        chat_template=chat_template,
    )
    source = as_prompt(prompt, chat_template)
    scheduler = options.method
    if getattr(scheduler, "top_k", None) is not None:
        scheduler = scheduler.replace(top_k=None)
    with open_backend(backend, backend_options, cache=False) as model:
        level = unit_level(model.capabilities(), options.level)
        perturb = options.perturbation.bind(model.tokenize)
        if target is None:
            layout = source.lay_out(model)
            output_ids: tuple[int, ...] = (0,) * options.max_new_tokens
        else:
            layout, output_ids, _ = source.with_target(model, target)
        check_fits(model, len(layout.tokenization), len(output_ids))
        coalition_prompts = []
        if isinstance(source, ChatPrompt):
            k = len(source.chat)
            others = [s for s in coalitions(k, seed=options.seed) if len(s) < k]
            coalition_prompts = coalition_requests(source, model, others, output_ids)
    tokens = layout.tokenization
    budget_left = None if budget is None else budget - options.noise_samples
    if budget_left is not None and budget_left < 1 + len(coalition_prompts):
        raise BudgetError(f"the budget of {budget} calls cannot cover the prompt, noise samples and message coalitions")
    scorer = Scorer(_EverythingMatters(tokens.ids), tokens, output_ids, perturb, budget=budget_left)
    scorer.base_logprobs  # noqa: B018 - the unperturbed prompt is the first call
    scorer.score_prompts(coalition_prompts)
    for region in layout.regions:
        scheduler.run(RegionScorer(scorer, region.offset), region.segmentation, level)
    per_call = len(tokens) + len(output_ids)
    return Plan(
        method=scheduler.name,
        level=level,
        units=sum(len(r.segmentation.units(level)) for r in layout.regions),
        prompt_tokens=len(tokens),
        output_tokens=len(output_ids),
        generation_calls=int(target is None),
        calls=scorer.calls + options.noise_samples,
        tokens=scorer.tokens_evaluated + options.noise_samples * per_call,
        exact=scheduler.name == "itp",
    )

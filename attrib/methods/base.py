"""The scheduler contract: which variants to score, and how their drops become unit scores.

A scheduler decides which token spans to ablate (and in which rounds), asks a
scorer (:class:`SpanScorer`, e.g. :class:`~attrib.scoring.Scorer`) for their drops, and returns the attribution
matrix at the requested level. Those shipped with attrib are named in
:data:`attrib.registry.methods` and imported only when first asked for; among them:

* :class:`~attrib.methods.itp.ITP`, iterative perturbation: one variant per unit
  (exhaustive leave-one-out), the reference.
* :class:`~attrib.methods.hipe.HiPe`, hierarchical perturbation: large overlapping chunks
  first, refined only where the attribution passes a threshold.

A scheduler is a frozen dataclass: its fields are its parameters, so
:meth:`Scheduler.describe` and :meth:`Scheduler.replace` follow the fields and a
new parameter is recorded and carried over without being listed anywhere else.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self, cast

import numpy as np

from attrib.errors import BudgetError, UnknownNameError
from attrib.perturbation import Span
from attrib.result import MethodTrace, Trace
from attrib.segmentation import Segmentation

__all__ = [
    "Scheduler",
    "Schedule",
    "SpanScorer",
    "CostCounter",
    "ScorerView",
    "ReservedScorer",
    "later_reserves",
    "first_round_calls",
]


@dataclass
class Schedule:
    """What a scheduler returns.

    Attributes:
        scores: attribution matrix, nats, shape (n_units, n_output_tokens); rows follow
            ``segmentation.units(level)``.
        trace: the method's typed record of what was scored (HiPe's
            :class:`~attrib.result.Trace`; another method's :class:`~attrib.result.MethodTrace`,
            see :meth:`Scheduler.method_trace`), spans indexing the scored region; or ``None``.
        budget_exhausted: True if refinement stopped because the call budget ran out.

    Raises:
        TypeError: if ``trace`` is neither (wrap a plain record with :meth:`Scheduler.method_trace`).
    """

    scores: np.ndarray
    trace: Trace | MethodTrace | None = None
    budget_exhausted: bool = False

    def __post_init__(self) -> None:
        if self.trace is not None and not isinstance(self.trace, (Trace, MethodTrace)):
            raise TypeError(
                f"Schedule.trace must be a Trace or a MethodTrace, not {type(self.trace).__name__}; "
                "wrap a method's own record with Scheduler.method_trace(record)"
            )


class SpanScorer(Protocol):
    """What a scheduler needs from a scorer: drops of span ablations, counted against the budget.

    :class:`~attrib.scoring.Scorer` is one; :class:`~attrib.scoring.RegionScorer` (one
    message of a chat, spans relative to it) is another.
    """

    @property
    def n_output(self) -> int:
        """Number of output tokens (columns of every row of drops)."""
        ...

    @property
    def contrast_start(self) -> int | None:
        """The first column of the contrast's tokens in every row (a contrastive margin:
        ``[log p(y_t)..., -log p(c_t)...]``), or ``None`` without a contrast."""
        ...

    @property
    def calls(self) -> int:
        """Scoring calls sent so far (distinct variants, the unperturbed prompt included)."""
        ...

    @property
    def remaining(self) -> int | None:
        """Calls the budget still allows, or ``None`` without a budget."""
        ...

    @property
    def base_logprobs(self) -> np.ndarray:
        """``log p(y_t | x, y_<t)`` of the unperturbed prompt, nats, shape (n_output,)."""
        ...

    def count_new(self, ablations: Sequence[Sequence[Span]]) -> int:
        """How many of ``ablations`` (each a list of token spans) would be new calls: the distinct
        perturbed prompts among them not scored yet (two ablations giving the same tokens, or the
        unperturbed prompt's tokens, are no new call)."""
        ...

    def drops(self, ablations: Sequence[Sequence[Span]]) -> np.ndarray:
        """Drop of each output token's log-probability per ablation, nats, shape (len(ablations), n_output)."""
        ...


class CostCounter(SpanScorer, Protocol):
    """A dry run's stand-in scorer (:mod:`attrib.dryrun`): it makes every ablation drop the output
    (so every chunk looks salient) and counts the calls and tokens a run would send, without a model.

    Its :meth:`drops` count exactly what scoring would cost; a method whose schedule depends on the
    scores spends its upper bound through :meth:`charge_bound` and :meth:`charge_calls`
    (:meth:`Scheduler.dry_run`). Spans are relative to the region being planned.
    """

    def charge_bound(self, ablations: Sequence[Sequence[Span]], *, limit: int | None = None) -> None:
        """Charge ``ablations`` as :meth:`drops` would; when their new prompts exceed the budget left (or
        ``limit`` calls), charge that many calls at the longest of their lengths instead: an upper bound
        on any subset of them a run could score."""
        ...

    def charge_calls(self, count: int) -> None:
        """Charge up to ``count`` more calls (fewer if the budget ends first), each at the unperturbed
        prompt's length: an upper bound for prompts not known in advance."""
        ...


class ScorerView:
    """A :class:`SpanScorer` that passes every request to ``scorer``; a view overrides only what it changes.

    The windows the pipeline and the methods put on one run's scorer (a chat region's
    offset, a reserve for later messages, a cap on one phase) are views: each states its
    difference and reads the rest (output size, calls, budget left, base log-probabilities)
    from the scorer beneath, so every view counts and budgets the same calls.

    Args:
        scorer: the scorer beneath (its own budget still holds).
    """

    def __init__(self, scorer: SpanScorer) -> None:
        self.scorer = scorer

    @property
    def n_output(self) -> int:
        return self.scorer.n_output

    @property
    def contrast_start(self) -> int | None:
        return self.scorer.contrast_start

    @property
    def calls(self) -> int:
        return self.scorer.calls

    @property
    def remaining(self) -> int | None:
        return self.scorer.remaining

    @property
    def base_logprobs(self) -> np.ndarray:
        return self.scorer.base_logprobs

    def count_new(self, ablations: Sequence[Sequence[Span]]) -> int:
        return self.scorer.count_new(ablations)

    def drops(self, ablations: Sequence[Sequence[Span]]) -> np.ndarray:
        """The scorer's drops: nats, shape (len(ablations), n_output).

        Raises:
            BudgetError: if the new variants exceed :attr:`remaining` (this view's limit).
        """
        remaining = self.remaining
        if remaining is not None and (needed := self.count_new(ablations)) > remaining:
            raise BudgetError(f"{needed} more calls {self.refusal(remaining)}; raise --budget")
        return self.scorer.drops(ablations)

    def refusal(self, remaining: int) -> str:
        """Why ``remaining`` calls are all this view allows (the middle of a :class:`BudgetError` message)."""
        return f"exceed the {remaining} left"


class ReservedScorer(ScorerView):
    """A :class:`SpanScorer` that leaves ``reserve`` calls of the budget to work still to come.

    A chat's messages are attributed one after another under one budget; each message's
    schedule sees the budget less the first rounds of the messages after it (see
    :func:`later_reserves`), so an early message that refines everything cannot leave a
    later one without its first round. Without a budget it changes nothing.

    Args:
        scorer: the scorer to draw from (its own budget still holds).
        reserve: calls to leave unspent, 0 or more.
    """

    def __init__(self, scorer: SpanScorer, reserve: int) -> None:
        super().__init__(scorer)
        self.reserve = reserve

    @property
    def remaining(self) -> int | None:
        outer = self.scorer.remaining
        return None if outer is None else max(0, outer - self.reserve)

    def refusal(self, remaining: int) -> str:
        return f"would leave less than the {self.reserve} kept for the messages still to attribute"


def first_round_calls(method: Scheduler, scorer: SpanScorer, segmentation: Segmentation, level: str) -> int:
    """Fewest calls ``method`` makes through ``scorer`` on ``segmentation`` before it gives any result.

    The distinct prompts of the method's :meth:`Scheduler.first_round`, counted by
    ``scorer.count_new`` as the run counts its calls (ablations that give the same
    tokens are one call); :meth:`Scheduler.min_calls` when the first round depends
    on the scores. What the budget check adds up and what :func:`later_reserves` keeps.
    """
    first = method.first_round(segmentation, level)
    if first is None:
        return method.min_calls(segmentation, level)
    return scorer.count_new(first) if first else 0


def later_reserves(
    method: Scheduler, scorers: Sequence[SpanScorer], segmentations: Sequence[Segmentation], level: str
) -> list[int]:
    """For each region in turn, the calls the regions after it need at least (:func:`first_round_calls`
    through the region's scorer, ``scorers[i]`` for ``segmentations[i]``).

    What the budget check adds up, so a budget it accepts leaves every region its first round.
    """
    pairs = list(zip(scorers, segmentations, strict=True))
    needs = [0] + [first_round_calls(method, scorer, segmentation, level) for scorer, segmentation in pairs[1:]]
    return [sum(needs[index + 1 :]) for index in range(len(needs))] if pairs else []


def _described(value: object) -> object:
    """A parameter as recorded: a strategy object by its own ``describe()``, anything else as is."""
    describe = getattr(value, "describe", None)
    return describe() if callable(describe) else value


class Scheduler(ABC):
    """Base class of schedulers: subclasses are frozen dataclasses and implement :meth:`run` and :meth:`min_calls`.

    The dataclass fields are the scheduler's parameters; :meth:`describe` and
    :meth:`replace` are driven by them.
    """

    name: ClassVar[str] = ""
    #: True when which variants are scored depends on earlier scores (HiPe refines where
    #: drops are large), so a dry run can only bound the calls; False when the schedule
    #: is fixed in advance (ItP, sampled coalitions), so a dry run counts them exactly.
    adaptive: ClassVar[bool] = True

    @abstractmethod
    def min_calls(self, segmentation: Segmentation, level: str) -> int:
        """Fewest perturbed-variant calls the method needs to produce any result.

        The budget check (``attrib.pipeline.check_budget``) refuses a budget below it
        before any call, so it must never exceed what :meth:`run` really needs: count
        variants by merged spans, the ones the schedule scores twice once; where the schedule
        depends on the scores, a lower bound. Ablations that give the same tokens (deleting
        either copy of a repeated word) are one call; a method that states its
        :meth:`first_round` is checked by the distinct prompts of that instead
        (:func:`first_round_calls`), so this count is only used when it states none.
        """

    def first_round(self, segmentation: Segmentation, level: str) -> list[list[Span]] | None:
        """The ablations every run scores before it can give any result (token spans of
        ``segmentation``, each a list ablated together), or ``None`` when they depend on the
        scores. The budget check counts their distinct perturbed prompts
        (:func:`first_round_calls`); the default, ``None``, falls back to :meth:`min_calls`.
        """
        return None

    @abstractmethod
    def run(
        self,
        scorer: SpanScorer,
        segmentation: Segmentation,
        level: str,
        *,
        on_phase: Callable[[str, int | None], None] | None = None,
    ) -> Schedule:
        """Score variants through ``scorer`` and return unit-level attributions.

        ``on_phase(label, total_calls)`` is called when a new round starts.
        """

    def method_trace(self, record: dict[str, object]) -> MethodTrace:
        """``record`` (JSON-ready; its keys documented with the method) as this method's trace, named by :attr:`name`."""
        return MethodTrace(method=self.name, record=record)

    def dry_run(self, counter: CostCounter, segmentation: Segmentation, level: str) -> bool | None:
        """Spend ``counter`` as the costliest run of this method on ``segmentation`` could (what
        :func:`attrib.plan` reports), with every chunk salient and the budget ``counter`` leaves.

        The default runs the method itself: exact for a schedule fixed in advance (not
        :attr:`adaptive`). A method whose schedule follows the scores overrides it to charge
        its largest schedule (:meth:`CostCounter.charge_bound`).

        Returns:
            The ``exact`` flag the run's trace will record, or ``None`` when it records none
            or the flag depends on the scores.

        Raises:
            BudgetError: if the budget cannot cover the method's first round.
        """
        trace = self.run(counter, segmentation, level).trace
        flag = None if trace is None else trace.get("exact")
        return flag if isinstance(flag, bool) else None

    def parameters(self) -> tuple[str, ...]:
        """Names of the scheduler's parameters (its dataclass fields), in declaration order."""
        if not dataclasses.is_dataclass(self):
            return ()
        return tuple(field.name for field in dataclasses.fields(self))

    def describe(self) -> dict[str, object]:
        """JSON-ready parameters recorded in results: ``name``, then every field.

        A field holding a strategy object (a threshold, an order) is recorded by
        that object's own ``describe()``.
        """
        return {"name": self.name, **{key: _described(getattr(self, key)) for key in self.parameters()}}

    def replace(self, **changes: Any) -> Self:
        """An equivalent scheduler with the parameters in ``changes`` set anew.

        Every other field keeps its value (``dataclasses.replace``), so a parameter
        added later is carried over without being listed here.

        Raises:
            InputError: (an :class:`~attrib.errors.UnknownNameError`) for a name that is
                not one of the scheduler's parameters; the scheduler's own errors for
                an invalid value.
        """
        known = self.parameters()
        for key in changes:
            if key not in known:
                raise UnknownNameError.for_choice(f"parameter of {self.name or type(self).__name__}", key, known)
        # dataclasses.replace is typed for dataclass instances; every scheduler is one
        return cast(Self, dataclasses.replace(cast(Any, self), **changes))

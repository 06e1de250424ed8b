"""The typed parts of an attribution result: cost, noise floor, message Shapley values, hidden influence, the methods' traces.

Each part is a frozen dataclass whose field names are the keys of its JSON object
(schema version 2), so ``attrib.result.codec`` reads and writes it from its fields
and ``attrib.result.schema`` publishes it. Derive a changed copy with
``dataclasses.replace``. Parts can be built from the plain dicts earlier code wrote
with :meth:`Part.from_dict`, and read with ``part["key"]`` as well as ``part.key``
while callers move from the dicts to the attributes.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

from attrib.result.codec import JSON, decode
from attrib.segmentation import Unit

__all__ = [
    "Part",
    "Stats",
    "NoiseFloor",
    "MessageShapley",
    "Disagreement",
    "ReferenceFreeEvidence",
    "DifferentialEvidence",
    "Indicator",
    "HiddenInfluence",
    "EarlyStop",
    "Placement",
    "BaseTrace",
    "TraceChunk",
    "Trace",
    "MethodTrace",
    "Contrast",
    "UnitScore",
]


class Part:
    """Shared behaviour of the result parts: building from a mapping, reading by key."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Self) -> Self:
        """The part from a mapping of its fields (nested parts as mappings too).

        Raises:
            ResultError: naming the first field that is missing, unknown or of the wrong type.
        """
        part: Self = decode(cls, data, cls.__name__)
        return part

    def __getitem__(self, key: str) -> Any:
        """``part["name"]`` reads field ``name`` (the dict-style access of schema-1 code)."""
        if key not in self:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        """``"name" in part``: whether the part has field ``name``."""
        return key in getattr(type(self), "__dataclass_fields__", {})

    def get(self, key: str, default: Any = None) -> Any:
        """Field ``key``, or ``default`` when the part has no such field."""
        try:
            return self[key]
        except KeyError:
            return default


@dataclass(frozen=True)
class Stats(Part):
    """What a run cost.

    Attributes:
        calls: scoring calls sent to the backend (distinct variants, the unperturbed
            prompt included; generation is not a scoring call).
        tokens_evaluated: tokens the backend computed after prefix reuse, generation included.
        seconds: wall time of the whole run.
        generated_tokens: tokens generated to obtain the output (0 when a target was given).
        reused: variant requests answered without a call (shared chunks, identical variants).
        budget: the call budget, or ``None``.
        budget_exhausted: True if the method stopped refining because the budget ran out.
        backend_usage: the backend's own counters for this run: for API backends
            ``requests`` sent, ``cache_hits``, ``retries``, ``prompt_tokens``,
            ``completion_tokens`` and ``bounded_tokens`` (see ``attrib.backends.openai``).
    """

    calls: int = 0
    tokens_evaluated: int = 0
    seconds: float = 0.0
    generated_tokens: int = 0
    reused: int = 0
    budget: int | None = None
    budget_exhausted: bool = False
    backend_usage: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class NoiseFloor(Part):
    """The noise floor of a run, from repeated scores of the unperturbed prompt.

    Attributes:
        samples: how many times the unperturbed prompt was scored.
        sd_per_token: standard deviation of each output token's log-probability, nats,
            shape (n_output_tokens,).
        sd_total: standard deviation of the whole output's log-probability, nats.
        range_total: its range (largest minus smallest sample), nats.
        threshold: a unit whose total attribution is no larger in magnitude is noise, nats.
        within_noise: one flag per unit, shape (n_units,).
    """

    samples: int
    sd_per_token: list[float]
    sd_total: float
    range_total: float
    threshold: float
    within_noise: list[bool]


@dataclass(frozen=True, kw_only=True)
class MessageShapley(Part):
    """Shapley values of a chat's messages for the output's log-probability.

    Source: Shapley 1953; sampled permutations after Castro et al. 2009 (``attrib.auditing.message_shapley``).

    Attributes:
        values: per message and output token, nats, shape (n_messages, n_output_tokens).
        message_totals: per message, summed over output tokens, nats, shape (n_messages,).
        exact: False when the values were estimated from sampled permutations.
        empty_logprobs: ``log p(y_t | no message, y_<t)``, nats, shape (n_output_tokens,).
        coalitions: how many message subsets were scored.
    """

    values: list[list[float]]
    message_totals: list[float]
    exact: bool
    empty_logprobs: list[float]
    coalitions: int


@dataclass(frozen=True, kw_only=True)
class Disagreement(Part):
    """One output token where the audited and the reference endpoint disagree.

    Attributes:
        token: the output token's text.
        index: its position in the output.
        gain: ``log p_audited - log p_reference`` of that token, nats.
    """

    token: str
    index: int
    gain: float


@dataclass(frozen=True, kw_only=True)
class ReferenceFreeEvidence(Part):
    """What the reference-free indicator measured (``attrib.auditing.hidden_influence.reference_free``); nats.

    Attributes:
        retained_per_token: ``log p(y | no visible message) / m``.
        explained_per_token: what the visible chat adds, per output token.
        visible_logprob: ``log p(y | visible messages)``.
        empty_logprob: ``log p(y | no visible message)``.
        per_token_explained: what the visible chat adds to each output token, shape (m,).
    """

    retained_per_token: float
    explained_per_token: float
    visible_logprob: float
    empty_logprob: float
    per_token_explained: list[float]


@dataclass(frozen=True, kw_only=True)
class DifferentialEvidence(Part):
    """What the differential indicator measured (``attrib.auditing.hidden_influence.differential``); nats.

    Attributes:
        gain_per_token: how much likelier the audited endpoint finds the output, per token.
        audited_logprob: ``log p_audited(y | visible)``.
        reference_logprob: ``log p_reference(y | visible)``.
        per_token_gain: the gain of each output token, shape (m,).
        top_disagreements: the output tokens with the largest gains, largest first.
    """

    gain_per_token: float
    audited_logprob: float
    reference_logprob: float
    per_token_gain: list[float]
    top_disagreements: list[Disagreement]


@dataclass(frozen=True, kw_only=True)
class Indicator(Part):
    """One hidden-influence indicator's verdict (``attrib.auditing.hidden_influence``).

    Attributes:
        flag: True when ``score`` reaches ``threshold``.
        score: the indicator's score, in [0, 1].
        threshold: the flag threshold it was judged by.
        method: ``"reference-free"`` or ``"differential"``.
        evidence: the measurements behind the score.
    """

    flag: bool
    score: float
    threshold: float
    method: str
    evidence: ReferenceFreeEvidence | DifferentialEvidence


@dataclass(frozen=True, kw_only=True)
class HiddenInfluence(Part):
    """An audit's verdict on whether something the caller cannot see steers the output.

    Attributes:
        flag: the deciding indicator's flag (the differential one when there was a reference).
        score: that indicator's score.
        method: that indicator's name.
        indicators: every indicator computed, by name (``"reference_free"``, ``"differential"``).
    """

    flag: bool
    score: float
    method: str
    indicators: dict[str, Indicator]


@dataclass(frozen=True, kw_only=True)
class EarlyStop(Part):
    """Where HiPe stopped refining because the top ``top_k`` units were settled.

    Attributes:
        calls: scoring calls made when it stopped.
        kth_unit_drop: the ``top_k``-th largest unit drop then, nats.
        largest_unrefined_drop: the largest drop any unrefined chunk could still hide, nats.
    """

    calls: int
    kth_unit_drop: float
    largest_unrefined_drop: float


class Placement(Protocol):
    """Where one region of a chat lies in the whole rendered prompt (:class:`attrib.prompt.Region` is one)."""

    @property
    def offset(self) -> int:
        """Token position of the region's first token in the rendered prompt."""
        ...

    @property
    def char_offset(self) -> int:
        """Character position of the region's text in the rendered prompt's text."""
        ...

    @property
    def message(self) -> int | None:
        """Index of the chat message the region is, or ``None`` for a plain prompt."""
        ...


class BaseTrace(Part, ABC):
    """What every method's trace offers: placing a chat message's trace in the rendered prompt, and
    combining the messages' traces into the result's.

    A method traces one region (a plain prompt, or one message of a chat) with spans that
    index the region. For a plain prompt that is the result's trace as it stands; for a chat
    the pipeline places each message's trace (:meth:`shifted`) and combines them in message
    order (:meth:`combined`).
    """

    @abstractmethod
    def shifted(self, region: Placement) -> Self:
        """This trace with its spans moved from ``region``'s own positions into the rendered prompt
        (tokens by ``region.offset``, characters by ``region.char_offset``) and tagged with
        ``region.message``; unchanged where the trace records no span of the prompt."""

    @classmethod
    @abstractmethod
    def combined(cls, traces: Sequence[BaseTrace]) -> Self | None:
        """The result's trace of a chat from its messages' traces (each :meth:`shifted`, in message
        order), or ``None`` when they record nothing.

        Raises:
            TypeError: if a trace is not of this class (one method traces every message).
        """

    @classmethod
    def _own(cls, traces: Sequence[BaseTrace]) -> list[Self]:
        """``traces``, checked to be of this class.

        Raises:
            TypeError: naming the first trace of another class.
        """
        own = [trace for trace in traces if isinstance(trace, cls)]
        if len(own) < len(traces):
            other = next(trace for trace in traces if not isinstance(trace, cls))
            raise TypeError(f"{cls.__name__}.combined got a {type(other).__name__}; one method traces every message")
        return own


@dataclass(frozen=True, kw_only=True)
class TraceChunk(Part):
    """One chunk HiPe scored.

    Attributes:
        start, end: token positions, half-open (in the rendered chat for a chat prompt).
        char_start, char_end: its character span in ``Attribution.prompt``.
        depth: refinement depth (0 for the first, coarsest chunks).
        parent: index in ``Trace.chunks`` of the chunk it was cut from, or ``None`` at depth 0.
        score: drop in the output's log-probability when the chunk is ablated, nats.
        refined: True if its children were scored.
        leaf: True if it is a single unit of the requested level.
        message: for a chat prompt, the index of the message it lies in; ``None`` otherwise.
    """

    start: int
    end: int
    char_start: int
    char_end: int
    depth: int
    parent: int | None
    score: float
    refined: bool
    leaf: bool
    message: int | None = None


@dataclass(frozen=True, kw_only=True)
class Trace(BaseTrace):
    """HiPe's record of a run (Cooper et al. 2021, "Believe the HiPe"; see ``attrib.methods.hipe``).

    Attributes:
        threshold: the refinement threshold's description, or ``None`` (chat runs).
        max_depth: the depth limit, or ``None``.
        order: the refinement order (``"best"`` or ``"depth"``), or ``None``.
        top_k: how many top units had to be settled before stopping, or ``None``.
        early_stop: where refinement stopped early, or ``None``.
        depths: how many refinement depths were scored.
        chunks: every scored chunk, in scoring order.
    """

    threshold: dict[str, JSON] | None = None
    max_depth: int | None = None
    order: str | None = None
    top_k: int | None = None
    early_stop: EarlyStop | None = None
    depths: int
    chunks: list[TraceChunk]

    def shifted(self, region: Placement) -> Self:
        """Every chunk's token and character span moved by the region's offsets and tagged with its message.

        Parent indices still count within this trace; :meth:`combined` moves them.
        """
        chunks = [
            dataclasses.replace(
                chunk,
                start=chunk.start + region.offset,
                end=chunk.end + region.offset,
                char_start=chunk.char_start + region.char_offset,
                char_end=chunk.char_end + region.char_offset,
                message=region.message,
            )
            for chunk in self.chunks
        ]
        return dataclasses.replace(self, chunks=chunks)

    @classmethod
    def combined(cls, traces: Sequence[BaseTrace]) -> Self | None:
        """The messages' chunks in one list, in message order, each parent index moved past the chunks
        of the messages before; ``depths`` the most any message reached. The run's parameters and
        early stop are per message and not kept. ``None`` when no message scored a chunk.

        Raises:
            TypeError: if a trace is not HiPe's.
        """
        chunks: list[TraceChunk] = []
        depths = 0
        for trace in cls._own(traces):
            first = len(chunks)
            depths = max(depths, trace.depths)
            chunks.extend(
                chunk if chunk.parent is None else dataclasses.replace(chunk, parent=chunk.parent + first)
                for chunk in trace.chunks
            )
        return cls(depths=depths, chunks=chunks) if chunks else None


@dataclass(frozen=True, kw_only=True)
class MethodTrace(BaseTrace):
    """The record of a method other than HiPe (coalition methods: the coalitions sampled,
    the fit's quality, ...), as the method wrote it.

    For a chat, ``record`` is ``{"messages": [...]}``: each traced message's own record, in
    message order, its spans (if any) indexing that message as the method wrote them.

    Attributes:
        method: the method's name (``Attribution.method``).
        record: the method's own JSON record; its keys are documented with the method.
    """

    method: str
    record: dict[str, JSON]

    def shifted(self, region: Placement) -> Self:
        """This trace unchanged: a method's own record keeps the positions it wrote (its message's)."""
        return self

    @classmethod
    def combined(cls, traces: Sequence[BaseTrace]) -> Self | None:
        """One record ``{"messages": [record, ...]}`` of the messages' records, in message order;
        ``None`` without any.

        Raises:
            TypeError: if a trace is not a :class:`MethodTrace`.
        """
        own = cls._own(traces)
        if not own:
            return None
        return cls(method=own[0].method, record={"messages": [trace.record for trace in own]})

    def __getitem__(self, key: str) -> Any:
        """``trace["key"]`` reads the method's record (``method`` and ``record`` themselves too)."""
        return self.record[key] if key in self.record else super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        return key in self.record or super().__contains__(key)


@dataclass(frozen=True, kw_only=True)
class Contrast(Part):
    """The foil of a contrastive attribution: why the output rather than ``text``.

    After Yin & Neubig 2022, "Interpreting Language Models with Contrastive Explanations" (EMNLP).
    The contrast's tokens are extra columns of the result, after the output's:
    ``Attribution.output_tokens[start:]`` (ids in ``output_token_ids[start:]``, their
    log-probabilities in ``base_logprobs[start:]``). Their scores are the *negated* drops of
    the contrast's log-probabilities, so every column reads alike (positive: the unit favours
    the output over the contrast) and a unit's row sums to the drop of
    ``log p(output | x) - log p(contrast | x)`` when it is ablated, in nats.

    Attributes:
        text: the contrast's text (as split from the prompt, like the output).
        start: index of the contrast's first column in ``scores`` and ``output_tokens``.
    """

    text: str
    start: int


@dataclass(frozen=True)
class UnitScore:
    """One unit with its total attribution (in the result's score unit) and its row index in ``scores``."""

    index: int
    unit: Unit
    score: float

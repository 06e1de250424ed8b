"""The context-attribution part of a result: sources, claims, their support and their citations.

A result of :func:`attrib.cite` carries a :class:`Context`: the sources the prompt was
assembled from (each with the rows of ``scores`` its units occupy), the answer's
claims, and the rule that judged them. Orientation is the result's: rows are units
(inside sources), columns are output tokens. A claim's attribution to a source is
the sum of ``scores`` over the source's rows and the claim's columns, in nats: the
drop of the claim's log-probability when the source's units are ablated.

Verdicts (:func:`judge`): a claim is *supported* when its strongest source moves it by
more than ``support`` nats per scored claim token (and by more than the claim's noise
floor when one was measured); the sources doing so are the claim's *supporting*
sources. A citation check compares them with the sources the answer cites for the
claim: *verified* (cited and supporting), *cited but not used*, *used but not cited*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from attrib.result.codec import JSON
from attrib.result.parts import Part

__all__ = ["ContextSource", "Claim", "Context", "claim_threshold", "judge"]


@dataclass(frozen=True, kw_only=True)
class ContextSource(Part):
    """One source of an assembled prompt, as laid out in the result.

    Attributes:
        id: the source's id (what citation markers name).
        start, end: character span of the source in ``Attribution.prompt`` (its header and
            separator included: what removing the source removes).
        units: ``(first, last)`` rows of ``scores`` (half-open) of the units inside the source.
        metadata: the source's own metadata as given (JSON), ``{}`` without.
    """

    id: str
    start: int
    end: int
    units: tuple[int, int]
    metadata: dict[str, JSON] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Claim(Part):
    """One claim of the answer with its attribution over sources and its verdicts.

    Attributes:
        text: the claim's text, ``Context.answer[start:end]``.
        start, end: character span in the answer (``Context.answer``), half-open.
        tokens: ``(first, last)`` output-token columns of ``scores`` the claim covers
            (half-open); citation markers' tokens among them are not counted (``columns``).
        columns: how many of those columns were summed (the claim's tokens less markers).
        sources: every source as ``(id, score)``, score in nats (the drop of the claim's
            log-probability when the source is ablated), largest first; ties keep source order.
        threshold: what a source had to exceed to support the claim, nats
            (:func:`claim_threshold`).
        supported: True if at least one source exceeds ``threshold``.
        cited: the source ids the answer cites for this claim (its markers), in order; may
            name ids that are not sources.
    """

    text: str
    start: int
    end: int
    tokens: tuple[int, int]
    columns: int
    sources: list[tuple[str, float]]
    threshold: float
    supported: bool
    cited: list[str] = field(default_factory=list)

    @property
    def supporting(self) -> list[str]:
        """Ids of the sources that exceed the threshold, strongest first."""
        return [source for source, score in self.sources if score > self.threshold]

    @property
    def top(self) -> tuple[str, float] | None:
        """The strongest source as ``(id, score)`` (nats), or ``None`` without sources."""
        return self.sources[0] if self.sources else None

    @property
    def verified(self) -> list[str]:
        """Cited sources that support the claim."""
        supporting = set(self.supporting)
        return [source for source in self.cited if source in supporting]

    @property
    def cited_not_used(self) -> list[str]:
        """Cited sources that do not support the claim (a wrong or idle citation)."""
        supporting = set(self.supporting)
        return [source for source in self.cited if source not in supporting]

    @property
    def used_not_cited(self) -> list[str]:
        """Supporting sources the answer does not cite for the claim."""
        cited = set(self.cited)
        return [source for source in self.supporting if source not in cited]

    @property
    def citation(self) -> str:
        """The citation check in one word: ``"verified"`` (every cited source supports the claim),
        ``"mismatch"`` (some cited source does not), or ``"uncited"`` (no marker)."""
        if not self.cited:
            return "uncited"
        return "mismatch" if self.cited_not_used else "verified"


@dataclass(frozen=True, kw_only=True)
class Context(Part):
    """How the prompt was assembled from sources, and the answer judged claim by claim.

    Attributes:
        question: the question (a fixed part: never perturbed).
        instructions: the instructions (fixed), or ``None``.
        sources: the sources in prompt order.
        answer_start: where the answer starts in ``Attribution.output`` (characters); the
            scored output may begin with characters before it (a space the template adds,
            or the prompt's last characters merged into the answer's first token).
        token_spans: each output token's character span in ``Attribution.output``, shape
            (n_output_tokens,): what maps a claim's characters to its columns.
        claims: the answer's claims, in order.
        support: the support rule's parameter, nats per scored claim token (:func:`claim_threshold`).
        markers: the citation-marker pattern (a regular expression), or ``None`` when the
            answer was not searched for markers.
        marker_spans: character spans of the citation markers found in the answer; their
            tokens are scored with the answer but left out of every claim's attribution.
    """

    question: str
    instructions: str | None = None
    sources: list[ContextSource]
    answer_start: int = 0
    token_spans: list[tuple[int, int]]
    claims: list[Claim] = field(default_factory=list)
    support: float
    markers: str | None = None
    marker_spans: list[tuple[int, int]] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        """The source ids in prompt order."""
        return [source.id for source in self.sources]


def claim_threshold(support: float, columns: int, noise_sd: np.ndarray | None = None, samples: int = 0) -> float:
    """What a source must exceed to support a claim, nats.

    ``support * columns``: the claim's log-probability must drop by more than ``support``
    nats per scored claim token when the source is removed, so the rule reads alike for
    claims of any length. With a measured noise floor it is at least the claim's: two
    standard deviations of the difference of two noisy claim scores,
    ``2 * sqrt(sum of sd_t^2 over the claim's columns) * sqrt(1 + 1/samples)``
    (the per-unit rule of :func:`attrib.noise.noise_floor`, restricted to the claim).

    Args:
        support: nats per claim token, >= 0.
        columns: the claim's scored output tokens.
        noise_sd: per-token standard deviations over the claim's columns, nats, or ``None``.
        samples: how many samples measured them.
    """
    threshold = support * columns
    if noise_sd is not None and len(noise_sd) and samples:
        floor = 2.0 * float(np.sqrt(np.sum(np.square(noise_sd)))) * math.sqrt(1.0 + 1.0 / samples)
        threshold = max(threshold, floor)
    return threshold


def judge(
    *,
    text: str,
    start: int,
    end: int,
    tokens: tuple[int, int],
    keep: np.ndarray,
    source_rows: list[tuple[str, tuple[int, int]]],
    scores: np.ndarray,
    support: float,
    cited: list[str],
    noise_sd: np.ndarray | None = None,
    samples: int = 0,
) -> Claim:
    """A claim's attribution over sources and its verdict, from the result's matrix.

    Args:
        text, start, end: the claim's text and its span in the answer.
        tokens: the output-token columns it covers (half-open).
        keep: which of those columns count (False for citation markers), shape (last - first,).
        source_rows: each source's id and rows of ``scores``.
        scores: the result's matrix, nats, shape (n_units, n_output_tokens).
        support: nats per scored claim token (:func:`claim_threshold`).
        cited: the source ids the answer cites for the claim.
        noise_sd: the run's per-token noise standard deviations, shape (n_output_tokens,), or ``None``.
        samples: how many samples measured them.
    """
    columns = np.arange(tokens[0], tokens[1])[keep]
    ranked = []
    for order, (source, (first, last)) in enumerate(source_rows):
        value = float(scores[first:last][:, columns].sum()) if len(columns) else 0.0
        ranked.append((order, source, value))
    ranked.sort(key=lambda item: (-item[2], item[0]))
    sd = None if noise_sd is None else noise_sd[columns]
    threshold = claim_threshold(support, len(columns), sd, samples)
    return Claim(
        text=text,
        start=start,
        end=end,
        tokens=tokens,
        columns=int(len(columns)),
        sources=[(source, value) for _, source, value in ranked],
        threshold=threshold,
        supported=bool(ranked) and len(columns) > 0 and ranked[0][2] > threshold,
        cited=list(cited),
    )

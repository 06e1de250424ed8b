"""The context-attribution part of a result: sources, claims, their support and their citations.

A result of :func:`attrib.cite` carries a :class:`Context`: the sources the prompt was
assembled from (each with the rows of ``scores`` its units occupy), the answer's
claims, and the rule that judged them. Orientation is the result's: rows are units
(inside sources), columns are output tokens. A claim's attribution to a source is
the sum of ``scores`` over the source's rows and the claim's columns, in nats: the
drop of the claim's log-probability when the source's units are ablated.

Verdicts (:func:`judge`) compare the claim's log-probability with every source removed
and with each source alone (the run's probes, ``1 + n_sources`` calls shared by all
claims). The claim's *information* is its surprisal without any source,
``h = -log p(claim | fixed parts)``, nats; a source's *sufficiency* is how much the claim's
log-probability rises when that source alone is given, ``log p(claim | source) - log p(claim | none)``,
nats. A source *supports* the claim when its sufficiency exceeds ``support * h`` (a share of
the claim's information) and the claim's noise floor when one was measured; a claim with
no supporting source is *unsupported*. Sufficiency rather than leave-one-out: a fact
stated in two sources loses little when either is removed (the other still states it),
yet each alone supplies it; and a source that only raises a few of a made-up claim's
words (a similar place name) supplies a small share of the claim's information. The
normalisation by the claim's own surprisal follows normalised pointwise mutual information
(Bouma 2009, "Normalized (pointwise) mutual information in collocation extraction"); the
context-versus-no-context comparison is the conditional PMI of context-aware decoding
(Shi et al. 2023, "Trusting your evidence: hallucinate less with context-aware decoding").
A citation check compares the supporting sources with the sources the answer cites for
the claim: *verified* (cited and supporting), *cited but not used*, *used but not cited*.
Below the source level, the units of each supporting source are also scored with that source
alone (``Context.inside_logprobs``): a claim's *evidence* ranks them by the drop of the claim
when each is left out of its source given alone, which finds a fact's sentence in every copy
of a fact stated twice, where leaving one copy out of the whole prompt costs little
(the sufficiency side of DeYoung et al. 2020, "ERASER: A Benchmark to Evaluate Rationalized
NLP Models").

Results written before the probes (no ``empty_logprobs``) keep the earlier rule: a source
supports a claim when its attribution exceeds ``support`` nats per scored claim token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from attrib.result.codec import JSON
from attrib.result.parts import Part

__all__ = [
    "ContextSource",
    "Claim",
    "Context",
    "claim_columns",
    "claim_threshold",
    "sufficiency_threshold",
    "judge",
]


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
        threshold: what a source's sufficiency had to exceed to support the claim, nats
            (``support * information``, or the noise floor when larger).
        supported: True if at least one source exceeds ``threshold``.
        cited: the source ids the answer cites for this claim (its markers), in order; may
            name ids that are not sources.
        information: the claim's surprisal with every source removed, ``-log p(claim | none)``,
            nats (``None`` in results written before the probes).
        sufficiency: every source as ``(id, gain)`` in source order: the rise of the claim's
            log-probability from no source to that source alone, nats (``None`` in results
            written before the probes: ``sources`` scores are then compared with ``threshold``).
        evidence: the units inside the supporting sources that were scored unit by unit
            alone (``Context.inside_logprobs``), as ``(id, row, drop)``: the source's id, the
            unit's row of ``scores`` and the drop of the claim's log-probability when the unit
            is removed from that source given alone, nats; largest first (ties in row order).
            Empty at the source level or when the budget left them out.
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
    information: float | None = None
    sufficiency: list[tuple[str, float]] | None = None
    evidence: list[tuple[str, int, float]] = field(default_factory=list)

    @property
    def supporting(self) -> list[str]:
        """Ids of the sources whose sufficiency exceeds the threshold, largest first (ties in
        source order)."""
        if self.sufficiency is None:
            return [source for source, score in self.sources if score > self.threshold]
        above = [(gain, order, source) for order, (source, gain) in enumerate(self.sufficiency)]
        return [
            source for gain, _, source in sorted(above, key=lambda item: (-item[0], item[1])) if gain > self.threshold
        ]

    @property
    def needs(self) -> list[tuple[str, int, float]]:
        """The unit the claim needs most in each supporting source given alone: the first of
        :attr:`evidence` for each source of :attr:`supporting` that has evidence, in that
        order, as ``(id, row, drop)`` (drop in nats)."""
        firsts: dict[str, tuple[str, int, float]] = {}
        for item in self.evidence:
            firsts.setdefault(item[0], item)
        return [firsts[source] for source in self.supporting if source in firsts]

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
        support: the support rule's parameter: the share of a claim's information a source
            alone must supply (module docstring); in results without ``empty_logprobs``, nats
            per scored claim token.
        markers: the citation-marker pattern (a regular expression), or ``None`` when the
            answer was not searched for markers.
        marker_spans: character spans of the citation markers found in the answer; their
            tokens are scored with the answer but left out of every claim's attribution.
        empty_logprobs: each output token's log-probability with every source removed, nats,
            shape (n_output_tokens,); ``None`` in results written before the probes.
        alone_logprobs: each output token's log-probability with only one source, nats,
            shape (n_sources, n_output_tokens), sources in prompt order; ``None`` likewise.
        inside_logprobs: for each source scored unit by unit alone (below the source level,
            the sources that support a claim), by id: each output token's log-probability with
            that source alone less one of its units, nats, shape (n_units_in_source,
            n_output_tokens), rows in the source's ``units`` order; ``None`` without any.
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
    empty_logprobs: list[float] | None = None
    alone_logprobs: list[list[float]] | None = None
    inside_logprobs: dict[str, list[list[float]]] | None = None

    @property
    def ids(self) -> list[str]:
        """The source ids in prompt order."""
        return [source.id for source in self.sources]


def claim_columns(context: Context, claim: Claim) -> np.ndarray:
    """The output-token columns of ``scores`` a claim's attribution sums: the claim's ``tokens``
    (half-open) less every column whose characters overlap a citation marker
    (``context.marker_spans``), as :func:`judge` is given them.

    Returns:
        Column indices in increasing order, integers, shape (n,); ``n`` is ``claim.columns`` for
        a claim of this context.
    """
    first, last = claim.tokens
    offset = context.answer_start
    markers = [(start + offset, end + offset) for start, end in context.marker_spans]
    kept = []
    for column in range(first, last):
        a, b = context.token_spans[column]
        if not any(a < end and b > start for start, end in markers):
            kept.append(column)
    return np.asarray(kept, dtype=np.int64)


def claim_threshold(support: float, columns: int, noise_sd: np.ndarray | None = None, samples: int = 0) -> float:
    """The earlier rule's threshold, for results without probes: ``support`` nats per claim token, nats.

    ``support * columns``; with a measured noise floor it is at least the claim's: two
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


def sufficiency_threshold(support: float, information: float, noise_sd: np.ndarray | None = None) -> float:
    """What a source's sufficiency must exceed to support a claim, nats.

    ``support * information``: the source alone must supply that share of the claim's
    information (its surprisal without sources). With a measured noise floor it is at least
    two standard deviations of the difference of two single noisy claim scores,
    ``2 * sqrt(2 * sum of sd_t^2 over the claim's columns)``.

    Args:
        support: the share, in [0, 1).
        information: the claim's surprisal with every source removed, nats, >= 0.
        noise_sd: per-token standard deviations over the claim's columns, nats, or ``None``.
    """
    threshold = support * information
    if noise_sd is not None and len(noise_sd):
        threshold = max(threshold, 2.0 * float(np.sqrt(2.0 * np.sum(np.square(noise_sd)))))
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
    empty: np.ndarray | None = None,
    alone: np.ndarray | None = None,
    inside: dict[str, np.ndarray] | None = None,
) -> Claim:
    """A claim's attribution over sources and its verdict, from the result's matrix and probes.

    Args:
        text, start, end: the claim's text and its span in the answer.
        tokens: the output-token columns it covers (half-open).
        keep: which of those columns count (False for citation markers), shape (last - first,).
        source_rows: each source's id and rows of ``scores``.
        scores: the result's matrix, nats, shape (n_units, n_output_tokens).
        support: the share of the claim's information a source alone must supply (module
            docstring); without probes, nats per scored claim token (:func:`claim_threshold`).
        cited: the source ids the answer cites for the claim.
        noise_sd: the run's per-token noise standard deviations, shape (n_output_tokens,), or ``None``.
        samples: how many samples measured them.
        empty: log-probabilities with every source removed, nats, shape (n_output_tokens,), or
            ``None`` (a result written before the probes: the earlier rule).
        alone: log-probabilities with each source alone, nats, shape (n_sources, n_output_tokens).
        inside: by source id, log-probabilities with the source alone less each of its units,
            nats, shape (n_units_in_source, n_output_tokens) (``Context.inside_logprobs``), or
            ``None``: what :attr:`Claim.evidence` ranks, for the supporting sources among them.
    """
    columns = np.arange(tokens[0], tokens[1])[keep]
    ranked = []
    for order, (source, (first, last)) in enumerate(source_rows):
        value = float(scores[first:last][:, columns].sum()) if len(columns) else 0.0
        ranked.append((order, source, value))
    ranked.sort(key=lambda item: (-item[2], item[0]))
    sd = None if noise_sd is None else noise_sd[columns]
    information = None
    sufficiency = None
    if empty is None or alone is None:
        threshold = claim_threshold(support, len(columns), sd, samples)
        best = ranked[0][2] if ranked else -math.inf
    else:
        none = float(empty[columns].sum())
        information = -none
        gains = alone[:, columns].sum(axis=1) - none
        sufficiency = [(source, float(gain)) for (source, _), gain in zip(source_rows, gains, strict=True)]
        threshold = sufficiency_threshold(support, information, sd if samples else None)
        best = max((gain for _, gain in sufficiency), default=-math.inf)
    supported = len(columns) > 0 and best > threshold
    evidence: list[tuple[str, int, float]] = []
    if supported and sufficiency is not None and alone is not None and inside:
        for index, ((source, gain), (_, (first, _last))) in enumerate(zip(sufficiency, source_rows, strict=True)):
            if gain > threshold and source in inside:
                whole = float(alone[index, columns].sum())
                drops = whole - inside[source][:, columns].sum(axis=1)
                evidence.extend((source, first + row, float(drop)) for row, drop in enumerate(drops))
        evidence.sort(key=lambda item: (-item[2], item[1]))
    return Claim(
        text=text,
        start=start,
        end=end,
        tokens=tokens,
        columns=int(len(columns)),
        sources=[(source, value) for _, source, value in ranked],
        threshold=threshold,
        supported=supported,
        cited=list(cited),
        information=information,
        sufficiency=sufficiency,
        evidence=evidence,
    )

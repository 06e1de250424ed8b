"""The context-attribution aggregates of a dataset summary: cite items' sources, support and citations.

Computed from each cite item's claims (:attr:`attrib.result.context.Context.claims`, the
verdicts of :func:`attrib.cite`), over every claim of every cite item of the OUT_DIR.
Definitions (also in ``docs/summary.md``):

- **source use**, by source id and by source position (1-based, the order of the item's
  sources): how many claims the source *supports* (``Claim.supporting``: the claim's
  verdict, by :func:`attrib.cite`'s rule), how many *supported* claims rank it first
  (``top``: the first of ``Claim.sources``, ranked by attribution, the drop of the
  claim's log-probability in nats when the source is removed; an unsupported claim
  counts for no source), and ``share``, the claims it supports over every claim of
  the items that hold that source. Ids repeat across items only when the dataset
  names its sources alike (``"1"``, ``"2"``, ... for sources given as strings).
- **unsupported-claim rate**: claims that no source supports, over all claims.
- **citation agreement**, over the claims that carry citation markers: *verified*
  (every cited source supports the claim) and *mismatch* (some cited source does
  not), counts and rates; *used but not cited*: claims (with or without markers)
  that a source supports without being cited for them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from attrib.summary.load import Item

__all__ = ["SourceUse", "CiteRow", "CiteSummary", "cite_summary"]


@dataclass(frozen=True)
class SourceUse:
    """How the claims of the cite items used one source (by id, or by position).

    Attributes:
        source: the source id, or its 1-based position as text (``"2"``).
        items: cite items that hold such a source.
        claims: the claims of those items.
        supporting: claims the source supports (``Claim.supporting``).
        top: supported claims that rank it first by attribution (``Claim.sources[0]``).
        share: ``supporting / claims`` (0 without claims).
    """

    source: str
    items: int
    claims: int
    supporting: int
    top: int
    share: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class CiteRow:
    """One cite item as the summary lists it.

    Attributes:
        id: the record's id.
        file: the result file, relative to the OUT_DIR.
        question: the question.
        answer: the answer explained.
        claims: its claims.
        unsupported: of those, claims no source supports.
        mismatches: claims whose markers cite a source that does not support them.
    """

    id: str
    file: str
    question: str
    answer: str
    claims: int
    unsupported: int
    mismatches: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class CiteSummary:
    """The cite items of a dataset: which sources their claims use, and how their citations agree.

    Attributes:
        items: cite items (ok).
        claims: their claims.
        unsupported: claims no source supports.
        cited: claims that carry citation markers.
        verified: of those, claims every cited source of which supports them.
        mismatch: of those, claims citing a source that does not support them.
        used_not_cited: claims a source supports without being cited for them.
        by_id: source use by source id, most supporting first (ties: the id).
        by_position: source use by position in the item's sources, in order.
        rows: the cite items, in record order.
    """

    items: int
    claims: int
    unsupported: int
    cited: int
    verified: int
    mismatch: int
    used_not_cited: int
    by_id: tuple[SourceUse, ...]
    by_position: tuple[SourceUse, ...]
    rows: tuple[CiteRow, ...]

    @property
    def unsupported_rate(self) -> float:
        """Unsupported claims over all claims (0 without claims)."""
        return self.unsupported / self.claims if self.claims else 0.0

    @property
    def verified_rate(self) -> float:
        """Verified claims over the claims with markers (0 without any)."""
        return self.verified / self.cited if self.cited else 0.0

    @property
    def mismatch_rate(self) -> float:
        """Mismatched claims over the claims with markers (0 without any)."""
        return self.mismatch / self.cited if self.cited else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``"cite"`` of ``attrib summarize --json``)."""
        return {
            "items": self.items,
            "claims": self.claims,
            "unsupported": self.unsupported,
            "unsupported_rate": self.unsupported_rate,
            "citations": {
                "cited": self.cited,
                "verified": self.verified,
                "verified_rate": self.verified_rate,
                "mismatch": self.mismatch,
                "mismatch_rate": self.mismatch_rate,
                "used_not_cited": self.used_not_cited,
            },
            "sources_by_id": [use.to_dict() for use in self.by_id],
            "sources_by_position": [use.to_dict() for use in self.by_position],
            "rows": [row.to_dict() for row in self.rows],
        }


class _Tally:
    """Counts for one source key while the items are read."""

    def __init__(self) -> None:
        self.items = 0
        self.claims = 0
        self.supporting = 0
        self.top = 0

    def use(self, source: str) -> SourceUse:
        share = self.supporting / self.claims if self.claims else 0.0
        return SourceUse(source, self.items, self.claims, self.supporting, self.top, share)


def cite_summary(items: Sequence[Item]) -> CiteSummary:
    """Aggregate the cite items among ``items`` (those whose result has a context; others are ignored)."""
    by_id: dict[str, _Tally] = {}
    by_position: dict[int, _Tally] = {}
    rows: list[CiteRow] = []
    totals: Counter[str] = Counter()
    for item in items:
        context = item.result.context
        if context is None:
            continue
        ids = context.ids
        claims = context.claims
        tallies = [(by_id.setdefault(source, _Tally()), by_position.setdefault(p, _Tally())) for p, source in
                   enumerate(ids, 1)]  # fmt: skip
        position = {source: p for p, source in enumerate(ids)}
        for pair in tallies:
            for tally in pair:
                tally.items += 1
                tally.claims += len(claims)
        unsupported = mismatches = 0
        for claim in claims:
            for source in claim.supporting:
                for tally in tallies[position[source]]:
                    tally.supporting += 1
            if claim.supported and claim.sources:
                for tally in tallies[position[claim.sources[0][0]]]:
                    tally.top += 1
            if not claim.supported:
                unsupported += 1
            if claim.cited:
                totals["cited"] += 1
                totals[claim.citation] += 1
                mismatches += claim.citation == "mismatch"
            if claim.used_not_cited:
                totals["used_not_cited"] += 1
        totals["claims"] += len(claims)
        totals["unsupported"] += unsupported
        rows.append(
            CiteRow(
                item.id,
                str(item.record.get("file", "")),
                context.question,
                item.result.output[context.answer_start :],
                len(claims),
                unsupported,
                mismatches,
            )
        )
    return CiteSummary(
        items=len(rows),
        claims=totals["claims"],
        unsupported=totals["unsupported"],
        cited=totals["cited"],
        verified=totals["verified"],
        mismatch=totals["mismatch"],
        used_not_cited=totals["used_not_cited"],
        by_id=tuple(
            sorted((tally.use(source) for source, tally in by_id.items()), key=lambda u: (-u.supporting, u.source))
        ),
        by_position=tuple(by_position[p].use(str(p)) for p in sorted(by_position)),
        rows=tuple(rows),
    )

"""Dataset summaries: what a batch run's OUT_DIR says across all its items.

:func:`summarize` reads an OUT_DIR written by ``attrib batch`` (``records.jsonl``
and ``items/*.json``, nothing else) and returns a :class:`DatasetSummary`:

- for chats that share a system prompt (grouped by the system message's text), each
  system unit's share of the system prompt's attribution (distribution), how often
  it is the top system unit, and the labelled accuracy when records carry a
  ``label`` in their metadata (see :mod:`attrib.summary.stats` for the definitions);
- role shares (Shapley values of the messages, :mod:`attrib.auditing.message_shapley`) across the dataset;
- the hidden-influence flag rate and the flagged ids (:mod:`attrib.auditing.hidden_influence`);
- for plain prompts, the units that most often rank first;
- for cite items (``attrib cite``'s records), which sources their claims use, the
  unsupported-claim rate and the citation agreement (:mod:`attrib.summary.cite`);
- counts (ok, failed by error type) and the cost totals.

Rendering: :meth:`DatasetSummary.render` (terminal text), :mod:`attrib.reports.summary`
(one self-contained HTML page).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attrib.summary.cite import CiteRow, CiteSummary, SourceUse, cite_summary
from attrib.summary.load import Item, Records, iter_items, read_records
from attrib.summary.stats import (
    Distribution,
    ItemRow,
    LabelAccuracy,
    SystemGroup,
    SystemUnitStat,
    distribution,
    system_group,
    system_message,
    top_index,
    user_text,
)

__all__ = [
    "CiteRow",
    "CiteSummary",
    "SourceUse",
    "DatasetSummary",
    "Distribution",
    "ItemRow",
    "LabelAccuracy",
    "SystemGroup",
    "SystemUnitStat",
    "summarize",
]


@dataclass(frozen=True)
class DatasetSummary:
    """Aggregates of one batch OUT_DIR.

    Attributes:
        out_dir: the OUT_DIR read.
        ok: items attributed.
        failed: items that failed.
        error_types: error type -> how many items failed with it.
        errors: the failed items as ``{"id", "line", "error", "error_type"}``.
        torn: True when the last record line was cut (a killed run) and skipped.
        calls, tokens_evaluated, seconds: the ok items' cost, summed (seconds of work,
            not wall time when items ran in parallel).
        system_groups: one per distinct system prompt, most items first.
        roles: role -> its share per item (:class:`Distribution`), over chat items.
        audited: items with a hidden-influence verdict.
        flagged: ids of the items flagged for hidden influence.
        first_units: for plain prompts (no system message), ``(unit text, items ranking
            it first)``, most frequent first.
        plain: items counted in ``first_units``.
        top: how many ``first_units`` were kept (the ``--top`` option).
        plain_rows: the plain-prompt items (no system message), in record order.
        contrastive: ok items attributed against a contrast; their scores (and so the
            shares and ranks above) are of the margin ``log p(output) - log p(contrast)``.
        cite: the cite items' sources, support and citations; ``None`` without cite items
            (they are in no system group and no plain-prompt count).
    """

    out_dir: str
    ok: int
    failed: int
    error_types: dict[str, int]
    errors: tuple[dict[str, Any], ...]
    torn: bool
    calls: int
    tokens_evaluated: int
    seconds: float
    system_groups: tuple[SystemGroup, ...]
    roles: dict[str, Distribution]
    audited: int
    flagged: tuple[str, ...]
    first_units: tuple[tuple[str, int], ...]
    plain: int
    top: int
    plain_rows: tuple[ItemRow, ...] = ()
    contrastive: int = 0
    cite: CiteSummary | None = None

    @property
    def rows(self) -> tuple[ItemRow, ...]:
        """Every ok item: the system groups' rows, then the plain prompts'."""
        return tuple(row for group in self.system_groups for row in group.rows) + self.plain_rows

    @property
    def flag_rate(self) -> float:
        """Share of the audited items flagged for hidden influence (0 when none was audited)."""
        return len(self.flagged) / self.audited if self.audited else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (``attrib summarize --json``)."""
        return {
            "schema": "attrib.summary",
            "schema_version": 2,
            "out_dir": self.out_dir,
            "counts": {
                "ok": self.ok,
                "failed": self.failed,
                "error_types": dict(self.error_types),
                "torn": self.torn,
                "contrastive": self.contrastive,
            },
            "errors": list(self.errors),
            "cost": {"calls": self.calls, "tokens_evaluated": self.tokens_evaluated, "seconds": self.seconds},
            "system_groups": [g.to_dict() for g in self.system_groups],
            "roles": {role: d.to_dict() for role, d in self.roles.items()},
            "hidden_influence": {"audited": self.audited, "flag_rate": self.flag_rate, "flagged": list(self.flagged)},
            "plain_prompts": {
                "items": self.plain,
                "first_units": [{"text": text, "count": count} for text, count in self.first_units],
                "rows": [row.to_dict() for row in self.plain_rows],
            },
            "cite": None if self.cite is None else self.cite.to_dict(),
        }

    def render(self) -> str:
        """The summary as terminal text (:func:`attrib.summary.render.render_text`)."""
        from attrib.summary.render import render_text

        return render_text(self)


def summarize(out_dir: str | Path, *, top: int = 10) -> DatasetSummary:
    """Summarise a batch OUT_DIR from its ``records.jsonl`` and ``items/*.json``.

    Args:
        out_dir: the OUT_DIR of an ``attrib batch`` run (finished, resumed or killed).
        top: how many first-ranked units of plain prompts to keep.

    Returns:
        A :class:`DatasetSummary`.

    Raises:
        InputError: if ``out_dir`` holds no ``records.jsonl``, or ``top`` is below 1.
        ResultError: if a record line (other than a torn last one) or a result file is
            invalid, missing or unreadable (:func:`attrib.summary.load.read_item`).
    """
    from attrib.errors import InputError

    if top < 1:
        raise InputError(f"top must be at least 1, got {top}")
    records = read_records(out_dir)
    items = list(iter_items(out_dir, records))
    return _aggregate(str(out_dir), records, items, top)


def _aggregate(out_dir: str, records: Records, items: list[Item], top: int) -> DatasetSummary:
    groups: dict[str, list[Item]] = defaultdict(list)
    firsts: Counter[str] = Counter()
    roles: dict[str, list[float]] = defaultdict(list)
    plain = 0
    plain_rows: list[ItemRow] = []
    flagged: list[str] = []
    audited = 0
    cited = [item for item in items if item.result.context is not None]
    for item in items:
        result = item.result
        if result.context is not None:  # a cite item: its own aggregates
            continue
        index = system_message(result)
        if index is not None and result.messages is not None:
            groups[result.messages[index]["content"]].append(item)
        elif len(result.units):
            plain += 1
            totals = [float(t) for t in result.unit_scores]
            firsts[result.units[top_index(totals)].text.strip()] += 1
            plain_rows.append(_plain_row(item))
        for role, share in (result.roles or {}).items():
            roles[role].append(float(share))
        if result.hidden_influence is not None:
            audited += 1
            if result.hidden_influence.flag:
                flagged.append(item.id)
    error_types = Counter(str(r.get("error_type", "Error")) for r in records.errors)
    errors = tuple({key: r.get(key) for key in ("id", "line", "error", "error_type")} for r in records.errors)
    ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))
    return DatasetSummary(
        out_dir=out_dir,
        ok=len(items),
        failed=len(records.errors),
        error_types=dict(error_types.most_common()),
        errors=errors,
        torn=records.torn,
        calls=sum(i.result.stats.calls for i in items),
        tokens_evaluated=sum(i.result.stats.tokens_evaluated for i in items),
        seconds=float(sum(i.result.stats.seconds for i in items)),
        system_groups=tuple(system_group(text, members) for text, members in ordered),
        roles={role: distribution(values) for role, values in sorted(roles.items())},
        audited=audited,
        flagged=tuple(flagged),
        first_units=tuple(sorted(firsts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]),
        plain=plain,
        top=top,
        plain_rows=tuple(plain_rows),
        contrastive=sum(1 for item in items if item.result.contrast is not None),
        cite=cite_summary(cited) if cited else None,
    )


def _plain_row(item: Item) -> ItemRow:
    result = item.result
    hidden = result.hidden_influence
    return ItemRow(
        item.id,
        str(item.record.get("file", "")),
        user_text(result),
        result.output,
        None,
        None,
        None,
        None if hidden is None else bool(hidden.flag),
    )

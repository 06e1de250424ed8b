"""The aggregates of a dataset summary, computed from each item's full result.

Definitions (also in ``docs/summary.md``):

- **share** of a system-prompt unit in one item: its total attribution (row sum over
  output tokens, nats) divided by the sum of the absolute totals of all units of the
  system message, so shares lie in [-1, 1], their magnitudes sum to 1, and a unit
  that lowers the output's probability gets a negative share. Normalising by the
  system message alone makes items with strong and weak answers comparable (a
  share is how the system prompt's attribution divides among its units), in the
  spirit of ContextCite's per-source scores (Cohen-Wang et al., 2024) and of the
  role shares of :mod:`attrib.auditing.message_shapley`. An item whose system units all score 0 gives
  every unit a share of 0.
- **top system unit** of an item: the system unit with the largest total attribution
  (ties: the earlier unit), the unit the output rests on most.
- **labelled accuracy**: over items whose ``meta`` holds a ``label``, the share whose
  top system unit is the label: a 1-based index of the system message's units, or
  the unit's text (compared with surrounding whitespace stripped).
- **first-ranked units** of plain prompts (no system message): for each unit text,
  how many items rank it first by total attribution.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attrib.result import Attribution
from attrib.summary.load import Item

__all__ = ["Distribution", "ItemRow", "LabelAccuracy", "SystemGroup", "SystemUnitStat", "distribution", "system_group"]

#: The quantiles a distribution reports.
QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Distribution:
    """A sample summarised: count, mean, standard deviation and quantiles (min, q1, median, q3, max).

    ``values`` keeps the sample itself (for plots); all numbers are in the sample's unit.
    """

    n: int
    mean: float
    sd: float
    quantiles: tuple[float, float, float, float, float]
    values: tuple[float, ...] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the sample included)."""
        q = self.quantiles
        return {
            "n": self.n,
            "mean": self.mean,
            "sd": self.sd,
            "min": q[0],
            "q1": q[1],
            "median": q[2],
            "q3": q[3],
            "max": q[4],
            "values": list(self.values),
        }


def distribution(values: Iterable[float]) -> Distribution:
    """:class:`Distribution` of ``values`` (all zeros for an empty sample)."""
    sample = np.asarray(list(values), dtype=np.float64)
    if sample.size == 0:
        return Distribution(0, 0.0, 0.0, (0.0, 0.0, 0.0, 0.0, 0.0), ())
    q = np.quantile(sample, QUANTILES)
    return Distribution(
        int(sample.size),
        float(sample.mean()),
        float(sample.std(ddof=1)) if sample.size > 1 else 0.0,
        (float(q[0]), float(q[1]), float(q[2]), float(q[3]), float(q[4])),
        tuple(float(v) for v in sample),
    )


@dataclass(frozen=True)
class SystemUnitStat:
    """One unit of a shared system prompt across the items that use it.

    Attributes:
        position: 1-based position of the unit in the system message (the label index).
        text: the unit's text, surrounding whitespace stripped.
        share: its share of the system prompt's attribution per item (see module doc).
        score: its total attribution per item, nats.
        top_count: items where it is the top system unit.
        top_rate: ``top_count`` over the group's items.
    """

    position: int
    text: str
    share: Distribution
    score: Distribution
    top_count: int
    top_rate: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "position": self.position,
            "text": self.text,
            "share": self.share.to_dict(),
            "score": self.score.to_dict(),
            "top_count": self.top_count,
            "top_rate": self.top_rate,
        }


@dataclass(frozen=True)
class LabelAccuracy:
    """How often the top system unit is the labelled one.

    Attributes:
        n: labelled items.
        correct: of those, items whose top system unit is the label.
        accuracy: ``correct / n`` (0 when ``n`` is 0).
        per_label: label position -> (items, correct).
        misses: ids of the labelled items whose top unit is another one.
    """

    n: int
    correct: int
    accuracy: float
    per_label: dict[int, tuple[int, int]]
    misses: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "n": self.n,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "per_label": {str(k): {"n": n, "correct": c} for k, (n, c) in sorted(self.per_label.items())},
            "misses": list(self.misses),
        }


@dataclass(frozen=True)
class ItemRow:
    """One item as the summary lists it (for the per-item table and links).

    Attributes:
        id: the record's id.
        file: the result file, relative to the OUT_DIR (``items/<key>.json``).
        user: the last user message (or the plain prompt), as given.
        output: the explained output.
        top_position: 1-based position of its top system unit, ``None`` without a system message.
        top_share: that unit's share.
        label: the labelled position, ``None`` when unlabelled or not resolvable.
        flagged: the hidden-influence flag, ``None`` when not audited.
    """

    id: str
    file: str
    user: str
    output: str
    top_position: int | None
    top_share: float | None
    label: int | None
    flagged: bool | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class SystemGroup:
    """The items that share one system prompt, and what each of its units did.

    Attributes:
        system: the system message's text.
        items: how many items use it.
        units: one entry per unit of the system message, in prompt order.
        accuracy: the labelled accuracy, ``None`` when no item carries a label.
        rows: every item, in record order.
    """

    system: str
    items: int
    units: tuple[SystemUnitStat, ...]
    accuracy: LabelAccuracy | None
    rows: tuple[ItemRow, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "system": self.system,
            "items": self.items,
            "units": [u.to_dict() for u in self.units],
            "accuracy": None if self.accuracy is None else self.accuracy.to_dict(),
            "rows": [r.to_dict() for r in self.rows],
        }


def system_message(result: Attribution) -> int | None:
    """Index of the result's (first) system message, ``None`` for a plain prompt or a chat without one."""
    for index, message in enumerate(result.messages or []):
        if message["role"] == "system":
            return index
    return None


def system_units(result: Attribution, message: int) -> list[int]:
    """Row indices of the units inside message ``message``, in prompt order."""
    return [i for i, unit in enumerate(result.units) if unit.message == message]


def shares(totals: Sequence[float]) -> list[float]:
    """Each total divided by the sum of the totals' magnitudes (0 for all when they sum to 0)."""
    scale = float(np.abs(np.asarray(totals, dtype=np.float64)).sum())
    return [float(t) / scale if scale > 0 else 0.0 for t in totals]


def top_index(totals: Sequence[float]) -> int:
    """Index of the largest total (the earlier one on ties)."""
    return max(range(len(totals)), key=lambda i: (totals[i], -i))


def resolve_label(label: Any, texts: Sequence[str]) -> int | None:
    """The 1-based position a ``label`` names: an index into ``texts`` or one of the texts."""
    if isinstance(label, bool):
        return None
    if isinstance(label, int) and 1 <= label <= len(texts):
        return label
    if isinstance(label, str):
        wanted = label.strip()
        if wanted.isdigit():
            return resolve_label(int(wanted), texts)
        for position, text in enumerate(texts, 1):
            if text == wanted:
                return position
    return None


def user_text(result: Attribution) -> str:
    """The last user message of a chat, or the prompt of a plain one."""
    if result.messages is None:
        return result.prompt
    users = [m["content"] for m in result.messages if m["role"] == "user"]
    return users[-1] if users else ""


def system_group(system: str, members: Sequence[Item]) -> SystemGroup:
    """Aggregate the items that share the system message ``system``.

    Items whose segmentation of the system message differs from the first item's (a
    different level) are compared by position up to the shorter length.
    """
    first = members[0].result
    layout = system_units(first, system_message(first) or 0)
    texts = [first.units[i].text.strip() for i in layout]
    per_share: list[list[float]] = [[] for _ in texts]
    per_score: list[list[float]] = [[] for _ in texts]
    tops: Counter[int] = Counter()
    rows: list[ItemRow] = []
    labelled: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    misses: list[str] = []
    for item in members:
        result = item.result
        rows_of = system_units(result, system_message(result) or 0)
        totals = [float(result.unit_scores[i]) for i in rows_of]
        item_shares = shares(totals)
        for position, (share, score) in enumerate(zip(item_shares, totals, strict=False)):
            if position < len(texts):
                per_share[position].append(share)
                per_score[position].append(score)
        best = top_index(totals) if totals else None
        if best is not None:
            tops[best + 1] += 1
        label = resolve_label(item.meta.get("label"), texts) if "label" in item.meta else None
        if label is not None:
            labelled[label][0] += 1
            if best is not None and best + 1 == label:
                labelled[label][1] += 1
            else:
                misses.append(item.id)
        hidden = result.hidden_influence
        rows.append(
            ItemRow(
                item.id,
                str(item.record.get("file", "")),
                user_text(result),
                result.output,
                None if best is None else best + 1,
                None if best is None else item_shares[best],
                label,
                None if hidden is None else bool(hidden.flag),
            )
        )
    n = len(members)
    units = tuple(
        SystemUnitStat(
            position,
            text,
            distribution(per_share[position - 1]),
            distribution(per_score[position - 1]),
            tops[position],
            tops[position] / n,
        )
        for position, text in enumerate(texts, 1)
    )
    accuracy = None
    if labelled:
        total = sum(v[0] for v in labelled.values())
        correct = sum(v[1] for v in labelled.values())
        accuracy = LabelAccuracy(
            total,
            correct,
            correct / total,
            {k: (v[0], v[1]) for k, v in sorted(labelled.items())},
            tuple(misses),
        )
    return SystemGroup(system, n, units, accuracy, tuple(rows))

"""What a coalition method recorded, as rows for people: the coalition-trace view of both reports.

A coalition method (``attrib.methods.coalitions``: shapley, kernelshap, surrogate, lime,
hierarchical) writes its own record into :class:`~attrib.result.MethodTrace`. This
module reads the keys each method documents and turns them into labelled rows
(samples used, whether the values are exact, the held-out fit quality) and, when
the call budget cut the method short, a note on what that means for its
estimates. The text and HTML reports render the same rows.

Sources of the quantities: the linear datamodeling score (LDS) of Park et al. 2023
("TRAK") as ContextCite reports it (Cohen-Wang et al. 2024); the standard error of
permutation sampling of Castro, Gómez & Tejada 2009.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attrib.result import Attribution, MethodTrace

__all__ = ["TraceRow", "TraceView", "method_trace_view"]


@dataclass(frozen=True)
class TraceRow:
    """One line of a method's record.

    Attributes:
        key: a stable key (``data-key`` in the HTML report).
        label: what it is, for people.
        value: its value as text.
    """

    key: str
    label: str
    value: str


@dataclass(frozen=True)
class TraceView:
    """A method's record for people.

    Attributes:
        method: the method's name.
        sections: ``(heading, rows)`` pairs: one for a plain prompt, one per message for a chat,
            and the region's coalition method for ``hierarchical``.
        budget_note: what a budget that cut the method short means for its estimates, or ``None``.
    """

    method: str
    sections: list[tuple[str, list[TraceRow]]]
    budget_note: str | None


def _number(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "undefined (constant values)" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def _quality(value: Any, reason: Any) -> str:
    """A held-out fit quality as text; ``None`` is a quality the method found undefined (with its reason)."""
    if value is None:
        return f"undefined ({reason})" if isinstance(reason, str) and reason else "undefined"
    return _number(value)


def _rows(record: Mapping[str, Any], prefix: str = "") -> list[TraceRow]:
    """The rows of one record (keys as the coalition methods write them)."""
    rows: list[TraceRow] = []

    def add(key: str, label: str, value: str) -> None:
        rows.append(TraceRow(prefix + key, label, value))

    if "units" in record:
        add("units", "units (players of the game)", _number(record["units"]))
    if "exact" in record:
        add("exact", "values", "exact (every coalition scored)" if record["exact"] else "estimated from samples")
    if "permutations" in record:
        antithetic = " (antithetic pairs)" if record.get("antithetic") else ""
        add("permutations", "permutations sampled", _number(record["permutations"]) + antithetic)
    if "coalitions" in record and isinstance(record["coalitions"], int):
        paired = " (each with its complement)" if record.get("paired") else ""
        add("coalitions", "coalitions scored", _number(record["coalitions"]) + paired)
    if "masks" in record:
        add("masks", "ablation masks", _number(record["masks"]))
    if "distinct" in record:
        add("distinct", "distinct masks", _number(record["distinct"]))
    if "keep" in record:
        add("keep", "keep probability of a unit", _number(record["keep"], 2))
    errors = record.get("standard_error")
    if isinstance(errors, list) and errors:
        add("standard_error", "largest standard error of a unit's total", f"{max(errors):.3f} nats")
    held_out = record.get("held_out")
    if isinstance(held_out, Mapping):
        reason = held_out.get("undefined")
        add("lds", "held-out LDS (Spearman, fit vs. measured)", _quality(held_out.get("lds"), reason))
        add("r2", "held-out R² of the fit", _quality(held_out.get("r2"), reason))
        add("folds", "cross-validation folds", _number(held_out.get("folds")))
    elif "held_out" in record:
        add("lds", "held-out LDS", "not measured (fewer than 4 masks)")
    if "hipe_calls" in record:
        add("hipe_calls", "calls spent by HiPe (finding the region)", _number(record["hipe_calls"]))
        add("coalition_calls", "calls spent by the coalition method", _number(record.get("coalition_calls")))
    if isinstance(record.get("region"), list):
        add("region", "units in the region (HiPe's top units)", _number(len(record["region"])))
    return rows


def _budget_note(method: str, records: list[Mapping[str, Any]]) -> str:
    """What a budget that cut ``method`` short means for its estimates."""
    if method == "shapley":
        return (
            "The call budget cut the sampling short: fewer permutations were scored, so the values are "
            "unbiased but noisier (see the standard error); efficiency still holds for each permutation."
        )
    if method == "kernelshap":
        return (
            "The call budget cut the sampling short: fewer coalitions were fitted, so the weighted least-squares "
            "estimates are looser; efficiency (values summing to the full drop) is still imposed."
        )
    if method in ("surrogate", "lime"):
        held = [r["held_out"] for r in records if isinstance(r.get("held_out"), Mapping)]
        quality = f" (held-out LDS {_quality(held[0].get('lds'), held[0].get('undefined'))})" if held else ""
        return (
            "The call budget cut the masks short: the linear fit saw fewer samples, so trust its weights only "
            f"as far as its held-out quality{quality} says."
        )
    if method == "hierarchical":
        return (
            "The call budget cut the run short: HiPe's region or the coalition game within it is coarser "
            "than planned; units outside the region keep HiPe's scores."
        )
    return "The call budget cut the method short: its estimates rest on fewer samples than planned."


def method_trace_view(result: Attribution) -> TraceView | None:
    """The coalition-trace view of ``result``, or ``None`` when its trace is HiPe's or absent."""
    trace = result.trace
    if not isinstance(trace, MethodTrace):
        return None
    record = dict(trace.record)
    messages = record.get("messages")
    records: list[tuple[str, Mapping[str, Any]]]
    if isinstance(messages, list):
        records = [(f"message {i}", r) for i, r in enumerate(messages) if isinstance(r, Mapping)]
    else:
        records = [("", record)]
    sections: list[tuple[str, list[TraceRow]]] = []
    flat: list[Mapping[str, Any]] = []
    for heading, item in records:
        inner = item.get("coalitions") if isinstance(item.get("coalitions"), Mapping) else None
        if inner is not None:  # hierarchical: HiPe's chunks, then the coalition method's own record
            method = inner.get("method", {})
            name = method.get("name", "coalition method") if isinstance(method, Mapping) else "coalition method"
            sections.append((heading, _rows(inner)))
            fine = inner.get("trace")
            if isinstance(fine, Mapping):
                sections.append(((heading + ": " if heading else "") + f"{name} in the region", _rows(fine, "inner.")))
                flat.append(fine)
        else:
            sections.append((heading, _rows(item)))
            flat.append(item)
    note = _budget_note(trace.method, flat) if result.stats.budget_exhausted else None
    return TraceView(method=trace.method, sections=[s for s in sections if s[1]], budget_note=note)

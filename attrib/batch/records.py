"""Compact per-item records of a batch: what ``records.jsonl`` holds for each finished item.

An ok record summarises an :class:`~attrib.result.Attribution` (output, its
log-probability in nats, the top units, role shares, the top system-prompt unit,
the hidden-influence verdict, the cost; for a cite item, its claims in brief,
:func:`claim_records`); an error record keeps the one-line
message and the error's type. The full result lives in ``items/<key>.json``.
The field list is the batch contract's (``docs/batch.md``).
"""

from __future__ import annotations

from typing import Any

from attrib.result import Attribution

__all__ = ["TOP_UNITS", "ok_record", "error_record", "claim_records"]

#: Units listed in a record's ``top``.
TOP_UNITS = 5


def ok_record(item_id: str, line: int, meta: dict[str, Any], task: str, result: Attribution) -> dict[str, Any]:
    """The compact record of a finished item (without ``file``, which the OUT_DIR writer adds).

    Scores are unit totals over the output tokens, in the result's score unit (nats for
    log-probabilities); with a ``contrast`` they are totals of the margin
    ``log p(output) - log p(contrast)``.
    """
    chat = result.messages is not None
    top = [
        {
            "unit": entry.index,
            "text": entry.unit.text,
            "score": entry.score,
            "message": entry.unit.message if chat else None,
            "role": entry.unit.role if chat else None,
        }
        for entry in result.top(TOP_UNITS)
    ]
    hidden = result.hidden_influence
    cite = {} if result.context is None else {"claims": claim_records(result)}
    return {
        "id": item_id,
        "status": "ok",
        "line": line,
        "meta": meta,
        "output": result.output,
        "output_logprob": result.output_logprob,
        "contrast": None if result.contrast is None else result.contrast.text,
        "method": result.method,
        "level": result.level,
        "task": task,
        "top": top,
        "roles": result.roles,
        "system_top": _system_top(result) if chat else None,
        "hidden_influence": None
        if hidden is None
        else {"flagged": hidden.flag, "score": hidden.score, "kind": hidden.method},
        "cost": {
            "calls": result.stats.calls,
            "tokens_evaluated": result.stats.tokens_evaluated,
            "seconds": result.stats.seconds,
        },
        **cite,
    }


def claim_records(result: Attribution) -> list[dict[str, Any]]:
    """A cite result's claims in brief, in answer order: ``text``, ``supported``, ``top`` (the
    strongest source as ``{"id", "score"}``, score in nats: the drop of the claim's
    log-probability without it; ``None`` without sources), ``supporting`` (the ids of the
    sources that support it), ``cited`` (the ids its markers name) and ``citation``
    (``"verified"``, ``"mismatch"`` or ``"uncited"``). The full claims are in the item's file."""
    claims = [] if result.context is None else result.context.claims
    return [
        {
            "text": claim.text,
            "supported": bool(claim.supported),
            "top": {"id": claim.sources[0][0], "score": float(claim.sources[0][1])} if claim.sources else None,
            "supporting": list(claim.supporting),
            "cited": list(claim.cited),
            "citation": claim.citation,
        }
        for claim in claims
    ]


def _system_top(result: Attribution) -> dict[str, Any] | None:
    """The unit with the largest total inside the system message(s), or ``None`` without one."""
    totals = result.unit_scores
    inside = [index for index, unit in enumerate(result.units) if unit.role == "system"]
    if not inside:
        return None
    best = max(inside, key=lambda index: (float(totals[index]), -index))
    return {"unit": best, "text": result.units[best].text, "score": float(totals[best])}


def error_record(item_id: str, line: int, meta: dict[str, Any], error_type: str, message: str) -> dict[str, Any]:
    """The record of an item that failed: its one-line message and the error's type name."""
    return {
        "id": item_id,
        "status": "error",
        "line": line,
        "meta": meta,
        "error": " ".join(message.split()) or error_type,
        "error_type": error_type,
    }

"""A dataset summary as terminal text (``attrib summarize OUT_DIR``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from attrib.summary import DatasetSummary
    from attrib.summary.cite import CiteSummary
    from attrib.summary.stats import SystemGroup

__all__ = ["render_text"]

_WIDTH = 60


def _clip(text: str, width: int = _WIDTH) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _group(group: SystemGroup, number: int) -> list[str]:
    lines = [
        "",
        f"System prompt {number} ({group.items} items): {_clip(group.system, 70)!r}",
        f"  {'#':>3} {'unit':<{_WIDTH}} {'mean share':>10} {'median':>7} {'q1..q3':>13} {'top':>9}",
    ]
    for unit in group.units:
        q = unit.share.quantiles
        lines.append(
            f"  {unit.position:>3} {_clip(unit.text):<{_WIDTH}} {unit.share.mean:>10.2f} {q[2]:>7.2f} "
            f"{q[1]:>6.2f}..{q[3]:<5.2f} {unit.top_count:>4} {unit.top_rate:>4.0%}"
        )
    accuracy = group.accuracy
    if accuracy is not None:
        lines.append(
            f"  labelled: top system unit is the label in {accuracy.correct}/{accuracy.n} items ({accuracy.accuracy:.1%})"
        )
        per = ", ".join(f"{label}: {c}/{n}" for label, (n, c) in sorted(accuracy.per_label.items()))
        lines.append(f"  per label: {per}")
    return lines


def _cite(cite: CiteSummary) -> list[str]:
    lines = [
        "",
        f"Cite items ({cite.items} items, {cite.claims} claims):",
        f"  unsupported claims: {cite.unsupported}/{cite.claims} ({cite.unsupported_rate:.1%})",
        f"  citations: {cite.cited} claims with markers: {cite.verified} verified ({cite.verified_rate:.1%}), "
        f"{cite.mismatch} mismatch ({cite.mismatch_rate:.1%}); {cite.used_not_cited} "
        f"{'claim uses' if cite.used_not_cited == 1 else 'claims use'} a source {'it does' if cite.used_not_cited == 1 else 'they do'} not cite",
        f"  {'source id':<20} {'supports':>8} {'top':>5} {'share':>6} {'items':>6}",
    ]
    for use in cite.by_id:
        lines.append(f"  {_clip(use.source, 20):<20} {use.supporting:>8} {use.top:>5} {use.share:>6.1%} {use.items:>6}")
    lines.append(f"  {'position':<20} {'supports':>8} {'top':>5} {'share':>6} {'items':>6}")
    for use in cite.by_position:
        lines.append(f"  {use.source:<20} {use.supporting:>8} {use.top:>5} {use.share:>6.1%} {use.items:>6}")
    return lines


def render_text(summary: DatasetSummary) -> str:
    """The summary as lines of text: counts and cost, system prompts, roles, hidden influence, cite items,
    plain prompts."""
    lines = [f"{summary.out_dir}: {summary.ok} ok, {summary.failed} failed"]
    if summary.error_types:
        lines.append("  errors: " + ", ".join(f"{name} {count}" for name, count in summary.error_types.items()))
    if summary.torn:
        lines.append("  the last record line was cut (a killed run); it was skipped")
    if summary.contrastive:
        lines.append(
            f"  {summary.contrastive} contrastive items: their scores are drops of log p(output) - log p(contrast)"
        )
    lines.append(
        f"  cost: {summary.calls} calls, {summary.tokens_evaluated} tokens evaluated, {summary.seconds:.1f} s of work"
    )
    for number, group in enumerate(summary.system_groups, 1):
        lines.extend(_group(group, number))
    if summary.roles:
        lines.append("")
        lines.append("Role shares (Shapley values of the messages, per item):")
        for role, dist in summary.roles.items():
            q = dist.quantiles
            lines.append(f"  {role:<10} mean {dist.mean:6.2f}  sd {dist.sd:5.2f}  median {q[2]:6.2f}  ({dist.n} items)")
    if summary.audited:
        lines.append("")
        lines.append(
            f"Hidden influence: {len(summary.flagged)}/{summary.audited} flagged ({summary.flag_rate:.1%})"
            + (
                ": " + ", ".join(summary.flagged[:20]) + (" …" if len(summary.flagged) > 20 else "")
                if summary.flagged
                else ""
            )
        )
    if summary.cite is not None:
        lines.extend(_cite(summary.cite))
    if summary.first_units:
        lines.append("")
        lines.append(f"Plain prompts ({summary.plain} items): units most often ranked first")
        for text, count in summary.first_units:
            lines.append(f"  {count:>5}  {_clip(text)}")
    return "\n".join(lines)

"""Plain-text view of an attribution: the output, the top units, and what the run cost.

Scores are labelled with the result's own unit (``Attribution.score_unit``); the
audit's findings come from ``reports.findings``, the same source as the HTML
report's. Text from the result (prompt, output, roles, names) is data: control
and other non-printing characters are shown as escapes, never sent to the terminal.
"""

from __future__ import annotations

import numpy as np

from attrib.reports.findings import audit_findings
from attrib.reports.method_trace import method_trace_view
from attrib.result import Attribution, MethodTrace

__all__ = [
    "render_text",
    "render_audit",
    "render_cite",
    "budget_effect",
    "describe_cost",
    "describe_scores",
    "describe_trace",
]


def _flat(text: str) -> str:
    """Text on one line: newlines, tabs and other control characters as escapes."""
    return repr(text)[1:-1]


def _printable(line: str) -> str:
    """``line`` with every non-printing character (ESC, C1 controls, bidi overrides, ...) as an escape."""
    if line.isprintable():
        return line
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)


def _lines(lines: list[str]) -> str:
    """The lines joined for a terminal; each is made printable, whatever a result file held."""
    return "\n".join(_printable(line) for line in "\n".join(lines).split("\n"))


def _quote(text: str, width: int = 48) -> str:
    """Show text on one line in double quotes, cut to ``width``."""
    shown = _flat(text).replace('"', '\\"')
    if len(shown) > width:
        shown = shown[: width - 1] + "…"
    return f'"{shown}"'


def _in_context(prompt: str, start: int, end: int, width: int = 18) -> str:
    """The unit in brackets with up to ``width`` characters of prompt on each side, on one line."""
    left = ("…" if start > width else "") + _flat(prompt[max(0, start - width) : start])
    right = _flat(prompt[end : end + width]) + ("…" if end + width < len(prompt) else "")
    return f"{left[-(width + 1) :]}[{_flat(prompt[start:end])}]{right[: width + 1]}"


def budget_effect(result: Attribution) -> str:
    """What a budget that ran out did to the run: HiPe's chunks stay coarse; a coalition method sampled less."""
    if isinstance(result.trace, MethodTrace):
        return f"{result.method} stopped sampling early (see its record for what that means for the scores)"
    return "refinement stopped early; scores of unrefined chunks are coarse"


def _itp_calls(result: Attribution) -> int:
    """The calls leave-one-out would make on the same units: the prompt and one per unit, plus a
    context's probes (no source, each source alone) that are not leave-one-out variants too."""
    calls = len(result.units) + 1
    context = result.context
    if context is not None and context.empty_logprobs is not None:
        sizes = [source.units[1] - source.units[0] for source in context.sources]
        total = sum(sizes)
        # no source: one unit left out when there is one unit; a source alone: the other one unit
        calls += int(total > 1)
        calls += sum(1 for size in sizes if total - size > 1)
    return calls


def describe_cost(result: Attribution) -> str:
    """One line with calls, tokens evaluated and seconds (and the budget, if it stopped the run)."""
    stats = result.stats
    parts = [
        f"{stats.calls:,} calls",
        f"{stats.tokens_evaluated:,} tokens evaluated",
        f"{stats.seconds:.1f} s",
    ]
    if result.method == "hipe":
        parts[0] += f" (itp at {result.level} level: {_itp_calls(result):,})"
    line = "cost: " + ", ".join(parts)
    usage = stats.backend_usage
    if usage.get("cache_hits") and "requests" not in usage:  # a local model answered from the cache
        line += f"\ncache: {usage['cache_hits']:,} answers from the cache (calls count them; tokens evaluated do not)"
    if "requests" in usage:  # an endpoint
        sent = [
            f"{usage.get('requests', 0):,} requests",
            f"{usage.get('cache_hits', 0):,} cache hits",
            f"{usage.get('retries', 0):,} retries",
            f"{usage.get('prompt_tokens', 0):,} prompt + {usage.get('completion_tokens', 0):,} completion tokens",
        ]
        if usage.get("bounded_tokens"):
            sent.append(f"{usage['bounded_tokens']:,} token scores bounded (not in top-k)")
        line += "\nendpoint: " + ", ".join(sent)
    if stats.budget_exhausted:
        line += f"\nbudget of {stats.budget} calls reached: {budget_effect(result)}"
    return line


def describe_scores(result: Attribution, *, context: str = "prompt") -> list[str]:
    """The output's (and a contrast's) log-probability, and what the scores mean when a contrast is set."""
    own = len(result.output_tokens[result.output_columns])
    lines = []
    if result.output_logprob is not None and result.score_kind == "logprob":
        lines.append(f"log p(output | {context}) = {result.output_logprob:.3f} nats over {own} tokens")
    if result.contrast is not None:
        target, foil = _quote(result.output, 60), _quote(result.contrast.text, 60)
        n_foil = len(result.output_tokens) - own
        lines.insert(0, f"contrast: {foil}")
        if result.contrast_logprob is not None:
            lines.append(f"log p(contrast | {context}) = {result.contrast_logprob:.3f} nats over {n_foil} tokens")
        lines.append(
            f"scores: contrastive, the drop of log p({target}) - log p({foil}) when a unit is removed; "
            f"positive: the unit makes {target} likelier than {foil}"
        )
    return lines


def describe_trace(result: Attribution) -> list[str]:
    """The coalition method's record (samples, exactness, held-out fit quality, budget note), or nothing."""
    view = method_trace_view(result)
    if view is None:
        return []
    lines = ["", f"{view.method} record:"]
    for heading, rows in view.sections:
        indent = "  "
        if heading:
            lines.append(f"  {heading}:")
            indent = "    "
        lines.extend(f"{indent}{row.label}: {row.value}" for row in rows)
    if view.budget_note:
        lines.append(f"  budget: {view.budget_note}")
    return lines


def render_text(result: Attribution, *, top: int = 10) -> str:
    """Render ``result`` for a terminal.

    Args:
        result: the attribution to show.
        top: how many units to list.

    Returns:
        Multi-line text: output, its log-probability, the top units by total
        attribution (nats, summed over output tokens) with their character spans
        and surrounding text (the unit in brackets), and the cost line.
    """
    lines = [f"output: {_quote(result.output, 200)}"]
    scoring = result.backend.get("scoring")
    unit = result.score_unit
    if scoring == "top_logprobs":
        lines.append(
            "scores: estimated from regenerated outputs' top log-probabilities (no forced scoring at this endpoint)"
        )
    if result.score_kind == "text-similarity":
        lines.append(
            "scores: share of each output token lost from the regenerated text "
            "(text-only endpoint: similarity, not log-probabilities)"
        )
    else:
        lines.extend(describe_scores(result))
    totals = result.unit_scores
    positive = float(np.clip(totals, 0.0, None).sum())
    sign = "+ supports the output"
    if result.contrast is not None:
        sign = f"+ favours {_quote(result.output, 24)} over {_quote(result.contrast.text, 24)}"
    lines.append("")
    lines.append(
        f"top {min(top, len(result.units))} of {len(result.units)} {_flat(result.level)} units "
        f"({result.method}; {unit}, summed over output tokens; {sign}):"
    )
    within = result.within_noise
    lines.append(f"  {'rank':>4}  {'score':>8}  {'share':>6}  {'chars':>11}  unit in context")
    for rank, item in enumerate(result.top(top), start=1):
        share = f"{100 * item.score / positive:5.1f}%" if positive > 0 and item.score > 0 else "     -"
        unit_ = item.unit
        span = f"{unit_.start}-{unit_.end}"
        noisy = " (within noise)" if within is not None and within[item.index] else ""
        context = _in_context(result.source_text(unit_), unit_.start, unit_.end)
        if result.messages is not None:
            context = f"{_flat(unit_.role)}: {context}"
        lines.append(f"  {rank:>4}  {item.score:>+8.3f}  {share:>6}  {span:>11}  {context}{noisy}")
    if result.noise is not None:
        noise = result.noise
        lines.append(
            f"noise floor: {noise.samples} samples of the unperturbed prompt, sd {noise.sd_total:.4f}; "
            f"|score| <= {noise.threshold:.4f} is within noise "
            f"({sum(noise.within_noise):,} of {len(result.units):,} units)"
        )
    lines.extend(describe_trace(result))
    lines.append("")
    lines.append(describe_cost(result))
    return _lines(lines)


def render_audit(result: Attribution, *, top: int = 5) -> str:
    """Render an audit for a terminal: role shares, the top system-prompt units, the hidden-influence verdict.

    Returns:
        Multi-line text; shares are Shapley values of the messages (they sum to 100%).
    """
    lines = [f"output: {_quote(result.output, 200)}"]
    unit = result.score_unit
    lines.extend(describe_scores(result, context="chat"))
    findings = audit_findings(result)
    if findings is not None and findings.role_shares:
        shares = ", ".join(f"{_flat(share.label)} {100 * share.share:.1f}%" for share in findings.role_shares)
        lines.append(f"role shares (Shapley values of the messages): {shares}")
    ranked = result.top(len(result.units))
    system_units = [item for item in ranked if item.unit.role == "system"][:top]
    if system_units:
        positive = sum(max(0.0, s.score) for s in ranked if s.unit.role == "system")
        lines.append("")
        lines.append(
            f"top {len(system_units)} system-prompt {result.level} units "
            f"({unit}; share of the system prompt's positive attribution):"
        )
        for rank, item in enumerate(system_units, start=1):
            share = f"{100 * item.score / positive:5.1f}%" if positive > 0 and item.score > 0 else "     -"
            context = _in_context(result.source_text(item.unit), item.unit.start, item.unit.end)
            lines.append(f"  {rank:>4}  {item.score:>+8.3f}  {share}  {context}")
    if findings is not None and findings.verdict is not None:
        verdict = findings.verdict
        lines.append("")
        lines.append(f"hidden influence: {verdict.headline} (score {verdict.score:.3f}, {_flat(verdict.method)})")
        for finding in findings.indicators:
            lines.append(
                f"  {_flat(finding.label)}: {finding.sentence} "
                f"(score {finding.score:.3f}, flag at >= {finding.threshold:g})"
            )
    lines.append("")
    lines.append(describe_cost(result))
    return _lines(lines)


def _ids(ids: list[str]) -> str:
    return ", ".join(_flat(i) for i in ids) if ids else "-"


def render_cite(result: Attribution, *, top: int = 3) -> str:
    """Render a context attribution (:func:`attrib.cite`) for a terminal: each claim with its
    strongest sources (nats), its verdict and its citation check, then the cost.

    Args:
        result: a result with a ``context``.
        top: how many sources to list per claim.

    Returns:
        Multi-line text; sources, answer and claims are shown as data (escaped, one line each).

    Raises:
        ValueError: for a result without a context.
    """
    context = result.context
    if context is None:
        raise ValueError("render_cite needs a result of attrib.cite (with a context)")
    lines = [f"answer: {_quote(result.answer, 200)}"]
    lines.extend(describe_scores(result, context="prompt"))
    rule = (
        f"a source supports a claim when, given alone, it raises the claim's log-probability by more than "
        f"{context.support:g} of the claim's information (its surprisal without sources)"
        if context.empty_logprobs is not None
        else f"a source supports a claim when removing it drops the claim's log-probability by more than "
        f"{context.support:g} nats per claim token"
    )
    lines.append(f"sources: {len(context.sources)} ({_ids(context.ids)}); units at {_flat(result.level)} level; {rule}")
    lines.append("")
    for number, claim in enumerate(context.claims, start=1):
        verdict = "supported" if claim.supported else "UNSUPPORTED"
        gains = sorted(claim.sufficiency or claim.sources, key=lambda item: -item[1])
        best = gains[0] if gains else None
        detail = (
            f"by {_ids(claim.supporting)}"
            if claim.supported
            else (f"best {_flat(best[0])} {best[1]:+.3f} <= {claim.threshold:.3f} nats" if best else "no source")
        )
        of = (
            f"{context.support:g} x its information {claim.information:.3f} nats"
            if claim.information is not None
            else f"{context.support:g} x {claim.columns} tokens"
        )
        lines.append(f"{number:>3}. {_quote(claim.text, 100)}  chars {claim.start}-{claim.end}")
        lines.append(f"     {verdict} ({detail}; threshold {claim.threshold:.3f} nats = {of})")
        shown = ", ".join(f"{_flat(source)} {score:+.3f}" for source, score in claim.sources[: max(0, top)])
        lines.append(f"     removed (nats): {shown}")
        if claim.sufficiency is not None:
            alone = ", ".join(f"{_flat(source)} {gain:+.3f}" for source, gain in gains[: max(0, top)])
            lines.append(f"     alone (nats): {alone}")
        for source, row, drop in claim.needs:
            text = _quote(result.units[row].text.strip(), 80)
            lines.append(f"     in {_flat(source)} alone, needs most: {text} (removed {drop:+.3f} nats)")
        if claim.cited or claim.supported:
            check = [f"cited {_ids(claim.cited)}"]
            if claim.cited:
                check.append(f"verified {_ids(claim.verified)}")
                check.append(f"cited but not used {_ids(claim.cited_not_used)}")
            check.append(f"used but not cited {_ids(claim.used_not_cited)}")
            lines.append(f"     citations: {'; '.join(check)}")
    if not context.claims:
        lines.append("no claims: the answer holds no sentence with words")
    lines.append("")
    lines.append(describe_cost(result))
    return _lines(lines)

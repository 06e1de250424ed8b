"""Plain-text view of an attribution: the output, the top units, and what the run cost."""

from __future__ import annotations

import numpy as np

from attrib.result import Attribution

__all__ = ["render_text", "render_audit", "describe_cost"]


def _flat(text: str) -> str:
    """Text on one line: newlines, tabs and other control characters as escapes."""
    return repr(text)[1:-1]


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
    return f"{left[-(width + 1):]}[{_flat(prompt[start:end])}]{right[: width + 1]}"


def describe_cost(result: Attribution) -> str:
    """One line with calls, tokens evaluated and seconds (and the budget, if it stopped the run)."""
    stats = result.stats
    parts = [
        f"{stats.calls:,} calls",
        f"{stats.tokens_evaluated:,} tokens evaluated",
        f"{stats.seconds:.1f} s",
    ]
    if result.method == "hipe":
        parts[0] += f" (itp at {result.level} level: {len(result.units) + 1:,})"
    line = "cost: " + ", ".join(parts)
    usage = stats.backend_usage
    if usage:
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
        line += f"\nbudget of {stats.budget} calls reached: refinement stopped early; scores of unrefined chunks are coarse"
    return line


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
    if scoring == "top_logprobs":
        lines.append("scores: estimated from regenerated outputs' top log-probabilities (no forced scoring at this endpoint)")
    if result.score_kind == "text-similarity":
        lines.append("scores: share of each output token lost from the regenerated text (text-only endpoint; not nats)")
    elif result.output_logprob is not None:
        lines.append(
            f"log p(output | prompt) = {result.output_logprob:.3f} nats over {len(result.output_tokens)} tokens"
        )
    totals = result.unit_scores
    positive = float(np.clip(totals, 0.0, None).sum())
    lines.append("")
    lines.append(
        f"top {min(top, len(result.units))} of {len(result.units)} {result.level} units "
        f"({result.method}; {'nats' if result.score_kind == 'logprob' else 'text-similarity'}, "
        "summed over output tokens; + supports the output):"
    )
    within = result.within_noise
    lines.append(f"  {'rank':>4}  {'score':>8}  {'share':>6}  {'chars':>11}  unit in context")
    for rank, item in enumerate(result.top(top), start=1):
        share = f"{100 * item.score / positive:5.1f}%" if positive > 0 and item.score > 0 else "     -"
        unit = item.unit
        span = f"{unit.start}-{unit.end}"
        noisy = " (within noise)" if within is not None and within[item.index] else ""
        lines.append(
            f"  {rank:>4}  {item.score:>+8.3f}  {share:>6}  {span:>11}  "
            f"{_in_context(result.prompt, unit.start, unit.end)}{noisy}"
        )
    if result.noise is not None:
        lines.append(
            f"noise floor: {result.noise['samples']} samples of the unperturbed prompt, sd {result.noise['sd_total']:.4f}; "
            f"|score| <= {result.noise['threshold']:.4f} is within noise "
            f"({sum(result.noise['within_noise']):,} of {len(result.units):,} units)"
        )
    lines.append("")
    lines.append(describe_cost(result))
    return "\n".join(lines)


def render_audit(result: Attribution, *, top: int = 5) -> str:
    """Render an audit for a terminal: role shares, the top system-prompt units, the hidden-influence verdict.

    Returns:
        Multi-line text; shares are Shapley values of the messages (they sum to 100%).
    """
    lines = [f"output: {_quote(result.output, 200)}"]
    if result.output_logprob is not None:
        lines.append(f"log p(output | chat) = {result.output_logprob:.3f} nats over {len(result.output_tokens)} tokens")
    if result.roles:
        shares = ", ".join(f"{role} {100 * share:.1f}%" for role, share in result.roles.items())
        lines.append(f"role shares (Shapley values of the messages): {shares}")
    system_units = [item for item in result.top(len(result.units)) if item.unit.role == "system"][:top]
    if system_units:
        positive = sum(max(0.0, s.score) for s in result.top(len(result.units)) if s.unit.role == "system")
        lines.append("")
        lines.append(f"top {len(system_units)} system-prompt {result.level} units (nats; share of the system prompt's positive attribution):")
        content = (result.messages or [{}])[system_units[0].unit.message].get("content", "")
        for rank, item in enumerate(system_units, start=1):
            unit = item.unit
            share = f"{100 * item.score / positive:5.1f}%" if positive > 0 and item.score > 0 else "     -"
            lines.append(f"  {rank:>4}  {item.score:>+8.3f}  {share}  {_in_context(content, unit.start, unit.end)}")
    verdict = result.hidden_influence
    if verdict:
        lines.append("")
        flag = "YES: something the caller cannot see appears to steer this output" if verdict["flag"] else "no"
        lines.append(f"hidden influence: {flag} (score {verdict['score']:.3f}, {verdict['method']})")
        for name, indicator in verdict["indicators"].items():
            evidence = indicator["evidence"]
            if name == "reference_free":
                lines.append(
                    f"  reference-free: with nothing visible the output keeps {evidence['retained_per_token']:+.3f} nats/token "
                    f"(per-token probability {indicator['score']:.3f}, flag at >= {indicator['threshold']}); "
                    f"the visible chat adds {evidence['explained_per_token']:+.3f} nats/token"
                )
            else:
                lines.append(
                    f"  differential: the audited endpoint finds its output {evidence['gain_per_token']:+.3f} nats/token "
                    f"likelier than the reference (score {indicator['score']:.3f}, flag at >= {indicator['threshold']})"
                )
    lines.append("")
    lines.append(describe_cost(result))
    return "\n".join(lines)

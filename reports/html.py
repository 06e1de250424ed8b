"""Self-contained HTML report of an attribution: one page, no external resources.

The page embeds the whole result as JSON (``Attribution.to_dict()``) in a
``<script type="application/json" id="attrib-data">`` element and draws its
views with dependency-free JavaScript. The page's style and behaviour live in
``templates/report.css`` and ``templates/report.js`` and are inlined at render
time, so the page stays one file. Prompt and output text reach the DOM only as
text (``textContent``), never as markup. Every number is labelled with the
result's own unit (``Attribution.score_unit``: nats, or similarity for
text-only endpoints); the audit section renders ``reports.findings``. A contrastive
result says what its scores mean and marks the contrast's columns; a coalition
method's record is shown from ``reports.method_trace``.

    >>> from attrib.reports.html import render_html
    >>> page = render_html(result)                     # doctest: +SKIP
    >>> Path("report.html").write_text(page, encoding="utf-8")  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import numpy as np

from attrib.reports.findings import audit_findings
from attrib.reports.method_trace import method_trace_view
from attrib.reports.text import budget_effect
from attrib.result import Attribution, Trace
from attrib.result.context import claim_columns

__all__ = ["render_html", "render_notebook", "embed_json", "template_asset", "template_environment"]

_TEMPLATES = Path(__file__).resolve().parent / "templates"

#: Characters that could end the data ``<script>`` element or start markup/entities.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


@lru_cache(maxsize=8)
def template_asset(name: str) -> str:
    """The text of a file of ``templates/`` (a page's CSS or JavaScript), read once."""
    return (_TEMPLATES / name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def template_environment() -> jinja2.Environment:
    """The Jinja environment (autoescaping on), built once."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def embed_json(data: Any) -> str:
    """JSON text that is safe to place inside a ``<script>`` element.

    ``<``, ``>`` and ``&`` are written as JSON escapes (``\\u003c``, ``\\u003e``,
    ``\\u0026``), so no string in ``data`` can close the element or open a comment,
    and the text is still valid JSON that parses to ``data``.

    Raises:
        ValueError: if ``data`` holds non-finite floats.
    """
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.translate(_SCRIPT_SAFE)


def _count(value: Any) -> str:
    """An integer with thousands separators (anything else as text)."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _compact(mapping: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    """``key=value`` pairs on one line (nested values as compact JSON)."""
    parts = []
    for key, value in mapping.items():
        if key in skip:
            continue
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        parts.append(f"{key}={shown}")
    return ", ".join(parts)


def _method_rows(result: Attribution) -> list[tuple[str, str, str]]:
    """Rows of the run table: (key for data-key, label, value)."""
    stats = result.stats
    backend = result.backend or {}
    perturbation = dict(result.perturbation or {})
    pert = str(perturbation.get("name", ""))
    extra = _compact(perturbation, skip=("name",))
    if extra:
        pert += f" ({extra})"
    budget = "none" if stats.budget is None else _count(stats.budget)
    if stats.budget_exhausted:
        budget += f" · budget reached ({budget_effect(result)})"
    rows = [
        ("method", "method", result.method),
        ("level", "level", result.level),
        *([("contrast", "contrast", result.contrast.text)] if result.contrast is not None else []),
        ("perturbation", "perturbation", pert),
        ("backend", "backend", str(backend.get("name", ""))),
        ("model", "model", str(backend.get("model", ""))),
        ("calls", "calls", _count(stats.calls)),
        ("tokens_evaluated", "tokens evaluated", _count(stats.tokens_evaluated)),
        ("seconds", "seconds", f"{stats.seconds:.2f}"),
        ("generated_tokens", "generated tokens", _count(stats.generated_tokens)),
        ("reused", "reused", _count(stats.reused)),
        ("budget", "budget", budget),
    ]
    other_backend = _compact(backend, skip=("name", "model"))
    if other_backend:
        rows.append(("backend_details", "backend details", other_backend))
    if result.parameters:
        rows.append(("parameters", "parameters", _compact(result.parameters)))
    return rows


def _context_view(result: Attribution) -> dict[str, Any] | None:
    """The claims and sources of a context attribution (``None`` for other results).

    Below the ``source`` level each source also lists its units (``row``, ``text``) and the
    view holds, per claim, every unit's score for it (``unit_scores``, one list per claim,
    nats, shape (n_claims, n_units)): the sum of ``scores`` over the claim's columns less
    its citation markers (:func:`attrib.result.context.claim_columns`), and, per claim, the
    rows of the units it needs most in its supporting sources given alone (``evidence``).
    """
    context = result.context
    if context is None:
        return None
    fine = result.level != "source"
    sources = []
    for source in context.sources:
        entry: dict[str, Any] = {"id": source.id, "text": result.prompt[source.start : source.end]}
        if fine:
            rows = range(*source.units)
            entry["units"] = [{"row": row, "text": result.units[row].text} for row in rows]
        sources.append(entry)
    unit_scores = None
    if fine:
        scores = np.asarray(result.scores, dtype=float)
        unit_scores = [
            [float(x) for x in scores[:, claim_columns(context, claim)].sum(axis=1)] for claim in context.claims
        ]
    evidence = [[row for _, row, _ in claim.needs] for claim in context.claims]
    return {
        "claims": list(context.claims),
        "sources": sources,
        "fine": fine,
        "unit_scores": unit_scores,
        "evidence": evidence,
    }


def render_html(result: Attribution) -> str:
    """Render ``result`` as a complete, self-contained HTML5 page.

    Args:
        result: the attribution to show.

    Returns:
        The page as text (UTF-8 when written). It loads nothing from the network:
        styles and scripts are inline and the result is embedded as JSON.

    Raises:
        ResultError: if the result holds non-finite scores (they cannot be written as JSON).
        OSError: if the package's template files are missing.
    """
    data = result.to_dict()
    roles = list(dict.fromkeys(unit.role for unit in result.units))
    context = _context_view(result)
    claim_units = None if context is None or context["unit_scores"] is None else context["unit_scores"]
    template = template_environment().get_template("report.html.j2")
    return template.render(
        output=result.output,
        output_logprob=result.output_logprob if result.score_kind == "logprob" else None,
        contrast=None
        if result.contrast is None
        else {"text": result.contrast.text, "logprob": result.contrast_logprob},
        unit=result.score_unit,
        n_units=len(result.units),
        n_tokens=len(result.output_tokens),
        method_rows=_method_rows(result),
        budget_exhausted=result.stats.budget_exhausted,
        budget_effect=budget_effect(result),
        method_trace=method_trace_view(result),
        show_roles=len(roles) > 1,
        audit=audit_findings(result),
        context=context,
        claim_units_json=None if claim_units is None else markupsafe.Markup(embed_json(claim_units)),
        show_tree=isinstance(result.trace, Trace) and bool(result.trace.chunks),
        css=markupsafe.Markup(template_asset("report.css")),  # our own files, inlined as they are
        script=markupsafe.Markup(template_asset("report.js")),
        data_json=markupsafe.Markup(embed_json(data)),  # <, >, & are escaped as JSON escapes
    )


def render_notebook(result: Attribution, *, height: int = 600) -> str:
    """The report as an ``<iframe>`` for Jupyter (``_repr_html_``).

    The full page goes in the ``srcdoc`` attribute, attribute-escaped, so it runs
    isolated from the notebook's own page and styles; the frame is sandboxed
    (scripts and downloads allowed, no access to the notebook's origin).

    Args:
        result: the attribution to show.
        height: frame height in pixels.

    Returns:
        One ``<iframe>`` element as HTML text.
    """
    page = html.escape(render_html(result), quote=True)
    return (
        f'<iframe srcdoc="{page}" width="100%" height="{int(height)}" '
        f'style="width: 100%; height: {int(height)}px; border: 1px solid #ddd;" '
        f'sandbox="allow-scripts allow-downloads" title="attrib report"></iframe>'
    )

"""Self-contained HTML page of a dataset summary (``attrib summarize OUT_DIR --html PAGE``).

The page follows the single report's safety approach (:mod:`attrib.reports.html`):
one file, inline CSS and JavaScript, a Content-Security-Policy that allows no
request, the summary embedded as JSON in a ``<script type="application/json">``
element (``<``, ``>``, ``&`` written as JSON escapes), and every text from the
data (prompts, outputs, unit texts, ids) put into the page with ``textContent``,
never as markup. The distributions are drawn as inline SVG: a box plot with the
items' points for each system unit's share, bars for top-unit rates, per-label
accuracy and role shares; a cite section (when the OUT_DIR holds cite items) tables the
sources' use, the unsupported-claim rate and the citation agreement.

Per-item links: with ``item_reports=True`` each ok item's full report is written
with :meth:`Attribution.to_html` to ``items/<key>.html`` beside the page, and the
page links there; otherwise the page links to the item's JSON in the OUT_DIR
(relative to the page). A link is only made for a result file the OUT_DIR layout
allows (``items/<key>.json``, ``<key>`` without a slash, backslash or leading dot);
links are URL-quoted.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from pathlib import Path

import markupsafe

from attrib.reports.html import embed_json, template_asset, template_environment
from attrib.result import Attribution
from attrib.result.files import write_atomic
from attrib.summary import DatasetSummary

__all__ = ["render_summary_html", "write_summary_html"]

_ITEM_FILE = re.compile(r"items/([^/\\\x00]+)\.json")


def item_key(file: str) -> str | None:
    """The ``<key>`` of a record's ``items/<key>.json``, ``None`` for any other path."""
    match = _ITEM_FILE.fullmatch(file)
    return None if match is None or match.group(1).startswith(".") else match.group(1)


def render_summary_html(summary: DatasetSummary, *, links: dict[str, str] | None = None) -> str:
    """The summary as one self-contained HTML5 page.

    Args:
        summary: the dataset summary.
        links: item id -> relative URL of its report (already URL-quoted); items
            without an entry are listed without a link.

    Returns:
        The page as text; it loads nothing from the network.

    Raises:
        ValueError: if the summary holds non-finite numbers.
    """
    data = summary.to_dict()
    data["links"] = dict(links or {})
    template = template_environment().get_template("summary.html.j2")
    return template.render(
        summary=summary,
        css=markupsafe.Markup(template_asset("summary.css")),  # our own files, inlined as they are
        script=markupsafe.Markup(template_asset("summary.js")),
        data_json=markupsafe.Markup(embed_json(data)),  # <, >, & are escaped as JSON escapes
    )


def write_summary_html(summary: DatasetSummary, path: str | Path, *, item_reports: bool = True) -> Path:
    """Write the summary page to ``path``, with per-item reports beside it when asked.

    Args:
        summary: the dataset summary (its ``out_dir`` is where the results are read).
        path: the page to write (whole or not at all).
        item_reports: write each ok item's report to ``items/<key>.html`` beside the
            page and link there; ``False`` links to the items' JSON instead.

    Returns:
        The page's path.

    Raises:
        ResultError: if an item's result file is invalid.
        OSError: if a file cannot be read or written.
    """
    page = Path(path)
    here = page.resolve().parent
    links: dict[str, str] = {}
    listed = [(row.id, row.file) for row in summary.rows]
    listed += [(row.id, row.file) for row in (summary.cite.rows if summary.cite is not None else ())]
    for item_id, file in listed:
        key = item_key(file)
        if key is None:
            continue
        source = Path(summary.out_dir) / "items" / f"{key}.json"
        if item_reports:
            target = here / "items" / f"{key}.html"
            target.parent.mkdir(parents=True, exist_ok=True)
            Attribution.from_json(source).to_html(target)
        else:
            target = source.resolve()
        links[item_id] = urllib.parse.quote(Path(os.path.relpath(target, here)).as_posix())
    write_atomic(page, render_summary_html(summary, links=links))
    return page

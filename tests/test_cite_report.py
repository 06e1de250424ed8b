"""The HTML report of a context attribution: claims beside sources, verdicts as text, data escaped."""

from __future__ import annotations

import html
import json
import re

import pytest

import attrib
from attrib.backends.toy import ToyBackend
from attrib.reports.html import render_html

QUESTION = "When was the tower finished?"


def _result():
    answer = " The tower was finished in 1889 [b]. Cats rule the city."
    n = len(ToyBackend().tokenize(answer).ids)
    toy = ToyBackend(sensitivity={"gustave": [1.5] * 9 + [0.0] * (n - 9)}, output=answer)
    sources = [
        {"id": "1", "text": "Gustave built it in 1889. <script>alert(1)</script>"},
        {"id": "b", "text": "Rivers flood & <b>rise</b>."},
    ]
    return attrib.cite(QUESTION, sources, answer=answer, backend=toy, method="itp")


def test_claims_and_sources_are_shown_side_by_side_with_verdicts_in_text():
    result = _result()
    page = render_html(result)
    assert 'id="claims"' in page and 'id="sources"' in page
    first, second = result.claims
    assert first.supporting == ["1"] and not second.supported
    assert 'data-supports="1"' in page
    assert page.count('data-source="') == 2
    assert "unsupported: no source exceeds" in page
    assert "cited but not used: b" in page and "used but not cited: 1" in page


def test_source_text_is_escaped_never_markup():
    page = render_html(_result())
    section = page[page.index('id="sources"') : page.index("</ul>", page.index('id="sources"'))]
    assert "<script>alert(1)</script>" not in section and "<b>rise</b>" not in section
    assert html.escape("<script>alert(1)</script>", quote=False) in section


def test_a_result_without_a_context_has_no_claims_section():
    page = render_html(attrib.attribute("The tower", backend=ToyBackend(output=" stands"), method="itp"))
    assert not re.search(r'id="claims"', page)


def test_attrib_report_on_a_saved_v3_result_shows_the_claims(tmp_path):
    import subprocess
    import sys

    saved = tmp_path / "result.json"
    _result().to_json(saved)
    out = tmp_path / "report.html"
    run = subprocess.run(
        [sys.executable, "-m", "attrib", "report", str(saved), "-o", str(out)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    page = out.read_text(encoding="utf-8")
    assert 'id="claims"' in page and "used but not cited: 1" in page


# ----------------------------------------------------------------- units inside sources


def _sentence_result(level: str = "sentence"):
    """Sources a, b, c of tests/test_cite.py at ``level``: claim 0 needs source a's ' Gustave built it.',
    claim 1 source b's ' The river floods in spring.'; removing ' Museums open at nine.' raises claim 0
    (a negative score), and ' Bridges cross the river.' moves only the claim's citation marker [a]."""
    from tests.test_cite import ANSWER, SOURCES, _columns, _toy

    probe = ToyBackend(output=ANSWER)
    marker = _columns(probe, ANSWER, ANSWER.index("[a]"), ANSWER.index("[a]") + 3)
    claim = _columns(probe, ANSWER, 0, ANSWER.index("[a]"))
    toy = _toy(bridges=dict.fromkeys(marker, 40.0), museums=dict.fromkeys(claim, -0.5))
    return attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=toy, method="itp", level=level)


def _claim_units(page: str) -> list[list[float]]:
    found = re.search(r'<script type="application/json" id="attrib-claim-units">(.*?)</script>', page, re.S)
    assert found is not None
    return json.loads(found.group(1))


def test_below_the_source_level_each_claim_carries_every_units_score_markers_left_out():
    from attrib.result.context import claim_columns

    result = _sentence_result()
    context = result.context
    page = render_html(result)
    rows = _claim_units(page)
    assert len(rows) == len(result.claims) == 3 and all(len(row) == len(result.units) for row in rows)
    for row, claim in zip(rows, result.claims, strict=True):
        expected = result.scores[:, claim_columns(context, claim)].sum(axis=1)
        assert row == pytest.approx(list(expected))
    texts = [unit.text for unit in result.units]
    first = rows[0]
    assert texts[max(range(len(first)), key=first.__getitem__)] == " Gustave built it.\n\n"
    assert first[texts.index(" Bridges cross the river.")] == 0.0  # it moves only the marker [a]
    assert first[texts.index(" Museums open at nine.")] < 0
    assert page.count('class="source-unit"') == len(result.units)


def test_at_the_source_level_the_sources_are_shown_whole_without_unit_scores():
    page = render_html(_sentence_result("source"))
    assert 'id="attrib-claim-units"' not in page and 'class="source-unit"' not in page
    assert page.count('data-source="') == 3


def test_unit_text_inside_sources_is_escaped_never_markup():
    sources = [
        {"id": "1", "text": "Gustave built it in 1889. <script>alert(1)</script> <b>bold</b>."},
        {"id": "x", "text": "Rivers & </span><i>flood</i>."},
    ]
    toy = ToyBackend(sensitivity={"gustave": 1.0}, output=" Built in 1889.")
    page = render_html(attrib.cite(QUESTION, sources, answer=" Built in 1889.", backend=toy, level="word"))
    section = page[page.index('id="sources"') : page.index("</ul>", page.index('id="sources"'))]
    assert "<script>" not in section and "<b>" not in section and "<i>" not in section and "</span><i>" not in section
    assert "&lt;script&gt;" in section and "&lt;/span&gt;&lt;i&gt;" in section

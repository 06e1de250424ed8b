"""The HTML report of a context attribution: claims beside sources, verdicts as text, data escaped."""

from __future__ import annotations

import html
import re

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

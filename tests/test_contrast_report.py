"""Contrastive results and coalition-method records in the text view, the HTML page and headless Chromium."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

import attrib
from attrib.backends.toy import ToyBackend
from attrib.reports.text import render_text
from attrib.result import Contrast
from tests.test_contrast import CONTRAST, PROMPT, SENSITIVITY, TARGET, AnswerToy

PAYLOAD = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
REDUNDANT = "The capital is Paris. The seat of government is Paris. Cats sleep. Dogs bark. Birds fly. Fish swim."


def _contrastive(level: str = "sentence"):
    return attrib.attribute(
        PROMPT, backend=AnswerToy(SENSITIVITY, TARGET), method="itp", level=level, contrast=CONTRAST
    )


def _sampled(method: str, budget: int):
    toy = ToyBackend(sensitivity={"paris": 2.0, ("capital", "seat"): 1.5}, output=" yes")
    return attrib.attribute(REDUNDANT, backend=toy, method=method, level="word", budget=budget)


def test_the_text_view_says_what_contrastive_scores_mean():
    text = render_text(_contrastive())
    assert 'contrast: " 4528"' in text
    assert 'positive: the unit makes " 7328" likelier than " 4528"' in text
    assert "log p(output | prompt) = -0.250 nats over 1 tokens" in text  # the output's own tokens only
    assert "log p(contrast | prompt) = -0.250 nats over 1 tokens" in text
    assert '+ favours " 7328" over " 4528"' in text
    assert "+ supports the output" not in text


def test_the_text_view_of_a_plain_result_is_unchanged_by_the_contrast_code():
    plain = attrib.attribute(PROMPT, backend=ToyBackend(output=TARGET), method="itp", level="sentence")
    text = render_text(plain)
    assert "contrast" not in text
    assert "+ supports the output" in text


@pytest.mark.parametrize(
    ("method", "budget", "expected"),
    [
        ("surrogate", 30, ["surrogate record:", "ablation masks: 29", "held-out LDS (Spearman, fit vs. measured):"]),
        ("lime", 30, ["lime record:", "held-out R² of the fit:"]),
        ("shapley", 40, ["shapley record:", "permutations sampled: 2 (antithetic pairs)", "largest standard error"]),
        ("kernelshap", 30, ["kernelshap record:", "coalitions scored: 29 (each with its complement)"]),
        ("hierarchical", 30, ["hierarchical record:", "calls spent by HiPe", "shapley in the region:"]),
    ],
)
def test_the_text_view_shows_the_coalition_methods_record_and_what_the_budget_did(method, budget, expected):
    result = _sampled(method, budget)
    assert result.stats.budget_exhausted
    text = render_text(result)
    for line in expected:
        assert line in text
    assert "  budget: The call budget cut" in text
    assert "scores of unrefined chunks are coarse" not in text  # HiPe's wording is not a coalition method's


def test_an_exact_coalition_run_has_no_budget_note():
    toy = ToyBackend(sensitivity={"paris": 2.0}, output=" yes")
    result = attrib.attribute(REDUNDANT, backend=toy, method="shapley", level="sentence")
    text = render_text(result)
    assert "values: exact (every coalition scored)" in text
    assert "budget:" not in text


def test_the_html_page_shows_the_contrast_escaped_and_what_the_scores_mean():
    result = _contrastive()
    hostile = dataclasses.replace(result, contrast=Contrast(text=PAYLOAD, start=result.contrast.start))
    page = hostile.to_html()
    assert PAYLOAD not in page  # only escaped forms reach the page
    assert 'id="contrast-text">&lt;script&gt;' in page
    assert "Scores are contrastive" in page
    assert 'data-key="contrast"' in page


def test_the_html_page_shows_the_method_record_and_its_budget_note():
    page = _sampled("surrogate", 30).to_html()
    assert 'id="method-trace"' in page
    assert 'data-key="lds"' in page
    assert 'id="trace-budget-note"' in page
    assert "refinement stopped early" not in page


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield instance
        instance.close()


def _open(browser, result, tmp_path):
    path = tmp_path / "report.html"
    result.to_html(path)
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri())
    page.wait_for_selector("#prompt .unit")
    return page, requests


@pytest.mark.browser
def test_a_contrastive_report_renders_and_marks_the_contrast_columns(browser, tmp_path):
    result = _contrastive("word")
    hostile = dataclasses.replace(result, contrast=Contrast(text=PAYLOAD, start=result.contrast.start))
    page, requests = _open(browser, hostile, tmp_path)
    assert page.text_content("#contrast-text") == PAYLOAD  # shown as text, never run
    assert page.evaluate("window.__pwned") is None
    assert page.text_content("#view-label").startswith("contrastive total")
    tokens = page.query_selector_all("#output .token")
    assert len(tokens) == len(result.output_tokens) == 2
    assert "contrast" not in (tokens[0].get_attribute("class") or "")
    assert "contrast" in (tokens[1].get_attribute("class") or "")
    assert page.text_content("#output .contrast-label") == "contrast:"
    tokens[1].click()
    assert page.text_content("#view-label").startswith("contrast token 0")
    # the contrast column shades "4528" as favouring the contrast (a negative score)
    scores = page.eval_on_selector_all(
        "#prompt .unit", "units => units.map(u => [u.textContent, Number(u.dataset.score)])"
    )
    by_text = {text.strip(" .?"): score for text, score in scores}
    assert by_text["4528"] == pytest.approx(-2.0, abs=1e-3)
    assert by_text["7328"] == pytest.approx(0.0, abs=1e-3)
    assert all(url.startswith("file:") for url in requests)


@pytest.mark.browser
def test_the_coalition_record_renders(browser, tmp_path):
    page, _ = _open(browser, _sampled("hierarchical", 30), tmp_path)
    assert page.is_visible("#method-trace")
    assert page.text_content("#h-method-trace") == "hierarchical record"
    assert "shapley in the region" in page.text_content("#method-trace")
    assert page.is_visible("#trace-budget-note")

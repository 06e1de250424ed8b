"""The HTML dataset summary driven in headless Chromium: it draws, payloads stay text, nothing is requested."""

from __future__ import annotations

import shutil
from urllib.parse import unquote

import pytest
from playwright.sync_api import sync_playwright

from attrib.reports.summary import write_summary_html
from attrib.summary import summarize
from tests.summary_helpers import PAYLOAD, write_out_dir

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def page_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("summary")
    out = write_out_dir(root / "out")
    return write_summary_html(summarize(out), root / "summary.html")


@pytest.fixture
def opened(browser, page_path):
    page = browser.new_page()
    requests: list[str] = []
    blocked: list[str] = []
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: errors.append(str(error)))
    own = page_path.as_uri()

    def gate(route):
        if route.request.url == own:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", gate)
    page.goto(page_path.as_uri())
    page.wait_for_selector("#item-table tbody tr")
    yield page, requests, blocked, dialogs, errors
    page.close()


def test_the_page_draws_the_distributions(opened):
    page, _, _, _, errors = opened
    assert errors == []
    plots = page.query_selector_all("svg.share-plot")
    assert len(plots) == 3  # one per system unit
    assert page.eval_on_selector_all("svg.share-plot circle.dot", "dots => dots.length") == 12  # 4 items x 3 units
    widths = page.eval_on_selector_all("svg.share-plot rect.box", "r => r.map(x => +x.getAttribute('x'))")
    assert widths[0] > widths[1] > widths[2]  # shares 4/7 > 2/7 > 1/7 along the same axis
    assert page.eval_on_selector_all("#role-plot rect.bar", "bars => bars.length") == 2
    assert "3 of 4 labelled items (75.0%)" in page.inner_text("#accuracy-0")
    assert "of 4 audited items flagged" in page.inner_text("#flag-rate")
    assert page.eval_on_selector_all("#first-units tr", "rows => rows.length") == 2
    assert "EmptyPromptError" in page.inner_text("#error-table")


def test_a_payload_in_a_prompt_stays_text(opened):
    page, _, _, dialogs, _ = opened
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    cells = page.eval_on_selector_all("#item-table td", "cells => cells.map(c => c.textContent)")
    assert PAYLOAD in cells
    assert page.query_selector("#item-table img") is None
    assert page.query_selector("#item-table script") is None


def test_no_request_leaves_the_page(opened, page_path):
    page, requests, blocked, _, _ = opened
    page.click("#misses-only")
    assert page.eval_on_selector_all("#item-table tbody tr:not(.hidden-row)", "rows => rows.length") == 1
    page.click("#misses-only")
    assert requests == [page_path.as_uri()]
    assert blocked == []


def test_item_links_open_the_item_reports(opened, page_path):
    page, _, _, _, _ = opened
    hrefs = page.eval_on_selector_all("#item-table a", "links => links.map(a => a.getAttribute('href'))")
    assert len(hrefs) == 6
    for href in hrefs:
        assert href.startswith("items/") and href.endswith(".html")
    target = page_path.parent / "items"
    assert sorted(p.name for p in target.iterdir()) == sorted(unquote(h.removeprefix("items/")) for h in hrefs)


def test_the_cite_section_tables_sources_and_citations_and_keeps_payloads_as_text(browser, tmp_path):
    from tests.summary_helpers import write_cite_out_dir

    out = write_cite_out_dir(tmp_path / "cite", payload=PAYLOAD)
    path = write_summary_html(summarize(out), tmp_path / "cite.html")
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri())
    page.wait_for_selector("#cite-items tbody tr")
    assert errors == [] and page.evaluate("window.__pwned") is None
    assert "3 of 9 claims unsupported (33.3%)" in page.inner_text("#cite-unsupported")
    assert "9 claims with markers: 5 verified (55.6%), 4 mismatch (44.4%); 1 claim uses" in page.inner_text(
        "#cite-citations"
    )
    by_id = page.eval_on_selector_all(
        "#cite-by-id tbody tr", "rows => rows.map(r => r.cells[0].textContent + ':' + r.cells[1].textContent)"
    )
    assert by_id == ["a:3", "b:2", "c:1"]
    assert any(
        PAYLOAD in cell
        for cell in page.eval_on_selector_all("#cite-items td", "cells => cells.map(c => c.textContent)")
    )
    assert page.query_selector("#cite img") is None and page.query_selector("#cite-items a[href='items/c1.html']")
    page.close()

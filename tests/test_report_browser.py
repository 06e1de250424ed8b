"""The HTML report driven in headless Chromium: clicks, hovers, and injected markup that must stay inert."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

import attrib
from attrib.backends.toy import ToyBackend

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAYLOADS = (
    "<script>window.__pwned = 1; alert(1)</script> "
    '<img src=x onerror="window.__pwned = 2"> </textarea> {{ 7*7 }} {% raw %} '
    '<svg onload="window.__pwned = 3"></svg> '
)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield instance
        instance.close()


def _open(browser, result, tmp_path):
    path = tmp_path / "report.html"
    result.to_html(path)
    page = browser.new_page()
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_selector("#prompt .unit")
    return page, requests, dialogs


@pytest.fixture(scope="module")
def real_result(llama):
    prompt = (
        "Marie Curie was born in Warsaw. She later moved to Paris, where she studied physics "
        "and chemistry.\n\nQuestion: In which city was Marie Curie born?\nAnswer: She was born in"
    )
    return attrib.attribute(prompt, backend=llama, target=" Warsaw.", level="word")


@pytest.mark.model
def test_clicking_an_output_token_reshades_the_prompt_and_clicking_again_restores_it(browser, real_result, tmp_path):
    page, requests, _ = _open(browser, real_result, tmp_path)

    def scores() -> list[str]:
        return page.eval_on_selector_all("#prompt .unit", "units => units.map(u => u.dataset.score)")

    def styles() -> list[str]:
        return page.eval_on_selector_all("#prompt .unit", "units => units.map(u => u.style.backgroundColor)")

    total_scores, total_styles = scores(), styles()
    tokens = page.query_selector_all("#output .token")
    assert len(tokens) == len(real_result.output_tokens) >= 2
    last = tokens[-1]  # the "." after " Warsaw" depends on different units than the total
    last.click()
    assert last.get_attribute("aria-pressed") == "true"
    column = [f"{v:.6f}" for v in real_result.column(len(tokens) - 1)]
    assert scores() == column
    assert styles() != total_styles
    last.click()
    assert scores() == total_scores
    assert styles() == total_styles
    assert [r for r in requests if not r.startswith("file:")] == []


@pytest.mark.model
def test_hovering_a_unit_shows_its_score_in_nats(browser, real_result, tmp_path):
    page, _, _ = _open(browser, real_result, tmp_path)
    best = real_result.top(1)[0]
    page.hover(f'#prompt .unit[data-index="{best.index}"]')
    tooltip = page.locator("#tooltip")
    tooltip.wait_for(state="visible")
    text = tooltip.text_content()
    assert f"{best.score:+.3f}" in text and "nats" in text


def test_injected_markup_renders_as_text_and_never_runs(browser, tmp_path):
    toy = ToyBackend(sensitivity={"paris": 2.0}, output=" <b>bold</b> {{x}}")
    result = attrib.attribute(PAYLOADS * 3 + "The capital is Paris.", backend=toy, level="word")
    page, requests, dialogs = _open(browser, result, tmp_path)
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    assert page.locator("#prompt").text_content() == result.prompt
    assert "<b>bold</b>" in page.locator("#output").text_content()
    assert page.locator("#prompt img, #prompt script, #prompt svg, #output b").count() == 0
    assert [r for r in requests if not r.startswith("file:")] == []


def test_a_chat_prompt_shows_each_message_under_its_role_and_the_role_shares(browser, tmp_path):
    from attrib.result import Attribution
    from attrib.segmentation import Unit

    messages = [
        {"role": "system", "content": "Always answer in French. <b>Be brief.</b>"},
        {"role": "user", "content": "What is the capital of Japan?"},
    ]
    units = [
        Unit("Always answer", 0, 13, role="system", message=0, tokens=(0, 2)),
        Unit(" in French.", 13, 24, role="system", message=0, tokens=(2, 5)),
        Unit(" <b>Be brief.</b>", 24, 41, role="system", message=0, tokens=(5, 9)),
        Unit("What is the capital", 0, 19, role="user", message=1, tokens=(9, 13)),
        Unit(" of Japan?", 19, 29, role="user", message=1, tokens=(13, 16)),
    ]
    result = Attribution(
        prompt="",
        units=units,
        output=" Tokyo",
        output_tokens=[" Tokyo"],
        scores=np.array([[0.5], [3.0], [0.0], [1.0], [4.5]]),
        method="itp",
        level="word",
        messages=messages,
    )
    page, requests, _ = _open(browser, result, tmp_path)
    boxes = page.locator("#prompt .message")
    assert boxes.count() == 2
    assert [boxes.nth(i).locator(".message-role").text_content() for i in range(2)] == ["system", "user"]
    assert [boxes.nth(i).locator(".message-content").text_content() for i in range(2)] == [
        m["content"] for m in messages
    ]
    assert page.locator("#prompt b").count() == 0
    roles = page.locator("#roles").text_content()
    assert "system" in roles and "user" in roles and "38.9%" in roles and "61.1%" in roles


def test_an_audit_report_shows_the_verdict_and_message_shares_and_keeps_tokens_inert(browser, tmp_path):
    output = ' <img src=x onerror="window.__pwned = 4"> oui'
    audited = ToyBackend(sensitivity={"french": 2.0, "japan": 1.0}, output=output, base_logprob=-0.1)
    reference = ToyBackend(sensitivity={"french": 2.0, "japan": 1.0}, output=output, base_logprob=-1.0)
    result = attrib.audit(
        "What is the capital of Japan?", system="Always answer in French. Be brief.",
        backend=audited, reference=reference, method="itp", level="sentence",
    )  # fmt: skip
    page, requests, dialogs = _open(browser, result, tmp_path)
    verdict = page.locator("#verdict")
    assert verdict.is_visible() and verdict.get_attribute("data-flag") == "true"
    assert "hidden influence: yes" in verdict.text_content()
    rows = page.locator("#shares tbody tr")
    assert rows.count() == 2
    assert "system (message 0)" in rows.nth(0).text_content() and "66.7%" in rows.nth(0).text_content()
    assert page.locator("#indicators tr[data-indicator='differential']").is_visible()
    assert page.evaluate("window.__pwned") is None and dialogs == []
    assert page.locator("#audit img, #output img").count() == 0
    assert [r for r in requests if not r.startswith("file:")] == []


def test_a_text_similarity_report_labels_every_number_in_similarity(browser, tmp_path):
    toy = ToyBackend(sensitivity={"paris": 2.0}, output=" yes it is")
    plain = attrib.attribute("The capital of France is Paris. It is a fine city.", backend=toy, level="word")
    result = dataclasses.replace(plain, score_kind="text-similarity", base_logprobs=None, scores=plain.scores / 10)
    page, requests, dialogs = _open(browser, result, tmp_path)
    best = result.top(1)[0]
    page.hover(f'#prompt .unit[data-index="{best.index}"]')
    tooltip = page.locator("#tooltip")
    tooltip.wait_for(state="visible")
    assert f"{best.score:+.3f} similarity" in tooltip.text_content()
    page.locator("#output .token").first.click()
    page.hover("#matrix", position={"x": 190, "y": 95})
    texts = [page.locator("body").inner_text()]
    texts += page.eval_on_selector_all("#tree title", "titles => titles.map(t => t.textContent)")
    assert all("nats" not in text for text in texts), [t for t in texts if "nats" in t][:1]
    assert "similarity" in page.locator("#matrix-note").text_content()
    assert page.locator("#legend-max + span, .legend span:last-child").last.text_content() == "similarity"
    assert dialogs == [] and [r for r in requests if not r.startswith("file:")] == []


def test_selecting_a_claim_highlights_its_source_and_marks_unsupported_and_mismatched_claims(browser, tmp_path):
    from tests.test_cite_report import _result

    page, requests, dialogs = _open(browser, _result(), tmp_path)
    claims = page.locator("#claims .claim")
    claims.nth(0).click()
    assert page.locator("#sources .source.supports").evaluate_all("els => els.map(e => e.dataset.source)") == ["1"]
    assert claims.nth(0).get_attribute("aria-pressed") == "true"
    claims.nth(1).focus()
    page.keyboard.press("Enter")
    assert page.locator("#sources .source.supports").count() == 0
    text = page.locator("#claims").inner_text()
    assert "unsupported" in text and "cited but not used: b" in text and "used but not cited: 1" in text
    assert dialogs == [] and page.evaluate("window.__pwned") is None
    page.close()


def test_selecting_a_claim_shades_the_units_inside_sources_by_their_score_for_it(browser, tmp_path):
    from tests.test_cite_report import _sentence_result

    result = _sentence_result()  # sentence level: claim 0 rests on ' Gustave built it.', claim 1 on the floods
    page, requests, dialogs = _open(browser, result, tmp_path)
    units = page.locator("#sources .source-unit")
    assert units.count() == len(result.units)

    def strongest() -> tuple[str, str]:
        shown = units.evaluate_all(
            "els => els.map(e => [e.textContent, Number(e.dataset.score), getComputedStyle(e).backgroundColor])"
        )
        text, _, colour = max(shown, key=lambda item: item[1])
        return text, colour

    def colour_of(text: str) -> str:
        return units.filter(has_text=text).first.evaluate("e => getComputedStyle(e).backgroundColor")

    claims = page.locator("#claims .claim")
    claims.nth(1).click()
    assert strongest() == (" The river floods in spring.\n\n", "rgb(178, 24, 43)")  # the scale's full red
    assert colour_of("Gustave built it.") == "rgb(247, 247, 247)"  # no score for this claim: neutral
    assert page.locator("#sources .source.supports").evaluate_all("els => els.map(e => e.dataset.source)") == ["b"]

    claims.nth(0).focus()
    page.keyboard.press("Enter")
    assert claims.nth(0).get_attribute("aria-pressed") == "true"
    assert strongest() == (" Gustave built it.\n\n", "rgb(178, 24, 43)")
    assert colour_of("Bridges cross the river.") == "rgb(247, 247, 247)"  # moves only the marker [a]
    red, green, blue = (int(x) for x in colour_of("Museums open at nine.")[4:-1].split(","))
    assert blue > red  # a negative score is blue, as in the prompt view
    assert units.filter(has_text="[a]").first.text_content() == "[a]"
    assert dialogs == [] and [r for r in requests if not r.startswith("file:")] == []
    page.close()


def test_selecting_a_claim_frames_the_sentence_it_needs_in_each_copy_of_a_duplicated_fact(browser, tmp_path):
    from tests.test_cite import ANSWER, QUESTION, SOURCES, _toy

    sources = [SOURCES[0], SOURCES[1], {"id": "c", "text": "Museums open at nine. The river floods often."}]
    result = attrib.cite(QUESTION, sources, answer=ANSWER, backend=_toy(), method="itp", level="sentence")
    page, requests, dialogs = _open(browser, result, tmp_path)
    framed = page.locator("#sources .source-unit.evidence")
    assert framed.count() == 0
    page.locator("#claims .claim").nth(1).click()
    # removing either copy's sentence from the whole prompt scores 0 (neutral shading); the frame still finds both
    assert [t.strip() for t in framed.all_text_contents()] == ["The river floods in spring.", "The river floods often."]
    assert framed.first.evaluate("e => getComputedStyle(e).outlineStyle") == "solid"
    page.locator("#claims .claim").nth(2).click()  # unsupported: nothing framed
    assert framed.count() == 0
    assert dialogs == [] and [r for r in requests if not r.startswith("file:")] == []
    page.close()

"""The terminal report: unchanged for log-probability results, its unit from the result, chat units in their own message."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import attrib
from attrib.backends.toy import ToyBackend
from attrib.reports.findings import audit_findings
from attrib.reports.html import render_html
from attrib.reports.text import render_audit, render_text
from attrib.result import Attribution

DATA = Path(__file__).resolve().parent / "data"


def test_a_log_probability_result_prints_as_attrib_0_1_printed_it():
    """tests/data/result-v1-hipe.txt is what attrib 0.1's render_text printed for result-v1-hipe.json."""
    result = Attribution.from_json(DATA / "result-v1-hipe.json")
    assert render_text(result) == (DATA / "result-v1-hipe.txt").read_text(encoding="utf-8")


def test_a_text_similarity_result_never_says_nats():
    toy = ToyBackend(sensitivity={"paris": 2.0}, output=" yes it is")
    result = attrib.attribute("The capital of France is Paris.", backend=toy, level="word", noise_samples=2)
    similar = dataclasses.replace(result, score_kind="text-similarity", base_logprobs=None)
    text = render_text(similar)
    assert "nats" not in text
    assert "(hipe; similarity, summed over output tokens" in text
    assert "nats" in render_text(result)


def test_chat_units_are_shown_in_their_own_message():
    result = Attribution.from_json(DATA / "result-v1-audit.json")
    text = render_text(result)
    assert "<start_of_turn>" not in text  # the rendered template is not where the units point
    assert "system: Always answer in[ French.] Be brief." in text
    assert "user: … is the capital of[ Japan?]" in text
    best = result.top(1)[0]
    assert result.source_text(best.unit)[best.unit.start : best.unit.end] == best.unit.text == " French."


def test_the_text_and_the_html_audit_say_the_same_findings():
    result = Attribution.from_json(DATA / "result-v1-audit.json")
    findings = audit_findings(result)
    assert findings is not None and findings.verdict is not None and len(findings.indicators) == 2
    text, page = render_audit(result), render_html(result)
    assert f"hidden influence: {findings.verdict.headline}" in text and findings.verdict.headline in page
    for finding in findings.indicators:
        assert finding.sentence in text and finding.sentence in page
    assert "+0.900 nats/token" in text
    shares = ", ".join(f"{share.label} {100 * share.share:.1f}%" for share in findings.role_shares)
    assert f"role shares (Shapley values of the messages): {shares}" in text
    assert [share.label for share in findings.message_shares] == ["system (message 0)", "user (message 1)"]


def test_a_plain_result_has_no_audit_findings():
    assert audit_findings(Attribution.from_json(DATA / "result-v1-hipe.json")) is None

"""The HTML report without a browser: structure, self-containment, embedded data, escaping."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import attrib
from attrib.backends.toy import ToyBackend
from attrib.reports.html import embed_json, render_html, render_notebook
from attrib.segmentation import Unit

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "reports" / "templates"
PAYLOADS = (
    "<script>alert(1)</script> <img src=x onerror=alert(1)> </textarea> {{ 7*7 }} {% raw %} "
    "</script><script>alert(2)</script> <!-- & &amp; \"quoted\" 'single' "
)
REQUIRED_IDS = {
    "attrib-data",
    "prompt",
    "tooltip",
    "output",
    "show-total",
    "view-label",
    "matrix",
    "method",
    "top",
    "download",
}


class Page(HTMLParser):
    """Collects start tags, ids, attributes and the text of each element with an id-bearing script."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.ids: dict[str, str] = {}
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None
        self._buffer: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if "id" in attributes:
            assert attributes["id"] not in self.ids, f"duplicate id {attributes['id']}"
            self.ids[attributes["id"]] = tag
        if tag == "script":
            self._script, self._buffer = attributes, []

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._buffer)))
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self._buffer.append(data)
        else:
            self.text.append(data)

    def count(self, tag: str) -> int:
        return sum(1 for name, _ in self.tags if name == tag)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


def data_block(page: Page) -> str:
    blocks = [body for attrs, body in page.scripts if attrs.get("id") == "attrib-data"]
    assert len(blocks) == 1
    return blocks[0]


def toy_result(prompt: str = "The capital of France is Paris. It is a fine city.", **kwargs):
    backend = ToyBackend(sensitivity={"paris": 2.0}, output=kwargs.pop("output", " yes it is"))
    return attrib.attribute(prompt, backend=backend, method=kwargs.pop("method", "hipe"), level="word", **kwargs)


def synthetic(n_units: int, n_tokens: int, roles: tuple[str, ...] = ("prompt",), seed: int = 0) -> attrib.Attribution:
    rng = np.random.default_rng(seed)
    units, pieces, position = [], [], 0
    for i in range(n_units):
        text = (" " if i else "") + f"w{i}" + ("\n" if i % 50 == 49 else "")
        role = roles[i * len(roles) // n_units]
        units.append(Unit(text=text, start=position, end=position + len(text), role=role, message=0, tokens=(i, i + 1)))
        pieces.append(text)
        position += len(text)
    output_tokens = [f" t{t}" for t in range(n_tokens)]
    return attrib.Attribution(
        prompt="".join(pieces),
        units=units,
        output="".join(output_tokens),
        output_tokens=output_tokens,
        scores=rng.normal(0.0, 0.1, (n_units, n_tokens)),
        method="itp",
        level="word",
        backend={"name": "toy", "model": "synthetic"},
        base_logprobs=rng.normal(-1.0, 0.2, n_tokens),
    )


@pytest.fixture(scope="module")
def result():
    return toy_result()


@pytest.fixture(scope="module")
def html(result):
    return render_html(result)


def test_page_is_html5_with_every_required_view(html, result):
    assert html.lstrip().lower().startswith("<!doctype html>")
    page = parse(html)
    assert set(page.ids) >= REQUIRED_IDS, REQUIRED_IDS - set(page.ids)
    assert "tree" in page.ids  # hipe with a trace
    assert page.ids["matrix"] == "canvas"
    assert page.ids["method"] == "table" and page.ids["top"] == "table"
    assert page.ids["download"] == "a"
    download = next(attrs for tag, attrs in page.tags if attrs.get("id") == "download")
    assert download.get("download") == "attrib-result.json"
    assert "roles" not in page.ids  # a single role: no role bar
    title = html[html.index("<title>") + 7 : html.index("</title>")]
    assert title == "attrib report"
    text = "".join(page.text)
    assert f"log p(output) = {result.output_logprob:.3f} nats" in text
    assert result.output in text


def test_method_table_names_the_run(result):
    result = dataclasses.replace(result, stats=dataclasses.replace(result.stats, budget=7, budget_exhausted=True))
    page = parse(render_html(result))
    keys = {attrs.get("data-key") for tag, attrs in page.tags if tag == "tr"}
    assert {
        "method",
        "level",
        "perturbation",
        "backend",
        "model",
        "calls",
        "tokens_evaluated",
        "seconds",
        "reused",
        "budget",
    } <= keys
    text = " ".join(page.text)
    assert "budget reached" in text
    assert "toy (deterministic key-word model)" in text


def test_itp_has_no_tree_and_several_roles_get_a_role_bar():
    page = parse(render_html(toy_result(method="itp")))
    assert "tree" not in page.ids and "roles" not in page.ids
    page = parse(render_html(synthetic(30, 4, roles=("system", "user"))))
    assert "roles" in page.ids


def test_no_external_resources(html):
    page = parse(html)
    remote = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
    for tag, attrs in page.tags:
        for name in ("src", "href", "srcset", "action", "poster", "data", "xlink:href"):
            value = attrs.get(name)
            assert value is None or not remote.match(value), f"<{tag} {name}={value!r}>"
    assert page.count("link") == 0 and page.count("img") == 0 and page.count("iframe") == 0
    assert all("src" not in attrs for tag, attrs in page.tags if tag == "script")
    assert "@import" not in html and not re.search(r"url\(\s*['\"]?(https?:)?//", html)


def test_embedded_json_round_trips(html, result):
    block = data_block(parse(html))
    expected = json.loads(json.dumps(result.to_dict()))
    assert json.loads(block) == expected
    again = attrib.Attribution.from_dict(json.loads(block))
    assert np.array_equal(again.scores, result.scores)


def test_injected_markup_is_escaped_everywhere():
    prompt = PAYLOADS * 2 + "The capital of France is Paris."
    result = toy_result(prompt, output=' <script>alert("out")</script> "yes"')
    html = render_html(result)
    for raw in ("<script>alert", "<img src=x", "</textarea>", "<!-- &", '<script>alert("out'):
        assert raw not in html
    page = parse(html)
    assert page.count("img") == 0 and page.count("textarea") == 0
    assert len(page.scripts) == 2  # the data block and the page's own script
    block = data_block(page)
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in block
    assert "\\u003cimg src=x onerror=alert(1)\\u003e" in block
    assert "{{ 7*7 }}" in block and "{% raw %}" in block  # the template engine did not evaluate them
    assert not re.search(r"[<>&]", block)
    assert json.loads(block) == json.loads(json.dumps(result.to_dict()))
    assert "&lt;script&gt;alert(&#34;out&#34;)&lt;/script&gt;" in html  # the output in the header


def test_embed_json_cannot_close_a_script():
    text = embed_json({"a": "</script><!--<script>&amp;", "b": "\u2028"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><!--<script>&amp;", "b": "\u2028"}


def test_notebook_iframe_escapes_the_page_in_srcdoc():
    result = toy_result('Say "hi" and \'bye\' " onload="alert(1) to Paris.')
    frame = render_notebook(result)
    assert frame.startswith("<iframe ") and frame.endswith("</iframe>")
    page = parse(frame)
    assert [tag for tag, _ in page.tags] == ["iframe"]
    attrs = page.tags[0][1]
    assert "onload" not in attrs
    assert attrs["srcdoc"] == render_html(result)
    assert attrs["width"] == "100%" and "height: 600px" in attrs["style"]
    srcdoc = frame[frame.index('srcdoc="') + 8 :]
    srcdoc = srcdoc[: srcdoc.index('"')]
    assert "<" not in srcdoc and "'" not in srcdoc and "&quot;" in srcdoc


def test_large_result_keeps_the_data_once():
    result = synthetic(4000, 64, roles=("system", "user"))
    html = render_html(result)
    data = data_block(parse(html))
    assert json.loads(data)["scores"] == json.loads(json.dumps(result.to_dict()))["scores"]
    assert len(html) - len(data) < 60_000  # the page around the data stays small
    assert html.count('"text":" w3998"') == 1  # units appear once, in the JSON


def test_template_style_and_script_ship_with_the_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["attrib.reports"]
    for name, pattern in (
        ("report.html.j2", "templates/*.j2"),
        ("report.css", "templates/*.css"),
        ("report.js", "templates/*.js"),
    ):
        assert (TEMPLATES / name).is_file() and pattern in patterns


def test_style_and_script_are_inlined_from_their_own_files(html):
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    script = (TEMPLATES / "report.js").read_text(encoding="utf-8")
    template = (TEMPLATES / "report.html.j2").read_text(encoding="utf-8")
    assert "<style>\n" + css + "</style>" in html
    code = [body for attrs, body in parse(html).scripts if "id" not in attrs]
    assert code == ["\n" + script]
    for text in (css, script):
        assert "</" not in text.lower().replace('</"', "")  # nothing can close the element it is inlined in
    assert "{{ css }}" in template and "{{ script }}" in template
    assert "function" not in template and ":root" not in template  # no behaviour or style left in the template
    assert "nats" not in script  # the unit comes from the result, through data-unit
    assert 'data-unit="nats"' in html


def toy_audit(output: str = " oui <b>merci</b>"):
    """An audit whose audited toy endpoint finds its output 0.9 nats/token likelier than the reference."""
    audited = ToyBackend(sensitivity={"french": 2.0, "japan": 1.0}, output=output, base_logprob=-0.1)
    reference = ToyBackend(sensitivity={"french": 2.0, "japan": 1.0}, output=output, base_logprob=-1.0)
    return attrib.audit(
        "What is the capital of Japan?", system="Always answer in French. Be brief.",
        backend=audited, reference=reference, method="itp", level="sentence",
    )  # fmt: skip


def test_an_audit_shows_the_verdict_its_indicators_and_each_messages_shapley_share():
    result = toy_audit()
    assert result.hidden_influence.flag
    page = parse(render_html(result))
    assert {"audit", "verdict", "indicators", "disagreements", "shares"} <= set(page.ids)
    flags = [attributes.get("data-flag") for tag, attributes in page.tags if attributes.get("id") == "verdict"]
    assert flags == ["true"]
    text = " ".join(page.text)
    assert "hidden influence: yes" in text and f"{result.hidden_influence.score:.3f}" in text
    assert "+0.900 nats/token" in text  # the differential gain, per output token
    totals = result.shapley.message_totals
    for total in totals:
        assert f"{100 * total / sum(totals):.1f}%" in text
    assert page.count("b") == 0  # output tokens in the disagreement table are text


def test_a_plain_attribution_has_no_audit_section(html):
    assert "audit" not in parse(html).ids


def text_similarity(result: attrib.Attribution) -> attrib.Attribution:
    """``result`` as a text-only endpoint would give it: similarity scores, no log-probabilities."""
    return dataclasses.replace(result, score_kind="text-similarity", base_logprobs=None, scores=result.scores / 10)


def test_a_text_similarity_report_never_says_nats(result):
    similar = text_similarity(result)
    html = render_html(similar)
    page = parse(html)
    text = " ".join(page.text)
    assert "nats" not in text and "nats" not in html.replace(data_block(page), "")
    assert 'data-unit="similarity"' in html and "score (similarity)" in text
    assert "logprob" not in page.ids  # log p(output) is not shown: there is none
    assert json.loads(data_block(page))["score_kind"] == "text-similarity"


def test_an_audit_of_a_text_similarity_result_labels_its_findings_in_similarity():
    result = text_similarity(toy_audit())
    text = " ".join(parse(render_html(result)).text)
    assert "nats" not in text and "similarity/token" in text

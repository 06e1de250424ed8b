"""The ``attrib cite`` command on the toy backend: sources from JSON Lines, text and JSON outputs, errors."""

from __future__ import annotations

import json

import pytest

from attrib.cli import main
from attrib.result import Attribution

SOURCES = [
    {"id": "a", "text": "The tower was finished in 1889.", "url": "https://example.org/a"},
    {"id": "b", "text": "The river floods in spring."},
]


@pytest.fixture
def sources(tmp_path):
    path = tmp_path / "sources.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in SOURCES) + "\n", encoding="utf-8")
    return path


def _run(capsys, *argv):
    code = main(["cite", "--backend", "toy", "--quiet", "--no-cache", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cite_prints_each_claim_with_its_sources_and_citations(sources, capsys):
    code, out, err = _run(
        capsys, "--sources", str(sources), "--question", "When?", "--answer", " It was 1889 [a]. It floods [b]."
    )
    assert code == 0, err
    assert 'answer: " It was 1889 [a]. It floods [b]."' in out
    assert '1. "It was 1889 [a]."' in out and '2. "It floods [b]."' in out
    assert "removed (nats): a +0.000, b +0.000" in out and "alone (nats): a +0.000, b +0.000" in out
    assert "citations: cited a; verified -; cited but not used a" in out
    assert "cost: 4 calls (itp at source level: 4)" in out  # the probes are the leave-one-out variants here


def test_cite_writes_json_with_the_sources_metadata_and_html(sources, tmp_path, capsys):
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    code, out, err = _run(
        capsys,
        "--sources",
        str(sources),
        "--question",
        "When?",
        "--answer",
        " It was 1889.",
        "--level",
        "sentence",
        "--method",
        "itp",
        "--json",
        str(out_json),
        "--html",
        str(out_html),
    )
    assert code == 0, err
    result = Attribution.from_json(out_json)
    assert result.level == "sentence" and result.context is not None
    assert result.context.sources[0].metadata == {"url": "https://example.org/a"}
    assert [c.text for c in result.claims] == ["It was 1889."]
    assert out_html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert f"result written to {out_json}" in out


def test_cite_json_to_stdout_is_json_alone(sources, capsys):
    code, out, _ = _run(capsys, "--sources", str(sources), "--question", "When?", "--json", "-")
    assert code == 0
    data = json.loads(out)
    assert data["schema_version"] == 3 and data["context"]["question"] == "When?"


def test_cite_options_come_from_the_declaration(sources, capsys):
    code, out, _ = _run(
        capsys,
        "--sources",
        str(sources),
        "--question",
        "When?",
        "--answer",
        " Yes [a].",
        "--support",
        "0.5",
        "--markers",
        "",
    )
    assert code == 0
    assert "more than 0.5 of the claim's information" in out and "citations:" not in out
    with pytest.raises(SystemExit) as exit_:
        _run(capsys, "--sources", str(sources), "--question", "When?", "--target", " x")
    assert exit_.value.code == 2 and "unrecognized arguments: --target" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("", "holds no sources"),
        ('{"id": "a", "text": "x"}\nnot json\n', "line 2: not JSON"),
        ('["a", "x"]\n', "line 1: expected a JSON object"),
        ('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "source id 'a' is given twice"),
        ('{"id": 1, "text": "x"}\n', "source ids must be strings"),
    ],
)
def test_bad_sources_get_one_line_and_exit_1(tmp_path, capsys, lines, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(lines, encoding="utf-8")
    code, _, err = _run(capsys, "--sources", str(path), "--question", "When?")
    assert code == 1 and err.startswith("attrib: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_an_empty_question_or_answer_is_refused(sources, capsys):
    code, _, err = _run(capsys, "--sources", str(sources), "--question", " ")
    assert code == 1 and "question is empty" in err
    code, _, err = _run(capsys, "--sources", str(sources), "--question", "Why?", "--answer", "")
    assert code == 1 and "answer is empty" in err


def test_text_from_the_answer_and_the_sources_never_reaches_the_terminal_as_control(tmp_path, capsys):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"id": "a\u001b[2J", "text": "x"}) + "\n", encoding="utf-8")
    code, _, err = _run(capsys, "--sources", str(path), "--question", "Q?")
    assert code == 1 and "\u001b" not in err
    path.write_text(json.dumps({"id": "s1", "text": "Bell\u0007 text.\u009b"}) + "\n", encoding="utf-8")
    code, out, err = _run(capsys, "--sources", str(path), "--question", "Q?", "--answer", " Red\u001b[31m text [s1].")
    assert code == 0, err
    assert "\u001b" not in out and "\u009b" not in out and "\u0007" not in out
    assert "\\x1b[31m" in out


def test_cite_appears_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "cite" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["cite", "--help"])
    text = capsys.readouterr().out
    assert "--sources FILE" in text and "--support SHARE" in text and "{token,word,sentence,paragraph,source}" in text
    assert "(default source)" in text and "--chat-template FILE" in text
    assert "--target" not in text and "--contrast" not in text

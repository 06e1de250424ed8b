"""The attrib command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROMPT = "The capital of France is Paris. The capital of Japan is Tokyo. " * 3


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "attrib", *args],
        input=stdin,
        capture_output=True,
        timeout=600,
    )


def _one_line_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    err = proc.stderr.decode()
    assert proc.returncode != 0
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("attrib: error: ")
    assert needle in lines[0]


def test_explain_on_the_toy_backend_prints_output_top_units_and_cost(tmp_path):
    out = tmp_path / "r.json"
    proc = run("explain", PROMPT, "--backend", "toy", "--level", "word", "--top", "3", "--json", str(out))
    assert proc.returncode == 0, proc.stderr.decode()
    text = proc.stdout.decode()
    assert 'output: " yes"' in text
    assert "top 3 of" in text
    assert "cost:" in text and "calls" in text and "tokens evaluated" in text
    data = json.loads(out.read_text())
    assert data["method"] == "hipe" and data["level"] == "word"


def test_best_first_with_an_early_stop_is_recorded_in_the_result(tmp_path):
    out = tmp_path / "r.json"
    proc = run("explain", PROMPT, "--backend", "toy", "--level", "word", "--order", "best", "--early-stop", "2",
               "--json", str(out), "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    data = json.loads(out.read_text())
    assert data["parameters"]["order"] == "best" and data["parameters"]["top_k"] == 2
    assert data["trace"]["order"] == "best"


def test_best_first_is_the_default_order_and_depth_order_stays_available(tmp_path):
    orders = {}
    for extra in ([], ["--order", "depth"]):
        out = tmp_path / f"r{len(extra)}.json"
        proc = run("explain", PROMPT, "--backend", "toy", "--level", "word", *extra, "--json", str(out), "--quiet")
        assert proc.returncode == 0, proc.stderr.decode()
        data = json.loads(out.read_text())
        orders[data["trace"]["order"]] = data
    assert set(orders) == {"best", "depth"}
    assert orders["best"]["parameters"]["top_k"] is None  # no early stop unless asked for


def test_prompt_piped_on_stdin_loses_one_trailing_newline():
    proc = run("explain", "--backend", "toy", "--json", "-", stdin=(PROMPT + "\n").encode())
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout)["prompt"] == PROMPT


def test_prompt_file_dash_reads_stdin():
    proc = run("explain", "--prompt-file", "-", "--backend", "toy", "--json", "-", stdin=PROMPT.encode())
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["prompt"] == PROMPT


@pytest.mark.parametrize(
    ("args", "stdin", "needle"),
    [
        (["explain", "", "--backend", "toy"], None, "prompt is empty"),
        (["explain", "--backend", "toy"], b"   \n", "prompt is empty"),
        (["explain", "--prompt-file", "/no/such/file.txt", "--backend", "toy"], None, "prompt file not found"),
        (["explain", "--method", "fast", "x"], None, "invalid choice: 'fast'"),
        (["explain", "--level", "letters", "x"], None, "invalid choice: 'letters'"),
        (["explain", "--threshold", "median", "x", "--backend", "toy"], None, "unknown threshold 'median'"),
        (["explain", PROMPT, "--backend", "toy", "--method", "itp", "--budget", "5"], None, "needs at least"),
        (["explain", "x", "--model", "/no/such/model.gguf"], None, "model file not found"),
        (["explain", "x", "--prompt-file", "y"], None, "not both"),
        (["explain", "x", "--backend", "toy", "--early-stop", "0"], None, "top_k must be at least 1"),
        (["explain", "x", "--backend", "toy", "--order", "widest"], None, "invalid choice: 'widest'"),
    ],
)
def test_bad_input_gets_one_line_and_a_nonzero_exit(args, stdin, needle):
    _one_line_error(run(*args, stdin=stdin if stdin is not None else b""), needle)


def test_non_utf8_prompt_file(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9 au lait".encode("latin-1"))
    _one_line_error(run("explain", "--prompt-file", str(path), "--backend", "toy"), "not UTF-8 text")


def test_unreadable_prompt_file_is_a_directory(tmp_path):
    _one_line_error(run("explain", "--prompt-file", str(tmp_path), "--backend", "toy"), "is a directory")


def test_help_teaches_with_examples():
    proc = run("explain", "--help")
    assert proc.returncode == 0
    text = proc.stdout.decode()
    assert "examples:" in text and "nats" in text


@pytest.mark.model
def test_prompt_longer_than_the_embedded_model_context():
    proc = run("explain", "--quiet", stdin=("word " * 33_000).encode())
    _one_line_error(proc, "over the model's context of 32,768 tokens")


@pytest.mark.model
def test_explain_runs_on_the_embedded_model(tmp_path):
    out = tmp_path / "r.json"
    proc = run("explain", "The capital of Japan is", "--target", " Tokyo", "--quiet", "--json", str(out))
    assert proc.returncode == 0, proc.stderr.decode()
    data = json.loads(out.read_text())
    assert data["output"] == " Tokyo"
    assert data["backend"]["name"] == "llama"
    top = max(range(len(data["units"])), key=lambda i: data["unit_scores"][i])
    assert data["units"][top]["text"] in (" Japan", " capital")


def test_explain_writes_an_html_report_and_report_renders_a_saved_result(tmp_path):
    saved, page, again = tmp_path / "r.json", tmp_path / "r.html", tmp_path / "again.html"
    proc = run("explain", PROMPT, "--backend", "toy", "--json", str(saved), "--html", str(page), "--quiet")
    assert proc.returncode == 0, proc.stderr.decode()
    assert f"report written to {page}" in proc.stdout.decode()
    assert page.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html>")
    proc = run("report", str(saved), "-o", str(again))
    assert proc.returncode == 0, proc.stderr.decode()
    assert again.read_text(encoding="utf-8") == page.read_text(encoding="utf-8")


def test_report_refuses_what_is_not_a_result(tmp_path):
    _one_line_error(
        run("report", str(tmp_path / "missing.json"), "-o", str(tmp_path / "x.html")), "result file not found"
    )
    other = tmp_path / "other.json"
    other.write_text('{"a": 1}')
    _one_line_error(run("report", str(other), "-o", str(tmp_path / "x.html")), "not an attrib attribution result")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    _one_line_error(run("report", str(binary), "-o", str(tmp_path / "x.html")), "not UTF-8")


def test_report_refuses_a_file_that_is_not_json(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("just some notes\n")
    _one_line_error(run("report", str(text), "-o", str(tmp_path / "x.html")), f"{text}: result is not valid JSON")


def test_audit_prints_roles_system_units_and_the_verdict(tmp_path) -> None:
    out = tmp_path / "audit.json"
    run = subprocess.run(
        [sys.executable, "-m", "attrib", "audit", "--backend", "toy", "--quiet", "--method", "itp",
         "--system", "You know that the capital of France is Paris.", "What is the capital of France?",
         "--json", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "role shares (Shapley values of the messages): system" in run.stdout
    assert "hidden influence:" in run.stdout
    data = json.loads(out.read_text())
    assert set(data["roles"]) == {"system", "user"}
    assert isinstance(data["hidden_influence"]["flag"], bool) and 0.0 <= data["hidden_influence"]["score"] <= 1.0


def test_audit_input_errors_are_one_line(tmp_path) -> None:
    both = subprocess.run(
        [sys.executable, "-m", "attrib", "audit", "--backend", "toy", "--system", "a", "--system-file", "f", "q"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert both.returncode == 1 and both.stderr.count("\n") == 1 and "--system-file" in both.stderr
    reference = subprocess.run(
        [sys.executable, "-m", "attrib", "audit", "--backend", "toy", "--reference-base-url", "http://x/v1", "q"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert reference.returncode == 1 and "--backend openai" in reference.stderr

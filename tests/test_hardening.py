"""Hostile input at the command line: one ``attrib: error:`` line and a non-zero exit, never a
traceback, never a lost result (issue: no silent downgrade, no traceback, no lost run)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from attrib.cli import main
from attrib.errors import InputError

PROMPT = "The capital of France is Paris. The capital of Japan is Tokyo."


def run_cli(*args: str | bytes, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "attrib", *args], input=stdin, capture_output=True, timeout=300)


def one_line_error(proc: subprocess.CompletedProcess[bytes], needle: str) -> None:
    err = proc.stderr.decode("utf-8", "replace")
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("attrib: note:")]
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("attrib: error: "), err
    assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ((b"caf\xe9 au lait",), "PROMPT is not UTF-8 text (byte 0xe9"),
        ((PROMPT, "--target", b" caf\xe9"), "--target is not UTF-8 text"),
    ],
)
def test_command_line_bytes_that_are_not_utf8_are_one_line(args: tuple[str | bytes, ...], needle: str) -> None:
    one_line_error(run_cli("explain", *args, "--backend", "toy"), needle)


def test_a_system_prompt_that_is_not_utf8_is_one_line() -> None:
    one_line_error(run_cli("audit", "Where?", "--system", b"\xff\xfe", "--backend", "toy"), "--system is not UTF-8")


@pytest.mark.parametrize(
    ("flag", "where"),
    [("--json", "missing-dir/r.json"), ("--html", "missing-dir/r.html"), ("--json", ".")],
)
def test_unwritable_outputs_are_refused_before_any_model_call(tmp_path: Path, flag: str, where: str) -> None:
    # A model backend that would fail to load proves nothing was started: the check comes first.
    proc = run_cli("explain", PROMPT, flag, str(tmp_path / where), "--model", str(tmp_path / "no-such.gguf"))
    one_line_error(proc, f"{flag}")


def test_a_failing_report_never_loses_the_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from attrib.cli import common as commands  # emit writes the outputs

    original = commands.write_text

    def full_disk_for_html(path: str, text: str) -> None:
        if path.endswith(".html"):
            raise InputError(f"cannot write {path}: the disk is full")
        original(path, text)

    monkeypatch.setattr(commands, "write_text", full_disk_for_html)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(["explain", PROMPT, "--backend", "toy", "--json", str(tmp_path / "r.json"),
                       "--html", str(tmp_path / "r.html"), "--quiet"])  # fmt: skip
    assert status == 1
    assert json.loads((tmp_path / "r.json").read_text())["method"] == "hipe"
    assert not (tmp_path / "r.html").exists()
    assert err.getvalue().count("\n") == 1 and "disk is full" in err.getvalue()


def test_a_json_that_cannot_be_written_after_the_run_is_saved_elsewhere(tmp_path: Path) -> None:
    from attrib.cli import common as commands  # emit writes the outputs

    target = tmp_path / "gone" / "r.json"
    (tmp_path / "gone").mkdir()
    original = commands.write_text

    def vanish(path: str, text: str) -> None:  # the directory disappears while the model runs
        if (tmp_path / "gone").exists():
            (tmp_path / "gone").rmdir()
        original(path, text)

    err = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(commands, "write_text", vanish)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = main(["explain", PROMPT, "--backend", "toy", "--json", str(target), "--quiet"])
    assert status == 1
    message = err.getvalue()
    saved = Path(message.split("the result was saved to ")[1].split(" instead")[0])
    assert json.loads(saved.read_text())["output"] == " yes"
    saved.unlink()


@pytest.mark.parametrize("value", ["nan", "inf", "1e309", "-inf"])
def test_a_non_finite_threshold_is_refused_before_the_run(tmp_path: Path, value: str) -> None:
    out = tmp_path / "r.json"
    one_line_error(run_cli("explain", PROMPT, "--backend", "toy", f"--threshold={value}", "--json", str(out)), "finite")
    assert not out.exists()


def test_an_empty_chat_template_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "template.jinja"
    empty.write_text("")
    one_line_error(run_cli("audit", "Where?", "--chat-template", str(empty), "--backend", "toy"), "template is empty")


@pytest.mark.parametrize(
    ("template", "needle"),
    [
        ("{{ 1/0 }}", "ZeroDivisionError"),
        ("{% macro f(x) %}{{ f(x) }}{% endmacro %}{{ f(1) }}", "RecursionError"),
        ("{{ range(10**9)|list }}", "MAX_RANGE"),
        ("{{ 'x' * 10**10 }}", "was stopped"),
        ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", "longer than 5 s"),
    ],
)
def test_chat_templates_that_fail_in_any_way_are_one_line(tmp_path: Path, template: str, needle: str) -> None:
    path = tmp_path / "template.jinja"
    path.write_text(template)
    one_line_error(run_cli("audit", "Where?", "--chat-template", str(path), "--backend", "toy"), needle)


def test_a_prompt_file_larger_than_any_context_is_refused_early(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    with big.open("wb") as handle:
        handle.truncate(65 * 1024 * 1024)  # sparse: no disk used
    one_line_error(run_cli("explain", "--prompt-file", str(big), "--backend", "toy"), "larger than 64 MiB")


def test_a_cache_directory_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("x")
    one_line_error(run_cli("explain", PROMPT, "--backend", "toy", "--cache-dir", str(tmp_path / "cache")), "is a file")


def test_a_corrupt_cache_is_moved_aside_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "responses.sqlite3").write_bytes(b"garbage" * 1000)
    proc = run_cli("explain", PROMPT, "--backend", "toy", "--cache-dir", str(tmp_path), "--quiet")
    assert proc.returncode == 0, proc.stderr.decode()
    assert "attrib: note: the cache" in proc.stderr.decode() and "moved it to" in proc.stderr.decode()


def test_a_dry_run_refuses_what_the_run_refuses() -> None:
    long = "word " * 9000
    one_line_error(run_cli("explain", long, "--backend", "toy", "--dry-run"), "over the model's context")


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class ClosedPipe(io.TextIOWrapper):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    sink = (tmp_path / "sink").open("wb")
    stdout = ClosedPipe(sink)
    err = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    saved = os.dup(stdout.fileno())
    try:
        with contextlib.redirect_stderr(err):
            status = main(["explain", PROMPT, "--backend", "toy", "--quiet"])
    finally:
        os.dup2(saved, sink.fileno())
        os.close(saved)
    assert status == 141 and err.getvalue() == ""


@pytest.mark.model
def test_the_llama_backend_leaves_no_resource_warning_at_exit() -> None:
    code = "from attrib.backends.llama import LlamaBackend\nLlamaBackend().close()\n"
    proc = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "ResourceWarning" not in proc.stderr, proc.stderr

"""No command overwrites what it reads: one output-path check (attrib.paths) for every command that writes.

explain/audit --json/--html, report -o, summarize --json/--html and batch -o are refused,
with one line and before any work, when an output is empty, is one of the command's
inputs, or is one of a batch OUT_DIR's own files, however the path is spelled
(symbolic link, ``..``, hard link).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from attrib.batch import attribute_many, prepare
from attrib.cli import main
from attrib.errors import InputError

pytestmark = pytest.mark.filterwarnings("ignore:the prompt's last")

TOY = ["--backend", "toy", "--quiet", "--no-cache"]


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "q1", "prompt": "Paris is far."}\n{"id": "q/2", "prompt": "The otter swims."}\n')
    out = tmp_path / "out"
    assert main(["batch", str(source), "-o", str(out), "--backend", "toy", "--level", "word", "--quiet"]) == 0
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(argv: list[str], capsys: pytest.CaptureFixture[str], needle: str) -> None:
    capsys.readouterr()
    assert main(argv) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("attrib: error: "), captured.err
    assert needle in lines[0], lines[0]
    assert captured.out == ""  # refused before any work: nothing summarised, explained or written


@pytest.mark.parametrize(
    ("flag", "target", "needle"),
    [
        ("--json", "records.jsonl", "is the run's records.jsonl of the batch OUT_DIR"),
        ("--json", "run.json", "is the run's run.json"),
        ("--html", "units.csv", "is the run's units.csv"),
        ("--json", ".lock", "is the run's .lock"),
        ("--html", "items/q1.json", "is a file under items/"),
        ("--html", "items/new.html", "is a file under items/"),
        ("--json", "items/../records.jsonl", "is the run's records.jsonl"),
    ],
)
def test_summarize_never_writes_over_the_out_dir_it_reads(
    out_dir: Path, capsys: pytest.CaptureFixture[str], flag: str, target: str, needle: str
) -> None:
    before = snapshot(out_dir)
    refused(["summarize", str(out_dir), flag, str(out_dir / target)], capsys, needle)
    assert snapshot(out_dir) == before


def test_summarize_sees_through_symbolic_and_hard_links(
    out_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(out_dir)
    alias = tmp_path / "alias"
    alias.symlink_to(out_dir)
    refused(["summarize", str(out_dir), "--json", str(alias / "records.jsonl")], capsys, "records.jsonl")
    refused(["summarize", str(alias), "--json", str(out_dir / "records.jsonl")], capsys, "records.jsonl")
    os.link(out_dir / "records.jsonl", tmp_path / "journal-copy.jsonl")
    refused(["summarize", str(out_dir), "--json", str(tmp_path / "journal-copy.jsonl")], capsys, "records.jsonl")
    os.link(out_dir / "items" / "q1.json", tmp_path / "item-copy.json")
    refused(["summarize", str(out_dir), "--html", str(tmp_path / "item-copy.json")], capsys, "a file under items/")
    assert snapshot(out_dir) == before


def test_summarize_still_writes_its_page_beside_the_run(out_dir: Path) -> None:
    page, data = out_dir / "summary.html", out_dir / "summary.json"
    assert main(["summarize", str(out_dir), "--html", str(page), "--json", str(data)]) == 0
    assert json.loads(data.read_text())["counts"]["ok"] == 2 and page.exists()


def test_summarize_json_and_html_naming_one_file_is_refused(
    out_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refused(
        ["summarize", str(out_dir), "--json", str(tmp_path / "s"), "--html", str(tmp_path / "." / "s")],
        capsys,
        "name the same file",
    )


def test_report_never_writes_over_its_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = tmp_path / "r.json"
    assert main(["explain", "Paris is far.", *TOY, "--json", str(result)]) == 0
    before = result.read_bytes()
    refused(["report", str(result), "-o", str(result)], capsys, f"-o {result} is the result file")
    link = tmp_path / "link.html"
    link.symlink_to(result)
    refused(["report", str(result), "-o", str(link)], capsys, "is the result file")
    os.link(result, tmp_path / "hard.html")
    refused(["report", str(result), "-o", str(tmp_path / "hard.html")], capsys, "is the result file")
    assert result.read_bytes() == before


def test_explain_and_audit_never_write_over_their_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompt, system = tmp_path / "prompt.txt", tmp_path / "system.txt"
    prompt.write_text("Paris is far.")
    system.write_text("You are kind.")
    argv = ["explain", "--prompt-file", str(prompt), *TOY, "--json", str(tmp_path / "." / "prompt.txt")]
    refused(argv, capsys, "is the --prompt-file file")
    argv = ["audit", "Where?", "--system-file", str(system), *TOY, "--html", str(system)]
    refused(argv, capsys, "is the --system-file file")
    argv = ["explain", "Paris", *TOY, "--json", str(tmp_path / "x"), "--html", str(tmp_path / "sub" / ".." / "x")]
    (tmp_path / "sub").mkdir()
    refused(argv, capsys, "--json and --html name the same file")
    assert prompt.read_text() == "Paris is far." and system.read_text() == "You are kind."


@pytest.mark.parametrize("name", ["records.jsonl", "units.csv", "run.json"])
def test_batch_never_reads_its_input_from_the_out_dir_it_writes(
    out_dir: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    before = snapshot(out_dir)
    argv = ["batch", str(out_dir / name), "-o", str(out_dir), "--backend", "toy", "--quiet", "--force"]
    refused(argv, capsys, f"is the run's {name} of -o {out_dir}, which this run writes")
    assert snapshot(out_dir) == before


def test_batch_never_reads_a_system_file_from_its_items(out_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = out_dir.parent / "in.jsonl"
    system = out_dir / "items" / "q1.json"
    argv = ["batch", str(source), "-o", str(out_dir), "--backend", "toy", "--system-file", str(system), "--force"]
    refused(argv, capsys, "is a file under items/")


def test_the_python_api_refuses_the_same(out_dir: Path) -> None:
    with pytest.raises(InputError, match="is the run's units.csv of out_dir"):
        attribute_many(out_dir / "units.csv", out_dir=out_dir, backend="toy", force=True)
    with pytest.raises(InputError, match="out_dir is an empty path"):
        prepare([{"id": "a", "prompt": "Paris"}], out_dir="", backend="toy")


@pytest.mark.parametrize(
    "argv",
    [
        ["batch", "{input}", "-o", "", "--backend", "toy"],
        ["explain", "Paris", "--backend", "toy", "--json", ""],
        ["audit", "Where?", "--backend", "toy", "--html", ""],
        ["report", "{result}", "-o", ""],
        ["summarize", "{out}", "--json", ""],
        ["summarize", "{out}", "--html", ""],
    ],
)
def test_an_empty_output_path_is_refused(
    out_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    result = tmp_path / "r.json"
    result.write_text("{}")
    filled = [a.format(input=out_dir.parent / "in.jsonl", result=result, out=out_dir) for a in argv]
    refused(filled, capsys, "is an empty path; give a")
    assert list(here.iterdir()) == []  # nothing written into the current directory

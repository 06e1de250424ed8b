"""``attrib batch`` on the command line: exit statuses, the three-error dataset, and a SIGKILLed driver resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attrib import registry
from attrib.backends.toy import ToyBackend
from attrib.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:the prompt's last")


class ShortToy(ToyBackend):
    """The toy with a 48-token context; it logs every prompt it generates for to $ATTRIB_TEST_LOG and
    sleeps $ATTRIB_TEST_DELAY seconds per scored request (a slow model to kill mid-run)."""

    name = "shorttoy"

    def __init__(self) -> None:
        super().__init__(
            sensitivity={"paris": 2.0, "capital": 1.0},
            output=" yes it is",
            context_length=48,
            delay=float(os.environ.get("ATTRIB_TEST_DELAY", "0")),
        )

    def generate(self, prompt_ids, *, max_new_tokens, messages=None):  # type: ignore[no-untyped-def]
        log = os.environ.get("ATTRIB_TEST_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as stream:
                stream.write(json.dumps(self.detokenize(prompt_ids)) + "\n")
        return super().generate(prompt_ids, max_new_tokens=max_new_tokens, messages=messages)


#: Runs the real command line with ShortToy registered (as a third-party backend would be).
DRIVER = (
    "import sys; sys.path.insert(0, 'tests'); from attrib import registry; "
    "registry.register('backend', 'shorttoy', 'test_batch_cli:ShortToy'); "
    "from attrib.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.fixture(autouse=True)
def _short_toy() -> None:
    registry.register("backend", "shorttoy", "test_batch_cli:ShortToy")


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def records(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def test_help_shows_examples_and_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["batch", "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert "attrib batch questions.jsonl -o runs/questions" in shown
    assert "--retry-failed" in shown and "exit status: 0" in shown and "--ray-address" in shown


def test_a_malformed_command_line_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["batch", str(tmp_path / "in.jsonl")])  # no -o
    assert done.value.code == 2
    with pytest.raises(SystemExit) as done:
        main(["batch", "x.jsonl", "-o", str(tmp_path), "--executor", "dask"])
    assert done.value.code == 2


def test_all_ok_exits_0_with_the_summary_last(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [json.dumps({"id": f"q{n}", "prompt": f"Paris {n}"}) for n in range(3)])
    out = tmp_path / "out"
    assert main(["batch", str(source), "-o", str(out), "--backend", "toy", "--quiet"]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == "3 ok, 0 failed, 0 skipped (already done)"
    assert main(["batch", str(source), "-o", str(out), "--backend", "toy", "--quiet"]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == "0 ok, 0 failed, 3 skipped (already done)"


def test_bad_lines_stop_the_run_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(
        tmp_path / "in.jsonl", ['{"id": "a", "prompt": "Paris"}', '{"id": "b", "prompt": ""', '{"prompt": " "}']
    )
    assert main(["batch", str(source), "-o", str(tmp_path / "out"), "--backend", "toy"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("line 2: not valid JSON (Expecting ',' delimiter at column 25)")
    assert err[1].endswith("line 3: empty prompt")
    assert err[2].startswith("attrib: error: 2 bad records in")
    assert not (tmp_path / "out" / "records.jsonl").exists()


def test_three_bad_records_finish_as_exactly_three_error_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [json.dumps({"id": f"ok{n}", "prompt": f"The capital is Paris, {n}."}) for n in range(5)]
    lines = [
        good[0],
        '{"id": "broken", "prompt": "unterminated',
        good[1],
        json.dumps({"id": "empty", "prompt": ""}),
        good[2],
        json.dumps({"id": "long", "prompt": "a very long prompt " * 20}),
        *good[3:],
    ]
    source = write_jsonl(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out"
    argv = ["batch", str(source), "-o", str(out), "--backend", "shorttoy", "--level", "word", "--skip-bad-lines"]
    assert main(argv) == 1
    assert capsys.readouterr().err.splitlines()[-1] == "5 ok, 3 failed, 0 skipped (already done)"
    found = records(out)
    errors = {r["line"]: r["error_type"] for r in found if r["status"] == "error"}
    assert errors == {2: "InputError", 4: "EmptyPromptError", 6: "PromptTooLongError"}
    assert sorted(r["id"] for r in found if r["status"] == "ok") == [f"ok{n}" for n in range(5)]
    assert len(list((out / "items").iterdir())) == 5


def _run_driver(source: Path, out: Path, log: Path, delay: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ATTRIB_TEST_DELAY": delay, "ATTRIB_TEST_LOG": str(log)}
    argv = ["batch", str(source), "-o", str(out), "--backend", "shorttoy", "--level", "token", "--no-cache"]
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_a_sigkilled_driver_resumes_without_redoing_a_finished_item(tmp_path: Path) -> None:
    prompts = [f"Item {n}: the capital of France is Paris." for n in range(24)]
    source = write_jsonl(
        tmp_path / "in.jsonl", [json.dumps({"id": f"i{n}", "prompt": p}) for n, p in enumerate(prompts)]
    )
    out, first_log, second_log = tmp_path / "out", tmp_path / "first.log", tmp_path / "second.log"
    driver = _run_driver(source, out, first_log, delay="0.02")
    journal = out / "records.jsonl"
    deadline = time.monotonic() + 120
    while not (journal.exists() and journal.read_bytes().count(b"\n") >= 3):
        assert driver.poll() is None, driver.communicate()[1]
        assert time.monotonic() < deadline, "the driver wrote no records"
        time.sleep(0.02)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert driver.returncode == -signal.SIGKILL
    data = journal.read_bytes()
    finished = [json.loads(line)["id"] for line in data[: data.rfind(b"\n") + 1].splitlines()]
    assert 3 <= len(finished) < len(prompts), "the kill came too late to test a resume"
    for item_id in finished:  # every finished record is readable with its result file
        assert (out / "items" / f"{item_id}.json").exists()

    resumed = _run_driver(source, out, second_log, delay="0")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    k = len(finished)
    assert err.splitlines()[-1] == f"{len(prompts) - k} ok, 0 failed, {k} skipped (already done)"
    redone = [json.loads(line) for line in second_log.read_text().splitlines()]
    assert len(redone) == len(prompts) - k  # one generation per item the re-run did, no more
    assert not any(prompts[int(i[1:])] == text for i in finished for text in redone)
    ids = [r["id"] for r in records(out)]
    assert sorted(ids) == sorted(f"i{n}" for n in range(len(prompts))) and len(ids) == len(set(ids))


def test_no_api_key_reaches_out_dir_and_a_dead_endpoint_fails_items_not_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-batch-secret-1234")
    source = write_jsonl(tmp_path / "in.jsonl", [json.dumps({"id": f"q{n}", "prompt": "Paris"}) for n in range(2)])
    out = tmp_path / "out"
    argv = ["batch", str(source), "-o", str(out), "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1"]
    status = main([*argv, "--model", "m", "--max-retries", "0", "--timeout", "2", "--no-cache", "--level", "word"])
    assert status == 1
    assert capsys.readouterr().err.splitlines()[-1] == "0 ok, 2 failed, 0 skipped (already done)"
    found = records(out)
    assert len(found) == 2 and {r["error_type"] for r in found} <= {"EndpointUnavailableError", "EndpointError"}
    written = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert b"sk-batch-secret" not in written
    run = json.loads((out / "run.json").read_text())
    assert run["options"]["api_key_env"] == "OPENAI_API_KEY"
    assert run["options"]["backend_options"]["base_url"] == "http://127.0.0.1:9/v1"


def test_audit_task_with_a_system_file_and_flags_that_do_not_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [json.dumps({"id": "a", "prompt": "Where is the capital?"}), json.dumps({"id": "b", "prompt": "And Paris?"})],
    )
    system = tmp_path / "system.txt"
    system.write_text("You help travellers. The capital is Paris.", encoding="utf-8")
    out = tmp_path / "out"
    argv = [
        "batch",
        str(source),
        "-o",
        str(out),
        "--backend",
        "shorttoy",
        "--task",
        "audit",
        "--quiet",
        "--max-new-tokens",
        "2",
    ]
    assert main([*argv, "--system-file", str(system)]) == 0
    found = records(out)
    assert {r["task"] for r in found} == {"audit"} and {r["level"] for r in found} == {"sentence"}
    assert {r["system_top"]["text"] for r in found} == {" The capital is Paris."}
    capsys.readouterr()
    for extra, message in (
        (
            ["--workers", "2"],
            "--workers, --ray-address, --placement-timeout and --pin-replicas apply to --executor ray",
        ),
        (["--noise-samples", "2"], "--noise-samples applies to --task cite or explain"),
        (["--system", "x", "--system-file", str(system)], "either with --system or with --system-file"),
    ):
        assert main([*argv, *extra]) == 1
        assert message in capsys.readouterr().err


def test_contrast_flag_reaches_every_item_and_a_resume_with_another_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [json.dumps({"id": "a", "prompt": "Paris"}), json.dumps({"id": "b", "prompt": "Paris", "contrast": " maybe"})],
    )
    out = tmp_path / "out"
    assert main(["batch", str(source), "-o", str(out), "--backend", "toy", "--contrast", " no", "--quiet"]) == 0
    assert [r["contrast"] for r in records(out)] == [" no", " maybe"]
    capsys.readouterr()
    assert main(["batch", str(source), "-o", str(out), "--backend", "toy", "--contrast", " nope", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "contrast" in err and len(err.strip().splitlines()) == 1

"""The batch settings, declared once (``BatchSettings``): ``attrib batch -`` reads standard input,
and the Ray placement wait is a setting of ``attribute_many`` and a flag built from the declaration."""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import attrib
from attrib.batch import prepare
from attrib.batch import run as batch_run
from attrib.batch.inputs import Item
from attrib.batch.local import run_local
from attrib.batch.ray_executor import PLACEMENT_TIMEOUT
from attrib.batch.run import BatchSettings
from attrib.batch.worker import Done, Spec
from attrib.cli import main
from attrib.errors import InputError
from attrib.options import declared_settings

RECORD = b'{"id": "a", "prompt": "Paris is here."}\n'


def _batch(argv: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(attrib.__file__).parents[1]), *sys.path])}
    return subprocess.run(
        [sys.executable, "-m", "attrib", "batch", *argv, "--backend", "toy", "--quiet"],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
    )


# ----------------------------------------------------------------------------- `attrib batch -`


def test_a_dash_reads_the_records_from_standard_input_once_and_a_rerun_resumes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _batch(["-", "-o", str(out)], RECORD)
    assert done.returncode == 0, done.stderr.decode()
    described = json.loads((out / "run.json").read_text())["input"]
    assert described == {"path": "-", "size": len(RECORD), "sha256": hashlib.sha256(RECORD).hexdigest()}
    assert [json.loads(line)["id"] for line in (out / "records.jsonl").read_text().splitlines()] == ["a"]

    again = _batch(["-", "-o", str(out)], RECORD)  # the same bytes again: resumed, nothing redone
    assert (
        again.returncode == 0 and again.stderr.decode().splitlines()[-1] == "0 ok, 0 failed, 1 skipped (already done)"
    )
    other = _batch(["-", "-o", str(out)], b'{"id": "b", "prompt": "The otter swims."}\n')
    err = other.stderr.decode().splitlines()
    assert other.returncode == 1 and len(err) == 1 and "holds another run (input: run.json has sha256" in err[0]


def test_bad_records_on_standard_input_are_listed_as_stdin(tmp_path: Path) -> None:
    done = _batch(["-", "-o", str(tmp_path / "out")], b'{"id": "a", "prompt": "Paris"}\nnot json\n')
    err = done.stderr.decode().splitlines()
    assert done.returncode == 1 and "Traceback" not in done.stderr.decode()
    assert err[0].startswith("attrib: stdin: line 2: not valid JSON")
    assert err[-1].startswith("attrib: error: 1 bad record in standard input")
    assert not (tmp_path / "out" / "records.jsonl").exists()


def test_standard_input_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    done = _batch(["-", "-o", str(tmp_path / "out")], b'{"id": "a", "prompt": "\xff"}\n')
    err = done.stderr.decode().splitlines()
    assert done.returncode == 1 and err == [
        "attrib: error: the batch input on standard input is not UTF-8 text (byte 23)"
    ]


def test_the_python_api_reads_a_dash_from_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(RECORD)))
    summary = attrib.attribute_many("-", backend="toy", level="word")
    assert [outcome.id for outcome in summary.outcomes] == ["a"] and summary.ok == 1


def test_the_help_says_a_dash_reads_stdin(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "'-' reads JSON Lines from stdin" in shown and "attrib batch - -o" in shown


# ----------------------------------------------------------------------------- the Ray placement wait


def test_the_placement_timeout_is_a_setting_of_attribute_many_with_the_executors_default() -> None:
    parameter = inspect.signature(attrib.attribute_many).parameters["placement_timeout"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default == PLACEMENT_TIMEOUT
    assert "placement_timeout" in (attrib.attribute_many.__doc__ or "")
    records = [{"id": "a", "prompt": "Paris"}]
    assert prepare(records, backend="toy").placement_timeout == PLACEMENT_TIMEOUT
    assert prepare(records, backend="toy", executor="ray", placement_timeout=7.5).placement_timeout == 7.5


@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf, "5", True])
def test_a_bad_placement_timeout_is_refused_before_any_work(value: object) -> None:
    with pytest.raises(InputError, match="placement_timeout must be"):
        prepare([{"id": "a", "prompt": "Paris"}], backend="toy", placement_timeout=value)  # type: ignore[arg-type]


#: What the recording executor was handed.
HANDED: dict[str, Any] = {}


def recording_executor(
    items: Sequence[Item], spec: Spec, *, workers: int | None, address: str | None, placement_timeout: float
) -> Iterator[Done]:
    """The local executor, noting the Ray settings it was handed (stands in for Ray in the plumbing test)."""
    HANDED.update(workers=workers, address=address, placement_timeout=placement_timeout)
    return run_local(items, spec)


def test_the_flag_reaches_the_ray_executor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(batch_run.EXECUTORS, "ray", "test_batch_settings:recording_executor")
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    source = tmp_path / "in.jsonl"
    source.write_bytes(RECORD)
    argv = ["batch", str(source), "-o", str(tmp_path / "out"), "--backend", "toy", "--quiet", "--executor", "ray"]
    HANDED.clear()
    assert main([*argv, "--placement-timeout", "2.5", "--workers", "3"]) == 0
    assert HANDED == {"workers": 3, "address": None, "placement_timeout": 2.5}
    HANDED.clear()
    assert main([*argv, "--force"]) == 0  # not given: the declared default
    assert HANDED["placement_timeout"] == PLACEMENT_TIMEOUT


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--placement-timeout", "5"],
            "--workers, --ray-address, --placement-timeout and --pin-replicas apply to --executor ray",
        ),
        (["--executor", "ray", "--placement-timeout", "0"], "--placement-timeout must be a positive number"),
        (["--executor", "ray", "--placement-timeout", "nan"], "--placement-timeout must be a positive number"),
    ],
)
def test_a_placement_timeout_flag_that_cannot_apply_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(RECORD)
    assert main(["batch", str(source), "-o", str(tmp_path / "out"), "--backend", "toy", *extra]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("attrib: error: ") and message in err[0]


def test_every_setting_with_help_has_its_flag_built_from_the_declaration(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    flagged = {name: default for name, (default, _) in declared_settings(BatchSettings).items() if default.help}
    assert {"executor", "workers", "ray_address", "placement_timeout", "skip_bad", "retry_failed", "force"} <= set(
        flagged
    )
    for name, default in flagged.items():
        flag = "--" + (default.flag or name).replace("_", "-")
        assert flag in shown, flag
        assert " ".join(default.help.split()) in shown, name
    assert f"(default {PLACEMENT_TIMEOUT})" in shown

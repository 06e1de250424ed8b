"""Whole hostile datasets through ``attrib batch``, stopped, SIGKILLed and resumed: every record kept exactly once.

Hypothesis generates datasets (JSON Lines, CSV, Parquet) whose records carry hostile
ids (``..``, ``/``, NUL, markup, 300 characters, ids equal in their first 120
characters, ``line-N``, unicode, lone surrogates, numbers), metadata (NaN,
Infinity, huge integers, nesting; dates, decimals and bytes in Parquet), valid and
invalid per-record options (Parquet structs with other keys on every row), chats,
targets and bad prompts. Each runs on the toy backend with ``--skip-bad-lines``,
is interrupted and resumed, and :func:`benchmarks.hostile_batch.check_out_dir`
checks the end state: one record per input record (bad ones as error records),
each ok record's file holding its own record's result, strict JSON only, no
temporary or stray file, ``run.json`` describing the input. Through the command
line each run must also end without a traceback, with exit status 0 or 1 as
documented and the summary line counting what it did.

Examples per tier: the fast tier (any ``-m`` expression, as in the README) runs a
few datasets; the full suite (``python -m pytest``, no ``-m``) runs many more;
``ATTRIB_DATASET_EXAMPLES=N`` sets both tests to N.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")

from benchmarks.hostile_batch import (  # noqa: E402
    COLLIDING_IDS,
    HOSTILE_IDS,
    LEVELS,
    MARK,
    METHODS,
    SURROGATE_IDS,
    Garbage,
    Row,
    check_out_dir,
    placed,
    write_dataset,
)

pytestmark = pytest.mark.filterwarnings("ignore:the prompt's last")

ROOT = Path(__file__).resolve().parents[1]
PYARROW = importlib.util.find_spec("pyarrow") is not None
TOY = {"sensitivity": {"paris": 2.0, "capital": 1.0}, "output": " yes it is"}
ABSENT = object()

_PHRASES = (
    "The capital of France is Paris.",
    "Otters swim.",
    "It rains\u2028today.",
    "Line\u2029break.",
    "Next\u0085line.",
    'Quote " and back\\slash, comma.',
    "new\nline and a\r\nwindows line",
    "東京は首都です。 😀",
    "<b>markup</b> &amp; </script>",
)


def examples(request: pytest.FixtureRequest, fast: int, full: int) -> int:
    """Datasets to try: ``fast`` in the fast tier (an ``-m`` expression), ``full`` in the full suite."""
    if os.environ.get("ATTRIB_DATASET_EXAMPLES"):
        return int(os.environ["ATTRIB_DATASET_EXAMPLES"])
    return fast if request.config.getoption("markexpr") else full


# --------------------------------------------------------------------------- strategies

surrogate_text = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2)
plain_text = st.text(max_size=12)  # any code point but surrogates

ids = st.one_of(
    st.sampled_from(HOSTILE_IDS),
    st.sampled_from(SURROGATE_IDS),
    st.text(min_size=1, max_size=12),
    st.builds(lambda a, b: a + b, plain_text, surrogate_text),
    st.integers(-(2**70), 2**70),
    st.builds(lambda n: f"line-{n}", st.integers(1, 10)),
    st.sampled_from([True, 1.5, "", "  ", [], {"a": 1}, None]),
    st.just(ABSENT),
)

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**80), 2**80),
    st.floats(),  # NaN, Infinity
    plain_text,
    surrogate_text,
)
metadata_values = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(plain_text, inner, max_size=3), max_leaves=6
)
metadata_keys = st.one_of(st.sampled_from(["label", "score", "file", "status", "meta", "line"]), plain_text)

valid_options = st.fixed_dictionaries(
    {},
    optional={
        "level": st.sampled_from(LEVELS),
        "method": st.sampled_from(METHODS),
        "budget": st.integers(64, 200),
        "max_new_tokens": st.integers(1, 4),
        "seed": st.integers(0, 2**62),
    },
)
invalid_options = st.one_of(
    st.just({"level": "nonsense"}),
    st.builds(lambda n: {"budget": n}, st.integers(-5, 1)),
    st.builds(lambda n: {"max_new_tokens": n}, st.integers(-5, 0)),
    st.just({"method": "gradient"}),
    st.just({"colour": "red"}),
    st.sampled_from(["word", [1], 3]),
)

prompt_texts = st.builds(
    lambda phrases, tail: " ".join([MARK, *phrases, tail]),
    st.lists(st.sampled_from(_PHRASES), max_size=3),
    st.one_of(plain_text, surrogate_text, st.just("")),
)


@st.composite
def records(draw: Callable[..., Any]) -> object:
    """One record: mostly a good prompt, chat or system + prompt, with any of the hostile parts."""
    if draw(st.integers(0, 24)) == 0:
        return Garbage(draw(st.sampled_from(['{"id": "torn", "prompt": ', "[1, 2]", "null", "{bad}"])))
    record: dict[str, object] = {}
    kind = draw(st.sampled_from(["prompt", "prompt", "prompt", "system", "messages", "bad"]))
    if kind in ("prompt", "system"):
        record["prompt"] = draw(prompt_texts)
    if kind == "system":
        record["system"] = "You are terse. " + draw(st.sampled_from(_PHRASES))
    if kind == "messages":
        record["messages"] = [
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": draw(prompt_texts)},
        ]
    if kind == "bad":
        record.update(
            draw(
                st.sampled_from(
                    [
                        {"prompt": ""},
                        {"prompt": "  \n "},
                        {"prompt": 42},
                        {},
                        {"prompt": MARK, "messages": [{"role": "user", "content": MARK}]},
                        {"messages": [{"role": "wizard", "content": MARK}]},
                        {"messages": "hello"},
                    ]
                )
            )
        )
    item_id = draw(ids)
    if item_id is not ABSENT:
        record["id"] = item_id
    if draw(st.booleans()):
        record["target"] = draw(st.one_of(st.sampled_from([" yes", " no", "\u2028", "", 5]), plain_text))
    if draw(st.integers(0, 5)) == 0:
        record["contrast"] = draw(st.sampled_from([" maybe", "", "  "]))
    if draw(st.booleans()):
        record["options"] = draw(st.one_of(valid_options, valid_options, invalid_options))
    for key, value in draw(st.dictionaries(metadata_keys, metadata_values, max_size=3)).items():
        if key not in ("id", "prompt", "messages", "system", "target", "contrast", "options"):
            record[key] = value
    return record


@st.composite
def datasets(draw: Callable[..., Any], *, max_records: int = 8) -> tuple[str, list[object], dict[str, bool]]:
    """A format, its records (markers placed) and how it is written."""
    kind = draw(st.sampled_from(["jsonl", "jsonl", "csv", "parquet"]))
    drawn = draw(st.lists(records(), min_size=1, max_size=max_records))
    if len(drawn) >= 2 and draw(st.booleans()):  # two ids equal in their first 120 or more characters
        stem = draw(st.text("ab/.%", min_size=118, max_size=160))
        pair = draw(st.sampled_from([(stem + "x", stem + "y"), COLLIDING_IDS]))
        for index, new_id in zip((0, len(drawn) - 1), pair, strict=True):
            if isinstance(drawn[index], dict):
                drawn[index]["id"] = new_id
    marked = [placed(record, index) for index, record in enumerate(drawn)]
    flags = {name: draw(st.booleans()) for name in ("ascii_json", "bom", "int_ids", "crlf", "blank_lines")}
    return kind, marked, flags


def written(tmp: Path, dataset: tuple[str, list[object], dict[str, bool]]) -> tuple[Path, list[Row]]:
    kind, drawn, flags = dataset
    source = tmp / f"data.{kind}"
    return source, write_dataset(source, drawn, **flags)


def fresh(base: Path) -> Path:
    """A new empty directory under ``base`` (Hypothesis runs many examples in one test's tmp_path)."""
    index = len(list(base.iterdir()))
    path = base / f"example-{index}"
    path.mkdir()
    return path


def assert_holds(out: Path, rows: list[Row], source: Path) -> None:
    findings = check_out_dir(out, rows, source=source)
    assert not findings.problems, "\n".join(findings.problems[:15])


# --------------------------------------------------------------------------- attribute_many, stopped and resumed


def test_datasets_stopped_and_resumed_in_process_keep_each_record_once(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from attrib.batch import attribute_many, prepare

    @hypothesis.settings(
        max_examples=examples(request, fast=8, full=200),
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        database=None,
    )
    @hypothesis.given(dataset=datasets(), stop=st.integers(1, 8))
    def check(dataset: tuple[str, list[object], dict[str, bool]], stop: int) -> None:
        hypothesis.assume(dataset[0] != "parquet" or PYARROW)
        tmp = fresh(tmp_path)
        source, rows = written(tmp, dataset)
        out = tmp / "out"
        options: dict[str, Any] = {"backend": "toy", "backend_options": TOY, "skip_bad": True, "level": "word"}
        batch = prepare(source, out_dir=out, **options)
        assert batch.total == len(rows)
        for number, _ in enumerate(batch.outcomes(), start=1):
            if number == stop:  # stopped after `stop` items (the generator closed: OUT_DIR released)
                break
        summary = attribute_many(source, out_dir=out, **options)  # resumed
        assert summary.ok + summary.failed + summary.skipped == len(rows)
        assert summary.skipped == min(stop, len(rows))
        assert_holds(out, rows, source)
        again = attribute_many(source, out_dir=out, **options)  # nothing left to do
        assert (again.ok, again.failed, again.skipped) == (0, 0, len(rows))
        assert_holds(out, rows, source)

    check()


# --------------------------------------------------------------------------- the command line, SIGKILLed and resumed


def journal_records(out: Path) -> list[dict[str, Any]]:
    path = out / "records.jsonl"
    if not path.exists():
        return []
    data = path.read_bytes()
    return [json.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines()]


def test_datasets_sigkilled_and_resumed_on_the_command_line_keep_each_record_once(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    @hypothesis.settings(
        max_examples=examples(request, fast=3, full=30),
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        database=None,
    )
    @hypothesis.given(
        dataset=datasets(max_records=12),
        kills=st.lists(st.tuples(st.integers(0, 6), st.floats(0, 0.3)), min_size=1, max_size=3),
    )
    def check(dataset: tuple[str, list[object], dict[str, bool]], kills: list[tuple[int, float]]) -> None:
        hypothesis.assume(dataset[0] != "parquet" or PYARROW)
        tmp = fresh(tmp_path)
        source, rows = written(tmp, dataset)
        out = tmp / "out"
        argv = [sys.executable, "-m", "attrib", "batch", str(source), "-o", str(out), "--backend", "toy"]
        argv += ["--skip-bad-lines", "--quiet", "--level", "word", "--no-cache"]
        for after, pause in kills:  # SIGKILL once `after` new records are written, `pause` seconds later
            kept = len(journal_records(out))
            process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                deadline = time.monotonic() + 60
                while process.poll() is None and len(journal_records(out)) < kept + after:
                    assert time.monotonic() < deadline, "the run wrote no record for a minute"
                    time.sleep(0.003)
                time.sleep(pause)
            finally:
                process.send_signal(signal.SIGKILL)  # nothing when it has ended
                _, err = process.communicate()
            assert "Traceback" not in err, err
            assert process.returncode in (0, 1, -signal.SIGKILL), err
        before = journal_records(out)
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        assert "Traceback" not in done.stderr, done.stderr
        after_run = journal_records(out)
        new = after_run[len(before) :]
        failed = sum(1 for r in new if r["status"] != "ok")
        assert done.returncode == (1 if failed else 0), done.stderr
        assert (
            done.stderr.splitlines()[-1]
            == f"{len(new) - failed} ok, {failed} failed, {len(before)} skipped (already done)"
        )
        assert_holds(out, rows, source)

    check()

"""Hostile batch inputs (issue 22): values strict JSON cannot hold, line breaks inside JSON strings, Parquet
structs, fallback ids meeting explicit ones, broken CSV, and input read from a pipe (toy backend, no model)."""

from __future__ import annotations

import datetime
import decimal
import enum
import hashlib
import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

import attrib
from attrib.batch import BadInputError, attribute_many
from attrib.batch.inputs import check_records, from_dicts, read_records
from attrib.cli import main
from attrib.errors import InputError

# The toy tokenizer merges a chat template's last newline into a target's first token (warned).
pytestmark = pytest.mark.filterwarnings("ignore:the prompt's last")

TOY = {"sensitivity": {"paris": 2.0, "otter": 3.0}, "output": " yes it is"}


def run(records: object, **options: object) -> attrib.batch.Summary:
    options.setdefault("backend", "toy")
    options.setdefault("backend_options", TOY)
    options.setdefault("level", "word")
    return attribute_many(records, **options)  # type: ignore[arg-type]


def _no_constant(name: str) -> object:
    raise AssertionError(f"records.jsonl holds {name}, which is not JSON")


def journal(out: Path) -> list[dict[str, object]]:
    """records.jsonl read as strict JSON: UTF-8 (no surrogates), no NaN or Infinity, split on newlines only."""
    text = (out / "records.jsonl").read_bytes().decode("utf-8")
    return [json.loads(line, parse_constant=_no_constant) for line in text.split("\n") if line]


def write_lines(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.write_bytes("".join(line + end for line in lines).encode("utf-8", "surrogatepass"))
    return path


def problems_of(raws: list[tuple[int, object, str | None]]) -> list[str]:
    return [problem.describe() for problem in check_records(raws)[1]]


# --------------------------------------------------------------------------- 1. values strict JSON cannot hold


HOSTILE_JSONL = [
    '{"id": "ok1", "prompt": "Paris is the capital."}',
    '{"id": "nan", "prompt": "Paris.", "score": NaN}',
    '{"id": "inf", "prompt": "Paris.", "options": {"budget": Infinity}}',
    '{"id": "big", "prompt": "Paris.", "x": {"y": [1, 1e400]}}',
    '{"id": "sur", "prompt": "Paris \\ud800 is here", "label": "kept"}',
    '{"id": "q\\udc00", "prompt": "Paris.", "tag": "\\ud83d", "label": "kept"}',
    '{"id": "key", "prompt": "Paris.", "\\udfff": 1}',
    '{"id": "ok2", "prompt": "The otter swims."}',
]


def test_values_json_cannot_hold_are_refused_up_front_with_their_line(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", HOSTILE_JSONL)
    with pytest.raises(BadInputError) as refused:
        run(str(source), out_dir=tmp_path / "out")
    shown = refused.value.listing()
    assert shown[0].startswith("line 2: 'score' is not a finite number (NaN), which JSON cannot hold; write null")
    assert shown[1].startswith("line 3: 'options.budget' is not a finite number (Infinity)")
    assert shown[2].startswith("line 4: 'x.y[1]' is not a finite number (Infinity)")
    assert shown[3].startswith("line 5: 'prompt' holds a lone surrogate (U+D800), which UTF-8 cannot encode")
    assert shown[4].startswith("line 6: 'id' holds a lone surrogate (U+DC00)")
    assert shown[4].endswith("(and 1 more value JSON cannot hold)")
    assert shown[5].startswith("line 7: a key of the record holds a lone surrogate (U+DFFF)")
    assert len(shown) == 6
    assert not (tmp_path / "out" / "records.jsonl").exists()


def test_with_skip_bad_lines_every_record_is_written_as_strict_json_and_resumes(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", HOSTILE_JSONL)
    out = tmp_path / "out"
    summary = run(str(source), out_dir=out, skip_bad=True)
    assert (summary.ok, summary.failed) == (2, 6)
    found = journal(out)
    by_line = {record["line"]: record for record in found}
    assert sorted(by_line) == list(range(1, 9)) and len(found) == 8
    assert by_line[8]["status"] == "ok"  # a record after the bad ones ran
    assert by_line[5]["id"] == "sur" and by_line[5]["meta"] == {"label": "kept"}
    assert by_line[6]["id"] == "line-6" and by_line[6]["meta"] == {"label": "kept"}  # its own id was refused
    assert by_line[2]["meta"] == {} and by_line[2]["error_type"] == "InputError"
    again = run(str(source), out_dir=out, skip_bad=True)
    assert (again.ok, again.failed, again.skipped) == (0, 0, 8)
    retried = run(str(source), out_dir=out, skip_bad=True, retry_failed=True)
    assert (retried.ok, retried.failed, retried.skipped) == (0, 6, 2)
    assert sorted(str(record["id"]) for record in journal(out)) == sorted(str(r["id"]) for r in found)


def test_the_command_line_runs_every_later_item_past_a_nan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_lines(tmp_path / "in.jsonl", HOSTILE_JSONL)
    out = tmp_path / "out"
    argv = ["batch", str(source), "-o", str(out), "--backend", "toy", "--quiet", "--skip-bad-lines"]
    assert main(argv) == 1
    assert capsys.readouterr().err.splitlines()[-1] == "2 ok, 6 failed, 0 skipped (already done)"
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines()[-1] == "0 ok, 0 failed, 8 skipped (already done)"


class Colour(enum.IntEnum):
    RED = 1


def test_records_in_memory_are_converted_by_kind(tmp_path: Path) -> None:
    zone = datetime.timezone(datetime.timedelta(hours=2))
    meta = {
        "when": datetime.datetime(2026, 12, 4, 9, 30, 15, 250, tzinfo=zone),
        "naive": datetime.datetime(2026, 1, 2, 3, 4, 5),
        "day": datetime.date(2026, 12, 4),
        "at": datetime.time(9, 30),
        "price": decimal.Decimal("12.50"),
        "tiny": decimal.Decimal("1E-30"),
        "took": datetime.timedelta(days=1, seconds=2, microseconds=500_000),
        "back": -datetime.timedelta(seconds=90),
        "uid": uuid.UUID(int=7),
        "pair": (1, "two"),
        "colour": Colour.RED,
        "nested": {"at": [datetime.date(2020, 2, 29)]},
    }
    summary = run([{"id": "d1", "prompt": "Paris is here.", **meta}], out_dir=tmp_path)
    assert summary.ok == 1
    expected = {
        "when": "2026-12-04T09:30:15.000250+02:00",
        "naive": "2026-01-02T03:04:05",
        "day": "2026-12-04",
        "at": "09:30:00",
        "price": "12.50",
        "tiny": "1E-30",
        "took": "PT86402.5S",
        "back": "-PT90S",
        "uid": "00000000-0000-0000-0000-000000000007",
        "pair": [1, "two"],
        "colour": 1,
        "nested": {"at": ["2020-02-29"]},
    }
    assert journal(tmp_path)[0]["meta"] == expected
    items, problems = check_records(from_dicts([{"prompt": "x", **meta}]))
    assert problems == [] and items[0].meta == expected
    assert type(items[0].meta["colour"]) is int


def test_records_in_memory_that_json_cannot_hold_become_error_records(tmp_path: Path) -> None:
    looped: list[object] = []
    looped.append(looped)
    records = [
        {"id": "blob", "prompt": "Paris.", "thumb": b"\x89PNG"},
        {"id": "set", "prompt": "Paris.", "tags": {"a", "b"}},
        {"id": "loop", "prompt": "Paris.", "self": looped},
        {"id": "keys", "prompt": "Paris.", "counts": {1: 2}},
        {"id": "surrogate\ud800", "prompt": "Paris."},
        {"id": "nan", "prompt": "Paris.", "options": {"seed": decimal.Decimal("NaN")}},
        {"id": "ok", "prompt": "The otter swims."},
    ]
    with pytest.raises(BadInputError) as refused:
        run(records)
    shown = refused.value.listing()
    assert shown[0].startswith("line 1: 'thumb' holds bytes (a binary column?), which JSON cannot hold; decode them")
    assert shown[1].startswith("line 2: 'tags' holds a set, which JSON cannot hold")
    assert shown[2] == "line 3: 'self[0]' contains itself"
    assert shown[3].startswith("line 4: 'counts' has a key that is not a string (1)")
    assert shown[4].startswith("line 5: 'id' holds a lone surrogate (U+D800)")
    assert shown[5].startswith("line 6: 'options.seed' is not a finite number (NaN)")
    summary = run(records, out_dir=tmp_path, skip_bad=True)
    assert (summary.ok, summary.failed) == (1, 6)
    assert [record["id"] for record in journal(tmp_path)] == ["blob", "set", "loop", "keys", "line-5", "nan", "ok"]
    assert json.loads((tmp_path / "run.json").read_text())["input"]["size"] == 7


def test_numpy_scalars_are_numbers_and_a_numpy_nan_is_refused() -> None:
    np = pytest.importorskip("numpy")
    items, problems = check_records(
        from_dicts([{"prompt": "x", "n": np.int64(3), "f": np.float32(1.5)}, {"prompt": "y", "f": np.float64("nan")}])
    )
    assert items[0].meta == {"n": 3, "f": 1.5} and type(items[0].meta["n"]) is int
    assert problems[0].describe().startswith("line 2: 'f' is not a finite number (NaN)")


def test_json_safe_names_the_place_of_what_it_refuses() -> None:
    from attrib.batch.inputs import json_safe

    with pytest.raises(InputError, match=r"^'a\[0\]\.b' is not a finite number \(-Infinity\)"):
        json_safe({"a": [{"b": float("-inf")}]})
    deep: list[object] = []
    inner = deep
    for _ in range(5000):
        inner.append([])
        inner = inner[0]  # type: ignore[assignment]
    with pytest.raises(InputError, match=r"\.\.\.' is nested too deeply$"):
        json_safe({"deep": deep})
    assert json_safe({"t": ("a", 2.5, None, True)}) == {"t": ["a", 2.5, None, True]}


def test_parquet_timestamps_dates_decimals_and_durations_become_text_binary_is_refused(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    when = datetime.datetime(2026, 12, 4, 9, 0, tzinfo=datetime.UTC)
    table = pa.table(
        {
            "id": ["p1", "p2", "p3"],
            "prompt": ["Paris is here.", "The otter.", "Paris again."],
            "when": pa.array([when, None, None], pa.timestamp("us", tz="UTC")),
            "day": pa.array([datetime.date(2026, 12, 4), None, None], pa.date32()),
            "price": pa.array([decimal.Decimal("12.50"), None, None], pa.decimal128(10, 2)),
            "took": pa.array([datetime.timedelta(seconds=90), None, None], pa.duration("s")),
            "blob": pa.array([None, b"\x00\xff", None], pa.binary()),
            "score": pa.array([0.5, None, float("nan")], pa.float64()),
        }
    )
    source = tmp_path / "in.parquet"
    pq.write_table(table, source)
    with pytest.raises(BadInputError) as refused:
        run(str(source))
    assert [line.split(":")[0] for line in refused.value.listing()] == ["line 2", "line 3"]
    assert "'blob' holds bytes" in refused.value.listing()[0]
    assert "'score' is not a finite number (NaN)" in refused.value.listing()[1]
    out = tmp_path / "out"
    summary = run(str(source), out_dir=out, skip_bad=True)
    assert (summary.ok, summary.failed) == (1, 2)
    ok = next(record for record in journal(out) if record["status"] == "ok")
    assert ok["meta"] == {
        "when": "2026-12-04T09:00:00+00:00",
        "day": "2026-12-04",
        "price": "12.50",
        "took": "PT90S",
        "score": 0.5,
    }


# --------------------------------------------------------------------------- 6. line breaks inside JSON strings


def test_json_lines_end_at_newline_only_so_unicode_line_separators_stay_in_their_strings(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        (
            '{"id": "a", "prompt": "Paris\u2028is\u2029here\u0085now"}\n'
            "\n"
            '{"id": "b", "prompt": "x\u2028"}\r\n'
            '{"prompt": "no id"}\n'
            "{bad\n"
        ).encode("utf-8")
    )
    items, problems = check_records(read_records(source))
    assert [(item.id, item.line) for item in items] == [("a", 1), ("b", 3), ("line-4", 4)]
    assert items[0].prompt == "Paris\u2028is\u2029here\u0085now" and items[1].prompt == "x\u2028"
    assert [problem.describe().split(":")[0] for problem in problems] == ["line 5"]


def test_csv_cells_keep_unicode_line_separators(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes("id,prompt\r\nc1,Paris\u2028here\r\n\r\nc2,x\u0085y\r\n".encode())
    items, problems = check_records(read_records(source))
    assert problems == []
    assert [(item.id, item.line, item.prompt) for item in items] == [
        ("c1", 2, "Paris\u2028here"),
        ("c2", 4, "x\u0085y"),
    ]


# --------------------------------------------------------------------------- 7. Parquet options structs


def test_parquet_options_structs_with_other_keys_per_row(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [
        {"id": "p1", "prompt": "The otter swims. Paris sleeps.", "options": {"level": "sentence"}},
        {"id": "p2", "prompt": "Paris is here.", "options": {"seed": 3}},
        {"id": "p3", "prompt": "Paris.", "options": {"level": "word", "budget": 8}},
    ]
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(rows), source)
    items, problems = check_records(read_records(source))
    assert problems == []
    assert [item.options for item in items] == [{"level": "sentence"}, {"seed": 3}, {"level": "word", "budget": 8}]
    summary = run(str(source), level="token", budget=50)
    levels = {outcome.id: outcome.result.level for outcome in summary.outcomes}
    assert (summary.ok, levels) == (3, {"p1": "sentence", "p2": "token", "p3": "word"})


# --------------------------------------------------------------------------- 8. fallback ids


@pytest.mark.parametrize(
    ("lines", "ids"),
    [
        # an explicit id "line-3" before line 3, which has none
        (['{"id": "line-3", "prompt": "a"}', '{"prompt": "b"}', '{"prompt": "c"}'], ["line-3", "line-2", "line-3.2"]),
        # ... and after it
        (['{"prompt": "a"}', '{"id": "line-1", "prompt": "b"}'], ["line-1.2", "line-1"]),
        # the second choice taken too
        (
            ['{"prompt": "a"}', '{"id": "line-1", "prompt": "b"}', '{"id": "line-1.2", "prompt": "c"}'],
            ["line-1.3", "line-1", "line-1.2"],
        ),
    ],
)
def test_fallback_ids_never_meet_an_explicit_id(tmp_path: Path, lines: list[str], ids: list[str]) -> None:
    source = write_lines(tmp_path / "in.jsonl", lines)
    items, problems = check_records(read_records(source))
    assert problems == [] and [item.id for item in items] == ids


def test_a_bad_line_and_a_duplicate_get_ids_no_record_has(tmp_path: Path) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        [
            "{bad json",  # line 1: its error record's id
            '{"id": "line-1", "prompt": "Paris is here."}',
            '{"id": "q", "prompt": "Paris."}',
            '{"id": "q", "prompt": "Paris again."}',  # line 4: a duplicate
            '{"id": "line-4", "prompt": "The otter."}',
        ],
    )
    out = tmp_path / "out"
    summary = run(str(source), out_dir=out, skip_bad=True)
    assert (summary.ok, summary.failed) == (3, 2)
    found = {record["id"]: record for record in journal(out)}
    assert len(found) == 5
    assert (found["line-1.2"]["line"], found["line-1.2"]["status"]) == (1, "error")
    assert (found["line-4.2"]["line"], found["line-4.2"]["status"]) == (4, "error")
    assert found["line-1"]["status"] == found["line-4"]["status"] == "ok"
    retried = run(str(source), out_dir=out, skip_bad=True, retry_failed=True)
    assert (retried.ok, retried.failed, retried.skipped) == (0, 2, 3)


# --------------------------------------------------------------------------- 9. broken CSV


def csv_problems(tmp_path: Path, text: str) -> tuple[list[tuple[str, int]], list[str]]:
    source = tmp_path / "in.csv"
    source.write_text(text, encoding="utf-8")
    items, problems = check_records(read_records(source))
    return [(str(item.id), item.line) for item in items], [problem.describe() for problem in problems]


def test_csv_quote_never_closed_names_the_line_it_opened_on(tmp_path: Path) -> None:
    items, problems = csv_problems(tmp_path, 'id,prompt\nc1,Paris is here\nc2,"The otter\nc3,swims\nc4,ok\n')
    assert items == [("c1", 2)]
    assert problems == [
        "line 3: a quote opened on line 3 is never closed, so lines 3 to 5 would be one cell; "
        'close it (a quote inside a quoted cell is written "")'
    ]
    items, problems = csv_problems(tmp_path, 'id,prompt,label\nc1,"multi\nline","open\nc2,x,y')
    assert items == [] and problems[0].startswith("line 2: a quote opened on line 3 is never closed, so lines 3 to 4")


def test_csv_quote_closed_by_a_later_record_is_a_problem_and_the_rest_is_read(tmp_path: Path) -> None:
    items, problems = csv_problems(tmp_path, 'id,prompt\nc1,"Paris\nc2,x\nc3,"y"\nc4,z\n')
    assert items == [("c4", 5)]
    assert len(problems) == 1 and problems[0].startswith("line 2: not valid CSV on line 4 (")


def test_csv_extra_cells_are_a_problem_and_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    items, problems = csv_problems(tmp_path, "id,prompt\n\nc1,Paris, France\nc2,The otter,\nc3,x\n")
    assert items == [("c2", 4), ("c3", 5)]  # an empty extra cell (a trailing comma) loses nothing
    assert problems == [
        "line 3: 3 cells but the header names 2 columns; quote a cell that holds a comma, "
        "or name the extra column in the header"
    ]


def test_csv_unnamed_columns_lose_nothing_silently(tmp_path: Path) -> None:
    # one unnamed column (the index pandas writes) is metadata under ""
    source = tmp_path / "in.csv"
    source.write_text(",id,prompt\n0,c1,Paris\n", encoding="utf-8")
    items, problems = check_records(read_records(source))
    assert problems == [] and items[0].meta == {"": "0"}
    # several: empty cells under them are nothing, a filled one is a problem
    items, problems = csv_problems(tmp_path, "id,prompt,,\nc1,Paris,,\nc2,Paris,x,\n")
    assert items == [("c1", 2)]
    assert problems == ["line 3: cell 3 is under a column the header does not name; name it in the header"]


def test_a_csv_cell_longer_than_the_csv_modules_limit_is_a_prompt(tmp_path: Path) -> None:
    import csv

    limit = csv.field_size_limit()
    document = "Paris is the capital. " * 10_000
    items, problems = csv_problems(tmp_path, f'id,prompt\nc1,"{document}"\nc2,x\n')
    assert problems == [] and items == [("c1", 2), ("c2", 3)]
    assert csv.field_size_limit() == limit


def test_a_csv_header_that_does_not_parse_refuses_the_file(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text('id,"prompt\nc1,Paris\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"in\.csv: line 1: the header is not valid CSV \(a quote opened on line 1"):
        read_records(source)


def test_csv_header_naming_a_column_twice_refuses_the_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,prompt,prompt\nc1,Paris,Rome\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"in\.csv: line 1: the header names column 'prompt' twice; rename"):
        read_records(source)
    assert main(["batch", str(source), "-o", str(tmp_path / "out"), "--backend", "toy"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("attrib: error: ") and "column 'prompt' twice" in err[0]


# --------------------------------------------------------------------------- 12. input from a pipe


def _batch(argv: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(attrib.__file__).parents[1]), *sys.path])}
    return subprocess.run(
        [sys.executable, "-m", "attrib", "batch", *argv, "--backend", "toy", "--quiet"],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
    )


def test_piped_input_is_hashed_as_read_and_another_piped_input_is_refused(tmp_path: Path) -> None:
    first = b'{"id": "a", "prompt": "Paris is here."}\n'
    fifo = tmp_path / "in.jsonl"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(first,), daemon=True)
    writer.start()
    out = tmp_path / "out"
    done = _batch([str(fifo), "-o", str(out)])
    writer.join(timeout=10)
    assert done.returncode == 0, done.stderr.decode()
    described = json.loads((out / "run.json").read_text())["input"]
    assert described["size"] == len(first) and described["sha256"] == hashlib.sha256(first).hexdigest()
    assert [record["id"] for record in journal(out)] == ["a"]

    other = b'{"id": "b", "prompt": "The otter swims."}\n'
    refused = _batch(["/dev/stdin", "-o", str(out)], stdin=other)
    err = refused.stderr.decode().splitlines()
    assert refused.returncode == 1 and len(err) == 1 and "holds another run (input: run.json has sha256" in err[0]
    again = _batch(["/dev/stdin", "-o", str(out)], stdin=first)  # the same bytes from a pipe resume
    assert (
        again.returncode == 0 and again.stderr.decode().splitlines()[-1] == "0 ok, 0 failed, 1 skipped (already done)"
    )

"""attribute_many on the toy backend: inputs checked up front, records, OUT_DIR, resume (no Ray, no model)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

import attrib
from attrib.batch import BadInputError, attribute_many, prepare
from attrib.batch.inputs import check_records, from_dicts, read_records
from attrib.batch.outdir import OutDir, item_key
from attrib.batch.worker import Done
from attrib.errors import InputError
from attrib.summary import summarize

# The toy tokenizer merges a chat template's last newline into a target's first token (warned).
pytestmark = pytest.mark.filterwarnings("ignore:the prompt's last")

TOY = {"sensitivity": {"paris": 2.0, "capital": 1.0, "otter": 3.0}, "output": " yes it is"}

RECORDS = [
    {"id": "q1", "prompt": "Paris is the capital of France.", "label": "geo"},
    {"id": "q2", "prompt": "The otter swims. The capital sleeps.", "options": {"level": "sentence"}},
    {"id": "q3", "system": "You are kind. The wifi is otter-42.", "prompt": "What is the wifi?"},
    {"id": "q4", "messages": [{"role": "user", "content": "Paris or Rome?"}], "target": " Paris"},
    {"prompt": "No id here, only Paris."},
]


def run(records: object = RECORDS, **options: object) -> attrib.batch.Summary:
    options.setdefault("backend", "toy")
    options.setdefault("backend_options", TOY)
    options.setdefault("level", "word")
    return attribute_many(records, **options)  # type: ignore[arg-type]


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (path / "records.jsonl").read_text().splitlines()]


def test_each_item_equals_a_single_attribute_call() -> None:
    summary = run()
    assert (summary.ok, summary.failed, summary.skipped) == (5, 0, 0)
    by_id = {o.id: o for o in summary.outcomes}
    assert list(by_id) == ["q1", "q2", "q3", "q4", "line-5"]
    single = attrib.attribute(
        "The otter swims. The capital sleeps.", backend="toy", backend_options=TOY, level="sentence"
    )
    batched = by_id["q2"].result
    assert batched.level == "sentence"
    assert batched.scores.tolist() == single.scores.tolist()
    assert [u.text for u in batched.units] == [u.text for u in single.units]
    chat = by_id["q3"].result
    assert chat.messages == [
        {"role": "system", "content": "You are kind. The wifi is otter-42."},
        {"role": "user", "content": "What is the wifi?"},
    ]
    messages = [{"role": "user", "content": "Paris or Rome?"}]
    alone = attrib.attribute(messages, backend="toy", backend_options=TOY, level="word", target=" Paris")
    assert by_id["q4"].result.to_dict()["scores"] == alone.to_dict()["scores"]
    assert by_id["q4"].result.output == alone.output


def test_records_carry_the_contract_fields() -> None:
    outcomes = {o.id: o.record for o in run().outcomes}
    first = outcomes["q1"]
    assert first["meta"] == {"label": "geo"} and first["line"] == 1 and first["task"] == "explain"
    assert first["top"][0] == {"unit": 0, "text": "Paris", "score": 6.0, "message": None, "role": None}
    assert first["output_logprob"] == pytest.approx(3 * (-0.25 - 3.0))  # "otter" is missing
    assert first["roles"] is None and first["system_top"] is None and first["hidden_influence"] is None
    assert set(first["cost"]) == {"calls", "tokens_evaluated", "seconds"}
    chat = outcomes["q3"]
    assert chat["system_top"]["text"] == " otter-42."
    assert chat["top"][0]["role"] == "system" and chat["top"][0]["message"] == 0
    assert set(chat["roles"]) == {"system", "user"}


def test_audit_task_records_hidden_influence() -> None:
    summary = run([{"id": "a", "system": "The wifi is otter-42.", "prompt": "Wifi?"}], task="audit", level="sentence")
    record = summary.outcomes[0].record
    assert record["task"] == "audit"
    assert set(record["hidden_influence"]) == {"flagged", "score", "kind"}
    assert record["hidden_influence"]["kind"] == "reference-free"


def test_run_wide_system_prompt_makes_chats_but_keeps_a_records_own() -> None:
    records = [{"id": "p", "prompt": "Where?"}, {"id": "s", "system": "Own system.", "prompt": "Where?"}]
    by_id = {o.id: o.result for o in run(records, system="Shared: otter.").outcomes}
    assert by_id["p"].messages[0] == {"role": "system", "content": "Shared: otter."}
    assert by_id["s"].messages[0] == {"role": "system", "content": "Own system."}


def test_every_bad_record_is_listed_before_any_work(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    good = json.dumps({"id": "ok", "prompt": "Paris"})
    bad = [
        "{not json",
        json.dumps({"id": "e", "prompt": "  "}),
        json.dumps({"id": "ok", "prompt": "again"}),
        json.dumps({"id": "o", "prompt": "x", "options": {"temperature": 1}}),
        json.dumps({"id": "b", "prompt": "x", "options": {"budget": 1}}),
        json.dumps({"id": "m", "messages": [{"role": "robot", "content": "hi"}]}),
        json.dumps({"id": "t", "prompt": "x", "target": ""}),
        json.dumps(["a list"]),
        json.dumps({"id": "both", "prompt": "x", "messages": []}),
    ]
    source.write_text("\n".join([good, "", *bad]) + "\n")
    with pytest.raises(BadInputError) as caught:
        run(str(source), out_dir=tmp_path / "out")
    listing = caught.value.listing()
    assert [line.split(":")[0] for line in listing] == [f"line {n}" for n in range(3, 12)]
    assert listing[0].startswith("line 3: not valid JSON")
    assert listing[1] == "line 4: empty prompt"
    assert "duplicate id 'ok' (first on line 1)" in listing[2]
    assert "unknown option 'temperature'" in listing[3]
    assert "budget" in listing[4]
    assert "role 'robot'" in listing[5]
    assert not (tmp_path / "out" / "records.jsonl").exists()


def test_more_than_twenty_problems_are_counted() -> None:
    records = [{"id": str(n), "prompt": ""} for n in range(25)]
    with pytest.raises(BadInputError) as caught:
        run(records)
    listing = caught.value.listing()
    assert len(listing) == 21 and listing[-1] == "... and 5 more"


def test_skip_bad_records_them_as_errors_and_runs_the_rest(tmp_path: Path) -> None:
    records = [{"id": "good", "prompt": "Paris"}, {"id": "empty", "prompt": ""}, {"prompt": 3}]
    summary = run(records, skip_bad=True, out_dir=tmp_path)
    assert (summary.ok, summary.failed) == (1, 2)
    errors = {r["id"]: r for r in lines(tmp_path) if r["status"] == "error"}
    assert errors["empty"]["error_type"] == "EmptyPromptError"
    assert errors["line-3"]["error"] == "'prompt' must be a string, got int"


def test_a_failing_item_is_an_error_record_and_the_run_goes_on(tmp_path: Path) -> None:
    records = [
        {"id": "short", "prompt": "Paris"},
        {"id": "long", "prompt": "word " * 80},
        {"id": "after", "prompt": "x"},
    ]
    summary = run(records, backend_options={**TOY, "context_length": 40}, out_dir=tmp_path)
    assert (summary.ok, summary.failed) == (2, 1)
    (error,) = [r for r in lines(tmp_path) if r["status"] == "error"]
    assert error["id"] == "long" and error["error_type"] == "PromptTooLongError"
    assert "\n" not in error["error"]


def test_a_bug_in_an_item_is_recorded_with_its_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from attrib.backends.toy import ToyBackend

    original = ToyBackend.tokenize

    def broken(self: ToyBackend, text: str):  # a bug that only some prompts hit
        if "boom" in text:
            raise ZeroDivisionError("division by zero")
        return original(self, text)

    monkeypatch.setattr(ToyBackend, "tokenize", broken)
    summary = run([{"id": "a", "prompt": "Paris"}, {"id": "b", "prompt": "boom"}], out_dir=tmp_path)
    assert (summary.ok, summary.failed) == (1, 1)
    record = {r["id"]: r for r in lines(tmp_path)}["b"]
    assert record["error_type"] == "ZeroDivisionError" and "division by zero" in record["error"]


def test_out_dir_layout_and_units_table(tmp_path: Path) -> None:
    summary = run(out_dir=tmp_path)
    records = lines(tmp_path)
    assert sorted(r["id"] for r in records) == sorted(o.id for o in summary.outcomes)
    for record in records:
        result = attrib.Attribution.from_json(tmp_path / record["file"])
        assert result.output == record["output"]
    run_json = json.loads((tmp_path / "run.json").read_text())
    assert run_json["task"] == "explain" and run_json["input"]["size"] == len(RECORDS)
    with (tmp_path / "units.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    q1 = [row for row in rows if row["id"] == "q1"]
    assert [row["text"] for row in q1][:2] == ["Paris", " is"]
    assert float(q1[0]["score"]) == 6.0 and q1[0]["role"] == ""
    q3 = [row for row in rows if row["id"] == "q3"]
    assert {row["role"] for row in q3} == {"system", "user"}
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(tmp_path / "units.parquet")
    assert table.column_names == ["id", "message", "role", "unit", "text", "start", "end", "score"]
    assert table.num_rows == len(rows)


def test_resume_skips_finished_ids_and_retries_failures_only_when_asked(tmp_path: Path) -> None:
    records = [{"id": "a", "prompt": "Paris"}, {"id": "long", "prompt": "word " * 80}]
    options = {"backend_options": {**TOY, "context_length": 40}, "out_dir": tmp_path}
    run(records[:1], **options, force=True)
    second = run(records, **options, force=True)
    assert (second.ok, second.failed, second.skipped) == (0, 1, 1)
    third = run(records, **options)
    assert (third.ok, third.failed, third.skipped) == (0, 0, 2)
    fourth = run(records, **options, retry_failed=True)
    assert (fourth.ok, fourth.failed, fourth.skipped) == (0, 1, 1)
    assert sorted(r["id"] for r in lines(tmp_path)) == ["a", "long"]  # the retried record replaced, not added


def test_another_run_in_the_same_out_dir_is_refused(tmp_path: Path) -> None:
    run(RECORDS[:1], out_dir=tmp_path)
    with pytest.raises(InputError, match="--level: run.json has 'word', this run 'sentence'"):
        run(RECORDS[:1], out_dir=tmp_path, level="sentence")
    with pytest.raises(InputError, match="input: run.json has sha256 [0-9a-f]{12}…"):
        run(RECORDS[:2], out_dir=tmp_path)
    assert run(RECORDS[:2], out_dir=tmp_path, force=True).skipped == 1


def test_a_torn_last_line_is_dropped_and_the_item_redone(tmp_path: Path) -> None:
    run(RECORDS, out_dir=tmp_path)
    path = tmp_path / "records.jsonl"
    data = path.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    torn_id = json.loads(data[last_start:])["id"]
    path.write_bytes(data[: last_start + 25])  # killed mid-write
    summary = run(RECORDS, out_dir=tmp_path)
    assert [o.id for o in summary.outcomes] == [torn_id] and summary.skipped == 4
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()].count(torn_id) == 1


def test_item_keys_are_safe_and_distinct() -> None:
    ids = ["q1", "a/b", "a%2Fb", "..", ".", "-rf", "x" * 300, "x" * 301, "ü", "a b", "a_b"]
    keys = [item_key(i) for i in ids]
    assert len(set(keys)) == len(ids)
    assert keys[0] == "q1" and keys[-1] == "a_b"
    for key in keys:
        assert key not in (".", "..") and "/" not in key and not key.startswith("-")
        assert all(c.isalnum() and c.isascii() or c in "._-%" for c in key)


def test_ids_that_need_encoding_get_their_own_files(tmp_path: Path) -> None:
    records = [{"id": "../escape", "prompt": "Paris"}, {"id": "a b", "prompt": "Paris"}]
    run(records, out_dir=tmp_path)
    files = sorted(p.name for p in (tmp_path / "items").iterdir())
    assert len(files) == 2 and all("/" not in f for f in files)
    assert not (tmp_path.parent / "escape.json").exists()


def test_csv_and_parquet_inputs_read_like_json_lines(tmp_path: Path) -> None:
    rows = [
        {"id": "c1", "prompt": "Paris is here", "messages": "", "options": '{"level": "token"}', "label": "x"},
        {
            "id": "c2",
            "prompt": "",
            "messages": json.dumps([{"role": "user", "content": "otter"}]),
            "options": "",
            "label": "",
        },
    ]
    source = tmp_path / "in.csv"
    with source.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    items, problems = check_records(read_records(source))
    assert problems == []
    assert [(i.id, i.line, i.options, i.meta) for i in items] == [
        ("c1", 2, {"level": "token"}, {"label": "x"}),
        ("c2", 3, {}, {}),
    ]
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    parquet = tmp_path / "in.parquet"
    pq.write_table(
        pa.Table.from_pylist(
            [{"id": "p1", "prompt": "Paris", "options": None}, {"id": "p2", "prompt": "x", "options": '{"seed": 3}'}]
        ),
        parquet,
    )
    items, problems = check_records(read_records(parquet))
    assert problems == [] and [(i.id, i.options) for i in items] == [("p1", {}), ("p2", {"seed": 3})]


def test_in_memory_records_are_numbered_like_lines() -> None:
    items, problems = check_records(from_dicts([{"prompt": "a"}, {"prompt": ""}]))
    assert [i.id for i in items] == ["line-1"] and problems[0].describe() == "line 2: empty prompt"


def test_options_the_task_does_not_take_are_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="audit takes no option 'noise_samples'"):
        run(RECORDS, task="audit", noise_samples=2, out_dir=tmp_path)
    with pytest.raises(InputError, match="unknown executor"):
        run(RECORDS, executor="dask")
    assert not (tmp_path / "run.json").exists()


def test_prepare_runs_nothing_and_the_write_order_is_file_then_record(tmp_path: Path) -> None:
    batch = prepare(RECORDS, out_dir=tmp_path, backend="toy", backend_options=TOY)
    assert batch.total == 5 and not (tmp_path / "records.jsonl").exists()
    out = OutDir(tmp_path)
    record = out.write(Done({"id": "x", "status": "ok"}, "{}"))
    assert (tmp_path / record["file"]).exists() and lines(tmp_path) == [record]


def test_importing_attrib_batch_imports_neither_ray_nor_tqdm() -> None:
    import subprocess

    code = "import sys, attrib, attrib.batch; print(sorted(m for m in ('ray', 'tqdm', 'pyarrow') if m in sys.modules))"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "[]"


def test_a_full_disk_is_a_one_line_error_and_the_journal_keeps_what_was_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    run(RECORDS[:2], out_dir=tmp_path)
    real_fsync = os.fsync

    synced = []

    def full(descriptor: int) -> None:  # run.json, q3's file and q3's line fit; q4's file does not
        if len(synced) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        synced.append(descriptor)
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(InputError, match="No space left on device; fix that and re-run"):
        run(RECORDS[:4], out_dir=tmp_path, force=True)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert sorted(r["id"] for r in lines(tmp_path)) == ["q1", "q2", "q3"]
    summary = run(RECORDS[:4], out_dir=tmp_path, force=True)
    assert summary.skipped == 3 and summary.ok == 1
    assert sorted(r["id"] for r in lines(tmp_path)) == ["q1", "q2", "q3", "q4"]


def test_ray_actors_give_llama_cpp_their_own_cpus_unless_the_user_set_threads():
    from attrib.batch.ray_executor import _within_cpus
    from attrib.batch.worker import Spec

    assert _within_cpus(Spec("explain", "llama"), 1).backend_options == {"n_threads": 1}
    assert _within_cpus(Spec("explain", None), 2).backend_options == {"n_threads": 2}
    user = Spec("explain", "llama", backend_options={"n_threads": 4})
    assert _within_cpus(user, 1) is user
    toy = Spec("explain", "toy")
    assert _within_cpus(toy, 1) is toy


def test_a_second_run_into_an_out_dir_in_use_is_refused_until_the_first_ends(tmp_path: Path) -> None:
    first = prepare(RECORDS[:2], out_dir=tmp_path, backend="toy", backend_options=TOY, level="word")
    with pytest.raises(InputError, match="in use by another attrib batch run"):
        prepare(RECORDS[:2], out_dir=tmp_path, backend="toy", backend_options=TOY, level="word")
    assert len(list(first.outcomes())) == 2  # the first run finishes and lets go
    again = prepare(RECORDS[:2], out_dir=tmp_path, backend="toy", backend_options=TOY, level="word")
    assert (again.skipped, again.total) == (2, 0)
    list(again.outcomes())


def test_contrast_run_wide_or_per_record_equals_a_single_contrastive_call(tmp_path: Path) -> None:
    records = [
        {"id": "wide", "prompt": "Paris is the capital."},
        {"id": "own", "prompt": "Paris is the capital.", "contrast": " maybe"},
        {"id": "targeted", "prompt": "The otter and Paris.", "target": " yes", "options": {"level": "sentence"}},
    ]
    summary = run(records, contrast=" no", out_dir=tmp_path)
    by_id = {o.id: o for o in summary.outcomes}
    for item_id, prompt, own in [
        ("wide", "Paris is the capital.", {"contrast": " no"}),
        ("own", "Paris is the capital.", {"contrast": " maybe"}),
        ("targeted", "The otter and Paris.", {"contrast": " no", "target": " yes", "level": "sentence"}),
    ]:
        alone = attrib.attribute(prompt, backend="toy", backend_options=TOY, **{"level": "word", **own})
        batched = by_id[item_id].result
        assert batched.contrast is not None and batched.contrast.text == own["contrast"]
        assert batched.scores.tolist() == alone.scores.tolist()
        assert by_id[item_id].record["contrast"] == own["contrast"]
    assert json.loads((tmp_path / "run.json").read_text())["options"]["contrast"] == " no"
    dataset = summarize(tmp_path)
    assert dataset.contrastive == 3 and dataset.to_dict()["counts"]["contrastive"] == 3
    assert "3 contrastive items" in dataset.render()


def test_a_bad_contrast_is_listed_up_front_and_no_contrast_is_a_plain_record() -> None:
    bad = [
        {"id": "empty", "prompt": "Paris", "contrast": "  "},
        {"id": "number", "prompt": "Paris", "contrast": 7},
        {"id": "same", "prompt": "Paris", "target": " no", "contrast": " no"},
    ]
    with pytest.raises(BadInputError) as caught:
        run(bad)
    listing = caught.value.listing()
    assert listing[0].startswith("line 1: 'contrast' must be a non-empty string")
    assert listing[1].startswith("line 2: 'contrast' must be a non-empty string")
    assert listing[2].startswith("line 3: contrast ' no' equals the target")
    plain = run([{"id": "p", "prompt": "Paris"}]).outcomes[0]
    assert plain.record["contrast"] is None and plain.result.contrast is None

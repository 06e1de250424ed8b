"""A batch OUT_DIR under hostile ids, damaged files, killed runs and careless paths (toy backend, no model).

Item keys are injective and a taken key is refused; run.json appears only once a run
has started; damaged or missing item files neither stop a batch nor raise a traceback;
stale temporaries are removed under the lock; SIGTERM ends a batch as Ctrl-C does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attrib import registry
from attrib.backends.toy import ToyBackend
from attrib.batch import BadInputError, Summary, attribute_many, prepare
from attrib.batch.outdir import OutDir, item_key
from attrib.cli import main
from attrib.errors import BackendError, InputError, ResultError
from attrib.result import Attribution
from attrib.summary import summarize

pytestmark = pytest.mark.filterwarnings("ignore:the prompt's last")

TOY = {"sensitivity": {"paris": 2.0, "otter": 3.0}, "output": " yes it is"}


class BrokenToy(ToyBackend):
    """A backend that never opens (a model file that is not there)."""

    name = "brokentoy"

    def __init__(self, **options: object) -> None:
        raise BackendError("the model cannot be opened (a test backend that never opens)")


class SlowToy(ToyBackend):
    """The toy, sleeping $ATTRIB_TEST_DELAY seconds per scored request (a run to stop mid-way)."""

    name = "slowtoy"

    def __init__(self) -> None:
        super().__init__(sensitivity=TOY["sensitivity"], output=" yes", delay=float(os.environ["ATTRIB_TEST_DELAY"]))


DRIVER = (
    "import sys; sys.path.insert(0, 'tests'); from attrib import registry; "
    "registry.register('backend', 'slowtoy', 'test_batch_outdir_hostile:SlowToy'); "
    "from attrib.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.fixture(autouse=True)
def _test_backends() -> None:
    registry.register("backend", "brokentoy", "test_batch_outdir_hostile:BrokenToy")


def run(records: list[dict[str, object]], out: Path, **options: object) -> Summary:
    options.setdefault("backend", "toy")
    options.setdefault("backend_options", TOY)
    options.setdefault("level", "word")
    return attribute_many(records, out_dir=out, **options)  # type: ignore[arg-type]


def journal(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "records.jsonl").read_text(encoding="utf-8").splitlines()]


def prompt_of(out: Path, record: dict[str, object]) -> str:
    return Attribution.from_json(out / str(record["file"])).prompt


def old_key(item_id: str) -> str:
    """The former key scheme: 120 encoded characters and 8 hex digits of the sha256."""
    encoded = "".join(c if re.fullmatch(r"[A-Za-z0-9._-]", c) else f"%{ord(c):02X}" for c in item_id)
    return f"{encoded[:120]}_h{hashlib.sha256(item_id.encode()).hexdigest()[:8]}"


def colliding_ids() -> tuple[str, str]:
    """Two ids whose former keys are equal: one encoded prefix, and a 32-bit birthday search on the hash."""
    seen: dict[str, str] = {}
    n = 0
    while True:
        candidate = "/" + "x" * 130 + str(n)  # every candidate's first 120 encoded characters are the same
        digest = hashlib.sha256(candidate.encode()).hexdigest()[:8]
        if digest in seen:
            return seen[digest], candidate
        seen[digest] = candidate
        n += 1


# ----------------------------------------------------------------- item keys (item 3)


def test_ids_whose_former_keys_collide_get_their_own_files(tmp_path: Path) -> None:
    first, second = colliding_ids()
    assert old_key(first) == old_key(second)  # the collision the former scheme wrote one file for
    assert item_key(first) != item_key(second)
    records = [{"id": first, "prompt": "Paris is far."}, {"id": second, "prompt": "The otter swims."}]
    summary = run(records, tmp_path)
    assert (summary.ok, summary.failed) == (2, 0)
    by_id = {r["id"]: r for r in journal(tmp_path)}
    assert prompt_of(tmp_path, by_id[first]) == "Paris is far."
    assert prompt_of(tmp_path, by_id[second]) == "The otter swims."
    assert len(list((tmp_path / "items").iterdir())) == 2


def test_plain_ids_keep_their_keys() -> None:
    for plain in ("q001", "a_b", "x" * 120, "A.b-c", "line-7"):
        assert item_key(plain) == plain


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=300))
def test_every_key_names_its_id(item_id: str) -> None:
    """Injective by construction: a key without ``%`` of at most 120 characters is the id itself; any
    other key ends with the id's full sha256, and is never a plain id's key."""
    key = item_key(item_id)
    assert re.fullmatch(r"[A-Za-z0-9._%-]+", key) and not key.startswith((".", "-")) and len(key) <= 188
    if "%" not in key and len(key) <= 120:
        assert key == item_id
    else:
        assert key.endswith("_h" + hashlib.sha256(item_id.encode("utf-8", "surrogatepass")).hexdigest())


def test_a_second_id_for_a_taken_file_is_refused_and_nothing_is_overwritten(tmp_path: Path) -> None:
    run([{"id": "a", "prompt": "Paris is far."}], tmp_path)
    # An OUT_DIR of the former scheme: id "b"'s record names the file that id "a" now maps to.
    lines = journal(tmp_path)
    lines[0]["id"] = "b"
    (tmp_path / "records.jsonl").write_text(json.dumps(lines[0]) + "\n", encoding="utf-8")
    before = (tmp_path / "items" / "a.json").read_bytes()
    records = [{"id": "a", "prompt": "The otter swims."}, {"id": "b", "prompt": "Paris is far."}]
    with pytest.raises(BadInputError, match=r"id 'a' would be written to items/a\.json, the file of id 'b'"):
        run(records, tmp_path, force=True)
    summary = run(records, tmp_path, force=True, skip_bad=True)
    assert (summary.ok, summary.failed, summary.skipped) == (0, 1, 1)
    assert (tmp_path / "items" / "a.json").read_bytes() == before
    assert {r["id"]: r["status"] for r in journal(tmp_path)} == {"b": "ok", "a": "error"}


def test_the_write_itself_refuses_a_taken_file(tmp_path: Path) -> None:
    """The last guard: OutDir.write keeps an error record, never another id's file."""
    from attrib.batch.worker import Done

    out = OutDir(tmp_path)
    out._fold = True  # a filesystem that ignores case (macOS, Windows): "A" and "a" are one file
    out.write(Done({"id": "a", "status": "ok", "line": 1, "meta": {}}, '{"x": 1}'))
    record = out.write(Done({"id": "A", "status": "ok", "line": 2, "meta": {}}, '{"x": 2}'))
    assert record["status"] == "error" and "the file of id 'a'" in record["error"]
    assert (tmp_path / "items" / "a.json").read_text() == '{"x": 1}\n'
    assert not (tmp_path / "items" / "A.json").exists()


def test_an_out_dir_of_the_former_key_scheme_resumes(tmp_path: Path) -> None:
    """Records carry their file: an item written under its 8-digit key stays done and readable."""
    records = [{"id": "a/b", "prompt": "Paris is far."}]
    run(records, tmp_path)
    [record] = journal(tmp_path)
    former = f"items/{old_key('a/b')}.json"
    (tmp_path / str(record["file"])).rename(tmp_path / former)
    record["file"] = former
    (tmp_path / "records.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    records.append({"id": "c d", "prompt": "The otter swims."})
    summary = run(records, tmp_path, force=True)
    assert ([o.id for o in summary.outcomes], summary.skipped) == (["c d"], 1)
    by_id = {r["id"]: r for r in journal(tmp_path)}
    assert by_id["a/b"]["file"] == former and by_id["c d"]["file"] == f"items/{item_key('c d')}.json"
    assert summarize(tmp_path).ok == 2
    assert {line.split(",")[0] for line in (tmp_path / "units.csv").read_text().splitlines()[1:]} == {"a/b", "c d"}


def test_a_record_pointing_at_another_ids_file_is_redone(tmp_path: Path) -> None:
    """An OUT_DIR the former scheme damaged (two records, one file): the earlier record is run again."""
    records = [{"id": "x1", "prompt": "Paris is far."}, {"id": "x2", "prompt": "The otter swims."}]
    run(records, tmp_path)
    lines = journal(tmp_path)
    (tmp_path / "items" / "x1.json").unlink()
    lines[0]["file"] = lines[1]["file"]  # x2's result overwrote x1's file
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    summary = run(records, tmp_path)
    assert ([o.id for o in summary.outcomes], summary.skipped) == (["x1"], 1)
    by_id = {r["id"]: r for r in journal(tmp_path)}
    assert len(journal(tmp_path)) == 2
    assert prompt_of(tmp_path, by_id["x1"]) == "Paris is far."
    assert prompt_of(tmp_path, by_id["x2"]) == "The otter swims."


def test_an_ok_record_whose_file_is_gone_is_redone(tmp_path: Path) -> None:
    records = [{"id": "q1", "prompt": "Paris is far."}, {"id": "q2", "prompt": "The otter swims."}]
    run(records, tmp_path)
    (tmp_path / "items" / "q2.json").unlink()
    summary = run(records, tmp_path)
    assert ([o.id for o in summary.outcomes], summary.skipped) == (["q2"], 1)
    assert [r["id"] for r in journal(tmp_path)] == ["q1", "q2"]
    assert summarize(tmp_path).ok == 2


# ----------------------------------------------------------------- run.json (item 11)


def test_a_backend_that_does_not_open_leaves_no_run_json(tmp_path: Path) -> None:
    records = [{"id": "q1", "prompt": "Paris is far."}, {"id": "", "prompt": "x"}]
    with pytest.raises(BackendError, match="never opens"):
        run(records, tmp_path, backend="brokentoy", backend_options={}, skip_bad=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "items"]  # no run.json, no record, no table
    summary = run(records, tmp_path, level="sentence", skip_bad=True)  # the corrected command runs
    assert (summary.ok, summary.failed) == (1, 1)
    assert json.loads((tmp_path / "run.json").read_text())["options"]["level"] == "sentence"


def test_the_refusal_names_each_differing_option_with_both_values(tmp_path: Path) -> None:
    run([{"id": "q1", "prompt": "Paris is far."}], tmp_path, budget=20)
    with pytest.raises(InputError) as refused:
        run([{"id": "q1", "prompt": "Paris is far."}], tmp_path, level="sentence", budget=30)
    message = str(refused.value)
    assert "--level: run.json has 'word', this run 'sentence'" in message
    assert "--budget: run.json has 20, this run 30" in message


def test_the_refusal_never_shows_a_secret(tmp_path: Path) -> None:
    run([{"id": "q1", "prompt": "Paris is far."}], tmp_path)
    path = tmp_path / "run.json"
    written = json.loads(path.read_text())  # as an older attrib may have written it
    written["options"]["backend_options"] = {
        "base_url": "http://user:hunter2@example.test:8080/v1?key=sek-query#frag",
        "api_key": "sk-secret-1234",
        "headers": {"Authorization": "Bearer tok-5678"},
    }
    path.write_text(json.dumps(written))
    with pytest.raises(InputError) as refused:
        run([{"id": "q1", "prompt": "Paris is far."}], tmp_path)
    message = str(refused.value)
    # the shown form of attrib.urls.safe_url: a query is marked, never shown (no user-info, no fragment)
    assert "--base-url: run.json has 'http://example.test:8080/v1?[redacted]', this run nothing" in message
    assert "--api-key: differs (its values are not shown)" in message
    for secret in ("hunter2", "sek-query", "sk-secret", "tok-5678", "frag"):
        assert secret not in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://[::1/v1?key=sek-query", "[unparsable URL]"),  # urlsplit raises on it
        ("http://[::1]:8080/v1/", "http://[::1]:8080/v1"),
        ("http://example.test:notaport/v1", "http://example.test/v1"),
    ],
)
def test_a_refusal_shows_any_url_run_json_holds_in_its_safe_form(tmp_path: Path, url: str, shown: str) -> None:
    run([{"id": "q1", "prompt": "Paris is far."}], tmp_path)
    path = tmp_path / "run.json"
    written = json.loads(path.read_text())
    written["options"]["backend_options"] = {"base_url": url}
    path.write_text(json.dumps(written))
    with pytest.raises(InputError) as refused:
        run([{"id": "q1", "prompt": "Paris is far."}], tmp_path)
    assert f"--base-url: run.json has {shown!r}, this run nothing" in str(refused.value)
    assert "sek-query" not in str(refused.value)


# ----------------------------------------------------------------- damaged OUT_DIRs (items 13, 14, 16)


def test_a_damaged_item_file_is_left_out_of_the_units_table_not_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "q1", "prompt": "Paris is far."}\n{"id": "q2", "prompt": "The otter swims."}\n')
    out = tmp_path / "out"
    argv = ["batch", str(source), "-o", str(out), "--backend", "toy", "--level", "word", "--quiet"]
    assert main(argv) == 0
    (out / "items" / "q1.json").write_text('{"units": 3, "unit_scores": "x"}')  # JSON, but not a result
    capsys.readouterr()
    assert main(argv) == 0  # every later batch still runs
    err = capsys.readouterr().err
    assert "attrib: note: 1 item file(s) could not be read and are left out of units.csv" in err
    assert "items/q1.json" in err
    units = (out / "units.csv").read_text().splitlines()
    assert units[0].startswith("id,") and {line.split(",")[0] for line in units[1:]} == {"q2"}
    with pytest.raises(ResultError, match=r"record 'q1': items/q1\.json: .*delete that file"):
        summarize(out)  # the same reader refuses it


@pytest.mark.parametrize("damage", ["missing", "directory"])
def test_summarize_over_a_missing_or_directory_item_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    run([{"id": "q1", "prompt": "Paris is far."}], tmp_path)
    (tmp_path / "items" / "q1.json").unlink()
    if damage == "directory":
        (tmp_path / "items" / "q1.json").mkdir()
    assert main(["summarize", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("attrib: error: record 'q1': its result file items/q1.json is ")
    assert ("missing" if damage == "missing" else "not a file") in err and "\n" not in err


def test_records_jsonl_as_a_directory_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "q1", "prompt": "Paris is far."}\n')
    out = tmp_path / "out"
    (out / "records.jsonl").mkdir(parents=True)
    assert main(["batch", str(source), "-o", str(out), "--backend", "toy", "--quiet"]) == 1
    assert "records.jsonl is a directory, not the run's records.jsonl" in capsys.readouterr().err
    assert main(["summarize", str(out)]) == 1
    assert "records.jsonl is not a file" in capsys.readouterr().err


def test_retry_failed_over_journal_lines_with_ids_that_are_not_strings(tmp_path: Path) -> None:
    records = [{"id": "q1", "prompt": "Paris is far."}, {"id": "long", "prompt": "word " * 80}]
    run(records, tmp_path, backend_options={**TOY, "context_length": 40})
    with (tmp_path / "records.jsonl").open("a") as stream:
        stream.write('{"id": ["q1"], "status": "error"}\n{"id": {"a": 1}, "status": "error"}\n[1]\n')
    summary = run(records, tmp_path, backend_options={**TOY, "context_length": 40}, retry_failed=True)
    assert (summary.ok, summary.failed, summary.skipped) == (0, 1, 1)


def test_a_dangling_symlink_and_an_items_file_each_get_their_own_message(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputError, match=r"is a symbolic link to .*nowhere, which does not exist"):
        OutDir(link)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "items").write_text("not a directory")
    with pytest.raises(InputError, match=r"out/items is not a directory, so .* is not an attrib batch output"):
        OutDir(tmp_path / "out")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="output directory .*file is a file; give a directory"):
        OutDir(tmp_path / "file")


# ----------------------------------------------------------------- temporaries and SIGTERM (item 15)


def test_stale_temporaries_are_removed_when_a_run_takes_the_lock(tmp_path: Path) -> None:
    run([{"id": "q1", "prompt": "Paris is far."}], tmp_path)
    stale = [
        tmp_path / "items" / ".q1.json.0123456789ab.tmp",
        tmp_path / "items" / ".q2%2F_habc.json.ba9876543210.tmp",
        tmp_path / ".records.jsonl.00000000aaaa.tmp",
        tmp_path / ".run.json.00000000bbbb.tmp",
        tmp_path / ".units.csv.00000000cccc.tmp",
        tmp_path / ".units.parquet.tmp",
    ]
    kept = [
        tmp_path / "items" / "notes.tmp",
        tmp_path / ".mine.0123456789ab.tmp",
        tmp_path / ".myrun.json.0123456789ab.tmp",
        tmp_path / "items" / ".q1.html.0123456789ab.tmp",  # an item report summarize may be writing
    ]
    for path in stale + kept:
        path.write_text("partial")
    batch = prepare(
        [{"id": "q1", "prompt": "Paris is far."}], out_dir=tmp_path, backend="toy", backend_options=TOY, level="word"
    )
    try:
        assert [p for p in stale if p.exists()] == []
        assert all(p.exists() for p in kept)
    finally:
        batch.out.release()  # type: ignore[union-attr]


def test_sigterm_ends_a_batch_like_ctrl_c(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(json.dumps({"id": f"i{n}", "prompt": f"Item {n}: Paris is far."}) + "\n" for n in range(20))
    )
    out = tmp_path / "out"
    argv = ["batch", str(source), "-o", str(out), "--backend", "slowtoy", "--level", "token", "--no-cache", "--quiet"]

    def driver(delay: str) -> subprocess.Popen[str]:
        env = {**os.environ, "ATTRIB_TEST_DELAY": delay}
        return subprocess.Popen(
            [sys.executable, "-c", DRIVER, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    first = driver("0.02")
    deadline = time.monotonic() + 120
    while not ((out / "records.jsonl").exists() and (out / "records.jsonl").read_bytes().count(b"\n") >= 2):
        assert first.poll() is None, first.communicate()[1]
        assert time.monotonic() < deadline, "the driver wrote no records"
        time.sleep(0.02)
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 143, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"attrib: terminated; every finished item is kept in {out}")
    finished = [r["id"] for r in journal(out)]
    assert 2 <= len(finished) < 20
    assert not [p.name for p in (out / "items").iterdir() if p.name.endswith(".tmp")]
    assert (out / "units.csv").exists()  # the table was rebuilt on the way out

    second = driver("0")
    _, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    k = len(finished)
    assert err.splitlines()[-1] == f"{20 - k} ok, 0 failed, {k} skipped (already done)"
    ids = [r["id"] for r in journal(out)]
    assert sorted(ids) == sorted(f"i{n}" for n in range(20))

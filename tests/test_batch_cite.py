"""Cite records in a batch (records with ``sources`` and ``question``) and their dataset summary.

The toy of :func:`tests.summary_helpers.cite_toy_options` makes the first claim of every
answer depend on source a's "gustave" and the second on "floods" (source b, or c in item
c3); the third claim depends on nothing. So each claim's top source, the unsupported
claims and the right and wrong citations are known in advance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import validate

from attrib.batch import BadInputError, attribute_many
from attrib.cli import main
from attrib.summary import summarize
from attrib.summary.schema import load_summary_schema
from tests.summary_helpers import (
    CITE_ANSWER,
    CITE_QUESTION,
    CITE_SOURCES,
    write_cite_out_dir,
    write_out_dir,
)

pytestmark = pytest.mark.filterwarnings("ignore:the prompt's last")


@pytest.fixture(scope="module")
def cite_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_cite_out_dir(tmp_path_factory.mktemp("cite") / "out")


def records(out: Path) -> dict[str, dict[str, Any]]:
    lines = (out / "records.jsonl").read_text(encoding="utf-8").splitlines()
    return {record["id"]: record for record in map(json.loads, lines)}


def test_the_records_shape_chooses_the_task_and_cite_records_carry_their_claims(cite_out: Path) -> None:
    found = records(cite_out)
    assert {key: (r["status"], r.get("task")) for key, r in found.items()} == {
        "c1": ("ok", "cite"),
        "c2": ("ok", "cite"),
        "c3": ("ok", "cite"),
        "c4": ("error", None),
        "p1": ("ok", "explain"),
    }
    assert "claims" not in found["p1"] and found["c2"]["meta"] == {"topic": "t"}
    c3 = found["c3"]["claims"]
    assert [claim["text"] for claim in c3] == [
        "The tower was finished in 1889 [a].",
        "The river floods in spring [b].",
        "Cats rule the city [c].",
    ]
    assert [claim["supported"] for claim in c3] == [True, True, False]
    # claim 1 loses 1.5 nats on each of its tokens without "gustave" (source a); claim 2 1 nat
    # without "floods", which item c3 moved into source c while the answer still cites b
    assert [claim["top"]["id"] for claim in c3[:2]] == ["a", "c"]
    # at source level: 1.5 and 1 nat on each of the 8 toy tokens of either claim
    assert [claim["top"]["score"] for claim in c3[:2]] == [pytest.approx(12.0), pytest.approx(8.0)]
    assert [claim["supporting"] for claim in c3] == [["a"], ["c"], []]
    assert [claim["cited"] for claim in c3] == [["a"], ["b"], ["c"]]
    assert [claim["citation"] for claim in c3] == ["verified", "mismatch", "mismatch"]
    full = json.loads((cite_out / found["c3"]["file"]).read_text(encoding="utf-8"))
    assert [claim["text"] for claim in full["context"]["claims"]] == [claim["text"] for claim in c3]
    assert found["c4"]["error"] == "the source list is empty; give at least one source to attribute the answer to"


def test_the_summary_counts_sources_unsupported_claims_and_citation_agreement(cite_out: Path) -> None:
    summary = summarize(cite_out)
    cite = summary.cite
    assert cite is not None
    assert (summary.ok, summary.failed, cite.items, cite.claims) == (4, 1, 3, 9)
    assert (cite.unsupported, cite.unsupported_rate) == (3, pytest.approx(1 / 3))  # every third claim
    # 9 claims with markers: claims 1 and 2 of c1 and c2 and claim 1 of c3 verified; the three
    # unsupported claims and c3's second claim (cites b, rests on c) mismatch
    assert (cite.cited, cite.verified, cite.mismatch, cite.used_not_cited) == (9, 5, 4, 1)
    assert (cite.verified_rate, cite.mismatch_rate) == (pytest.approx(5 / 9), pytest.approx(4 / 9))
    by_id = {use.source: (use.supporting, use.top, use.items, use.claims) for use in cite.by_id}
    assert by_id == {"a": (3, 3, 3, 9), "b": (2, 2, 3, 9), "c": (1, 1, 3, 9)}
    assert [use.source for use in cite.by_id] == ["a", "b", "c"]  # most supporting first
    assert cite.by_id[1].share == pytest.approx(2 / 9)
    # positions: c1 holds a, b, c; c2 b, a, c; c3 a, b, c (its c holding "floods")
    by_position = [(use.source, use.supporting, use.top) for use in cite.by_position]
    assert by_position == [("1", 3, 3), ("2", 2, 2), ("3", 1, 1)]
    assert [(row.id, row.claims, row.unsupported, row.mismatches) for row in cite.rows] == [
        ("c1", 3, 1, 1),
        ("c2", 3, 1, 1),
        ("c3", 3, 1, 2),
    ]
    assert cite.rows[0].answer == CITE_ANSWER and cite.rows[0].question == CITE_QUESTION
    # the mixed dataset's plain prompt is summarised as before; the cite items are not plain prompts
    assert summary.plain == 1 and [row.id for row in summary.plain_rows] == ["p1"]
    text = summary.render()
    assert "unsupported claims: 3/9 (33.3%)" in text
    assert (
        "9 claims with markers: 5 verified (55.6%), 4 mismatch (44.4%); 1 claim uses a source it does not cite" in text
    )


def test_the_summary_json_follows_its_schema_with_and_without_cite_items(cite_out: Path, tmp_path: Path) -> None:
    schema = load_summary_schema()
    with_cite = summarize(cite_out).to_dict()
    validate(with_cite, schema)
    assert with_cite["schema_version"] == 2
    assert with_cite["cite"]["citations"] == {
        "cited": 9,
        "verified": 5,
        "verified_rate": 5 / 9,
        "mismatch": 4,
        "mismatch_rate": 4 / 9,
        "used_not_cited": 1,
    }
    without = summarize(write_out_dir(tmp_path / "plain")).to_dict()
    validate(without, schema)
    assert without["cite"] is None
    broken = json.loads(json.dumps(with_cite))
    broken["cite"]["sources_by_id"][0]["supporting"] = "3"
    with pytest.raises(Exception, match="is not of type 'integer'"):
        validate(broken, schema)


def test_the_summary_page_has_the_cite_section_and_links_its_items(cite_out: Path, tmp_path: Path) -> None:
    page = tmp_path / "summary.html"
    assert main(["summarize", str(cite_out), "--html", str(page), "--json", str(tmp_path / "s.json")]) == 0
    html = page.read_text(encoding="utf-8")
    assert 'id="cite"' in html and '"c3":"items/c3.html"' in html
    assert (tmp_path / "items" / "c3.html").is_file()
    plain = tmp_path / "plain.html"
    assert main(["summarize", str(write_out_dir(tmp_path / "plain")), "--html", str(plain)]) == 0
    assert 'id="cite"' not in plain.read_text(encoding="utf-8")


BAD = [
    ({"question": "Q?", "sources": []}, "the source list is empty; give at least one source"),
    ({"question": "Q?", "sources": [CITE_SOURCES["a"], CITE_SOURCES["a"]]}, "source id 'a' is given twice"),
    ({"question": "Q?", "sources": [{"id": 2, "text": "x"}]}, "source 0 has id 2, a int; source ids must be strings"),
    ({"question": " ", "sources": ["x"]}, "question is empty"),
    ({"question": "Q?", "sources": ["x"], "answer": "Yes.", "claims": [[0, 9]]}, "claim 0 spans 0-9, outside"),
    ({"question": "Q?", "sources": ["x"], "claims": [[0, 1]]}, "claims index the answer"),
    ({"question": "Q?", "sources": ["x"], "template": "{question}"}, "the template has no place for the sources"),
    ({"sources": ["x"]}, "a cite record needs a 'question' beside its 'sources'"),
    ({"question": "Q?", "sources": ["x"], "prompt": "P"}, "a cite record takes no 'prompt'"),
    ({"question": "Q?", "sources": ["x"], "target": "T"}, "a cite record takes no 'target': the answer to explain"),
    ({"question": "Q?", "sources": ["x"], "options": {"level": "chapter"}}, "unknown level 'chapter'"),
    ({"question": "Q?", "sources": ["x"], "options": {"budget": 1}}, "budget must be at least 2, got 1"),
    ({"question": "Q?", "sources": ["x"], "options": {"support": 1}}, "unknown option 'support'"),
]


@pytest.mark.parametrize(("record", "message"), BAD)
def test_a_bad_cite_record_is_one_line_with_cites_own_message(record: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInputError) as raised:
        attribute_many([{"id": "ok", "question": "Q?", "sources": ["x"]}, {"id": "bad", **record}], backend="toy")
    [problem] = raised.value.problems
    assert (problem.id, problem.line) == ("bad", 2)
    assert message in problem.message and "\n" not in problem.message


def test_the_run_task_decides_which_shapes_run() -> None:
    with pytest.raises(BadInputError) as raised:
        attribute_many([{"question": "Q?", "sources": ["x"]}], task="audit", backend="toy")
    assert "a record with 'sources' is a cite item, which an audit does not run" in raised.value.problems[0].message
    with pytest.raises(BadInputError) as raised:
        attribute_many([{"prompt": "P"}], task="cite", backend="toy")
    assert "a cite run's records give 'sources' and 'question'" in raised.value.problems[0].message
    with pytest.raises(Exception, match="a system prompt applies to prompt and chat records"):
        attribute_many([{"question": "Q?", "sources": ["x"]}], task="cite", system="S", backend="toy")
    # cite's options go to cite items only: support in an explain run, and a contrast to the others
    summary = attribute_many(
        [{"id": "c", "question": "Q?", "sources": ["x"], "answer": "Yes."}, {"id": "p", "prompt": "P", "target": " a"}],
        backend="toy",
        support=0.5,
        contrast=" b",
    )
    got = {o.id: o.record for o in summary.outcomes}
    assert (got["c"]["status"], got["p"]["status"]) == ("ok", "ok")
    # options left at the explain run's defaults take cite's for the cite item, given ones apply to both
    assert (got["c"]["level"], got["p"]["level"]) == ("source", "token")
    word = attribute_many([{"question": "Q?", "sources": ["x y"], "answer": "Yes."}], backend="toy", level="word")
    assert word.outcomes[0].record["level"] == "word"
    assert (got["c"]["contrast"], got["p"]["contrast"]) == (None, " b")
    assert json.loads(summary.outcomes[0].result_json or "{}")["context"]["support"] == 0.5


def test_the_command_line_cites_a_dataset_and_summarizes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "cites.jsonl"
    rows = [
        {"id": "c1", "question": CITE_QUESTION, "sources": list(CITE_SOURCES.values()), "answer": CITE_ANSWER},
        {
            "id": "c2",
            "question": "Who built it?",
            "sources": ["Gustave built it.", "It rained."],
            "answer": " Gus [1].",
        },
    ]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    out = tmp_path / "out"
    argv = ["batch", str(data), "-o", str(out), "--task", "cite", "--backend", "toy", "--quiet", "--no-cache"]
    assert main([*argv, "--support", "0.5"]) == 0
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert (run["task"], run["options"]["support"], run["options"]["level"]) == ("cite", 0.5, "source")
    assert "markers" not in run["options"]  # recorded only when given
    found = records(out)
    assert [len(found[i]["claims"]) for i in ("c1", "c2")] == [3, 1]
    assert found["c2"]["claims"][0]["cited"] == ["1"]
    capsys.readouterr()
    assert main(["summarize", str(out), "--json", "-"]) == 0
    cite = json.loads(capsys.readouterr().out)["cite"]
    # the plain toy depends on no word: no source supports any claim, so every citation is a mismatch
    assert (cite["claims"], cite["unsupported"], cite["unsupported_rate"]) == (4, 4, 1.0)
    assert cite["citations"]["cited"] == 4 and cite["citations"]["mismatch"] == 4
    assert [use["source"] for use in cite["sources_by_position"]] == ["1", "2", "3"]
    assert [use["items"] for use in cite["sources_by_position"]] == [2, 2, 1]
    # a bad record: its one line, before any model work
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "question": "Q?", "sources": []}) + "\n", encoding="utf-8")
    assert main(["batch", str(bad), "-o", str(tmp_path / "bad"), "--backend", "toy", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"attrib: {bad}: line 1: the source list is empty" in err and "Traceback" not in err
    assert not (tmp_path / "bad" / "records.jsonl").exists()


def test_batch_flags_for_cite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"prompt": "P", "target": " a"}) + "\n", encoding="utf-8")
    base = ["batch", str(data), "-o", str(tmp_path / "o"), "--backend", "toy", "--quiet", "--no-cache"]
    assert main([*base, "--task", "audit", "--support", "1"]) == 1
    assert "--support applies to --task cite or explain" in capsys.readouterr().err
    assert main([*base, "--level", "source"]) == 1  # explain items have no sources
    assert "source" in capsys.readouterr().err
    assert main(base) == 0
    run = json.loads((tmp_path / "o" / "run.json").read_text(encoding="utf-8"))
    assert "support" not in run["options"] and "markers" not in run["options"]  # an explain run's run.json as before
    assert (run["options"]["level"], run["options"]["max_new_tokens"]) == ("token", 16)


def test_cite_records_from_csv_and_parquet_and_a_resumed_run(tmp_path: Path) -> None:
    import csv

    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    sources = [CITE_SOURCES["a"], CITE_SOURCES["b"]]
    table = tmp_path / "cites.csv"
    with table.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "question", "sources", "answer", "claims"])
        writer.writerow(["k1", CITE_QUESTION, json.dumps(sources), " Gus built it. It floods.", "[[1, 14]]"])
    parquet = tmp_path / "cites.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": "k1", "question": CITE_QUESTION, "sources": sources}]), parquet)
    for source in (table, parquet):
        out = tmp_path / source.suffix[1:]
        first = attribute_many(source, out_dir=out, backend="toy", task="cite")
        assert (first.ok, first.failed) == (1, 0), first.outcomes[0].record.get("error")
        record = first.outcomes[0].record
        assert record["task"] == "cite" and record["level"] == "source"
        # the CSV record's claim span; the Parquet record has no answer: the toy generates " yes"
        assert [claim["text"] for claim in record["claims"]] == (["Gus built it."] if source == table else ["yes"])
        again = attribute_many(source, out_dir=out, backend="toy", task="cite")
        assert (again.ok, again.failed, again.skipped) == (0, 0, 1)  # resumed: nothing to redo
        with (out / "units.csv").open(encoding="utf-8", newline="") as stream:
            units = list(csv.DictReader(stream))
        assert [(row["id"], row["unit"]) for row in units] == [("k1", "0"), ("k1", "1")]  # one row per source


def test_markers_off_on_the_command_line_turns_the_citation_check_off(tmp_path: Path) -> None:
    data = tmp_path / "c.jsonl"
    data.write_text(json.dumps({"id": "c", "question": "Q?", "sources": ["x"], "answer": "Yes [1]."}) + "\n")
    out = tmp_path / "o"
    assert (
        main(["batch", str(data), "-o", str(out), "--task", "cite", "--backend", "toy", "--quiet", "--markers", ""])
        == 0
    )
    assert json.loads((out / "run.json").read_text(encoding="utf-8"))["options"]["markers"] is None
    [claim] = records(out)["c"]["claims"]
    assert (claim["text"], claim["cited"], claim["citation"]) == ("Yes [1].", [], "uncited")

"""Dataset summaries of batch OUT_DIRs: aggregates known by construction (toy backend), torn files, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attrib.batch.outdir import item_key
from attrib.cli import main
from attrib.errors import InputError, ResultError
from attrib.reports.summary import item_key as page_item_key
from attrib.reports.summary import render_summary_html
from attrib.summary import summarize
from attrib.summary.stats import distribution, resolve_label, shares
from tests.summary_helpers import SYSTEM, write_out_dir


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return write_out_dir(tmp_path / "out")


def test_system_units_have_the_shares_the_toy_sensitivity_implies(out_dir):
    summary = summarize(out_dir)
    assert (summary.ok, summary.failed, summary.error_types) == (6, 1, {"EmptyPromptError": 1})
    [group] = summary.system_groups
    assert group.system == SYSTEM and group.items == 4
    assert [u.text for u in group.units] == ["Rule one is red.", "Rule two is blue.", "Rule three is green."]
    # red, blue and green cost 2, 1 and 0.5 nats per token when deleted: shares 4/7, 2/7, 1/7
    assert [u.share.mean for u in group.units] == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert [u.share.n for u in group.units] == [4, 4, 4]
    assert [u.top_count for u in group.units] == [4, 0, 0]
    assert group.units[0].top_rate == 1.0
    assert group.units[0].score.mean == pytest.approx(2.0 * 3)  # 2 nats x 3 output tokens


def test_labelled_accuracy_counts_labels_given_as_index_or_text(out_dir):
    accuracy = summarize(out_dir).system_groups[0].accuracy
    assert accuracy is not None
    assert (accuracy.n, accuracy.correct, accuracy.accuracy) == (4, 3, 0.75)
    assert accuracy.per_label == {1: (3, 3), 2: (1, 0)}
    assert accuracy.misses == ("a4",)


def test_roles_hidden_influence_plain_prompts_and_cost(out_dir):
    summary = summarize(out_dir, top=1)
    assert set(summary.roles) == {"system", "user"}
    assert summary.roles["system"].n == 4
    assert summary.roles["system"].mean == pytest.approx(1.0)  # the user turns hold no key word
    assert summary.audited == 4
    assert set(summary.flagged) <= {"a1", "a2", "a/3", "a4"}
    assert summary.flag_rate == len(summary.flagged) / 4
    assert summary.plain == 2
    assert len(summary.first_units) == 1  # top=1
    everything = summarize(out_dir)
    assert sorted(everything.first_units) == [("Red sky at night.", 1), ("The dog ran red.", 1)]
    assert summary.calls == sum(r.result.stats.calls for r in _items(out_dir)) > 0
    assert [r.id for r in summary.plain_rows] == ["p1", "p2"]
    assert [e["id"] for e in summary.errors] == ["p3"]


def _items(out_dir):
    from attrib.summary.load import iter_items, read_records

    return list(iter_items(out_dir, read_records(out_dir)))


def test_a_torn_last_line_is_skipped_and_reported(out_dir):
    before = summarize(out_dir)
    with (out_dir / "records.jsonl").open("a", encoding="utf-8") as f:
        f.write('{"id": "a5", "status": "ok", "line": 9, "meta": {"la')
    after = summarize(out_dir)
    assert after.torn and not before.torn
    assert after.ok == before.ok
    assert "cut" in after.render()


def test_a_broken_line_in_the_middle_is_an_error_naming_the_line(out_dir):
    path = out_dir / "records.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1][:20]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ResultError, match="line 2"):
        summarize(out_dir)


def test_the_last_record_of_an_id_wins(out_dir):
    path = out_dir / "records.jsonl"
    error = {"id": "p3", "status": "error", "line": 7, "meta": {}, "error": "boom", "error_type": "X"}
    retried = next(json.loads(line) for line in path.read_text().splitlines() if json.loads(line)["id"] == "p1")
    retried["id"] = "p3"
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(error) + "\n" + json.dumps(retried) + "\n")
    summary = summarize(out_dir)
    assert summary.failed == 0 and summary.ok == 7


def test_a_record_naming_a_file_outside_items_is_refused(out_dir):
    path = out_dir / "records.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    records[0]["file"] = "../../etc/passwd"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    with pytest.raises(ResultError, match="outside"):
        summarize(out_dir)


def test_a_directory_without_records_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="records.jsonl"):
        summarize(tmp_path)
    with pytest.raises(InputError, match="top"):
        summarize(tmp_path, top=0)


def test_statistics_helpers():
    assert shares([2.0, -1.0, 1.0]) == [0.5, -0.25, 0.25]
    assert shares([0.0, 0.0]) == [0.0, 0.0]
    d = distribution([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (d.n, d.mean, d.quantiles) == (5, 3.0, (1.0, 2.0, 3.0, 4.0, 5.0))
    assert d.sd == pytest.approx(1.5811388)
    assert distribution([]).n == 0
    texts = ["Rule one is red.", "Rule two is blue."]
    assert [resolve_label(x, texts) for x in (1, "2", " Rule two is blue. ", 3, 0, True, "nope", 1.0)] == [
        1,
        2,
        2,
        None,
        None,
        None,
        None,
        None,
    ]


def test_item_keys_are_safe_file_names():
    assert item_key("q001") == "q001"
    for tricky in ("..", ".", "a/b", "../x", ".hidden", "é", "a b"):
        key = item_key(tricky)
        assert "/" not in key and key not in (".", "..") and not key.startswith(".")
        assert page_item_key(f"items/{key}.json") == key
    assert item_key("a/b") != item_key("a%2Fb")  # the hash suffix tells altered ids apart
    assert page_item_key("items/../x.json") is None
    assert page_item_key("elsewhere/x.json") is None


def test_the_page_embeds_prompts_only_as_escaped_json(out_dir):
    page = render_summary_html(summarize(out_dir))
    assert "<script>window.__pwned" not in page
    assert "onerror=" not in page.replace('onerror=\\"', "")  # only inside the JSON string, escaped
    assert "\\u003cscript\\u003ewindow.__pwned" in page
    external = page.replace('"http://www.w3.org/2000/svg"', "")  # the SVG namespace name, not a request
    assert "http://" not in external and "https://" not in external


def test_cli_writes_json_html_and_item_reports(out_dir, tmp_path, capsys):
    page, data = tmp_path / "site" / "summary.html", tmp_path / "summary.json"
    page.parent.mkdir()
    assert main(["summarize", str(out_dir), "--html", str(page), "--json", str(data), "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "3/4 items (75.0%)" in printed
    summary = json.loads(data.read_text(encoding="utf-8"))
    assert summary["schema"] == "attrib.summary"
    assert summary["system_groups"][0]["accuracy"]["correct"] == 3
    reports = sorted(p.name for p in (page.parent / "items").iterdir())
    assert reports == sorted(f"{item_key(i)}.html" for i in ("a1", "a2", "a/3", "a4", "p1", "p2"))
    html = page.read_text(encoding="utf-8")
    assert '"a/3":"items/a%252F3_h' in html  # the file name's % is itself URL-quoted


def test_cli_links_to_the_json_without_item_reports(out_dir, tmp_path):
    page = tmp_path / "summary.html"
    assert main(["summarize", str(out_dir), "--html", str(page), "--no-item-reports", "--json", "-"]) == 0
    assert not (tmp_path / "items").exists()
    assert '"a1":"out/items/a1.json"' in page.read_text(encoding="utf-8")


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["summarize", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("attrib: error:") and err.count("\n") == 1


def test_contrastive_items_are_counted_and_the_page_says_what_their_scores_mean(tmp_path, out_dir):
    from attrib.batch import attribute_many
    from tests.summary_helpers import toy

    attribute_many(
        [{"id": "c", "system": SYSTEM, "prompt": "Which rule?"}], backend=toy(), contrast=" no", out_dir=tmp_path
    )
    page = render_summary_html(summarize(tmp_path))
    assert 'id="contrastive"' in page and "log p(output) &minus; log p(contrast)" in page
    assert 'id="contrastive"' not in render_summary_html(summarize(out_dir))

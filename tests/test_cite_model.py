"""Context attribution on the embedded model: three short sources, an answer with a right and a
wrong citation and a claim no source states."""

from __future__ import annotations

import pytest

import attrib

pytestmark = pytest.mark.model

SOURCES = [
    {
        "id": "1",
        "text": "The Varnholt Bridge opened to traffic in 1931. It spans the Elbe near the old mill and carries two lanes.",
    },
    {
        "id": "2",
        "text": "Lake Orsova freezes every winter. Skaters gather there from December until the ice thins in March.",
    },
    {"id": "3", "text": "The Marlowe Library holds 40,000 maps. Its reading room closes at six in the evening."},
]
QUESTION = "When did the Varnholt Bridge open, and how many maps does the Marlowe Library hold?"
ANSWER = (
    " The Varnholt Bridge opened in 1931 [1]. The Marlowe Library holds 40,000 maps [2]."
    " The bridge was painted blue in 1990."
)


def test_each_claim_finds_its_source_and_the_made_up_claim_and_wrong_citation_are_flagged(llama):
    result = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=llama, method="itp")
    bridge, library, painted = result.claims
    # the prompt, no source, each alone (the verdicts' probes), each left out
    assert result.stats.calls == 1 + (1 + len(SOURCES)) + len(SOURCES)
    assert bridge.sources[0][0] == "1" and bridge.supported and bridge.citation == "verified"
    assert library.sources[0][0] == "3" and library.supported
    assert library.cited_not_used == ["2"] and "3" in library.used_not_cited
    assert not painted.supported and painted.cited == []


def test_a_fact_stated_twice_is_found_sentence_by_sentence_in_each_copy_given_alone(llama):
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "cite" / "sources-twice.jsonl"
    sources = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    answer = " The Varnholt Bridge opened in 1931 [1]. The Marlowe Library holds 40,000 maps [2]."
    result = attrib.cite(QUESTION, sources, answer=answer, backend=llama, level="sentence")
    library = result.claims[1]
    assert library.supporting == ["3", "4"]
    removed = dict(library.sources)
    assert removed["3"] < 1.0 and removed["4"] < 1.0  # each copy covers for the other
    for source in ("3", "4"):
        row = next(row for sid, row, _ in library.evidence if sid == source)
        assert "40,000 maps" in result.units[row].text
    assert next(sid for sid, _, _ in result.claims[0].evidence) == "1"
    assert "Varnholt Bridge opened" in result.units[result.claims[0].evidence[0][1]].text

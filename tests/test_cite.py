"""Context attribution (attrib.cite) on the toy backend, whose sensitivity is known by construction.

The toy's log-probability of each answer token drops by a given penalty when a key word is
missing from the prompt; each key word lives in one source, and the penalty vector says
which answer tokens (which claim) depend on it. So the right source for each claim, the
unsupported claim and the right and wrong citations are known in advance.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from jsonschema import validate

import attrib
from attrib.backends.toy import ToyBackend
from attrib.context.template import ChatTemplate, PlainTemplate, SourcePrompt
from attrib.errors import InputError, UnknownNameError
from attrib.perturbation import Deletion
from attrib.result import Attribution
from attrib.result.schema import load_schema

SOURCES = [
    {"id": "a", "text": "The tower was finished in 1889. Gustave built it.", "title": "Tower"},
    {"id": "b", "text": "Bridges cross the river. The river floods in spring."},
    {"id": "c", "text": "Museums open at nine. Tickets cost ten euros."},
]
QUESTION = "When was the tower finished, and what happens in spring?"
SUPPORT = attrib.options.default("support", "cite")
ANSWER = " The tower was finished in 1889 [a]. The river floods in spring [b]. Cats rule the city [c]."


def _columns(backend: ToyBackend, text: str, start: int, end: int) -> list[int]:
    """The answer tokens (as the toy tokenizes the answer alone) overlapping characters [start, end)."""
    spans = backend.tokenize(text).spans
    return [i for i, (a, b) in enumerate(spans) if a < end and b > start]


def _toy(answer: str = ANSWER, marks: tuple[str, str] = ("[a]", "[b]"), **extra: dict[int, float]) -> ToyBackend:
    """A toy whose first claim needs 'gustave'/'1889' (source a), the second 'floods' (source b),
    the third nothing; ``extra`` adds per-key penalties on given answer columns."""
    probe = ToyBackend(output=answer)
    n = len(probe.tokenize(answer).ids)
    first = answer.index(marks[0])
    second_start, second_end = answer.index("The river"), answer.index(marks[1])
    first_claim = np.zeros(n)
    first_claim[_columns(probe, answer, 0, first)] = 1.5
    second_claim = np.zeros(n)
    second_claim[_columns(probe, answer, second_start, second_end)] = 1.0
    sensitivity: dict[str | tuple[str, ...], list[float]] = {
        "gustave": list(first_claim),
        "floods": list(second_claim),
    }
    for key, columns in extra.items():
        vector = np.zeros(n)
        for column, value in columns.items():
            vector[column] = value
        sensitivity[key] = list(vector)
    return ToyBackend(sensitivity=sensitivity, output=answer)


# ----------------------------------------------------------------- the assembled prompt


def test_the_default_plain_template_numbers_sources_then_asks_then_cues():
    prompt = SourcePrompt(attrib.context.as_sources(["First.", "Second."]), "Why?", "Be brief.")
    assert prompt.text == "Be brief.\n\n[1] First.\n\n[2] Second.\n\nQuestion: Why?\nAnswer:"


def test_removing_a_source_removes_its_header_and_separator_and_nothing_else():
    toy = ToyBackend()
    sources = attrib.context.as_sources(SOURCES)
    prompt = SourcePrompt(sources, QUESTION, "Answer from the sources.")
    layout = prompt.lay_out(toy)
    (region,) = layout.regions
    segmentation = region.segmentation
    starts = segmentation.boundaries("source")
    for index in range(len(SOURCES)):
        span = (region.offset + starts[index], region.offset + starts[index + 1])
        variant = Deletion().apply(layout.tokenization, [span]).text
        without = SourcePrompt(sources[:index] + sources[index + 1 :], QUESTION, "Answer from the sources.")
        assert variant == without.text


@pytest.mark.parametrize("level", ["source", "paragraph", "sentence", "word", "token"])
def test_units_lie_inside_sources_and_the_fixed_parts_are_never_units(level):
    result = attrib.cite(
        QUESTION, SOURCES, answer=ANSWER, instructions="Use the sources.", backend=_toy(), level=level, method="itp"
    )
    context = result.context
    assert context is not None
    for source in context.sources:
        rows = result.units[source.units[0] : source.units[1]]
        assert rows and rows[0].start == source.start and rows[-1].end == source.end
        assert "".join(u.text for u in rows) == result.prompt[source.start : source.end]
    assert sum(s.units[1] - s.units[0] for s in context.sources) == len(result.units)
    covered = "".join(u.text for u in result.units)
    assert "Use the sources." not in covered and "Question:" not in covered and "Answer:" not in covered
    if level == "source":
        assert [u.text for u in result.units] == [f"[{s['id']}] {s['text']}\n\n" for s in SOURCES]


@pytest.mark.parametrize("template", ["plain", "chat"])
@pytest.mark.parametrize("level", ["paragraph", "sentence", "word", "token"])
def test_below_the_source_level_a_sources_header_is_its_own_unit_not_part_of_its_first_sentence(level, template):
    result = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=_toy(), level=level, method="itp", template=template)
    context = result.context
    assert context is not None
    for source in context.sources:
        header, first = result.units[source.units[0]], result.units[source.units[0] + 1]
        assert header.text == f"[{source.id}]"  # the header's tokens are one unit, never cut apart
        assert header.start == source.start and first.start == header.end
        assert not first.text.lstrip().startswith("[")
    if level == "sentence":
        rows = result.units[context.sources[0].units[0] : context.sources[0].units[1]]
        assert [u.text for u in rows] == ["[a]", " The tower was finished in 1889.", " Gustave built it.\n\n"]


def test_a_header_of_several_words_is_one_unit_and_a_source_without_header_has_none():
    template = PlainTemplate(header="Source {id}: ")
    result = attrib.cite(
        QUESTION, SOURCES, answer=ANSWER, backend=_toy(), level="word", method="itp", template=template
    )
    assert [u.text for u in result.units[:3]] == ["Source a:", " The", " tower"]
    bare = attrib.cite(
        QUESTION,
        SOURCES,
        answer=ANSWER,
        backend=_toy(),
        level="sentence",
        method="itp",
        template=PlainTemplate(header=""),
    )
    assert [u.text for u in bare.units[:2]] == ["The tower was finished in 1889.", " Gustave built it.\n\n"]


def test_the_source_level_keeps_the_header_inside_the_source_unit_and_its_calls():
    result = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=_toy(), level="source", method="itp")
    assert [u.text for u in result.units] == [f"[{s['id']}] {s['text']}\n\n" for s in SOURCES]
    assert result.stats.calls == 1 + 1 + len(SOURCES) + len(SOURCES)  # base, none, each alone, each removed


def test_ablating_every_unit_of_a_source_below_the_source_level_removes_it_as_the_source_level_does():
    sources = attrib.context.as_sources(SOURCES)
    prompt = SourcePrompt(sources, QUESTION)
    layout = prompt.lay_out(ToyBackend())
    (region,) = layout.regions
    coarse = region.segmentation.boundaries("source")
    fine = region.segmentation.boundaries("sentence")
    for index in range(len(SOURCES)):
        inside = [(a, b) for a, b in itertools.pairwise(fine) if coarse[index] <= a < coarse[index + 1]]
        spans = [(region.offset + a, region.offset + b) for a, b in inside]
        whole = [(region.offset + coarse[index], region.offset + coarse[index + 1])]
        assert Deletion().apply(layout.tokenization, spans).text == Deletion().apply(layout.tokenization, whole).text


def test_an_unknown_level_lists_source_among_the_choices():
    with pytest.raises(UnknownNameError, match="source"):
        attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=_toy(), level="chapter")


def test_plain_prompts_do_not_take_the_source_level():
    with pytest.raises(UnknownNameError):
        attrib.attribute("The capital is Paris.", backend=ToyBackend(), level="source")


# ----------------------------------------------------------------- claims and verdicts


METHODS = ["hipe", "itp", "shapley", "kernelshap", "lime", "hierarchical", "surrogate"]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_ranks_the_right_source_first_and_flags_the_unsupported_claim(method):
    if method == "surrogate":
        pytest.importorskip("sklearn")
    result = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=_toy(), method=method)
    first, second, third = result.claims
    assert first.text == "The tower was finished in 1889 [a]." and first.sources[0][0] == "a"
    assert second.text == "The river floods in spring [b]." and second.sources[0][0] == "b"
    assert third.text == "Cats rule the city [c]."
    assert first.supported and second.supported and not third.supported
    assert first.supporting == ["a"] and second.supporting == ["b"] and third.supporting == []


def test_a_claims_score_is_the_drop_of_its_log_probability_in_nats():
    toy = _toy()
    result = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=toy, method="itp")
    first = result.claims[0]
    # the claim's columns: its 8 tokens before the marker and its period; " [", "a", "]" are the marker's
    assert first.columns == 9
    # ablating source a costs 1.5 nats on each of the 8 (the toy's penalty on " [" is not counted)
    assert dict(first.sources)["a"] == pytest.approx(1.5 * 8)
    assert dict(first.sources)["b"] == pytest.approx(0.0)
    # its information: 9 tokens at the toy's 0.25 nats each, plus the 12 nats source a supplies;
    # a supplies 12 of it alone, b and c nothing, so only a supports it
    assert first.information == pytest.approx(9 * 0.25 + 12.0)
    assert first.sufficiency == pytest.approx([("a", 12.0), ("b", 0.0), ("c", 0.0)])
    assert first.threshold == pytest.approx(SUPPORT * first.information)
    assert first.supporting == ["a"]


def test_all_claims_come_from_the_same_calls_and_any_span_can_be_asked_for():
    result = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=_toy(), method="itp")
    # the prompt, no source and each source alone (the verdicts' probes), each source left out
    assert result.stats.calls == 1 + (1 + len(SOURCES)) + len(SOURCES)
    answer = result.answer
    assert answer == ANSWER
    for claim in result.claims:
        assert answer[claim.start : claim.end] == claim.text
        again = result.claim(claim.start, claim.end, cited=claim.cited)
        assert again == claim
    word = answer.index("1889")
    span = result.claim(word, word + 4)
    assert span.text == "1889" and span.sources[0][0] == "a" and span.supported
    with pytest.raises(InputError, match="outside the answer"):
        result.claim(0, len(answer) + 1)


def test_claims_given_as_spans_are_judged_instead_of_sentences():
    spans = [(0, ANSWER.index("[b]") + 4)]
    result = attrib.cite(QUESTION, SOURCES, answer=ANSWER, claims=spans, backend=_toy(), method="itp")
    (claim,) = result.claims
    assert (claim.start, claim.end) == spans[0]
    # a span stating two facts: a alone supplies 12 of its 24.5 nats, b alone 8 (each judged alone)
    assert claim.cited == ["a", "b"] and claim.information == pytest.approx(18 * 0.25 + 12 + 8)
    assert claim.supporting == ["a"] and claim.cited_not_used == ["b"]
    lower = attrib.cite(QUESTION, SOURCES, answer=ANSWER, claims=spans, backend=_toy(), method="itp", support=0.3)
    assert lower.claims[0].supporting == ["a", "b"] and lower.claims[0].citation == "verified"


def test_a_higher_support_threshold_flags_weakly_supported_claims():
    low = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=_toy(), method="itp", support=0.5)
    high = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=_toy(), method="itp", support=0.8)
    assert [c.supported for c in low.claims] == [True, True, False]
    # source a supplies 12 of claim 1's 14.25 nats (0.84), b 8 of claim 2's 10.25 (0.78)
    assert [c.supported for c in high.claims] == [True, False, False]


def test_the_noise_floor_raises_a_claims_threshold():
    quiet = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=_toy(), method="itp")
    assert [c.threshold for c in quiet.claims] == pytest.approx([SUPPORT * c.information for c in quiet.claims])
    noisy = _toy()
    noisy.noise = 0.9
    result = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=noisy, method="itp", noise_samples=4)
    assert result.noise is not None
    for claim in result.claims:
        # two sd of the difference of two sums of noisy tokens (0.9 nats each) is above the support rule
        assert claim.information is not None and claim.threshold > SUPPORT * claim.information
    assert result.claims[0].supported and not result.claims[2].supported


def test_a_generated_answer_ends_at_its_first_blank_line_and_is_split_into_claims():
    toy = _toy()
    toy.output = ANSWER + "\n\nQuestion: What else?\nAnswer: Nothing."
    result = attrib.cite(QUESTION, SOURCES, backend=toy, method="itp")
    assert result.output == ANSWER and result.answer == ANSWER
    assert [c.supported for c in result.claims] == [True, True, False]
    assert result.stats.generated_tokens == len(toy.tokenize(toy.output).ids)
    assert result.parameters["max_new_tokens"] == attrib.options.default("max_new_tokens", "cite")


def test_a_generated_answer_of_blank_lines_is_no_answer():
    toy = ToyBackend(output="\n\n")
    with pytest.raises(attrib.EmptyOutputError, match="no answer"):
        attrib.cite(QUESTION, SOURCES, backend=toy)


# ----------------------------------------------------------------- citations


def test_citations_are_verified_cited_but_not_used_or_used_but_not_cited():
    answer = " The tower was finished in 1889 [b]. The river floods in spring. Cats rule the city [S1]."
    toy = ToyBackend(
        sensitivity={
            "gustave": [
                1.5 if i in _columns(ToyBackend(), answer, 0, answer.index("[b]")) else 0.0
                for i in range(len(ToyBackend().tokenize(answer).ids))
            ],
        },
        output=answer,
    )
    sources = [{"id": "1", "text": "Gustave built it in 1889."}, {"id": "b", "text": "Rivers flood."}]
    result = attrib.cite(QUESTION, sources, answer=answer, backend=toy, method="itp")
    first, second, third = result.claims
    assert first.cited == ["b"] and first.cited_not_used == ["b"] and first.used_not_cited == ["1"]
    assert first.citation == "mismatch"
    assert second.cited == [] and second.citation == "uncited"
    assert third.cited == ["1"] and third.cited_not_used == ["1"]  # [S1] names source "1"


def test_a_correct_citation_is_verified():
    result = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=_toy(), method="itp")
    first, second, third = result.claims
    assert first.verified == ["a"] and first.citation == "verified" and first.used_not_cited == []
    assert second.verified == ["b"]
    assert third.cited == ["c"] and third.cited_not_used == ["c"] and third.citation == "mismatch"


def test_markers_are_scored_but_do_not_count_for_the_claim():
    # source c's header would predict the marker "[c]"; the marker's tokens must not make c support the claim
    probe = ToyBackend(output=ANSWER)
    marker = ANSWER.index("[c]")
    columns = _columns(probe, ANSWER, marker, marker + 3)
    toy = _toy(museums=dict.fromkeys(columns, 5.0))
    result = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=toy, method="itp")
    third = result.claims[2]
    assert dict(third.sources)["c"] == pytest.approx(0.0) and not third.supported
    assert result.unit_scores[2] > 0  # the marker's columns are scored
    unmarked = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=toy, method="itp", markers=None)
    assert unmarked.claims[2].supported and unmarked.claims[2].cited == []


def test_markers_map_back_to_the_answers_characters():
    result = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=_toy(), method="itp")
    assert result.context is not None
    assert [result.answer[a:b] for a, b in result.context.marker_spans] == ["[a]", "[b]", "[c]"]


def test_the_marker_syntax_is_configurable():
    answer = ANSWER.replace("[a]", "<<a>>").replace("[b]", "<<b>>").replace("[c]", "<<c>>")
    toy = _toy(answer, ("<<a>>", "<<b>>"))
    result = attrib.cite(QUESTION, SOURCES, answer=answer, backend=toy, method="itp", markers=r"<<(\w+)>>")
    assert [c.cited for c in result.claims] == [["a"], ["b"], ["c"]]
    with pytest.raises(InputError, match="not a valid regular expression"):
        attrib.cite(QUESTION, SOURCES, answer=answer, backend=toy, markers="([")


# ----------------------------------------------------------------- HiPe's tree starts at sources


def test_hipes_tree_starts_at_the_sources_and_refines_only_the_salient_ones():
    answer = " Gustave built it."
    toy = ToyBackend(sensitivity={"gustave": 2.0}, output=answer)
    result = attrib.cite(QUESTION, SOURCES, answer=answer, backend=toy, level="word")
    assert result.context is not None and result.trace is not None
    first = [c for c in result.trace.chunks if c.depth == 0]
    assert [(c.char_start, c.char_end) for c in first] == [(s.start, s.end) for s in result.context.sources]
    a = result.context.sources[0]
    deeper = [c for c in result.trace.chunks if c.depth > 0]
    assert deeper and all(a.start <= c.char_start and c.char_end <= a.end for c in deeper)
    top = result.top(1)[0].unit
    assert top.text.strip() == "Gustave"
    itp = attrib.cite(QUESTION, SOURCES, answer=answer, backend=toy, level="word", method="itp")
    assert result.stats.calls < itp.stats.calls


@pytest.mark.parametrize("template", ["plain", "chat"])
def test_a_budget_below_the_first_round_names_the_calls_needed(template):
    # the prompt, 4 probes (no source, each alone) and HiPe's first round (each source left out)
    with pytest.raises(attrib.BudgetError, match="hipe at source level needs at least 8 calls.*4 for the sources"):
        attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=_toy(), template=template, budget=7)
    result = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=_toy(), template=template, budget=8)
    assert result.stats.calls == 8 and result.claims[0].sources[0][0] == "a"


# ----------------------------------------------------------------- chat layout


def test_sources_in_a_chat_user_message():
    result = attrib.cite(
        QUESTION, SOURCES, answer=ANSWER, backend=_toy(), template="chat", instructions="Cite.", method="itp"
    )
    assert "<start_of_turn>system\nCite.<end_of_turn>" in result.prompt
    assert "<start_of_turn>user\n[a] The tower" in result.prompt
    assert [u.text for u in result.units] == [f"[{s['id']}] {s['text']}\n\n" for s in SOURCES]
    assert [c.supported for c in result.claims] == [True, True, False]
    assert result.claims[0].sources[0][0] == "a"


def test_sources_in_a_chat_system_message():
    template = ChatTemplate(system="{instructions}\n\n{sources}", user="{question}")
    result = attrib.cite(
        QUESTION, SOURCES, answer=ANSWER, backend=_toy(), template=template, instructions="Cite.", method="itp"
    )
    assert "<start_of_turn>system\nCite.\n\n[a] The tower" in result.prompt
    assert f"<start_of_turn>user\n{QUESTION}<end_of_turn>" in result.prompt
    assert result.claims[1].sources[0][0] == "b"


def test_a_chat_template_given_as_an_option_renders_the_chat_layout():
    template = "{% for m in messages %}<<{{ m['role'] }}>>{{ m['content'] }}\n{% endfor %}<<model>>"
    result = attrib.cite(
        QUESTION, SOURCES, answer=ANSWER, backend=_toy(), template="chat", chat_template=template, method="itp"
    )
    assert result.prompt.startswith("<<user>>[a] The tower") and result.prompt.endswith("<<model>>")
    assert result.parameters["chat_template"] == template
    assert [c.supported for c in result.claims] == [True, True, False]
    with pytest.raises(InputError, match="chat_template applies to a chat layout"):
        attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=_toy(), chat_template=template)


# ----------------------------------------------------------------- the result


def test_the_result_round_trips_through_json_and_validates_against_the_schema(tmp_path):
    result = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=_toy(), level="sentence")
    data = json.loads(result.to_json())
    assert data["schema_version"] == 3 and data["context"]["sources"][0]["metadata"] == {"title": "Tower"}
    schema = load_schema()
    validate(data, schema)
    again = Attribution.from_json(result.to_json(tmp_path / "r.json"))
    assert again.to_dict() == result.to_dict()
    assert again.claims == result.claims


def test_to_frame_is_claims_by_sources():
    pytest.importorskip("pandas")
    result = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=_toy(), method="itp")
    frame = result.to_frame()
    assert frame.shape == (3, 3) and list(frame.columns) == ["a", "b", "c"]
    assert frame.loc["The tower was finished in 1889 [a].", "a"] == pytest.approx(dict(result.claims[0].sources)["a"])


def test_results_without_sources_have_no_claims():
    result = attrib.attribute("Paris is the capital.", backend=ToyBackend(), level="word")
    assert result.claims == [] and result.context is None
    with pytest.raises(InputError, match="no sources"):
        result.claim(0, 1)


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sources": []}, "source list is empty"),
        ({"sources": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}, "'a' is given twice"),
        ({"sources": [{"id": 3, "text": "x"}]}, "source ids must be strings"),
        ({"sources": [{"text": "x"}]}, "has no 'id'"),
        ({"sources": ["  "]}, "source 0 is empty"),
        ({"sources": "just text"}, "must be a list"),
        ({"question": " "}, "question is empty"),
        ({"answer": ""}, "answer is empty"),
        ({"claims": [(0, 999)]}, "outside the answer"),
        ({"claims": [(3, 3)]}, "outside the answer"),
        ({"claims": [("0", 2)]}, "two whole numbers"),
        ({"template": "Question: {question}\nAnswer:"}, "no place for the sources"),
        ({"template": "{sources} {context}"}, "names the place {context}"),
        ({"template": 7}, "template must be"),
        ({"template": "{sources}Q: {question}", "instructions": "Be brief."}, "no place for the instructions"),
        ({"contrast": " No."}, "contrast does not apply to cite"),
        ({"target": " No."}, "not target"),
        ({"support": -1.0}, "support must be at least 0"),
    ],
)
def test_bad_input_gets_one_clear_error(change, message):
    arguments = {"question": QUESTION, "sources": SOURCES, "answer": ANSWER, **change}
    question, sources = arguments.pop("question"), arguments.pop("sources")
    with pytest.raises(InputError, match=message):
        attrib.cite(question, sources, backend=ToyBackend(), **arguments)


def test_a_chat_template_without_a_place_for_the_sources_is_refused():
    with pytest.raises(InputError, match="no place for the sources"):
        ChatTemplate(user="{question}")
    with pytest.raises(InputError, match="more than once"):
        ChatTemplate(system="{sources}", user="{sources}{question}")


def test_claims_without_an_answer_are_refused():
    with pytest.raises(InputError, match="give answer="):
        attrib.cite(QUESTION, SOURCES, claims=[(0, 2)], backend=ToyBackend())


def test_a_plain_template_frame_string_is_accepted():
    template = PlainTemplate(text="Context:\n{sources}Q: {question}\nA:", header="Doc {id}: ")
    result = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=_toy(), template=template, method="itp")
    assert result.prompt.startswith("Context:\nDoc a: The tower") and result.prompt.endswith("\nA:")
    assert result.claims[0].sources[0][0] == "a"


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        (" Tokyo.\n\nQuestion: Why?\nAnswer:", " Tokyo."),
        (" Tokyo. \n \n More.", " Tokyo."),
        ("\n\nTokyo.\n\nQuestion:", "\n\nTokyo."),
        (" Tokyo.\nIt is big.  ", " Tokyo.\nIt is big."),
    ],
)
def test_a_generated_answer_ends_at_its_first_blank_line_after_text(text, answer):
    from attrib.context.attribution import answer_end

    assert text[: answer_end(text)] == answer


# ----------------------------------------------------------------- what the verdict is robust to
# Two ways a leave-one-out verdict (the claim's drop when one source is removed, per token)
# errs on the context benchmark (benchmarks/results/context-notes.md); the sufficiency rule
# (each source alone against none, as a share of the claim's information) gets both right.


def test_a_made_up_claim_is_not_supported_by_a_source_that_only_raises_its_place_name():
    sources = [*SOURCES[:2], {"id": "c", "text": "Museums open at nine. The city has cats."}]
    probe = ToyBackend(output=ANSWER)
    third_start = ANSWER.index("Cats")
    city = _columns(probe, ANSWER, ANSWER.index("city"), ANSWER.index("city") + 4)
    made_up = _columns(probe, ANSWER, third_start, third_start + len("Cats rule"))
    # source c raises the place name "city" by 4 nats; "Cats rule" is improbable (6 nats a
    # token) whatever the prompt holds ("xyzzy" is in no source): nothing supplies the claim
    toy = _toy(city={column: 4.0 for column in city}, xyzzy={column: 6.0 for column in made_up})
    result = attrib.cite(QUESTION, sources, answer=ANSWER, backend=toy, method="itp")
    third = result.claims[2]
    assert third.text == "Cats rule the city [c]."
    assert third.sources[0] == ("c", pytest.approx(4.0))  # leave-one-out alone would credit c
    assert dict(third.sufficiency or [])["c"] == pytest.approx(4.0)
    assert not third.supported and third.citation == "mismatch"


def test_a_fact_stated_in_two_sources_is_supported_by_both():
    sources = [SOURCES[0], SOURCES[1], {"id": "c", "text": "Museums open at nine. The river floods often."}]
    second = attrib.cite(QUESTION, sources, answer=ANSWER, backend=_toy(), method="itp").claims[1]
    assert second.text == "The river floods in spring [b]."
    # leaving either copy out costs nothing: the other still states it
    assert dict(second.sources)["b"] == pytest.approx(0.0) and dict(second.sources)["c"] == pytest.approx(0.0)
    assert second.supported and second.supporting == ["b", "c"] and second.citation == "verified"


def test_claim_columns_are_the_claims_tokens_less_its_markers_and_give_its_scores():
    from attrib.result.context import claim_columns

    result = attrib.cite(QUESTION, SOURCES, answer=ANSWER, backend=_toy(), level="sentence", method="itp")
    context = result.context
    assert context is not None and context.marker_spans
    for claim in result.claims:
        columns = claim_columns(context, claim)
        assert len(columns) == claim.columns < claim.tokens[1] - claim.tokens[0]  # each claim ends in a marker
        assert set(columns) < set(range(*claim.tokens))
        spans = [context.token_spans[c] for c in columns]
        answer_markers = [(a + context.answer_start, b + context.answer_start) for a, b in context.marker_spans]
        assert not any(a < mb and b > ma for a, b in spans for ma, mb in answer_markers)
        for source in context.sources:
            rows = slice(*source.units)
            assert result.scores[rows][:, columns].sum() == pytest.approx(dict(claim.sources)[source.id])


def test_below_the_source_level_a_duplicated_facts_sentence_is_found_in_each_copy_given_alone():
    sources = [SOURCES[0], SOURCES[1], {"id": "c", "text": "Museums open at nine. The river floods often."}]
    result = attrib.cite(QUESTION, sources, answer=ANSWER, backend=_toy(), method="itp", level="sentence")
    second = result.claims[1]
    assert second.supporting == ["b", "c"]
    columns = np.arange(*second.tokens)
    fact = {"b": "The river floods in spring.", "c": "The river floods often."}
    for source in result.context.sources[1:]:
        rows = range(*source.units)
        # in the whole prompt, leaving out either copy's sentence costs nothing: the other copy states it
        assert all(result.scores[row][columns].sum() == pytest.approx(0.0) for row in rows)
        # given alone, the source's own fact sentence is what the claim needs
        inside = [(row, drop) for sid, row, drop in second.evidence if sid == source.id]
        assert sorted(row for row, _ in inside) == list(rows)
        best = max(inside, key=lambda item: item[1])
        assert result.units[best[0]].text.strip() == fact[source.id] and best[1] > 1.0
    # the first claim's one supporting source is scored the same way; the unsupported third has no evidence
    assert {sid for sid, _, _ in result.claims[0].evidence} == {"a"} and result.claims[2].evidence == []
    assert set(result.context.inside_logprobs) == {"a", "b", "c"}
    again = attrib.Attribution.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.claims[1].evidence == second.evidence
    assert again.claim(second.start, second.end).evidence == second.evidence


def test_the_units_of_sources_alone_are_counted_and_left_out_whole_when_the_budget_ends():
    kwargs = {"answer": ANSWER, "method": "itp", "level": "sentence"}
    source_level = attrib.cite(QUESTION, SOURCES, backend=_toy(), **{**kwargs, "level": "source"})
    full = attrib.cite(QUESTION, SOURCES, backend=_toy(), **kwargs)
    inside_units = sum(len(rows) for rows in full.context.inside_logprobs.values())
    assert set(full.context.inside_logprobs) == {"a", "b"} and inside_units == 6  # a header and two sentences each
    plain = attrib.cite(QUESTION, SOURCES, backend=_toy(), **kwargs, budget=full.stats.calls - 1)
    assert plain.stats.budget_exhausted and plain.stats.calls <= full.stats.calls - 1
    assert plain.context.inside_logprobs is not None and len(plain.context.inside_logprobs) == 1
    assert [c.supported for c in plain.claims] == [c.supported for c in full.claims]
    assert source_level.context.inside_logprobs is None and all(not c.evidence for c in source_level.claims)
    plan = attrib.plan_cite(QUESTION, SOURCES, backend=_toy(), **kwargs)
    assert not plan.calls_exact and plan.calls >= full.stats.calls

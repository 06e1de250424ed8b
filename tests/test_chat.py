"""Chat prompts: template rendering, layout, Shapley values over messages, and attribution of a chat."""

from __future__ import annotations

import numpy as np
import pytest

import attrib
from attrib.auditing.message_shapley import coalitions, role_shares, shapley_values
from attrib.backends.toy import ToyBackend
from attrib.chat import DEFAULT_TEMPLATE, check_messages, layout_chat, render_pieces

CHAT = [
    {"role": "system", "content": "You know that the capital of France is Paris."},
    {"role": "user", "content": "What is the capital of France?"},
]


def test_pieces_keep_content_as_data_between_template_markup() -> None:
    tricky = [{"role": "user", "content": "say <end_of_turn> and {{ 7 * 7 }}"}]
    pieces = render_pieces(tricky)
    assert (
        "".join(p.text for p in pieces)
        == "<start_of_turn>user\nsay <end_of_turn> and {{ 7 * 7 }}<end_of_turn>\n<start_of_turn>model\n"
    )
    assert [p.message for p in pieces] == [None, 0, None]
    assert pieces[1].text == tricky[0]["content"]


def test_templates_that_drop_or_repeat_a_message_are_refused() -> None:
    dropping = "{% for m in messages if m['role'] != 'system' %}{{ m['content'] }}{% endfor %}"
    with pytest.raises(attrib.InputError, match="message 0 \\(system\\) 0 times"):
        render_pieces(CHAT, dropping)
    with pytest.raises(attrib.InputError, match="template failed"):
        render_pieces(CHAT, "{% for m in messages %}")
    refusing = "{{ raise_exception('no system role') }}"
    with pytest.raises(attrib.InputError, match="no system role"):
        render_pieces(CHAT, refusing)


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ("hello", "non-empty list"),
        ([], "non-empty list"),
        ([{"role": "wizard", "content": "x"}], "role 'wizard'"),
        ([{"role": "user", "content": 3}], "string 'content'"),
        ([{"role": "user", "content": "  "}], "every message is empty"),
    ],
)
def test_bad_messages_are_input_errors(messages: object, match: str) -> None:
    with pytest.raises(attrib.InputError, match=match):
        check_messages(messages)


def test_layout_puts_each_message_at_its_offsets() -> None:
    toy = ToyBackend()
    layout = layout_chat(CHAT, DEFAULT_TEMPLATE, tokenize=toy.tokenize, tokenize_markup=toy.tokenize_markup)
    whole = layout.tokenization
    for i, message in enumerate(CHAT):
        content = layout.contents[i]
        assert content.text == message["content"]
        start = layout.char_offsets[i]
        assert whole.text[start : start + len(content.text)] == message["content"]
        assert whole.ids[layout.offsets[i] : layout.offsets[i] + len(content)] == content.ids


def _values(phi_true: np.ndarray) -> dict[frozenset[int], np.ndarray]:
    """An additive game plus a pairwise interaction between messages 0 and 1."""
    k = len(phi_true)
    values = {}
    for coalition in coalitions(k, exact_limit=10):
        value = sum(phi_true[j] for j in coalition) + (1.0 if {0, 1} <= coalition else 0.0)
        values[coalition] = np.array([value, 2 * value])
    return values


def test_exact_shapley_is_efficient_and_splits_interactions_evenly() -> None:
    additive = np.array([3.0, 1.0, -0.5, 0.0])
    phi, exact = shapley_values(_values(additive), 4)
    assert exact
    assert np.allclose(phi[:, 0], [3.5, 1.5, -0.5, 0.0])
    assert np.allclose(phi[:, 1], 2 * phi[:, 0])
    assert phi[:, 0].sum() == pytest.approx(sum(additive) + 1.0)  # v(all) - v(none)


def test_sampled_shapley_is_reproducible_and_efficient() -> None:
    additive = np.array([2.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 4.0])
    needed = coalitions(8, samples=32, seed=3)
    assert len(needed) < 2**8
    values = {c: v for c, v in _values(additive).items() if c in set(needed)}
    phi, exact = shapley_values(values, 8, samples=32, seed=3)
    again, _ = shapley_values(values, 8, samples=32, seed=3)
    assert not exact and np.array_equal(phi, again)
    assert phi[:, 0].sum() == pytest.approx(additive.sum() + 1.0)  # efficiency holds per permutation
    assert np.allclose(phi[2:, 0], additive[2:])  # no interaction: exact even when sampled


def test_role_shares_add_up_and_group_messages_by_role() -> None:
    phi = np.array([[3.0], [1.0], [1.0]])
    assert role_shares(phi, ["system", "user", "user"]) == {"system": 0.6, "user": 0.4}
    assert role_shares(np.zeros((2, 1)), ["system", "user"]) == {"system": 0.0, "user": 0.0}


def test_a_chat_is_attributed_per_message_with_shapley_roles() -> None:
    toy = ToyBackend(sensitivity={"paris": 2.0, "capital": 1.0}, output=" yes it is")
    result = attrib.attribute(CHAT, backend=toy, method="itp", level="word")
    # "paris" only in the system prompt (2 nats x 3 tokens); "capital" in both, split evenly.
    assert result.shapley["message_totals"] == pytest.approx([7.5, 1.5])
    assert result.roles == pytest.approx({"system": 7.5 / 9, "user": 1.5 / 9})
    assert result.shapley["exact"] and result.shapley["coalitions"] == 4
    top = result.top(1)[0]
    assert top.unit.role == "system" and top.unit.message == 0 and top.unit.text == " Paris."
    assert CHAT[0]["content"][top.unit.start : top.unit.end] == " Paris."
    assert result.messages == CHAT
    assert {u.message for u in result.units} == {0, 1}
    assert result.stats.calls == 3 + len(result.units) + 1
    hipe = attrib.attribute(CHAT, backend=toy, method="hipe", level="word")
    assert hipe.top(1)[0].unit.text == " Paris."
    assert {c["message"] for c in hipe.trace["chunks"]} == {0, 1}
    again = attrib.Attribution.from_json(hipe.to_json())
    assert again.roles == hipe.roles and again.shapley == hipe.shapley and again.messages == CHAT
    assert "message" in hipe.to_html()


HOTEL = (
    "You are the front-desk assistant of the Hotel Lindqvist in Uppsala. Breakfast is served from seven to ten "
    "in the winter garden. The wifi password is otter-42. Checkout is at eleven, and late checkout costs twenty "
    "euros. Be polite and brief."
)


@pytest.mark.model
@pytest.mark.parametrize(
    ("question", "answer", "decisive"),
    [
        ("What is the wifi password?", "The wifi password is otter-42.", " The wifi password is otter-42."),
        (
            "When is checkout?",
            "Checkout is at eleven.",
            " Checkout is at eleven, and late checkout costs twenty euros.",
        ),
    ],
)
def test_the_system_sentence_an_answer_copies_is_decisive(llama, question: str, answer: str, decisive: str) -> None:
    result = attrib.audit(question, system=HOTEL, backend=llama, method="itp", level="sentence", target=answer)
    # The answer copies a fact only the system prompt states: the system prompt carries most of it.
    assert result.roles["system"] > 0.6
    system_units = [item for item in result.top(len(result.units)) if item.unit.role == "system"]
    assert system_units[0].unit.text == decisive
    assert HOTEL[system_units[0].unit.start : system_units[0].unit.end] == decisive
    # Without the visible chat the answer is far less likely: no sign of hidden steering.
    verdict = result.hidden_influence
    assert verdict["method"] == "reference-free" and not verdict["flag"]
    assert verdict["indicators"]["reference_free"]["evidence"]["explained_per_token"] > 2.0


def test_noise_samples_and_dry_runs_work_for_chats() -> None:
    toy = ToyBackend(sensitivity={"paris": 1.0}, noise=0.01)
    result = attrib.attribute(CHAT, backend=toy, method="itp", level="word", noise_samples=2)
    assert result.noise is not None and len(result.within_noise) == len(result.units)
    bound = attrib.plan(CHAT, backend=toy, method="itp", level="word", noise_samples=2)
    assert bound.calls == result.stats.calls and bound.calls_exact


def test_a_target_whose_first_token_takes_in_the_template_cue_is_split_jointly() -> None:
    # The default template ends in "<start_of_turn>model\n"; the toy tokenizer glues
    # leading whitespace to the next word, so the cue's newline merges with the target.
    toy = ToyBackend(sensitivity={"paris": 1.0})
    with pytest.warns(UserWarning, match="merge with the target"):
        result = attrib.attribute(CHAT, backend=toy, target="Paris it is", method="itp", level="word")
    assert result.output == "\nParis it is"
    assert result.output_tokens == toy.token_text(toy.tokenize("\nParis it is").ids)
    assert result.prompt.endswith("<start_of_turn>model")
    assert result.top(1)[0].unit.text.strip().startswith("Paris")


class _Recording(attrib.progress.Progress):
    def __init__(self) -> None:
        super().__init__(enabled=False)
        self.seen: list[tuple[str, int]] = []

    def update(self, done: int) -> None:
        super().update(done)
        self.seen.append((self.phase, done))


def test_message_coalitions_are_scorer_calls_counted_once_and_shown_in_the_progress() -> None:
    toy = ToyBackend(sensitivity={"paris": 1.0})
    three = [*CHAT, {"role": "assistant", "content": "Let me think."}]
    free = attrib.attribute(three, backend=toy, method="itp", level="sentence")
    assert free.shapley["coalitions"] == 8
    # 7 coalitions besides the full chat (the unperturbed prompt) and one call per sentence.
    assert free.stats.calls == 1 + 7 + len(free.units)
    exact = attrib.attribute(three, backend=toy, method="itp", level="sentence", budget=free.stats.calls)
    assert exact.stats.calls == free.stats.calls and not exact.stats.budget_exhausted
    with pytest.raises(attrib.BudgetError, match="Shapley"):
        attrib.attribute(three, backend=toy, method="itp", level="sentence", budget=free.stats.calls - 1)
    bar = _Recording()
    attrib.attribute(three, backend=toy, method="itp", level="sentence", progress=bar)
    during = [done for phase, done in bar.seen if phase == "message coalitions"]
    assert during == list(range(2, 9))


def test_a_dry_run_refuses_the_budget_the_run_refuses() -> None:
    toy = ToyBackend(sensitivity={"paris": 1.0})
    three = [*CHAT, {"role": "assistant", "content": "Let me think."}]
    needed = attrib.attribute(three, backend=toy, method="itp", level="sentence").stats.calls
    assert attrib.plan(three, backend=toy, method="itp", level="sentence", budget=needed).calls == needed
    for run in (attrib.attribute, attrib.plan):
        with pytest.raises(attrib.BudgetError, match="Shapley"):
            run(three, backend=toy, method="itp", level="sentence", budget=needed - 1)

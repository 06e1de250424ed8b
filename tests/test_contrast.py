"""Contrastive attribution on the toy backend: known answers, every method, the result's fields and the refusals.

The toy's log-probability of an output ignores which output it is, so the tests use a
toy with one sensitivity per answer (:class:`AnswerToy`): the known answer of a
contrastive run is then the target's scores minus the contrast's, column by column.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

import attrib
from attrib.backend import Capabilities, ScoreRequest, ScoreResult
from attrib.backends.toy import ToyBackend
from attrib.errors import BudgetError, InputError
from attrib.methods.coalitions import Hierarchical
from attrib.methods.hipe import HiPe
from attrib.result import Attribution, Contrast

PROMPT = "The code is 7328. The old code was 4528. Which code opens the door? The code is"
TARGET, CONTRAST = " 7328", " 4528"
SENSITIVITY: dict[str, dict[str | tuple[str, ...], float]] = {
    TARGET: {"7328": 3.0, "which": 0.5, "door": 0.25},
    CONTRAST: {"4528": 2.0, "which": 0.5, "old": 1.0},
}


class AnswerToy(ToyBackend):
    """A toy whose sensitivity depends on the output scored: one :class:`ToyBackend` per answer.

    Args:
        answers: answer text -> the toy sensitivity of that answer's tokens.
        output: the answer the toy generates.
    """

    def __init__(self, answers: Mapping[str, Mapping[str | tuple[str, ...], float]], output: str) -> None:
        super().__init__(output=output)
        self.answers: dict[str, ToyBackend] = {}  # by the answer's text without spacing
        for text, sensitivity in answers.items():
            inner = ToyBackend(sensitivity=dict(sensitivity), output=text)
            inner._pieces = self._pieces  # one vocabulary: the inner toys read the prompts this one tokenized
            self.tokenize(text)
            self.answers[text.strip()] = inner
        self.requests: list[ScoreRequest] = []

    def score(
        self,
        requests: Sequence[ScoreRequest],
        *,
        on_result: Callable[[int, ScoreResult], None] | None = None,
    ) -> list[ScoreResult]:
        self.requests.extend(requests)
        results = []
        for index, request in enumerate(requests):
            answer = self.detokenize(request.continuation_ids).strip()
            result = self.answers[answer].score([request])[0]
            results.append(result)
            if on_result is not None:
                on_result(index, result)
        return results


def _toy() -> AnswerToy:
    return AnswerToy(SENSITIVITY, TARGET)


def _methods() -> dict[str, object]:
    """Every registered method, the adaptive ones set to refine everything so their schedules
    do not depend on the scores (then the identity with two separate runs is exact)."""
    return {
        "itp": "itp",
        "hipe": HiPe(threshold=-1e9),
        "shapley": "shapley",
        "kernelshap": "kernelshap",
        "surrogate": "surrogate",
        "lime": "lime",
        "hierarchical": Hierarchical(region=20, threshold="-1e9"),
    }


def test_every_registered_method_is_covered():
    assert set(_methods()) == set(attrib.registry.names("method"))


@pytest.mark.parametrize("name", sorted(_methods()))
@pytest.mark.parametrize("level", ["word", "sentence"])
def test_contrastive_scores_are_target_scores_minus_contrast_scores(name: str, level: str):
    method = _methods()[name]
    runs = {}
    for label, target, contrast in (("both", None, CONTRAST), ("target", TARGET, None), ("contrast", CONTRAST, None)):
        runs[label] = attrib.attribute(
            PROMPT, backend=_toy(), method=method, level=level, target=target, contrast=contrast, seed=3
        )
    both, alone, foil = runs["both"], runs["target"], runs["contrast"]
    assert both.contrast is not None and both.contrast.text == CONTRAST
    assert both.output == TARGET
    m = len(alone.output_tokens)
    assert both.contrast.start == m
    assert both.output_tokens == alone.output_tokens + foil.output_tokens
    np.testing.assert_allclose(both.scores[:, :m], alone.scores, atol=1e-9)
    np.testing.assert_allclose(both.scores[:, m:], -foil.scores, atol=1e-9)
    np.testing.assert_allclose(both.unit_scores, alone.unit_scores - foil.unit_scores, atol=1e-9)
    # calls: one per variant, as in a run without a contrast; tokens for both continuations
    assert both.stats.calls == alone.stats.calls
    assert both.stats.tokens_evaluated > alone.stats.tokens_evaluated


def test_known_answers_at_word_level():
    result = attrib.attribute(PROMPT, backend=_toy(), method="itp", level="word", contrast=CONTRAST)
    totals = {u.text.strip(" .?"): float(s) for u, s in zip(result.units, result.unit_scores, strict=True)}
    assert totals["7328"] == pytest.approx(3.0)  # only the target needs it
    assert totals["4528"] == pytest.approx(-2.0)  # only the contrast needs it: it favours the contrast
    assert totals["old"] == pytest.approx(-1.0)
    assert totals["door"] == pytest.approx(0.25)
    assert totals["Which"] == pytest.approx(0.0)  # both need it alike: no contrastive evidence
    assert result.top(1)[0].unit.text.strip(" .") == "7328"
    assert result.top(1, absolute=True)[0].unit.text.strip(" .") == "7328"
    assert result.output_logprob == pytest.approx(-0.25)
    assert result.contrast_logprob == pytest.approx(-0.25)
    np.testing.assert_allclose(result.base_logprobs, [-0.25, -0.25])  # each column's own log-probability
    assert result.output_columns == slice(0, 1) and result.contrast_columns == slice(1, 2)


def test_each_variant_sends_the_target_and_the_contrast_with_the_same_prompt():
    toy = _toy()
    result = attrib.attribute(PROMPT, backend=toy, method="itp", level="sentence", contrast=CONTRAST)
    target_ids, contrast_ids = toy.tokenize(TARGET).ids, toy.tokenize(CONTRAST).ids
    assert len(toy.requests) == 2 * result.stats.calls
    for first, second in zip(toy.requests[::2], toy.requests[1::2], strict=True):
        assert first.prompt_ids == second.prompt_ids
        assert (first.continuation_ids, second.continuation_ids) == (target_ids, contrast_ids)


def test_a_generated_output_is_explained_against_the_contrast():
    generated = attrib.attribute(PROMPT, backend=_toy(), method="itp", level="word", contrast=CONTRAST)
    given = attrib.attribute(PROMPT, backend=_toy(), method="itp", level="word", target=TARGET, contrast=CONTRAST)
    np.testing.assert_allclose(generated.scores, given.scores)
    assert generated.stats.generated_tokens == 1


def test_a_chat_is_explained_against_the_contrast():
    chat = [
        {"role": "system", "content": "The code is 7328. The old code was 4528."},
        {"role": "user", "content": "Which code opens the door?"},
    ]
    with pytest.warns(UserWarning, match="merge with the target's first token"):  # the cue's newline
        both = attrib.attribute(chat, backend=_toy(), method="itp", level="sentence", contrast=CONTRAST)
        alone = attrib.attribute(chat, backend=_toy(), method="itp", level="sentence", target=TARGET)
        foil = attrib.attribute(chat, backend=_toy(), method="itp", level="sentence", target=CONTRAST)
    assert both.output == alone.output
    np.testing.assert_allclose(both.unit_scores, alone.unit_scores - foil.unit_scores, atol=1e-9)
    assert both.shapley is not None and alone.shapley is not None and foil.shapley is not None
    np.testing.assert_allclose(
        both.shapley.message_totals,
        np.subtract(alone.shapley.message_totals, foil.shapley.message_totals),
        atol=1e-9,
    )
    m = len(alone.output_tokens)
    np.testing.assert_allclose(both.shapley.empty_logprobs[m:], foil.shapley.empty_logprobs)


@pytest.mark.filterwarnings("ignore:the prompt's last 1 character")  # the default template's cue merges
def test_the_audit_takes_a_contrast_and_judges_hidden_influence_on_the_output_alone():
    both = attrib.audit("Which code opens the door?", system="The code is 7328.", backend=_toy(), contrast=CONTRAST)
    alone = attrib.audit("Which code opens the door?", system="The code is 7328.", backend=_toy(), target=TARGET)
    assert both.contrast is not None
    assert both.hidden_influence is not None and alone.hidden_influence is not None
    assert both.hidden_influence.score == pytest.approx(alone.hidden_influence.score)


def test_the_result_round_trips_through_json_and_files_without_a_contrast_omit_the_key(tmp_path):
    result = attrib.attribute(PROMPT, backend=_toy(), method="itp", level="sentence", contrast=CONTRAST)
    again = Attribution.from_json(result.to_json())
    assert again.contrast == result.contrast
    np.testing.assert_allclose(again.scores, result.scores)
    plain = attrib.attribute(PROMPT, backend=_toy(), method="itp", level="sentence")
    assert "contrast" not in plain.to_dict()
    assert Attribution.from_json(plain.to_json()).contrast is None


def test_a_contrast_outside_the_columns_is_refused():
    result = attrib.attribute(PROMPT, backend=_toy(), method="itp", level="sentence", contrast=CONTRAST)
    data = result.to_dict()
    data["contrast"]["start"] = len(result.output_tokens)
    with pytest.raises(attrib.errors.ResultError, match="contrast.start"):
        Attribution.from_dict(data)


@pytest.mark.parametrize(
    ("target", "contrast", "message"),
    [
        (TARGET, "", "contrast is empty"),
        (TARGET, "   ", "contrast is empty"),
        (TARGET, TARGET, "equals the target"),
        (None, TARGET, "equals the output"),
    ],
)
def test_an_empty_contrast_or_one_equal_to_the_output_is_refused(target, contrast, message):
    with pytest.raises(InputError, match=message) as caught:
        attrib.attribute(PROMPT, backend=_toy(), target=target, contrast=contrast)
    assert "\n" not in str(caught.value)


def test_a_contrast_that_splits_the_prompt_elsewhere_is_refused():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError, match="split the prompt's end differently"):
            attrib.attribute(PROMPT, backend=_toy(), target="7328", contrast=" 4528")


class SimilarityToy(AnswerToy):
    """The toy as a text-only endpoint would present itself."""

    def capabilities(self) -> Capabilities:
        return Capabilities(score_kind="text-similarity", supports_target=False)


def test_a_text_similarity_backend_is_refused_before_any_call():
    toy = SimilarityToy(SENSITIVITY, TARGET)
    with pytest.raises(InputError, match="contrast needs the log-probabilities"):
        attrib.attribute(PROMPT, backend=toy, contrast=CONTRAST)
    assert toy.requests == []


def test_the_budget_counts_variants_and_the_dry_run_counts_the_same():
    planned = attrib.plan(PROMPT, backend=_toy(), method="itp", level="word", contrast=CONTRAST)
    plain = attrib.plan(PROMPT, backend=_toy(), method="itp", level="word")
    result = attrib.attribute(PROMPT, backend=_toy(), method="itp", level="word", contrast=CONTRAST)
    assert planned.calls == plain.calls == result.stats.calls
    assert planned.tokens > plain.tokens
    assert planned.contrast_tokens == 1
    with pytest.raises(BudgetError):
        attrib.attribute(PROMPT, backend=_toy(), method="itp", level="word", contrast=CONTRAST, budget=3)
    with pytest.raises(BudgetError):
        attrib.plan(PROMPT, backend=_toy(), method="itp", level="word", contrast=CONTRAST, budget=3)


def _cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "attrib", *args], capture_output=True, timeout=600)


def test_the_command_line_takes_a_contrast_for_explain_audit_and_dry_runs(tmp_path):
    out = tmp_path / "r.json"
    proc = _cli("explain", PROMPT, "--backend", "toy", "--contrast", " no", "--level", "sentence", "--json", str(out))
    assert proc.returncode == 0, proc.stderr.decode()
    assert 'contrast: " no"' in proc.stdout.decode()
    assert Attribution.from_json(out).contrast == Contrast(text=" no", start=1)
    proc = _cli("audit", "Is it open?", "--system", "Say yes.", "--backend", "toy", "--contrast", " no", "--quiet")
    assert proc.returncode == 0, proc.stderr.decode()
    assert 'contrast: "\\n no"' in proc.stdout.decode()  # the template's newline merges into both answers
    assert proc.stderr.decode().count("merge with the target's first token") == 1
    proc = _cli("explain", PROMPT, "--backend", "toy", "--contrast", " no", "--dry-run")
    assert proc.returncode == 0, proc.stderr.decode()
    assert "1-token contrast: 2 requests a call" in proc.stdout.decode()


def test_the_command_line_refuses_a_contrast_equal_to_the_output_in_one_line():
    proc = _cli("explain", PROMPT, "--backend", "toy", "--contrast", " yes")
    err = proc.stderr.decode()
    assert proc.returncode != 0 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.strip()] == [
        "attrib: error: contrast ' yes' equals the output; pass a different alternative output"
    ]


def test_a_contrastive_result_validates_against_the_shipped_schema():
    from tests.test_result_schema import check

    result = attrib.attribute(PROMPT, backend=_toy(), method="shapley", level="sentence", contrast=CONTRAST)
    check(result)
    check(result.to_dict())


@pytest.mark.parametrize("name", ["result-v1-hipe.json", "result-v1-audit.json"])
def test_files_written_before_the_contrast_load_without_one(name):
    result = Attribution.from_json(Path(__file__).resolve().parent / "data" / name)
    assert result.contrast is None
    assert result.output_columns == slice(0, len(result.output_tokens))
    assert result.contrast_logprob is None
    assert "contrast" not in result.to_dict()


def test_contrastive_hipe_refines_the_regions_that_favour_the_contrast_too():
    """A margin's drop is negative where the evidence favours the contrast; HiPe judges
    chunks by the drop's magnitude there, so it reaches ``4528`` and ``old`` (which favour
    the contrast) as it reaches ``7328``, and their scores equal leave-one-out's."""
    filler = " ".join(f"Line {n} says nothing much at all." for n in range(6))
    prompt = f"The code is 7328. {filler} The old code was 4528. {filler} Which code opens the door? The code is"
    hipe = attrib.attribute(prompt, backend=_toy(), method="hipe", level="word", contrast=CONTRAST)
    itp = attrib.attribute(prompt, backend=_toy(), method="itp", level="word", contrast=CONTRAST)
    leaves = {prompt[c["char_start"] : c["char_end"]].strip(" .") for c in hipe.trace["chunks"] if c["leaf"]}
    assert {"7328", "4528", "old"} <= leaves
    scores = {u.text.strip(" .?"): float(s) for u, s in zip(hipe.units, hipe.unit_scores, strict=True)}
    assert scores["7328"] == pytest.approx(3.0) and scores["4528"] == pytest.approx(-2.0)
    assert scores["old"] == pytest.approx(-1.0)
    assert hipe.stats.calls < itp.stats.calls
    np.testing.assert_allclose(sorted(hipe.unit_scores)[:2], sorted(itp.unit_scores)[:2], atol=1e-9)


def test_hipe_salience_is_the_drop_or_each_answers_moved_magnitude():
    from attrib.methods.hipe.chunks import salience

    drops = np.array([[3.0, -3.0], [0.5, 0.5], [-1.0, 2.0]])  # [output column, contrast column]
    np.testing.assert_allclose(salience(drops, None), [0.0, 1.0, 1.0])
    np.testing.assert_allclose(salience(drops, 1), [6.0, 1.0, 3.0])

"""Contrastive attribution on the embedded model: a short needle with a distractor, the API and the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import attrib

pytestmark = pytest.mark.model

NEEDLE = " The access code for the machine shop is 7328."
DISTRACTOR = "The access code for the archive room is 4528."
PROMPT = (
    f"{DISTRACTOR} The library opens at nine.{NEEDLE} Lunch is served at noon.\n\n"
    "Question: What is the access code for the machine shop?\nAnswer: The access code for the machine shop is"
)


@pytest.fixture(scope="module")
def runs(llama):
    sent = []
    score = llama.score

    def recording(requests, *, on_result=None):
        results = score(requests, on_result=on_result)
        sent.extend(zip(requests, results, strict=True))
        return results

    llama.score = recording  # an instance attribute over the method, removed below
    try:
        contrastive = attrib.attribute(
            PROMPT, backend=llama, method="itp", level="sentence", target=" 7328", contrast=" 4528"
        )
    finally:
        del llama.score
    plain = attrib.attribute(PROMPT, backend=llama, method="itp", level="sentence", target=" 7328")
    foil = attrib.attribute(PROMPT, backend=llama, method="itp", level="sentence", target=" 4528")
    return contrastive, plain, foil, sent


def _score(result, text):
    (index,) = [i for i, unit in enumerate(result.units) if unit.text == text]
    return float(result.unit_scores[index])


def test_the_needle_favours_the_target_and_the_distractor_the_contrast(runs):
    contrastive, *_ = runs
    assert _score(contrastive, NEEDLE) > 1.0
    assert _score(contrastive, DISTRACTOR) < -1.0
    assert contrastive.top(1)[0].unit.text == NEEDLE
    assert contrastive.top(1, absolute=True)[0].unit.text in (NEEDLE, DISTRACTOR)


def test_the_scores_are_the_output_runs_minus_the_contrast_runs_and_prefix_reuse_pays(runs):
    contrastive, plain, foil, _ = runs
    m = contrastive.contrast.start
    assert contrastive.output_tokens == plain.output_tokens + foil.output_tokens
    # equal up to llama.cpp's batch-shape noise: a sequence after another prefix is evaluated in other batches
    assert contrastive.unit_scores == pytest.approx(plain.unit_scores - foil.unit_scores, abs=0.1)
    assert contrastive.scores[:, :m] == pytest.approx(plain.scores, abs=0.3)
    assert contrastive.stats.calls == plain.stats.calls


def test_each_variants_two_requests_are_evaluated_in_a_row_and_the_second_reuses_the_prompt(runs):
    contrastive, _, _, sent = runs
    assert len(sent) == 2 * contrastive.stats.calls
    longest = max(len(request.continuation_ids) for request, _ in sent)
    for (first, one), (second, other) in zip(sent[::2], sent[1::2], strict=True):
        assert first.prompt_ids == second.prompt_ids
        # whichever of the two llama.cpp evaluates second (prefix-sharing order) reuses the prompt:
        # only its continuation and the prompt's last token (whose logits score the first) are new
        assert min(one.tokens_evaluated, other.tokens_evaluated) <= longest + 1 < len(first.prompt_ids)


def test_the_command_line_round_trip(tmp_path):
    out, page = tmp_path / "r.json", tmp_path / "r.html"
    flags = ["--target", " 7328", "--contrast", " 4528", "--method", "itp", "--level", "sentence", "--quiet"]
    command = [sys.executable, "-m", "attrib", "explain", PROMPT, *flags, "--json", str(out), "--html", str(page)]
    proc = subprocess.run(command, capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()
    text = proc.stdout.decode()
    assert 'contrast: " 4528"' in text
    assert "positive: the unit makes" in text
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["contrast"]["text"] == " 4528"
    result = attrib.Attribution.from_json(out)
    assert result.top(1)[0].unit.text == NEEDLE
    assert "Scores are contrastive" in page.read_text(encoding="utf-8")

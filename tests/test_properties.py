"""Property-based tests (Hypothesis) of what users control: prompts, targets, chats and options.

The invariant everywhere: either a valid result, or one typed attrib error (one
``attrib: error:`` line and a non-zero exit at the command line); never another
exception, never a traceback. Examples are bounded so the fast tier stays fast.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import attrib
from attrib.backends.toy import ToyBackend
from attrib.cli import main
from attrib.segmentation import LEVELS, Segmentation

# Text a user might paste: any Unicode (surrogates excluded: they cannot reach Python text
# from a file or an API call), control characters, special-token syntax, CRLF line ends.
SPECIAL = st.sampled_from(
    ["<start_of_turn>", "<end_of_turn>", "<bos>", "{{ x }}", "{% if %}", "\r\n", "\n\n", "\x1b[2J"]
)
TEXT = st.lists(st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=12), SPECIAL), max_size=8).map(
    "".join
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _toy() -> ToyBackend:
    return ToyBackend(sensitivity={"paris": 1.0, "the": 0.5}, output=" yes it is")


@SETTINGS
@given(text=TEXT)
def test_segmentation_covers_the_text_exactly_at_every_level(text: str) -> None:
    tokens = _toy().tokenize(text)
    segmentation = Segmentation(tokens)
    for level in LEVELS:
        units = segmentation.units(level)
        assert "".join(u.text for u in units) == tokens.text
        for unit in units:
            assert tokens.text[unit.start : unit.end] == unit.text


@SETTINGS
@given(
    prompt=TEXT,
    target=st.one_of(st.none(), TEXT),
    level=st.sampled_from(LEVELS),
    method=st.sampled_from(["itp", "hipe"]),
)
def test_a_plain_prompt_gives_a_valid_result_or_one_typed_error(
    prompt: str, target: str | None, level: str, method: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = attrib.attribute(prompt, backend=_toy(), target=target, level=level, method=method)
        except attrib.AttribError:
            return
    assert result.scores.shape == (len(result.units), len(result.output_tokens))
    assert np.isfinite(result.scores).all()
    for unit in result.units:
        assert result.prompt[unit.start : unit.end] == unit.text
    attrib.Attribution.from_json(result.to_json())


MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]), "content": TEXT})


@SETTINGS
@given(messages=st.lists(MESSAGE, min_size=1, max_size=3), target=st.one_of(st.none(), TEXT))
def test_a_chat_gives_a_valid_result_or_one_typed_error(messages: list[dict[str, str]], target: str | None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = attrib.attribute(messages, backend=_toy(), target=target, level="word", method="itp")
        except attrib.AttribError:
            return
    assert result.messages is not None
    for unit in result.units:
        assert result.messages[unit.message]["content"][unit.start : unit.end] == unit.text
    assert abs(sum(result.roles.values()) - 1.0) < 1e-6 or all(v == 0.0 for v in result.roles.values())


FLAG_VALUES = {
    "--method": st.sampled_from(["hipe", "itp", "shap", ""]),
    "--level": st.sampled_from(["token", "word", "sentence", "paragraph", "char"]),
    "--threshold": st.one_of(st.sampled_from(["relative", "midrange", "nan", "inf", "-inf", "1e309", "-1", "x"]),
                             st.floats(allow_nan=True).map(str)),
    "--max-depth": st.integers(-3, 30).map(str),
    "--order": st.sampled_from(["best", "depth", "random"]),
    "--early-stop": st.integers(-2, 5).map(str),
    "--budget": st.one_of(st.integers(-5, 400).map(str), st.just("1.5")),
    "--max-new-tokens": st.integers(-2, 8).map(str),
    "--noise-samples": st.integers(-2, 3).map(str),
    "--perturbation": st.sampled_from(["delete", "replace", "blank"]),
    "--baseline": st.sampled_from([" _", "", "two words"]),
    "--top": st.integers(-2, 50).map(str),
    "--target": TEXT,
    "--json": st.just("-"),
}  # fmt: skip


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prompt=TEXT,
    flags=st.dictionaries(st.sampled_from(sorted(FLAG_VALUES)), st.none(), max_size=5).flatmap(
        lambda chosen: st.fixed_dictionaries({flag: FLAG_VALUES[flag] for flag in chosen})
    ),
    dry_run=st.booleans(),
)
def test_any_options_give_a_result_or_one_error_line(prompt: str, flags: dict[str, str], dry_run: bool) -> None:
    argv = ["explain", prompt, "--backend", "toy", "--quiet", "--no-cache"]
    for flag, value in flags.items():
        argv += [flag, value] if not value.startswith("-") else [f"{flag}={value}"]
    if dry_run:
        argv.append("--dry-run")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exit:  # argparse: a malformed command line exits 2
            status = int(exit.code or 0)
    lines = [line for line in err.getvalue().splitlines() if line and not line.startswith("attrib: note:")]
    if status == 0:
        assert lines == [], err.getvalue()
        assert out.getvalue()
    else:
        assert status in (1, 2), status
        assert len(lines) == 1 and lines[0].startswith("attrib: error: "), err.getvalue()

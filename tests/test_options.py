"""The run options are declared once (attrib.options) and every surface reads that declaration:
the public functions' signatures and help, RunOptions.build, each command's flags, the batch's
task table and per-record keys, and the API backend's defaults taken from the backend itself."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
import json
import pydoc
import re
from pathlib import Path
from typing import Annotated

import pytest

import attrib
from attrib import options as declared
from attrib.backends.openai import OpenAIBackend
from attrib.batch import prepare
from attrib.batch.inputs import OPTION_KEYS
from attrib.cli import main
from attrib.cli.flags import flag, on_command
from attrib.errors import InputError
from attrib.options import PARAMETERS, ExplainOptions, Option, RunOptions

pytestmark = pytest.mark.filterwarnings("ignore:the prompt's last")

PROMPT = "The capital of France is Paris. It is large."


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(argv))
        except SystemExit as exit:  # --help and argparse errors
            status = int(exit.code or 0)
    return status, out.getvalue(), err.getvalue()


def help_flags(command: str) -> set[str]:
    return set(re.findall(r"--[a-z][a-z-]*", run_cli(command, "--help")[1]))


@pytest.mark.parametrize("command", ["explain", "audit", "batch"])
def test_every_command_has_a_flag_for_each_declared_option_and_parameter(command: str) -> None:
    shown = help_flags(command)
    wanted = {flag(name) for name in on_command(command)} | {flag(p.name) for p in PARAMETERS}
    if command == "audit":  # an audit takes no perturbation, so no --baseline
        wanted -= {"--baseline"}
    assert wanted <= shown, wanted - shown
    # the options every task takes have a flag everywhere (explain had no --seed, audit no HiPe flags)
    assert {"--seed", "--method", "--level", "--budget", "--max-new-tokens", "--contrast", "--threshold"} <= shown


def test_run_options_fields_are_the_declared_options_and_build_fills_their_defaults() -> None:
    assert {f.name for f in dataclasses.fields(RunOptions)} == set(declared.options())
    for task in ("explain", "audit"):
        built = RunOptions.build(task=task) if task == "explain" else RunOptions.build(task="audit")
        for name, option in declared.options().items():
            if name in ("method", "perturbation"):  # resolved to instances
                assert getattr(built, name).name == option.default_for(task)
            else:
                assert getattr(built, name) == option.default_for(task), name
    assert RunOptions.build(task="audit").level == "sentence"


@pytest.mark.parametrize(
    ("function", "task", "batch"),
    [(attrib.attribute, "explain", False), (attrib.plan, "plan", False), (attrib.audit, "audit", False),
     (attrib.attribute_many, "explain", True)],
)  # fmt: skip
def test_public_signatures_and_help_show_each_option_with_its_declared_default(
    function: object, task: str, batch: bool
) -> None:
    parameters = inspect.signature(function).parameters  # type: ignore[arg-type]
    expected = declared.batch_names(task) if batch else set(declared.options(task))
    for name in expected:
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[name].default == declared.default(name, task), name
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    text = pydoc.render_doc(function, renderer=pydoc.plaintext)
    assert "Run options" in text and "max_new_tokens: 'int' = 16" in text


def test_a_misspelt_option_is_refused_with_the_right_name_and_an_audit_refuses_explain_options() -> None:
    with pytest.raises(TypeError, match="explain takes no option 'levle'; did you mean 'level'"):
        attrib.attribute(PROMPT, backend="toy", levle="word")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="audit takes no option 'perturbation'"):
        attrib.audit(PROMPT, backend="toy", perturbation="replace")  # type: ignore[call-arg]


def test_the_batch_tables_come_from_the_declaration(tmp_path: Path) -> None:
    assert OPTION_KEYS == declared.record_names() == {"level", "method", "budget", "max_new_tokens", "seed"}
    assert declared.batch_names("audit") == set(declared.options("audit")) - {"target"}
    records = [{"id": "a", "prompt": PROMPT}]
    with pytest.raises(InputError, match="explain takes no option 'target'"):
        prepare(records, backend="toy", target=" x")
    with pytest.raises(InputError, match="audit takes no option 'noise_samples'"):
        prepare(records, task="audit", backend="toy", noise_samples=1)


def test_seed_reaches_a_sampling_method_from_the_explain_command() -> None:
    status, out, err = run_cli("explain", PROMPT, "--backend", "toy", "--method", "shapley", "--seed", "3",
                               "--level", "sentence", "--json", "-", "--quiet", "--no-cache")  # fmt: skip
    assert status == 0, err
    assert json.loads(out)["parameters"]["seed"] == 3


def test_hipe_flags_reach_an_audit_and_are_refused_for_another_method() -> None:
    status, out, err = run_cli("audit", "Where?", "--system", "Be brief. Say Paris.", "--backend", "toy",
                               "--threshold", "midrange", "--json", "-", "--quiet", "--no-cache")  # fmt: skip
    assert status == 0, err
    assert json.loads(out)["parameters"]["threshold"]["name"] == "midrange"
    status, _, err = run_cli("audit", "Where?", "--backend", "toy", "--method", "itp", "--threshold", "midrange")
    assert status == 1 and err.strip() == (
        "attrib: error: --threshold applies to --method hipe, not 'itp'"
    )  # fmt: skip


def test_the_api_flags_take_the_backends_own_defaults() -> None:
    text = " ".join(run_cli("explain", "--help")[1].split())
    own = inspect.signature(OpenAIBackend).parameters
    for name in ("concurrency", "timeout", "max_retries", "top_logprobs", "scoring", "tokenizer"):
        assert re.search(rf"{flag(name)} \S+ (?:(?! --).)*?\(default {re.escape(str(own[name].default))}\)", text), name
    assert f"(default {OpenAIBackend.key_variable})" in text
    from attrib.cli.common import backend_options
    from attrib.cli.parser import build_parser

    args = build_parser().parse_args(["explain", "x", "--backend", "openai", "--no-cache"])
    options = backend_options(args)
    assert {name: options[name] for name in ("concurrency", "timeout", "max_retries")} == {
        name: own[name].default for name in ("concurrency", "timeout", "max_retries")
    }


def test_an_api_flag_given_for_another_backend_is_refused_even_at_the_default_value() -> None:
    status, _, err = run_cli("explain", PROMPT, "--backend", "toy", "--concurrency", "4")
    assert status == 1
    assert err.strip() == "attrib: error: --concurrency applies to --backend openai, not 'toy'"


def test_a_batch_records_the_same_run_json_options_as_before(tmp_path: Path) -> None:
    """A resume compares run.json's options: an option added later is recorded only when given, so
    an OUT_DIR written before it still resumes."""
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "a", "prompt": PROMPT}) + "\n", encoding="utf-8")
    for task, extra in (("explain", {"perturbation", "noise_samples"}), ("audit", set())):
        out = tmp_path / task
        status, _, err = run_cli("batch", str(source), "-o", str(out), "--backend", "toy", "--task", task, "--quiet")
        assert status == 0, err
        recorded = json.loads((out / "run.json").read_text())["options"]
        assert set(recorded) == {"method", "level", "max_new_tokens", "budget", "seed", "chat_template", *extra,
                                 "system", "backend", "backend_options", "api_key_env", "reference_options"}  # fmt: skip


def test_a_new_option_declared_once_reaches_the_flags_and_the_batch_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    class WithTemperature(ExplainOptions, total=False):
        temperature: Annotated[float, Option(0.0, "sampling temperature", metavar="T", batch="record")]

    monkeypatch.setitem(declared.TASKS, "explain", WithTemperature)
    declared._declared.cache_clear()
    declared._types.cache_clear()
    try:
        assert "--temperature" in help_flags("explain") and "--temperature" in help_flags("batch")
        assert "--temperature" not in help_flags("audit")
        assert "temperature" in declared.batch_names("explain") and "temperature" in declared.record_names()
        assert declared.options()["temperature"].flag_type() is float
    finally:
        monkeypatch.undo()
        declared._declared.cache_clear()
        declared._types.cache_clear()
    assert "temperature" not in declared.options()


def test_the_reference_flags_are_one_declaration_for_audit_and_batch(tmp_path: Path) -> None:
    for argv in (
        ["audit", "Where?"],
        ["batch", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "out"), "--task", "audit"],
    ):
        status, _, err = run_cli(*argv, "--backend", "toy", "--reference-model", "m")
        assert status == 1 and err.strip() == "attrib: error: --reference-model goes with --reference-base-url"


def test_a_type_checker_checks_every_option_keyword(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = pytest.importorskip("mypy.api")
    use = tmp_path / "use.py"
    use.write_text(
        "import attrib\n"
        'attrib.attribute("x", method="itp", level="word", budget=10, seed=1)\n'
        'attrib.attribute("x", level=3)\n'
        'attrib.audit("x", perturbation="replace")\n'
        'attrib.plan("x", max_new_tokens="16")\n'
        'attrib.attribute_many([], task="audit", levle="word")\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(Path(__file__).parents[1])  # the project's mypy settings (strict) and cache
    out, _, _ = api.run([str(use)])
    errors = {int(line.split(":")[1]): line for line in out.splitlines() if ": error:" in line}
    assert sorted(errors) == [3, 4, 5, 6], out
    assert 'Unexpected keyword argument "perturbation" for "audit"' in errors[4]
    assert 'did you mean "level"' in errors[6]

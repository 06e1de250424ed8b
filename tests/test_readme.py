"""Every command the README and the documentation site show still parses, and CI runs the README's.

The shell blocks (```sh) of README.md and docs/**/*.md are split into commands
(continuations joined, comments dropped, ``&&``/``|``/``;``/``&`` separating them)
and each is checked without running a model:

- ``attrib ...``: parsed by the command line's real parser (``build_parser``);
- ``python -m MODULE ...`` of this repository (``attrib.*``, ``benchmarks*``): the
  module runs in a subprocess until its ``parse_args`` returns, then stops;
- ``python -m pytest -m EXPR``: every marker in EXPR is registered in pyproject.toml;
- ``pip install``: ``-e ".[extras]"`` names extras that exist, other requirements name
  packages the project declares; ``apt-get install``: packages CI installs too;
- ``mkdocs``, ``ruff``, ``mypy``: tools of the declared extras (and mkdocs.yml exists);
- ``bash SCRIPT``: a script of ``.ci/`` that exists and that CI runs too.

A file under ``examples/`` that a command names must exist. A command of any other
kind fails the test: give it a check here. The Python blocks must compile. On the
model tier, the README's quick start and Python example are run and their output
compared with the output the README shows.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from attrib.cli.parser import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").rglob("*.md"))]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")

SEPARATORS = {"&&", "||", "|", ";", "&"}

# Runs ``python -m MODULE ARGS`` until the module's argument parser has parsed ARGS.
PARSE_ONLY = """
import argparse, runpy, sys

class Parsed(BaseException):
    pass

parse_args = argparse.ArgumentParser.parse_args

def parse_then_stop(self, args=None, namespace=None):
    parse_args(self, args, namespace)
    raise Parsed

argparse.ArgumentParser.parse_args = parse_then_stop
module = sys.argv[1]
sys.argv = [module, *sys.argv[2:]]
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
except Parsed:
    sys.exit(0)
sys.exit(f"{module} finished without parsing its command line")
"""


def _blocks(text: str, languages: tuple[str, ...]) -> list[str]:
    return [body for language, body in re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S) if language in languages]


def shell_commands(text: str) -> list[str]:
    """The commands of a Markdown text's shell blocks, each as one line."""
    commands: list[str] = []
    for block in _blocks(text, ("sh", "bash", "shell", "console")):
        for line in block.replace("\\\n", " ").splitlines():
            words: list[str] = []
            for word in shlex.split(line, comments=True):
                if word in SEPARATORS:
                    if words:
                        commands.append(shlex.join(words))
                    words = []
                else:
                    words.append(word)
            if words:
                commands.append(shlex.join(words))
    return commands


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, f"not a requirement: {requirement!r}"
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


DECLARED = {_name(r) for r in PYPROJECT["project"]["dependencies"]} | {
    _name(r) for extra in EXTRAS.values() for r in extra
}


def _check_attrib(argv: list[str]) -> None:
    parser = build_parser()
    try:
        parser.parse_args(argv[1:])
    except SystemExit as exit:
        raise AssertionError(f"attrib's parser refuses {shlex.join(argv)!r} (exit {exit.code})") from None


def _check_python_module(argv: list[str]) -> None:
    assert argv[1] == "-m", f"only 'python -m MODULE' commands are checked: {shlex.join(argv)!r}"
    module, args = argv[2], argv[3:]
    if module == "pytest":
        markers = {line.split(":", 1)[0].strip() for line in PYPROJECT["tool"]["pytest"]["ini_options"]["markers"]}
        if "-m" in args:
            expression = args[args.index("-m") + 1]
            names = set(re.findall(r"[A-Za-z_]\w*", expression)) - {"and", "or", "not"}
            assert names <= markers, f"unregistered markers {names - markers} in {expression!r}"
        return
    assert module.split(".")[0] in ("attrib", "benchmarks"), f"no check for python -m {module}"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", PARSE_ONLY, module, *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{shlex.join(argv)!r} does not parse: {done.stderr.strip()[-2000:]}"


def _check_pip(argv: list[str]) -> None:
    assert argv[1] == "install", shlex.join(argv)
    args = argv[2:]
    for index, arg in enumerate(args):
        if arg.startswith("-"):
            continue
        if index > 0 and args[index - 1] == "-e":
            extras = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", arg)
            assert extras, f"pip install -e of something other than this project: {arg!r}"
            unknown = set((extras.group(1) or "").split(",")) - set(EXTRAS) - {""}
            assert not unknown, f"no extra {sorted(unknown)} in pyproject.toml (extras: {sorted(EXTRAS)})"
        else:
            assert _name(arg) in DECLARED, f"{arg!r} is not a dependency pyproject.toml declares"


def _check_apt(argv: list[str]) -> None:
    if argv[1] == "update":
        return
    assert argv[1] == "install", shlex.join(argv)
    for package in (arg for arg in argv[2:] if not arg.startswith("-")):
        assert re.search(rf"apt-get install\b.*\b{re.escape(package)}\b", CI), f"CI does not install {package}"


def _check_tool(argv: list[str]) -> None:
    tool = argv[0]
    owner = "docs" if tool == "mkdocs" else "test"
    assert tool in {_name(r) for r in EXTRAS[owner]}, f"{tool} is not in the {owner} extra"
    if tool == "mkdocs":
        assert (ROOT / "mkdocs.yml").is_file()
        assert argv[1] in ("build", "serve"), shlex.join(argv)


def _check_script(argv: list[str]) -> None:
    assert len(argv) == 2 and argv[1].startswith(".ci/"), f"only 'bash .ci/SCRIPT' is checked: {shlex.join(argv)!r}"
    assert (ROOT / argv[1]).is_file(), f"{argv[1]} does not exist"
    assert f"bash {argv[1]}" in CI, f"CI does not run {argv[1]}"


CHECKS = {
    "attrib": _check_attrib,
    "python": _check_python_module,
    "pip": _check_pip,
    "apt-get": _check_apt,
    "mkdocs": _check_tool,
    "ruff": _check_tool,
    "mypy": _check_tool,
    "bash": _check_script,
}


def _documented_commands() -> list[tuple[str, str]]:
    return [
        (path.relative_to(ROOT).as_posix(), command)
        for path in DOCUMENTS
        for command in shell_commands(path.read_text(encoding="utf-8"))
    ]


DOCUMENTED = _documented_commands()


@pytest.mark.parametrize(("document", "command"), DOCUMENTED, ids=[f"{d}: {c[:60]}" for d, c in DOCUMENTED])
def test_documented_command_parses(document, command):
    argv = shlex.split(command)
    assert argv[0] in CHECKS, f"{document}: no check for {argv[0]!r} commands ({command!r}); add one to this test"
    for word in argv:
        if word.startswith("examples/"):
            assert (ROOT / word).exists(), f"{document}: {command!r} names {word}, which does not exist"
    CHECKS[argv[0]](argv)


@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.relative_to(ROOT).as_posix() for p in DOCUMENTS])
def test_python_blocks_compile(path):
    for block in _blocks(path.read_text(encoding="utf-8"), ("python", "py")):
        compile(block, str(path), "exec")


def test_readme_shows_each_kind_of_command():
    kinds = {shlex.split(command)[0] for document, command in DOCUMENTED if document == "README.md"}
    assert {"attrib", "pip", "apt-get", "python", "mkdocs"} <= kinds, kinds


def test_ci_runs_the_readme_test_command():
    test_commands = [
        line.strip()
        for block in _blocks(README.read_text(encoding="utf-8"), ("sh", "bash", "console"))
        for line in block.splitlines()
        if line.strip().startswith(("pip install", "apt-get")) and "pytest" in line
    ]
    assert len(test_commands) == 1, test_commands
    assert test_commands[0] in CI.splitlines()


def test_ci_builds_the_site_as_the_readme_says():
    readme = README.read_text(encoding="utf-8")
    assert 'pip install -e ".[docs]" && mkdocs build --strict' in readme
    assert 'pip install -e ".[docs]"' in CI.splitlines()
    assert any(line.rstrip().endswith("mkdocs build --strict") for line in CI.splitlines())


def test_readme_stays_a_front_page():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 220, f"README.md has {lines} lines: move detail into docs/ (the site) and link it"


def test_the_commands_are_split_as_a_shell_would():
    text = '```sh\npip install -e ".[x]" && attrib explain "a # b" \\\n    --level word   # a comment\nserve --port 1 &\n```\n'
    assert shell_commands(text) == ["pip install -e '.[x]'", "attrib explain 'a # b' --level word", "serve --port 1"]


def test_a_refused_command_fails_the_check():
    with pytest.raises(AssertionError, match="refuses"):
        _check_attrib(["attrib", "explain", "--level", "chapter", "x"])
    with pytest.raises(AssertionError, match="no extra"):
        _check_pip(["pip", "install", "-e", ".[nonexistent]"])
    with pytest.raises(AssertionError, match="does not parse"):
        _check_python_module(["python", "-m", "benchmarks", "--no-such-flag"])


def _slug(heading: str) -> str:
    """A heading's anchor as MkDocs' toc and GitHub both make it (for headings without runs of hyphens)."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def test_readme_links_reach_files_and_headings():
    readme = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = ROOT / path if path else README
        assert target.exists(), f"README.md links to {path}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", target.read_text(encoding="utf-8"), flags=re.M)
            assert anchor in {_slug(h) for h in headings}, f"README.md links to {link}: no such heading"


def _output_block(text: str, first_line: str) -> str:
    """The README's untagged code block that starts with ``first_line``: a command's output as shown."""
    blocks = [body for language, body in re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S) if not language]
    shown = [body for body in blocks if body.startswith(first_line)]
    assert len(shown) == 1, f"one output block starting {first_line!r} expected, found {len(shown)}"
    return shown[0]


def _run(argv: list[str]) -> str:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(argv, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.model
def test_readme_quick_start_output_is_what_the_model_gives():
    """The quick start's output in the README is real: same output, top 10 and calls (seconds vary)."""
    readme = README.read_text(encoding="utf-8")
    (command,) = [c for c in shell_commands(readme) if c.startswith("attrib explain --prompt-file")]
    shown = _output_block(readme, 'output: "')
    printed = _run([sys.executable, "-m", "attrib", *shlex.split(command)[1:], "--no-cache", "--quiet"])
    seconds = re.compile(r", [\d.]+ s$", flags=re.M)
    assert seconds.sub(", S s", printed) == seconds.sub(", S s", shown)


@pytest.mark.model
def test_readme_cite_output_is_what_the_model_gives():
    """The cite example's output in the README is real: claims, scores, verdicts and calls (seconds vary)."""
    readme = README.read_text(encoding="utf-8")
    (command,) = [c for c in shell_commands(readme) if c.startswith("attrib cite ")]
    shown = _output_block(readme, 'answer: "')
    printed = _run([sys.executable, "-m", "attrib", *shlex.split(command)[1:], "--no-cache", "--quiet"])
    seconds = re.compile(r", [\d.]+ s$", flags=re.M)
    assert seconds.sub(", S s", printed) == seconds.sub(", S s", shown)


@pytest.mark.model
def test_readme_python_example_output_is_what_the_model_gives():
    readme = README.read_text(encoding="utf-8")
    code = [block for block in _blocks(readme, ("python",)) if "attrib.attribute(" in block]
    assert len(code) == 1, code
    assert _run([sys.executable, "-c", code[0]]) == _output_block(readme, "Attribution(")

"""The README's two commands stay true: CI runs the same test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _commands(readme: str) -> list[str]:
    blocks = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", readme, flags=re.S)
    return [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip().startswith(("pip install", "apt-get"))
    ]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_commands = [c for c in _commands(readme) if "pytest" in c]
    assert len(test_commands) == 1, test_commands
    assert test_commands[0] in ci.splitlines()


def test_readme_main_command_uses_a_file_that_exists():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    main = [c for c in _commands(readme) if "attrib explain" in c]
    assert len(main) == 1, main
    for path in re.findall(r"--prompt-file (\S+)", main[0]):
        assert (ROOT / path).is_file(), path

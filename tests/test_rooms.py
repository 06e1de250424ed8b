"""The rooms of the non-method modules: one path per module, and ``attrib.audit`` is only ever the function."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import attrib

ROOT = Path(__file__).resolve().parents[1]

#: Each moved module under its one path.
ROOMS = (
    "attrib.auditing.run",
    "attrib.auditing.message_shapley",
    "attrib.auditing.hidden_influence",
    "attrib.cache.store",
    "attrib.cache.wrapper",
    "attrib.backends.openai.rungs.regeneration",
)

#: The paths they left: nothing answers there any more (no shims).
LEFT = ("attrib.audit", "attrib.influence", "attrib.roles", "attrib.caching", "attrib.regeneration")


def test_attrib_audit_is_the_function_and_no_module_shares_its_name():
    from attrib import audit
    from attrib.auditing.run import audit as defined

    assert audit is defined and attrib.audit is defined
    assert callable(attrib.audit)
    assert importlib.util.find_spec("attrib.audit") is None
    assert "attrib.audit" not in sys.modules


@pytest.mark.parametrize("gone", LEFT)
def test_the_old_paths_are_gone(gone):
    assert importlib.util.find_spec(gone) is None


@pytest.mark.parametrize("module", ROOMS)
def test_each_room_imports_first_and_under_its_own_name(module):
    # A fresh interpreter that imports the module before anything else, in the
    # ``import a.b.c as m`` form that walks attributes: no cycle, nothing shadowed.
    code = f"import {module} as m; import attrib; assert m.__name__ == {module!r}; assert callable(attrib.audit)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _attrib_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("attrib")}


def test_the_cache_store_knows_nothing_of_backends():
    assert _attrib_imports(ROOT / "attrib" / "cache" / "store.py") == {"attrib.errors"}


def test_the_regeneration_rules_are_used_by_the_rungs_alone():
    users = {
        path.relative_to(ROOT).as_posix()
        for folder in ("attrib", "backends", "reports", "benchmarks")
        for path in (ROOT / folder).rglob("*.py")
        if "attrib/backends" not in path.as_posix() and "attrib/reports" not in path.as_posix()
        if "regeneration import" in path.read_text(encoding="utf-8")
    }
    assert users == {"backends/openai/rungs/text.py", "backends/openai/rungs/top_logprobs.py"}

"""No import cycle between the scheduler contract and the schedulers: names resolve through the registry."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = (
    "attrib.methods.base",
    "attrib.methods.hipe",
    "attrib.methods.itp",
    "attrib.methods.hipe.orders",
    "attrib.methods.hipe.thresholds",
)


def _module_file(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _top_level_imports(name: str) -> set[str]:
    """The attrib modules ``name`` imports at module level (imports inside functions are lazy)."""
    path = _module_file(name)
    if path is None:
        return set()
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {m for m in found if m.startswith("attrib") and _module_file(m) is not None and m != "attrib"}


def _reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        for module in _top_level_imports(name) - seen:
            seen.add(module)
            todo.append(module)
    return seen


def test_the_scheduler_contract_imports_no_scheduler():
    reached = _reachable("attrib.methods.base")
    assert not {m for m in reached if m.startswith(("attrib.methods.hipe", "attrib.methods.itp"))}


def test_the_scheduler_contract_names_schedulers_only_through_the_registry():
    # not even inside a function: names resolve through attrib.registry.methods
    tree = ast.parse((ROOT / "attrib" / "methods" / "base.py").read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in imported if m.startswith(("attrib.methods.hipe", "attrib.methods.itp"))}


@pytest.mark.parametrize(
    "name",
    ["attrib.methods.hipe", "attrib.methods.itp", "attrib.methods.hipe.orders", "attrib.methods.hipe.thresholds"],
)
def test_no_scheduler_module_reaches_itself(name):
    assert name not in _reachable(name)


def test_every_import_order_works_in_a_fresh_interpreter():
    script = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "from attrib import registry\n"
        "print(type(registry.methods.create('hipe')).__name__, type(registry.methods.create('itp')).__name__)\n"
    )
    orders = [*itertools.permutations(MODULES[:3]), *((m,) for m in MODULES[3:])]
    for order in orders:
        done = subprocess.run(
            [sys.executable, "-c", script, *order], cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{order}: {done.stderr}"
        assert done.stdout.split() == ["HiPe", "ITP"]

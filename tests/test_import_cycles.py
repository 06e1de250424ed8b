"""No import cycle hides behind a function-level import, and the CLI modules share only public names.

An import inside a function is how a cycle between two modules is usually hidden:
each works alone, and the cycle shows only as a tangle no reader can follow. Lazy
imports of optional heavy libraries (torch, ray, pandas, llama_cpp, tqdm) are not
attrib modules and are not checked; the one deliberate cycle is listed below.
"""

from __future__ import annotations

import ast
import importlib.util
from collections import deque
from pathlib import Path

import pytest

#: Function-level imports that close a cycle on purpose: importer -> imported, and why.
DELIBERATE = {
    ("attrib.result.attribution", "attrib.reports.html"): "the result hands itself to its report (to_html), "
    "and the core imports no report module at import time",
}


def _modules(package: str = "attrib") -> dict[str, Path]:
    """Every module of ``package`` by dotted name, found where Python finds it (links and mappings alike)."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations is not None
    found: dict[str, Path] = {}
    for location in spec.submodule_search_locations:
        for path in sorted(Path(location).iterdir()):
            if path.name == "__init__.py":
                found[package] = path
            elif path.suffix == ".py":
                found[f"{package}.{path.stem}"] = path
            elif path.is_dir() and (path / "__init__.py").exists():
                found.update(_modules(f"{package}.{path.name}"))
    return found


MODULES = _modules()


def _imports(module: str, tree: ast.Module) -> list[tuple[str, list[str], int, bool]]:
    """Each import of an attrib module: (module, names imported from it, line, inside a function)."""
    found: list[tuple[str, list[str], int, bool]] = []
    is_package = MODULES[module].name == "__init__.py"

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # for the type checker only: never runs
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                found.extend((alias.name, [], child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = module if is_package else module.rpartition(".")[0]
                    for _ in range(child.level - 1):
                        parent = parent.rpartition(".")[0]
                    base = f"{parent}.{base}" if base else parent
                names = [alias.name for alias in child.names]
                submodules = [f"{base}.{name}" for name in names if f"{base}.{name}" in MODULES]
                found.extend((name, [], child.lineno, in_function) for name in submodules)
                if len(submodules) < len(names):
                    found.append((base, [n for n in names if f"{base}.{n}" not in MODULES], child.lineno, in_function))
            visit(child, inside)

    visit(tree, False)
    return [entry for entry in found if entry[0] == "attrib" or entry[0].startswith("attrib.")]


def _module_of(name: str) -> str:
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _with_packages(
    module: str, imports: list[tuple[str, list[str], int, bool]]
) -> list[tuple[str, list[str], int, bool]]:
    """The imports and, for each, the packages Python runs first to reach it (``attrib.batch`` for
    ``attrib.batch.outdir``), except the importer's own (already running when it imports)."""
    found = []
    for target, names, line, lazy in imports:
        found.append((target, names, line, lazy))
        package = target.rpartition(".")[0]
        while package and not (module == package or module.startswith(package + ".")):
            found.append((package, [], line, lazy))
            package = package.rpartition(".")[0]
    return found


IMPORTS = {
    module: _with_packages(
        module, [(_module_of(target), names, line, lazy) for target, names, line, lazy in _imports(module, tree)]
    )
    for module, tree in ((m, ast.parse(p.read_text(encoding="utf-8"))) for m, p in MODULES.items())
}


def _path(start: str, goal: str) -> list[str] | None:
    """A chain of imports (at any level) from ``start`` to ``goal``, or ``None``."""
    came_from: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        if here == goal:
            chain = [here]
            while (previous := came_from[chain[-1]]) is not None:
                chain.append(previous)
            return chain[::-1]
        for target, _, _, _ in IMPORTS[here]:
            if target not in came_from:
                came_from[target] = here
                queue.append(target)
    return None


def test_the_scan_sees_the_packages_modules() -> None:
    for name in ("attrib", "attrib.cli", "attrib.cli.common", "attrib.result.legacy", "attrib.batch.worker"):
        assert name in MODULES
    assert any(target == "attrib.cli.common" for target, _, _, _ in IMPORTS["attrib.cli.batch"])


def test_no_function_level_import_hides_a_cycle() -> None:
    hidden = []
    for module, imports in IMPORTS.items():
        for target, _, line, lazy in imports:
            if not lazy or target == module or (module, target) in DELIBERATE:
                continue
            back = _path(target, module)
            if back is not None:
                hidden.append(f"{MODULES[module].name}:{line} {module} -> {' -> '.join(back)}")
    assert not hidden, "function-level imports that close a cycle:\n" + "\n".join(hidden)


@pytest.mark.parametrize("pair", sorted(DELIBERATE))
def test_each_deliberate_cycle_is_still_a_function_level_import(pair: tuple[str, str]) -> None:
    module, target = pair
    kinds = {lazy for imported, _, _, lazy in IMPORTS[module] if imported == target}
    assert kinds == {True}, f"{module} imports {target} at module level, or no longer at all"


def test_no_cli_module_imports_another_cli_modules_private_names() -> None:
    private = [
        f"{module}:{line} imports {', '.join(n for n in names if n.startswith('_'))} from {target}"
        for module, imports in IMPORTS.items()
        if module.startswith("attrib.cli")
        for target, names, line, _ in imports
        if target.startswith("attrib.cli") and target != module and any(n.startswith("_") for n in names)
    ]
    assert not private, "\n".join(private)


def test_no_cli_module_imports_the_cli_package_itself() -> None:
    # the package (attrib/cli/__init__.py) imports every CLI module: a name taken from it is a cycle
    inward = [
        f"{module}:{line} imports {names} from attrib.cli"
        for module, imports in IMPORTS.items()
        if module.startswith("attrib.cli.")
        for target, names, line, _ in imports
        if target == "attrib.cli"
    ]
    assert not inward, "\n".join(inward)

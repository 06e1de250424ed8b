"""The wheel built from the tree holds every module once, under ``attrib/``, with its data files.

``attrib/backends`` and ``attrib/reports`` are links to the top-level ``backends/`` and
``reports/`` (docs/design.md, "One path per module"), so the tree shows those files
twice; the wheel must not: each source file is in it once, at its ``attrib.`` path.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: What a build never reads: caches, build outputs, the model files.
IGNORED = shutil.ignore_patterns(
    ".git", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", ".venv", "__pycache__",
    "build", "dist", "*.egg-info", "*.gguf",
)  # fmt: skip


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """A wheel built by pip from a copy of the tree (links kept as links), as a release would be."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=IGNORED)
    out = work / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), "."]
    done = subprocess.run(command, cwd=source, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("attrib-*.whl")
    return zipfile.ZipFile(built)


def _files(wheel: zipfile.ZipFile) -> list[str]:
    return [name for name in wheel.namelist() if not name.endswith("/")]


def test_every_file_is_under_attrib_or_the_metadata(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/", 1)[0] for name in _files(wheel)}
    assert tops == {"attrib", "attrib-0.1.0.dist-info"}, tops  # no top-level backends/ or reports/


def test_each_source_module_is_in_the_wheel_once_at_its_attrib_path(wheel: zipfile.ZipFile) -> None:
    expected = {path.relative_to(ROOT).as_posix() for path in (ROOT / "attrib").rglob("*.py") if not path.is_symlink()}
    # the links' targets, by their package path (every file under them, not through the link)
    for folder in ("backends", "reports"):
        assert (ROOT / "attrib" / folder).is_symlink()
        expected |= {f"attrib/{p.relative_to(ROOT).as_posix()}" for p in (ROOT / folder).rglob("*.py")}
    modules = [name for name in _files(wheel) if name.endswith(".py")]
    assert len(modules) == len(set(modules))
    assert set(modules) == expected


def test_no_content_is_stored_under_two_paths(wheel: zipfile.ZipFile) -> None:
    by_digest: dict[str, list[str]] = {}
    for name in _files(wheel):
        data = wheel.read(name)
        if data.strip() and ".dist-info/" not in name:
            by_digest.setdefault(hashlib.sha256(data).hexdigest(), []).append(name)
    assert not [names for names in by_digest.values() if len(names) > 1]


def test_the_data_files_and_the_type_marker_are_packaged(wheel: zipfile.ZipFile) -> None:
    files = set(_files(wheel))
    assert "attrib/py.typed" in files
    assert "attrib/result/attribution.schema.json" in files
    templates = {name.rsplit("/", 1)[1] for name in files if name.startswith("attrib/reports/templates/")}
    shipped = {p.name for p in (ROOT / "reports" / "templates").iterdir() if p.suffix in {".j2", ".css", ".js"}}
    assert shipped and templates == shipped


def test_the_metadata_names_the_command_and_the_runtime_dependencies(wheel: zipfile.ZipFile) -> None:
    metadata = Parser().parsestr(wheel.read("attrib-0.1.0.dist-info/METADATA").decode("utf-8"))
    required = {r.split(";")[0].split(">")[0].split("=")[0].strip() for r in metadata.get_all("Requires-Dist") or []}
    assert {"numpy", "tqdm", "platformdirs", "jinja2"} <= required
    entry_points = wheel.read("attrib-0.1.0.dist-info/entry_points.txt").decode("utf-8")
    assert "attrib = attrib.cli:main" in entry_points

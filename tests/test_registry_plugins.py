"""A third-party package installed beside attrib adds a backend and a method through entry points.

The package is a real installed distribution: a module and a ``*.dist-info`` folder
(``METADATA`` and ``entry_points.txt``) in a folder on the subprocess's ``sys.path``,
which is what ``pip install`` leaves in ``site-packages``. Nothing of it is imported
until one of its names is used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = '''
"""attrib-demo-plugin: a backend and a method for attrib, found through entry points."""

from dataclasses import dataclass
from typing import ClassVar

from attrib.backends.toy import ToyBackend
from attrib.methods.itp import ITP


class DemoBackend(ToyBackend):
    """A toy model whose output needs "paris" (2 nats a token)."""

    name = "demo"

    def __init__(self, **options):
        super().__init__(sensitivity={"paris": 2.0}, output=" yes it is", **options)


@dataclass(frozen=True)
class DemoMethod(ITP):
    """Leave-one-out under the plugin's own name."""

    name: ClassVar[str] = "demo-loo"


class NotABackend:
    """Registered as a backend by mistake."""
'''

NEEDS = '''
"""A backend module of the plugin that needs a package nobody installed."""

import attrib_demo_missing_dependency  # noqa: F401
'''

ENTRY_POINTS = """
[attrib.backends]
demo = attrib_demo_plugin:DemoBackend
notabackend = attrib_demo_plugin:NotABackend
needsdep = attrib_demo_needs:Backend

[attrib.methods]
demo-loo = attrib_demo_plugin:DemoMethod
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site-packages folder holding the installed plugin distribution."""
    site = tmp_path_factory.mktemp("site-packages")
    (site / "attrib_demo_plugin.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    (site / "attrib_demo_needs.py").write_text(textwrap.dedent(NEEDS), encoding="utf-8")
    info = site / "attrib_demo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: attrib-demo-plugin\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(ENTRY_POINTS.lstrip(), encoding="utf-8")
    (info / "RECORD").write_text("", encoding="utf-8")
    return site


def run(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python *args`` with the plugin's site folder on the path (after this tree's attrib)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)])}
    return subprocess.run(
        [sys.executable, *args], cwd=site, env=env, capture_output=True, text=True, check=False, timeout=300
    )


def choices(help_text: str, flag: str) -> list[str]:
    """The ``{a,b,c}`` choices ``--help`` shows after ``flag``."""
    flat = "".join(help_text.split())
    return flat.split(flag + "{", 1)[1].split("}", 1)[0].split(",")


def test_the_plugin_is_an_installed_distribution(site: Path) -> None:
    code = (
        "import importlib.metadata as m; "
        "print(m.version('attrib-demo-plugin'), sorted(e.name for e in m.entry_points(group='attrib.backends')))"
    )
    done = run(site, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(maxsplit=1) == ["0.1", "['demo', 'needsdep', 'notabackend']\n"]


def test_the_plugin_appears_in_help(site: Path) -> None:
    done = run(site, "-m", "attrib", "explain", "--help")
    assert done.returncode == 0, done.stderr
    assert {"demo", "notabackend", "llama", "toy"} <= set(choices(done.stdout, "--backend"))
    assert {"demo-loo", "hipe", "itp"} <= set(choices(done.stdout, "--method"))


def test_listing_imports_nothing_of_the_plugin(site: Path) -> None:
    code = (
        "import sys; from attrib import registry; "
        "print('demo' in registry.backends.names(), 'demo-loo' in registry.methods, "
        "'attrib_demo_plugin' in sys.modules)"
    )
    done = run(site, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "False"]


def test_the_plugin_backend_and_method_run(site: Path) -> None:
    prompt = "The capital of France is Paris."
    done = run(
        site, "-m", "attrib", "explain", "--backend", "demo", "--method", "demo-loo", "--level", "word", "--json", "-",
        prompt,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["method"] == "demo-loo" and result["backend"]["name"] == "demo"
    units = [u["text"].strip() for u in result["units"]]
    top = max(range(len(units)), key=lambda i: sum(result["scores"][i]))
    assert units[top] == "Paris."
    # the same names work from Python
    code = (
        "import attrib; r = attrib.attribute('The capital of France is Paris.', backend='demo', method='demo-loo'); "
        "print(r.method, r.stats.calls)"
    )
    done = run(site, "-c", code)
    assert done.returncode == 0, done.stderr
    method, calls = done.stdout.split()
    assert method == "demo-loo" and int(calls) > 1


@pytest.mark.parametrize(
    ("backend", "says"),
    [("notabackend", "a class that does not derive from attrib.backend.Backend"),
     ("needsdep", "importing it failed: No module named 'attrib_demo_missing_dependency'")],
)  # fmt: skip
def test_a_broken_plugin_entry_fails_in_one_line(site: Path, backend: str, says: str) -> None:
    done = run(site, "-m", "attrib", "explain", "--backend", backend, "--method", "itp", "The sky is blue.")
    assert done.returncode == 1
    assert done.stderr.startswith(f"attrib: error: backend {backend!r} is registered as ")
    assert says in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_name_registered_in_code_wins_over_an_entry_point(site: Path) -> None:
    code = (
        "from attrib import registry; registry.backends.register('demo', 'attrib.backends.toy:ToyBackend'); "
        "print(registry.backends.resolve('demo').__name__, registry.backends.names().count('demo'))"
    )
    done = run(site, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ToyBackend", "1"]

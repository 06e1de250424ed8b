"""One lazy registry: names for every kind, imports on first use, "did you mean" for typos."""

from __future__ import annotations

import subprocess
import sys

import pytest

import attrib
from attrib import registry


def test_every_kind_lists_its_names_and_resolves_them() -> None:
    assert set(registry.KINDS) == {"backend", "method", "threshold", "order", "perturbation", "rung"}
    assert {"llama", "openai", "toy"} <= set(registry.names("backend"))
    assert {"hipe", "itp"} <= set(registry.names("method"))
    assert registry.resolve("backend", "toy").__name__ == "ToyBackend"
    assert registry.create("method", "itp").name == "itp"
    assert registry.create("perturbation", "replace", baseline=" x").baseline == " x"


@pytest.mark.parametrize(
    ("kind", "name", "hint"),
    [("method", "hpie", "did you mean 'hipe'"), ("backend", "lama", "did you mean 'llama'"),
     ("perturbation", "delet", "did you mean 'delete'"), ("order", "bset", "did you mean 'best'")],
)  # fmt: skip
def test_unknown_names_suggest_the_closest(kind: str, name: str, hint: str) -> None:
    with pytest.raises(attrib.UnknownNameError, match=hint):
        registry.resolve(kind, name)


def test_registering_adds_a_name_without_importing_it() -> None:
    registry.register("method", "my-itp", "attrib.itp:ITP")
    try:
        assert "my-itp" in registry.names("method")
        assert attrib.attribute("The sky is blue.", backend="toy", method="my-itp", level="word").method == "itp"
    finally:
        registry._ENTRIES["method"].pop("my-itp")
    with pytest.raises(ValueError, match="module:attribute"):
        registry.register("method", "broken", "attrib.itp.ITP")
    with pytest.raises(attrib.UnknownNameError, match="registry kind"):
        registry.names("schedulers")


def test_importing_attrib_imports_no_backend_and_no_heavy_library() -> None:
    code = (
        "import sys, attrib, attrib.cli.parser; "
        "heavy = [m for m in ('llama_cpp', 'torch', 'transformers', 'ray', 'playwright', 'openai', "
        "'attrib.backends.llama', 'attrib.backends.openai', 'attrib.reports.html') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out

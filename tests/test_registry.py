"""One typed, lazy registry: names for every kind, imports on first use, base classes checked,
listings live, "did you mean" for typos."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import pytest

import attrib
from attrib import registry
from attrib.backends.toy import ToyBackend
from attrib.cli import main
from attrib.methods.hipe import HiPe
from attrib.methods.itp import ITP
from attrib.perturbation import Replacement


def test_every_kind_lists_its_names_and_resolves_them() -> None:
    assert set(registry.KINDS) == {"backend", "method", "threshold", "order", "perturbation", "rung"}
    assert {"llama", "openai", "toy", "transformers"} <= set(registry.backends.names())
    assert {"hipe", "itp"} <= set(registry.methods.names())
    assert registry.backends.resolve("toy") is ToyBackend
    assert isinstance(registry.methods.create("itp"), ITP)
    replace = registry.perturbations.create("replace", baseline=" x")
    assert isinstance(replace, Replacement) and replace.baseline == " x"
    assert registry.of("method") is registry.methods and registry.names("order") == registry.orders.names()


def test_an_instance_passes_through_and_a_name_is_created() -> None:
    hipe = HiPe(order="depth")
    assert registry.methods.instance(hipe) is hipe
    assert isinstance(registry.methods.instance("hipe"), HiPe)
    with pytest.raises(attrib.UnknownNameError, match="unknown order 3"):
        registry.orders.instance(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "name", "hint"),
    [("method", "hpie", "did you mean 'hipe'"), ("backend", "lama", "did you mean 'llama'"),
     ("perturbation", "delet", "did you mean 'delete'"), ("order", "bset", "did you mean 'best'"),
     ("rung", "forcd", "unknown scoring rung 'forcd'; did you mean 'forced'")],
)  # fmt: skip
def test_unknown_names_suggest_the_closest(kind: str, name: str, hint: str) -> None:
    with pytest.raises(attrib.UnknownNameError, match=hint):
        registry.of(kind).resolve(name)
    with pytest.raises(attrib.UnknownNameError, match="registry kind 'schedulers'"):
        registry.names("schedulers")


@dataclass(frozen=True)
class Halves(ITP):
    """A third-party method registered after import (leave-one-out under another name)."""

    name: ClassVar[str] = "halves"


class Echo(ToyBackend):
    """A third-party backend registered after import."""

    name = "echo"


@pytest.fixture
def registered() -> Iterator[None]:
    registry.methods.register("halves", Halves)
    registry.backends.register("echo", "tests.test_registry:Echo")
    yield
    registry.methods.unregister("halves")
    registry.backends.unregister("echo")


def test_a_registration_after_import_is_listed_usable_and_in_help(
    registered: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "halves" in registry.methods.names() and "echo" in registry.backends.names()
    assert "halves" in registry.methods and "echo" in registry.names("backend")
    result = attrib.attribute("The sky is blue.", backend="echo", method="halves", level="word", target=" yes")
    assert result.method == "halves" and result.backend["name"] == "echo"
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--method {" in shown and "halves" in shown.split("--method {")[1].split("}")[0]
    assert "--backend {" in shown and "echo" in shown.split("--backend {")[1].split("}")[0]


def test_unregistering_removes_the_name(registered: None) -> None:
    registry.methods.unregister("halves")
    assert "halves" not in registry.methods.names()
    with pytest.raises(attrib.UnknownNameError, match="unknown method 'halves'"):
        registry.methods.resolve("halves")
    registry.methods.register("halves", Halves)  # for the fixture's clean-up


def test_a_class_of_the_wrong_base_is_refused_when_registered() -> None:
    with pytest.raises(
        attrib.RegistrationError, match=r"method 'toy-method' .*ToyBackend.* attrib.methods.base.Scheduler"
    ):
        registry.methods.register("toy-method", ToyBackend)
    with pytest.raises(TypeError, match="not derive from attrib.backend.Backend"):
        registry.backends.register("itp-backend", ITP)
    assert "toy-method" not in registry.methods and "itp-backend" not in registry.backends


def test_a_string_of_the_wrong_base_is_refused_when_first_resolved() -> None:
    registry.methods.register("backwards", "attrib.backends.toy:ToyBackend")  # checked on first use
    registry.methods.register("missing", "attrib.no_such_module:Method")
    registry.methods.register("absent", "attrib.methods.itp:NoSuchClass")
    registry.methods.register("function", "attrib.perturbation:merge_spans")
    try:
        with pytest.raises(attrib.RegistrationError, match="'backwards' is registered as 'attrib.backends.toy:Toy"):
            attrib.attribute("The sky is blue.", backend="toy", method="backwards")
        with pytest.raises(attrib.RegistrationError, match="module 'attrib.no_such_module' is not installed"):
            registry.methods.resolve("missing")
        with pytest.raises(attrib.RegistrationError, match="has no such attribute"):
            registry.methods.resolve("absent")
        with pytest.raises(attrib.RegistrationError, match="a function, not a class of attrib.methods.base.Scheduler"):
            registry.methods.resolve("function")
    finally:
        for name in ("backwards", "missing", "absent", "function"):
            registry.methods.unregister(name)


@pytest.mark.parametrize("target", ["attrib.methods.itp.ITP", ":ITP", "attrib.methods.itp:", "a:b:c"])
def test_a_target_must_be_module_colon_class(target: str) -> None:
    with pytest.raises(attrib.RegistrationError, match="must be 'module:Class'"):
        registry.methods.register("broken", target)


@pytest.mark.parametrize("name", ["", " hipe", "two words", 3])
def test_a_name_must_be_a_word(name: object) -> None:
    with pytest.raises(attrib.RegistrationError, match="name must be a non-empty string"):
        registry.methods.register(name, "attrib.methods.itp:ITP")  # type: ignore[arg-type]


def test_the_command_line_reports_a_bad_entry_in_one_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    registry.methods.register("backwards", "attrib.backends.toy:ToyBackend")
    try:
        status = main(["explain", "--backend", "toy", "--method", "backwards", "--no-cache", "The sky is blue."])
    finally:
        registry.methods.unregister("backwards")
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("attrib: error: method 'backwards' is registered as") and err.count("\n") == 1


def test_importing_attrib_imports_no_backend_and_no_heavy_library() -> None:
    code = (
        "import sys, attrib, attrib.cli.parser; "
        "attrib.cli.parser.build_parser(); attrib.registry.backends.names(); attrib.registry.methods.names(); "
        "heavy = [m for m in ('llama_cpp', 'torch', 'transformers', 'ray', 'pandas', 'pyarrow', 'playwright', "
        "'openai', 'tqdm', 'attrib.backends.llama', 'attrib.backends.openai', 'attrib.reports.html', "
        "'attrib.methods.coalitions') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out

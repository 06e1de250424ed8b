"""HiPe's parameters: field-driven describe() and replace(), thresholds and orders by name through the registry."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest

import attrib
from attrib import registry
from attrib.backends.toy import ToyBackend
from attrib.errors import InputError, UnknownNameError
from attrib.methods.hipe import BestFirst, DepthOrder, Fixed, HiPe, MidRange, Relative, get_threshold
from attrib.methods.itp import ITP

PROMPT = "The capital of France is Paris, a city on the Seine. " * 3 + "Question: which city? Answer:"


def test_describe_records_every_field_in_order():
    hipe = HiPe(threshold=Relative(fraction=0.2), max_depth=3, order="depth", top_k=2)
    assert hipe.describe() == {
        "name": "hipe",
        "threshold": {"name": "relative", "fraction": 0.2, "floor": 0.5},
        "max_depth": 3,
        "leaf_group": 4,
        "order": "depth",
        "top_k": 2,
    }
    assert list(hipe.describe())[1:] == [f.name for f in dataclasses.fields(hipe)]
    assert ITP().describe() == {"name": "itp"}


def test_replace_changes_only_the_named_parameters():
    hipe = HiPe(threshold="midrange", max_depth=4, leaf_group=2, order="depth", top_k=3)
    plain = hipe.replace(top_k=None)
    assert plain == HiPe(threshold="midrange", max_depth=4, leaf_group=2, order="depth")
    assert plain.describe() == {**hipe.describe(), "top_k": None}
    assert hipe.top_k == 3  # the original is untouched (frozen)
    with pytest.raises(dataclasses.FrozenInstanceError):
        hipe.top_k = 1  # type: ignore[misc]


def test_replace_follows_the_fields_so_a_new_parameter_is_carried_over():
    @dataclasses.dataclass(frozen=True, init=False)
    class Wider(HiPe):
        width: int = 2

        def __init__(self, *, width: int = 2, **options: object) -> None:
            super().__init__(**options)  # type: ignore[arg-type]
            object.__setattr__(self, "width", width)

    wider = Wider(width=5, top_k=3)
    assert wider.replace(top_k=None).width == 5
    assert wider.describe()["width"] == 5


def test_replace_keeps_the_orders_default_leaf_group():
    # leaf_group=None means "the order's own", so changing the order changes the group
    assert HiPe().replace(order="depth").describe()["leaf_group"] == 4
    assert HiPe(leaf_group=6).replace(order="depth").describe()["leaf_group"] == 6


def test_replace_rejects_an_unknown_parameter_and_an_invalid_value():
    with pytest.raises(InputError, match="parameter of hipe 'top'; did you mean 'top_k'"):
        HiPe().replace(top=3)
    with pytest.raises(InputError, match="top_k"):
        HiPe().replace(top_k=0)
    with pytest.raises(InputError, match="parameter of itp"):
        ITP().replace(top_k=None)


def test_a_replaced_scheduler_gives_the_same_answer_as_one_built_directly():
    toy = ToyBackend(sensitivity={"paris": 2.0, "seine": 0.7})
    direct = attrib.attribute(PROMPT, backend=toy, method=HiPe(order="depth"), level="word")
    replaced = attrib.attribute(
        PROMPT, backend=toy, method=HiPe(top_k=1).replace(order="depth", top_k=None), level="word"
    )
    assert replaced.stats.calls == direct.stats.calls
    assert replaced.parameters == direct.parameters
    assert (replaced.scores == direct.scores).all()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("relative", Relative()),
        ("midrange", MidRange()),
        ("fixed", Fixed()),
        (0.5, Fixed(0.5)),
        (2, Fixed(2.0)),
        ("0.75", Fixed(0.75)),
        (Relative(fraction=0.3), Relative(fraction=0.3)),
    ],
)
def test_get_threshold_reads_a_name_a_number_or_an_instance(spec, expected):
    assert get_threshold(spec) == expected


def test_thresholds_and_orders_resolve_through_the_registry():
    assert registry.thresholds.resolve("relative") is Relative
    assert registry.orders.resolve("best") is BestFirst
    assert registry.orders.resolve("depth") is DepthOrder
    assert registry.orders.names() == ["best", "depth"]
    assert {"hipe", "itp"} <= set(registry.methods.names())
    assert isinstance(registry.methods.create("hipe"), HiPe) and isinstance(registry.methods.create("itp"), ITP)


def test_unknown_names_suggest_the_closest_known_one():
    with pytest.raises(UnknownNameError, match="unknown threshold 'relatve'; did you mean 'relative'"):
        get_threshold("relatve")
    with pytest.raises(UnknownNameError, match="unknown order 'bets'; did you mean 'best'"):
        HiPe(order="bets")
    with pytest.raises(UnknownNameError, match="unknown method 'hpie'; did you mean 'hipe'"):
        registry.methods.create("hpie")


def test_a_registered_threshold_is_usable_by_name():
    registry.thresholds.register("strict", "tests.test_hipe_parameters:Strict")
    try:
        assert HiPe(threshold="strict").describe()["threshold"] == {"name": "strict", "nats": 3.0}
    finally:
        registry.thresholds.unregister("strict")
    assert "strict" not in registry.thresholds


@dataclasses.dataclass(frozen=True)
class Strict(Fixed):
    """A third-party threshold: refine only above 3 nats."""

    nats: float = 3.0
    name: ClassVar[str] = "strict"


def test_a_scheduler_is_a_value_it_pickles_copies_and_hashes_by_its_parameters():
    import copy
    import pickle

    hipe = HiPe(threshold="midrange", order="depth", top_k=2)
    assert pickle.loads(pickle.dumps(hipe)) == hipe
    assert copy.deepcopy(hipe) == hipe
    assert hash(hipe) == hash(HiPe(threshold="midrange", order="depth", top_k=2))
    assert hipe != HiPe(threshold="midrange", order="depth", top_k=3)

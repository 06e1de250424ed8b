"""The suite's method names as named parameter sets over the registry's method names.

Each suite method is a registered attribution method (``attrib.registry``, kind
``method``) with fixed constructor parameters; threshold and order values are
themselves registry names (kinds ``threshold`` and ``order``). So a new HiPe
parameter or a third-party method needs one line here, never a hand-built
scheduler.

* ``itp``: exhaustive leave-one-out.
* ``hipe-midrange``: HiPe's original rule (Cooper et al. 2021, "Believe the HiPe"):
  depth by depth, refine where the map reaches its mid-range.
* ``hipe-depth``: depth by depth with attrib's relative threshold.
* ``hipe``: attrib's default, best-first with the relative threshold.
* ``hipe-top3``: best-first with the early stop at the top 3 units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from attrib import registry
from attrib.errors import UnknownNameError

__all__ = ["MethodSpec", "METHODS", "METHOD_NAMES", "make_method"]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method with fixed parameters.

    Attributes:
        method: the registry name (kind ``method``), e.g. ``"hipe"``.
        parameters: keyword arguments of its constructor, e.g. ``{"order": "depth"}``.
    """

    method: str
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def create(self) -> Any:
        """A fresh scheduler: ``registry.create("method", method, **parameters)``.

        Raises:
            UnknownNameError: if ``method`` (or a threshold or order name) is not registered.
        """
        return registry.create("method", self.method, **dict(self.parameters))


#: Suite method name -> registered method and parameters, in the order of the tables.
METHODS: dict[str, MethodSpec] = {
    "itp": MethodSpec("itp"),
    "hipe-midrange": MethodSpec("hipe", {"threshold": "midrange", "order": "depth"}),
    "hipe-depth": MethodSpec("hipe", {"order": "depth"}),
    "hipe": MethodSpec("hipe"),
    "hipe-top3": MethodSpec("hipe", {"top_k": 3}),
}

#: The suite's method names, in table order.
METHOD_NAMES: tuple[str, ...] = tuple(METHODS)


def make_method(name: str) -> Any:
    """The scheduler behind a suite method name.

    Raises:
        UnknownNameError: for a name not in :data:`METHODS` (with a "did you mean").
    """
    try:
        spec = METHODS[name]
    except KeyError:
        raise UnknownNameError.for_choice("suite method", name, METHODS) from None
    return spec.create()

"""One typed, lazy registry of everything attrib can select by name.

Each *kind* (backends, attribution methods, HiPe thresholds and refinement
orders, perturbations, the OpenAI backend's scoring rungs) is one
:class:`Registry` of classes derived from that kind's base class. A name maps to
a ``"module:Class"`` string, imported only when the name is first resolved
(EleutherAI lm-evaluation-harness's model registry is the pattern), so
``import attrib`` imports no model library and the command line lists its
choices without importing them. Every entry is checked against its kind's base
class: a class registered directly, when it is registered; a string, when it is
first resolved. An unknown name fails with one line that suggests the closest
known one.

    >>> from attrib import registry
    >>> registry.methods.names()
    ['hierarchical', 'hipe', 'itp', 'kernelshap', 'lime', 'shapley', 'surrogate']
    >>> registry.backends.resolve("toy")                        # doctest: +ELLIPSIS
    <class 'attrib.backends.toy.ToyBackend'>
    >>> registry.methods.resolve("hpie")                        # doctest: +SKIP
    attrib.errors.UnknownNameError: unknown method 'hpie'; did you mean 'hipe'? (choose from ...)

Listings are live: a name registered at any time (:meth:`Registry.register`)
is listed, accepted and shown in the command line's ``--help`` from then on.

Installed packages add entries through entry points, one group per kind
(``attrib.backends``, ``attrib.methods``, ``attrib.thresholds``,
``attrib.orders``, ``attrib.perturbations``, ``attrib.rungs``), e.g. in the
plugin's ``pyproject.toml``::

    [project.entry-points."attrib.backends"]
    mymodel = "mypackage.backend:MyBackend"

The groups are read (with :mod:`importlib.metadata`, once per process) the first
time a kind is listed or a name is not among those registered in code; nothing
of a plugin is imported until its name is resolved. A name registered in code
wins over an entry point of the same name.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from attrib.errors import RegistrationError, UnknownNameError

if TYPE_CHECKING:
    from attrib.backend import Backend
    from attrib.backends.openai.rungs.base import Rung
    from attrib.methods.base import Scheduler
    from attrib.methods.hipe.orders import Order
    from attrib.methods.hipe.thresholds import Threshold
    from attrib.perturbation import Perturbation

__all__ = [
    "Registry",
    "backends",
    "methods",
    "thresholds",
    "orders",
    "perturbations",
    "rungs",
    "KINDS",
    "of",
    "names",
    "resolve",
    "create",
    "register",
]

T = TypeVar("T")


def _split(target: str) -> tuple[str, str]:
    """``"module:Attribute"`` as ``(module, attribute)``.

    Raises:
        RegistrationError: if ``target`` is not of that form.
    """
    module, colon, attribute = target.partition(":")
    if not (module.strip() and colon and attribute.strip()) or ":" in attribute:
        raise RegistrationError(f"registry target must be 'module:Class', got {target!r}")
    return module.strip(), attribute.strip()


def _import(target: str) -> object:
    """The object ``"module:Attribute"`` names (the attribute may be dotted), importing its module."""
    module, attribute = _split(target)
    found: object = importlib.import_module(module)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


@functools.cache
def _entry_points(group: str) -> dict[str, str]:
    """The installed packages' entry points of ``group``: name -> ``"module:Class"`` (read once per process)."""
    found: dict[str, str] = {}
    for entry in importlib.metadata.entry_points(group=group):
        found.setdefault(entry.name, entry.value)
    return found


class Registry(Generic[T]):
    """Names of one kind -> classes derived from the kind's base class, imported on first use.

    Args:
        kind: the kind's name (``"backend"``); errors call it ``label`` (default ``kind``).
        base: the base class every entry must derive from, as ``"module:Class"`` (imported
            only when an entry is checked, so the base's module may itself use this registry).
        entries: the built-in entries, name -> ``"module:Class"``.
        group: the entry-point group installed packages add entries through, or ``None``.
        label: how errors name the kind (``"scoring rung"``).
    """

    def __init__(
        self,
        kind: str,
        base: str,
        entries: dict[str, str],
        *,
        group: str | None = None,
        label: str | None = None,
    ) -> None:
        _split(base)
        self.kind = kind
        self.label = label or kind
        self.group = group
        self._base_target = base
        self._entries: dict[str, str | type[T]] = {}
        for name, target in entries.items():
            self.register(name, target)

    @property
    def base(self) -> type[T]:
        """The class every entry derives from (its module is imported on first use)."""
        base = _import(self._base_target)
        if not isinstance(base, type):
            raise RegistrationError(f"{self.label} base {self._base_target!r} is not a class")
        return base

    def register(self, name: str, target: str | type[T]) -> None:
        """Register ``target`` under ``name``: a ``"module:Class"`` string (imported on first use)
        or the class itself. A name already registered is replaced.

        Raises:
            RegistrationError: (a ``TypeError``) for a name that is not a non-empty string
                without spaces, a string that is not ``"module:Class"``, or a class that does
                not derive from :attr:`base` (checked now for a class, when first resolved
                for a string).
        """
        if not isinstance(name, str) or not name or name != name.strip() or " " in name:
            raise RegistrationError(f"{self.label} name must be a non-empty string without spaces, got {name!r}")
        if isinstance(target, str):
            _split(target)
        else:
            described = f"{target.__module__}.{target.__qualname__}" if isinstance(target, type) else repr(target)
            self._check(name, target, describe=described)
        self._entries[name] = target

    def unregister(self, name: str) -> None:
        """Remove the entry registered in code as ``name`` (an entry point of that name remains).

        Raises:
            UnknownNameError: if no entry of that name was registered in code.
        """
        if name not in self._entries:
            raise UnknownNameError.for_choice(self.label, name, self._entries)
        del self._entries[name]

    def names(self) -> list[str]:
        """Every name this kind has now, sorted: registered in code or by an installed package.

        Nothing is imported (entry points are read once per process, not loaded).
        """
        return sorted({*self._entries, *self._plugins()})

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._entries or name in self._plugins())

    def resolve(self, name: str) -> type[T]:
        """The class registered as ``name``, importing its module on first use.

        Raises:
            UnknownNameError: if ``name`` is not registered (with a "did you mean").
            RegistrationError: if the entry's target does not import (its module, or a
                module it needs, is not installed) or is not a class derived from :attr:`base`.
            BackendUnavailableError: if a built-in backend's optional dependency is missing
                (the module raises it itself, naming the extra to install).
        """
        target = self._entries.get(name) if isinstance(name, str) else None
        if target is None and isinstance(name, str):
            target = self._plugins().get(name)
        if target is None:
            raise UnknownNameError.for_choice(self.label, name, self.names())
        if not isinstance(target, str):
            return target
        module, _ = _split(target)
        try:
            found = _import(target)
        except ImportError as error:
            missing = error.name if isinstance(error, ModuleNotFoundError) else None
            if missing and (module == missing or module.startswith(missing + ".")):
                reason = f"module {module!r} is not installed"
            else:  # the module is there but needs something that is not
                reason = f"importing it failed: {error}"
            raise RegistrationError(f"{self.label} {name!r} is registered as {target!r}, but {reason}") from error
        except AttributeError as error:
            raise RegistrationError(
                f"{self.label} {name!r} is registered as {target!r}, but {module!r} has no such attribute"
            ) from error
        return self._check(name, found, describe=repr(target))

    def create(self, name: str, /, **options: Any) -> T:
        """``resolve(name)(**options)``: an instance of the registered class.

        Raises:
            UnknownNameError: if ``name`` is not registered.
            RegistrationError: as for :meth:`resolve`.
        """
        return self.resolve(name)(**options)

    def instance(self, spec: str | T, /, **options: Any) -> T:
        """``spec`` itself if it is an instance of :attr:`base`, else ``create(spec, **options)``.

        Raises:
            UnknownNameError: for a name that is not registered, or a value that is neither
                a name nor an instance.
            RegistrationError: as for :meth:`resolve`.
        """
        if isinstance(spec, self.base):
            return spec
        if not isinstance(spec, str):
            raise UnknownNameError.for_choice(self.label, spec, self.names())
        return self.create(spec, **options)

    def _plugins(self) -> dict[str, str]:
        return _entry_points(self.group) if self.group else {}

    def _check(self, name: str, found: object, *, describe: str) -> type[T]:
        """``found`` as a class of this kind, or a :class:`RegistrationError` naming what it is."""
        base = self.base
        if isinstance(found, type) and issubclass(found, base):
            return found
        what = (
            "a class that does not derive from"
            if isinstance(found, type)
            else f"a {type(found).__name__}, not a class of"
        )
        raise RegistrationError(
            f"{self.label} {name!r} is registered as {describe}, {what} {base.__module__}.{base.__qualname__}; "
            f"register a subclass of {base.__qualname__}"
        )

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, base={self._base_target!r}, group={self.group!r})"


#: Model backends (:class:`~attrib.backend.Backend`).
backends: Registry[Backend] = Registry(
    "backend",
    "attrib.backend:Backend",
    {
        "llama": "attrib.backends.llama:LlamaBackend",
        "openai": "attrib.backends.openai:OpenAIBackend",
        "toy": "attrib.backends.toy:ToyBackend",
        "transformers": "attrib.backends.transformers:TransformersBackend",
    },
    group="attrib.backends",
)

#: Attribution methods (:class:`~attrib.methods.base.Scheduler`).
methods: Registry[Scheduler] = Registry(
    "method",
    "attrib.methods.base:Scheduler",
    {
        "hipe": "attrib.methods.hipe:HiPe",
        "itp": "attrib.methods.itp:ITP",
        "shapley": "attrib.methods.coalitions.shapley:ShapleySampling",
        "kernelshap": "attrib.methods.coalitions.kernelshap:KernelSHAP",
        "surrogate": "attrib.methods.coalitions.surrogate:Surrogate",
        "lime": "attrib.methods.coalitions.lime:LIME",
        "hierarchical": "attrib.methods.coalitions.hierarchical:Hierarchical",
    },
    group="attrib.methods",
)

#: HiPe's refinement thresholds (:class:`~attrib.methods.hipe.thresholds.Threshold`).
thresholds: Registry[Threshold] = Registry(
    "threshold",
    "attrib.methods.hipe.thresholds:Threshold",
    {
        "relative": "attrib.methods.hipe.thresholds:Relative",
        "midrange": "attrib.methods.hipe.thresholds:MidRange",
        "fixed": "attrib.methods.hipe.thresholds:Fixed",
    },
    group="attrib.thresholds",
)

#: HiPe's refinement orders (:class:`~attrib.methods.hipe.orders.Order`).
orders: Registry[Order] = Registry(
    "order",
    "attrib.methods.hipe.orders:Order",
    {"best": "attrib.methods.hipe.orders:BestFirst", "depth": "attrib.methods.hipe.orders:DepthOrder"},
    group="attrib.orders",
)

#: How ablated units are changed (:class:`~attrib.perturbation.Perturbation`).
perturbations: Registry[Perturbation] = Registry(
    "perturbation",
    "attrib.perturbation:Perturbation",
    {"delete": "attrib.perturbation:Deletion", "replace": "attrib.perturbation:Replacement"},
    group="attrib.perturbations",
)

#: The OpenAI backend's scoring rungs (:class:`~attrib.backends.openai.rungs.base.Rung`).
rungs: Registry[Rung] = Registry(
    "rung",
    "attrib.backends.openai.rungs.base:Rung",
    {
        "sglang": "attrib.backends.openai.rungs.sglang:SGLangRung",
        "forced": "attrib.backends.openai.rungs.forced:ForcedRung",
        "top_logprobs": "attrib.backends.openai.rungs.top_logprobs:TopLogprobsRung",
        "text": "attrib.backends.openai.rungs.text:TextRung",
    },
    label="scoring rung",
    group="attrib.rungs",
)

_KINDS: dict[str, Registry[Any]] = {r.kind: r for r in (backends, methods, thresholds, orders, perturbations, rungs)}

#: The kinds of things the registry names.
KINDS: tuple[str, ...] = tuple(_KINDS)


def of(kind: str) -> Registry[Any]:
    """The registry of ``kind`` (``"backend"``, ``"method"``, ...), for code that picks the kind at run time.

    Raises:
        UnknownNameError: for an unknown kind.
    """
    try:
        return _KINDS[kind]
    except (KeyError, TypeError):
        raise UnknownNameError.for_choice("registry kind", kind, _KINDS) from None


def names(kind: str) -> list[str]:
    """``of(kind).names()``: the names ``kind`` has now, sorted (nothing is imported)."""
    return of(kind).names()


def resolve(kind: str, name: str) -> Any:
    """``of(kind).resolve(name)``: the class registered as ``name``, imported on first use."""
    return of(kind).resolve(name)


def create(kind: str, name: str, /, **options: Any) -> Any:
    """``of(kind).create(name, **options)``: an instance of the registered class."""
    return of(kind).create(name, **options)


def register(kind: str, name: str, target: str | type) -> None:
    """``of(kind).register(name, target)``: ``target`` is ``"module:Class"`` or the class itself."""
    of(kind).register(name, target)

"""One lazy registry of everything attrib can select by name.

Backends, attribution methods (schedulers), HiPe thresholds and refinement
orders, perturbations and the OpenAI backend's scoring rungs are each a *kind*;
within a kind, a name maps to ``"module:attribute"`` and the module is imported
only when that name is first resolved (EleutherAI lm-evaluation-harness's model
registry is the pattern). So ``import attrib`` imports no model library, the
command line lists choices without importing them, and an unknown name fails
with one line that suggests the closest known one.

    >>> from attrib import registry
    >>> registry.names("method")
    ['hierarchical', 'hipe', 'itp', 'kernelshap', 'lime', 'shapley', 'surrogate']
    >>> registry.resolve("backend", "toy")                      # doctest: +ELLIPSIS
    <class 'attrib.backends.toy.ToyBackend'>
    >>> registry.resolve("method", "hpie")                      # doctest: +SKIP
    attrib.errors.UnknownNameError: unknown method 'hpie'; did you mean 'hipe'? (choose from hipe, itp)

Third-party code adds entries with :func:`register`.
"""

from __future__ import annotations

import importlib
from typing import Any

from attrib.errors import UnknownNameError

__all__ = ["KINDS", "register", "names", "resolve", "create"]

#: name -> "module:attribute", per kind. Only strings: nothing is imported here.
_ENTRIES: dict[str, dict[str, str]] = {
    "backend": {
        "llama": "attrib.backends.llama:LlamaBackend",
        "openai": "attrib.backends.openai:OpenAIBackend",
        "toy": "attrib.backends.toy:ToyBackend",
        "transformers": "attrib.backends.transformers:TransformersBackend",
    },
    "method": {
        "hipe": "attrib.hipe:HiPe",
        "itp": "attrib.itp:ITP",
        "shapley": "attrib.coalitions.shapley:ShapleySampling",
        "kernelshap": "attrib.coalitions.kernelshap:KernelSHAP",
        "surrogate": "attrib.coalitions.surrogate:Surrogate",
        "lime": "attrib.coalitions.lime:LIME",
        "hierarchical": "attrib.coalitions.hierarchical:Hierarchical",
    },
    "threshold": {
        "relative": "attrib.hipe.thresholds:Relative",
        "midrange": "attrib.hipe.thresholds:MidRange",
        "fixed": "attrib.hipe.thresholds:Fixed",
    },
    "order": {
        "best": "attrib.hipe.orders:BestFirst",
        "depth": "attrib.hipe.orders:DepthOrder",
    },
    "perturbation": {
        "delete": "attrib.perturbation:Deletion",
        "replace": "attrib.perturbation:Replacement",
    },
    "rung": {
        "forced": "attrib.backends.openai.rungs.forced:ForcedRung",
        "top_logprobs": "attrib.backends.openai.rungs.top_logprobs:TopLogprobsRung",
        "text": "attrib.backends.openai.rungs.text:TextRung",
    },
}

#: The kinds of things the registry names.
KINDS: tuple[str, ...] = tuple(_ENTRIES)

#: How each kind is called in error messages.
_LABELS = {"rung": "scoring rung"}


def _entries(kind: str) -> dict[str, str]:
    try:
        return _ENTRIES[kind]
    except KeyError:
        raise UnknownNameError.for_choice("registry kind", kind, _ENTRIES) from None


def register(kind: str, name: str, target: str) -> None:
    """Register ``target`` (``"module:attribute"``) as ``name`` of ``kind``; imported on first use.

    Raises:
        UnknownNameError: for an unknown ``kind``.
        ValueError: if ``target`` is not of the form ``"module:attribute"``.
    """
    module, colon, attribute = target.partition(":")
    if not (module and colon and attribute):
        raise ValueError(f"registry target must be 'module:attribute', got {target!r}")
    _entries(kind)[name] = target


def names(kind: str) -> list[str]:
    """The registered names of ``kind``, sorted (nothing is imported).

    Raises:
        UnknownNameError: for an unknown ``kind``.
    """
    return sorted(_entries(kind))


def resolve(kind: str, name: str) -> Any:
    """The object registered as ``name`` of ``kind``, importing its module on first use.

    Raises:
        UnknownNameError: if ``name`` is not registered (with a "did you mean").
        BackendUnavailableError (or the module's own ImportError): if importing it
            needs an optional dependency that is missing.
    """
    entries = _entries(kind)
    if not isinstance(name, str) or name not in entries:
        raise UnknownNameError.for_choice(_LABELS.get(kind, kind), name, entries)
    module, _, attribute = entries[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def create(kind: str, name: str, /, **options: Any) -> Any:
    """``resolve(kind, name)(**options)``: an instance of the registered class.

    Raises:
        UnknownNameError: if ``name`` is not registered.
    """
    return resolve(kind, name)(**options)

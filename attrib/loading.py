"""Which backend a call uses: the embedded model, one named with options, or an instance; cached or not.

:func:`open_backend` is the one place that turns the ``backend``,
``backend_options`` and ``cache`` arguments of :func:`attrib.attribute`,
:func:`attrib.audit` and :func:`attrib.plan` into a ready backend, and closes
what it opened (never a backend the caller passed in).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from attrib.backend import Backend, load_backend
from attrib.cache.wrapper import CacheSpec, CachingBackend, open_cache
from attrib.errors import InputError

__all__ = ["default_backend", "open_backend"]

#: Backends whose answers are cached unless told otherwise (endpoints: requests cost money and time).
_CACHED_BY_DEFAULT = frozenset({"openai"})


@functools.lru_cache(maxsize=1)
def default_backend() -> Backend:
    """The embedded local model (Gemma 3 270M through llama.cpp), loaded once per process.

    Raises:
        BackendUnavailableError: if ``attrib[local]`` is not installed.
    """
    return load_backend("llama")


@contextlib.contextmanager
def open_backend(
    backend: Backend | str | None, options: dict[str, Any] | None = None, cache: CacheSpec = None
) -> Iterator[Backend]:
    """The backend to use, ready, and closed afterwards if this call opened it.

    Args:
        backend: ``None`` (the embedded model), a registered name, or a :class:`Backend`.
        options: keyword arguments for a backend given by name.
        cache: where scores and generations are cached (:data:`attrib.cache.wrapper.CacheSpec`);
            ``None`` caches for API backends given by name (``"openai"``) and not otherwise.

    Raises:
        InputError: for options with a backend instance, or a backend of the wrong type.
        UnknownNameError: for an unknown backend name.
        BackendUnavailableError: if the backend's optional dependency is missing.
    """
    if isinstance(backend, Backend):
        if options:
            raise InputError("backend_options apply to a backend given by name, not to a Backend instance")
        model, owned = backend, False
    elif backend is not None and not isinstance(backend, str):
        raise InputError(f"backend must be a name or an attrib Backend, got {type(backend).__name__}")
    elif backend in (None, "llama") and not options:
        model, owned = default_backend(), False
    else:
        model, owned = load_backend(backend or "llama", **(options or {})), True
    if cache is None:
        cache = isinstance(backend, str) and backend in _CACHED_BY_DEFAULT
    try:
        store = open_cache(cache) if not isinstance(model, CachingBackend) else None
    except BaseException:
        if owned:
            model.close()
        raise
    ready = model if store is None else CachingBackend(model, store, close_backend=owned)
    try:
        yield ready
    finally:
        if store is not None:
            ready.close()
        elif owned:
            model.close()

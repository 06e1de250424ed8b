"""One batch worker: the backend opened once, then items run one by one through the ordinary pipeline.

Both executors use it: the local executor in the driver's process, the Ray
executor inside each actor. A worker is built from a :class:`Spec` (plain,
picklable values: the backend's *name* and options, never an opened backend),
so it can be rebuilt on another machine; an API key is read there from the
environment variable the spec names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from attrib.auditing.run import audit
from attrib.backend import Backend
from attrib.batch.inputs import Item
from attrib.batch.records import error_record, ok_record
from attrib.cache.wrapper import CacheSpec
from attrib.context.attribution import cite
from attrib.errors import AttribError
from attrib.loading import open_backend
from attrib.options import batch_names, default
from attrib.pipeline import attribute

__all__ = ["Spec", "Done", "Worker", "pinned", "item_options", "cite_arguments"]


@dataclass(frozen=True)
class Spec:
    """What every item of a run shares.

    Attributes:
        task: ``"explain"`` (:func:`attrib.attribute`), ``"audit"`` (:func:`attrib.audit`) or
            ``"cite"`` (:func:`attrib.cite`); a cite record is a cite item in an explain run too
            (:meth:`~attrib.batch.inputs.Item.task`).
        backend: a registered backend name, ``None`` for the embedded model, or (local
            executor only) an opened :class:`~attrib.backend.Backend`.
        backend_options: keyword arguments of a backend given by name (no secrets).
        api_key_env: for the ``openai`` backend, the environment variable holding the key,
            read by each worker; ``None`` leaves the key to the backend's own default.
        cache: the cache (as ``cache=`` of :func:`attrib.attribute`).
        options: run-wide options of :func:`attrib.attribute` / :func:`attrib.audit` /
            :func:`attrib.cite` (method, level, budget, seed, ...), each given to the items whose
            task takes it (:func:`item_options`); a record's own options override them.
        reference_options: for an audit against a reference endpoint, the options of that
            ``openai`` backend (no secrets; its key is read like the audited one's).
        pin_replicas: Ray executor, ``openai`` backend with several base URLs: actor i sends
            to replica i mod n, the others being its fallbacks (:func:`pinned`).
        defaulted: the options in ``options`` that hold the run task's default because they
            were not given (``level``, ``max_new_tokens``): an item of another task (a cite
            item in an explain run) takes its own task's default for them.
    """

    task: str
    backend: Backend | str | None
    backend_options: dict[str, Any] = field(default_factory=dict)
    api_key_env: str | None = None
    cache: CacheSpec = None
    options: dict[str, Any] = field(default_factory=dict)
    reference_options: dict[str, Any] | None = None
    pin_replicas: bool = False
    defaulted: frozenset[str] = frozenset()


def pinned(spec: Spec, index: int) -> Spec:
    """The spec of worker ``index`` with its replica first: base URLs rotated to start at replica
    ``index mod n`` and sent to in that order (``routing="in_order"``), the others only when it is down.

    Unchanged unless ``spec.pin_replicas`` is set and the backend options hold several base URLs.
    The endpoint recorded and the cache keys do not depend on the order (:mod:`attrib.backends.openai.replicas`).
    """
    urls = spec.backend_options.get("base_url")
    if not spec.pin_replicas or not isinstance(urls, list | tuple) or len(urls) < 2:
        return spec
    first = index % len(urls)
    rotated = [*urls[first:], *urls[:first]]
    return dataclasses.replace(
        spec, backend_options={**spec.backend_options, "base_url": rotated, "routing": "in_order"}
    )


def item_options(item: Item, spec: Spec) -> dict[str, Any]:
    """The options ``item`` runs with: the run-wide ones its task takes (an explain run's
    ``support`` goes to its cite items only, its ``contrast`` to the others; an option left at
    the run task's default, its own task's default), then its own."""
    task = item.task(spec.task)
    names = batch_names(task)
    options: dict[str, Any] = {name: value for name, value in spec.options.items() if name in names}
    if task != spec.task:
        options.update({name: default(name, task) for name in spec.defaulted & names})
    options.update(item.options)
    if item.target is not None:
        options["target"] = item.target
    if item.contrast is not None:
        options["contrast"] = item.contrast
    return options


def cite_arguments(item: Item) -> dict[str, Any]:
    """The keyword arguments of :func:`attrib.cite` a cite item gives (its ``question`` and
    ``sources`` included); ``claims`` spans as pairs."""
    arguments = dict(item.cite or {})
    claims = arguments.get("claims")
    if isinstance(claims, list) and all(isinstance(span, list) for span in claims):
        arguments["claims"] = [tuple(span) for span in claims]
    return arguments


@dataclass(frozen=True)
class Done:
    """A finished item: its compact record, the full result's JSON text when it succeeded, and
    the id of the process that ran it (``None`` when not known)."""

    record: dict[str, Any]
    result_json: str | None = None
    worker: int | None = None

    @property
    def ok(self) -> bool:
        return bool(self.record["status"] == "ok")


class Worker:
    """Opens the spec's backend once (cache wrapper included) and runs items on it.

    Raises (on construction):
        The errors of :func:`attrib.loading.open_backend` (unknown name, missing extra,
        model not found); per-item errors become error records instead.
    """

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self._stack = contextlib.ExitStack()
        try:
            self.backend = self._stack.enter_context(
                open_backend(spec.backend, self._with_key(spec.backend_options), spec.cache)
            )
            self.reference: Backend | None = None
            if spec.reference_options is not None:
                reference = open_backend("openai", self._with_key(spec.reference_options), spec.cache)
                self.reference = self._stack.enter_context(reference)
        except BaseException:
            self._stack.close()
            raise

    def _with_key(self, options: dict[str, Any]) -> dict[str, Any] | None:
        """``options`` with the API key read from this process's environment (when the spec names a variable)."""
        options = dict(options)
        if self.spec.api_key_env is not None:
            options["api_key"] = os.environ.get(self.spec.api_key_env)
        return options or None

    def run(self, item: Item) -> Done:
        """Attribute one item; an error (ours or a bug's) becomes an error record, never an exception.

        ``KeyboardInterrupt`` and ``SystemExit`` still propagate.
        """
        options = item_options(item, self.spec)
        task = item.task(self.spec.task)
        try:
            if task == "cite":
                result = cite(backend=self.backend, progress=False, **cite_arguments(item), **options)
            elif task == "audit":
                chat = item.messages or [{"role": "user", "content": item.prompt or ""}]
                result = audit(messages=chat, backend=self.backend, reference=self.reference, progress=False, **options)
            else:
                prompt = item.messages if item.messages is not None else item.prompt or ""
                result = attribute(prompt, backend=self.backend, progress=False, **options)
            record = ok_record(item.id, item.line, item.meta, task, result)
            return Done(record, result.to_json())
        except AttribError as error:
            return Done(error_record(item.id, item.line, item.meta, type(error).__name__, str(error)))
        except Exception as error:  # a bug: recorded with its type name so the run goes on
            message = f"unexpected {type(error).__name__}: {error}"
            return Done(error_record(item.id, item.line, item.meta, type(error).__name__, message))

    def close(self) -> None:
        """Close what the worker opened."""
        self._stack.close()

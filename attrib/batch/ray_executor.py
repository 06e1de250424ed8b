"""The Ray executor: N actors, each with its backend loaded once, take items; the driver collects results.

Ray (Moritz et al. 2018, "Ray: A Distributed Framework for Emerging AI
Applications"; docs.ray.io, "Actors" and "Fault tolerance") runs the same code on
one machine (``ray.init(num_cpus=N)``) or a cluster (``ray.init(address=...)``).
Each actor is a :class:`~attrib.batch.worker.Worker` built from the run's
:class:`~attrib.batch.worker.Spec` (the backend's name and options, never an
opened backend; an API key is read from the environment on the worker's node).

Scheduling is the driver's: every actor holds at most :data:`IN_FLIGHT` items;
``ray.wait`` returns results in completion order and the driver alone writes
them. An actor that dies (its process killed, its node lost) is replaced and its
in-flight items go back to the queue, to whichever actor is free first; the
replacement is not waited for (the survivors keep taking items while it waits for
a free CPU), and with no actor left the run ends after ``placement_timeout``
seconds without one placed (the batch setting of that name; default
:data:`PLACEMENT_TIMEOUT`), finished items kept. An item
that kills :data:`MAX_ATTEMPTS` workers becomes an error record instead of
killing them all. With ``pin_replicas`` (an ``openai`` backend with several base
URLs), actor i sends to replica i mod n and uses the others only while it is down
(:func:`~attrib.batch.worker.pinned`). Ray is imported only here, when this executor is chosen.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from typing import Any

from attrib import errors
from attrib.backend import Backend
from attrib.batch.inputs import Item
from attrib.batch.records import error_record
from attrib.batch.worker import Done, Spec, Worker, pinned
from attrib.errors import AttribError, BackendError, BackendUnavailableError, InputError

__all__ = ["run_ray", "IN_FLIGHT", "MAX_ATTEMPTS", "PLACEMENT_TIMEOUT"]

#: Items queued on one actor at a time (one running, one waiting, so it never idles on a round trip).
IN_FLIGHT = 2
#: Worker deaths an item may cause before it is recorded as an error.
MAX_ATTEMPTS = 3
#: Seconds to wait for Ray to place an actor when no other is alive to take items (the default
#: of the batch setting ``placement_timeout``, ``--placement-timeout``). A
#: replacement for a lost node is placed as soon as a CPU is free; a cluster that has none
#: for a minute needs an operator (a restarted node, fewer jobs), and a re-run resumes.
PLACEMENT_TIMEOUT = 60.0


class BatchActor:
    """The body of one Ray actor: a worker, or the error that stopped it from opening its backend."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.worker: Worker | None = None
        self.failure: tuple[str, str] | None = None

    def placed(self) -> None:
        """Returns as soon as Ray has placed this actor (before its backend is opened)."""

    def ready(self) -> tuple[str, str] | None:
        """Open the backend: ``None`` when it is open, else the error's type name and message."""
        try:
            self.worker = Worker(_within_cpus(self.spec, _assigned_cpus()))
        except AttribError as error:
            self.failure = (type(error).__name__, str(error))
        return self.failure

    def run(self, item: Item) -> Done:
        if self.worker is None:  # never reached: the driver stops at a failed ready()
            raise BackendError("this worker has no backend")
        done = self.worker.run(item)
        return Done(done.record, done.result_json, os.getpid())


def _assigned_cpus() -> int:
    """The CPUs Ray reserved for this actor (at least one)."""
    import ray

    context: Any = ray.get_runtime_context()
    return max(1, int(context.get_assigned_resources().get("CPU", 1)))


def _within_cpus(spec: Spec, cpus: int) -> Spec:
    """The spec with llama.cpp's threads set to the actor's CPUs, unless the user set them.

    llama.cpp otherwise starts one thread per core of the machine in every actor, so N
    actors on N cores oversubscribe it N times. (torch reads ``OMP_NUM_THREADS``, which
    Ray sets to the actor's CPUs.)
    """
    if spec.backend not in (None, "llama") or "n_threads" in spec.backend_options:
        return spec
    return dataclasses.replace(spec, backend_options={**spec.backend_options, "n_threads": cpus})


def _ray() -> tuple[Any, tuple[type[BaseException], ...]]:
    """The ``ray`` module and the exceptions that mean a worker died.

    Raises:
        BackendUnavailableError: if Ray is not installed.
    """
    try:
        import ray
        from ray.exceptions import RayActorError, WorkerCrashedError
    except ImportError:
        raise BackendUnavailableError("--executor ray needs Ray: pip install 'ray[default]'") from None
    return ray, (RayActorError, WorkerCrashedError)


def _rebuilt(kind: str, message: str) -> AttribError:
    """The error a worker reported (type name and message) as the same attrib error in the driver."""
    error_type = getattr(errors, kind, BackendError)
    if not (isinstance(error_type, type) and issubclass(error_type, AttribError)):
        error_type = BackendError
    try:
        error: AttribError = error_type(message)
    except TypeError:  # an error class with required keyword arguments (PromptTooLongError)
        error = BackendError(message)
    return error


def _init_keeping_sigterm(ray: Any, address: str | None, options: dict[str, Any]) -> None:
    """``ray.init``, with this process's SIGTERM handler put back afterwards.

    ``ray.init`` installs a SIGTERM handler of its own (``sys.exit``) in the driver, which
    would replace the command line's (:class:`attrib.cli.Terminated`: finished work kept,
    one line, exit status 143). Only the main thread can set handlers; elsewhere nothing
    is saved or restored.
    """
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    ray.init(address=address, **options)
    if main and previous is not None:
        signal.signal(signal.SIGTERM, previous)


def run_ray(
    items: Sequence[Item],
    spec: Spec,
    *,
    workers: int | None = None,
    address: str | None = None,
    placement_timeout: float | None = None,
) -> Iterator[Done]:
    """Run ``items`` on Ray actors; yield each as it finishes (completion order).

    The first actors start together: items are handed out once all of them have opened
    their backends, or after ``placement_timeout`` to those that have (the others join
    when Ray places them). A replacement for a dead actor is not waited for: the live
    actors keep taking items, and it joins them once placed with its backend open.

    Args:
        items: the items to run.
        spec: what they share; its backend must be a name (or ``None``), not an instance.
        workers: actors to start (default: one per CPU Ray reports).
        address: a running cluster's address (``"HOST:6379"``, ``"auto"``); ``None`` starts
            a local Ray runtime with ``workers`` CPUs unless Ray is already initialised.
        placement_timeout: seconds to wait, with no actor alive or opening its backend,
            for Ray to place one before giving up (default :data:`PLACEMENT_TIMEOUT`).

    Raises:
        BackendUnavailableError: if Ray is not installed.
        InputError: for a backend instance (actors open their own from its name).
        AttribError: the error a worker raised opening its backend (a missing model file).
        BackendError: if workers keep dying before the items are done, or if none is alive
            and none can be placed within ``placement_timeout`` (the cluster has no free CPU).
    """
    if isinstance(spec.backend, Backend):
        raise InputError("the ray executor opens the backend on each worker: give the backend by name, not an instance")
    if workers is not None and workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    ray, lost = _ray()
    if not items:
        return
    if not ray.is_initialized():
        options: dict[str, Any] = {"logging_level": logging.WARNING}
        if address is None:  # a local runtime of our own: no dashboard, as many CPUs as workers
            options["include_dashboard"] = False
            if workers is not None:
                options["num_cpus"] = workers
        _init_keeping_sigterm(ray, address, options)
    count = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    count = min(count, len(items))
    actor_class: Any = ray.remote(num_cpus=1, max_restarts=0)(BatchActor)
    patience = PLACEMENT_TIMEOUT if placement_timeout is None else placement_timeout

    load: dict[Any, int] = {}  # live actors, their backends open: items they hold
    placing: dict[Any, Any] = {}  # placed() reference -> an actor Ray has not placed yet
    opening: dict[Any, Any] = {}  # ready() reference -> a placed actor opening its backend
    queue = deque(items)
    attempts: Counter[str] = Counter()
    running: dict[Any, tuple[Any, Item]] = {}
    replacements = 0
    stalled_since: float | None = None  # since when no actor is alive or opening
    # the first actors start together (so each takes items) unless some cannot be placed for `patience` s
    holding_until: float | None = time.monotonic() + patience

    def holding() -> bool:
        nonlocal holding_until
        if holding_until is not None and (not (placing or opening) or time.monotonic() >= holding_until):
            holding_until = None
        return holding_until is not None

    started = itertools.count()

    def start() -> None:
        actor = actor_class.remote(pinned(spec, next(started)))
        placing[actor.placed.remote()] = actor

    def feed() -> None:
        if holding():
            return
        for actor in list(load):
            while load[actor] < IN_FLIGHT and queue:
                item = queue.popleft()
                running[actor.run.remote(item)] = (actor, item)
                load[actor] += 1

    def replace(actor: Any) -> None:
        """``actor`` died: start another in its place, unless workers keep dying."""
        nonlocal replacements
        replacements += 1
        if replacements > MAX_ATTEMPTS * count:
            raise BackendError(
                f"Ray workers died {replacements} times; the finished items are kept, re-run the same command to resume"
            )
        start()

    def waiting_time() -> float | None:
        """How long the next ``ray.wait`` may block: unbounded unless nothing can take items."""
        nonlocal stalled_since
        if load or opening:
            stalled_since = None
            if load and holding_until is not None:
                return max(0.0, holding_until - time.monotonic())
            return None
        now = time.monotonic()
        if stalled_since is None:
            stalled_since = now
        left = stalled_since + patience - now
        if left <= 0:
            raise BackendError(
                f"no Ray worker is alive and none could be placed within {patience:g} s "
                "(no free CPU in the cluster); the finished items are kept, re-run the same command to resume"
            )
        return left

    try:
        for _ in range(count):
            start()
        while running or (queue and (placing or opening)):
            ready, _ = ray.wait([*running, *placing, *opening], num_returns=1, timeout=waiting_time())
            if not ready:  # the first actors' wait is over, or the placement wait is checked again
                feed()
                continue
            reference = ready[0]
            if reference in placing:
                actor = placing.pop(reference)
                try:
                    ray.get(reference)
                except lost:
                    replace(actor)
                    continue
                opening[actor.ready.remote()] = actor
                continue
            if reference in opening:
                actor = opening.pop(reference)
                try:
                    failure = ray.get(reference)
                except lost:
                    replace(actor)
                    continue
                if failure is not None:
                    ray.kill(actor)
                    raise _rebuilt(*failure)
                load[actor] = 0
                feed()
                continue
            actor, item = running.pop(reference)
            try:
                done: Done = ray.get(reference)
            except lost:
                attempts[item.id] += 1
                if attempts[item.id] >= MAX_ATTEMPTS:
                    message = f"a worker died running this item {attempts[item.id]} times; it was not retried again"
                    yield Done(error_record(item.id, item.line, item.meta, "WorkerDiedError", message))
                else:
                    queue.appendleft(item)
                if actor in load:  # the first of its items to report the death: replace the actor
                    del load[actor]
                    replace(actor)
                feed()
                continue
            if actor in load:
                load[actor] -= 1
            yield done
            feed()
    finally:
        for reference in running:
            ray.cancel(reference, force=True)
        for actor in [*load, *placing.values(), *opening.values()]:
            ray.kill(actor)

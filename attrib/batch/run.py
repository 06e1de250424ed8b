"""``attribute_many``: attribution or audits over a whole dataset, resumable, locally or on Ray.

    input ──read + check every record (line numbers)──> items, problems   (no model work yet)
          ──OUT_DIR: run.json check, resume scan──> items still to do
          ──executor (local | ray): backend opened once per process──> finished items
          ──driver: item file, then its fsync'ed record line──> OUT_DIR, outcomes

Every item runs through the ordinary pipeline (:func:`attrib.attribute`, or
:func:`attrib.audit` with ``task="audit"``) on a backend opened once per process
and wrapped in the persistent cache as a single call would be.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Annotated, Any, TypedDict, Unpack

from attrib.backend import Backend
from attrib.batch.inputs import (
    STDIN,
    BadInputError,
    Item,
    Problem,
    check_records,
    fingerprint,
    from_dicts,
    read_input,
)
from attrib.batch.outcomes import Outcome, Summary
from attrib.batch.outdir import OutDir
from attrib.batch.ray_executor import PLACEMENT_TIMEOUT
from attrib.batch.records import error_record
from attrib.batch.worker import Done, Spec, cite_arguments, item_options
from attrib.cache.wrapper import CacheSpec
from attrib.errors import InputError, UnknownNameError
from attrib.methods.base import Scheduler
from attrib.options import (
    BATCH_TASKS,
    ITEM_TASKS,
    CiteOptions,
    Default,
    RunOptions,
    check_number,
    run_names,
    settings,
    with_options,
)
from attrib.options import options as declared
from attrib.paths import Place, check_places
from attrib.urls import safe_url
from attrib.version import __version__

__all__ = [
    "attribute_many",
    "prepare",
    "run_batch",
    "Batch",
    "BatchSettings",
    "BatchArguments",
    "Outcome",
    "Summary",
    "EXECUTORS",
    "TASKS",
]

#: The tasks a batch runs: explain (attrib.attribute), audit (attrib.audit) and cite (attrib.cite).
TASKS = BATCH_TASKS

#: Executors by name: "module:function" with the signature of :func:`attrib.batch.local.run_local`.
EXECUTORS = {"local": "attrib.batch.local:run_local", "ray": "attrib.batch.ray_executor:run_ray"}


class BatchSettings(TypedDict, total=False):
    """How a batch runs, beside the run options: keywords of :func:`prepare` and
    :func:`attribute_many` (documented there), each with its :class:`~attrib.options.Default`;
    those with help have their ``attrib batch`` flag built from it (:func:`attrib.cli.flags.add_setting_flags`)."""

    task: Annotated[str, Default("explain")]
    out_dir: Annotated[str | os.PathLike[str] | None, Default(None)]
    executor: Annotated[
        str,
        Default("local", "local: this process (default); ray: Ray actors", choices=tuple(EXECUTORS)),
    ]
    workers: Annotated[
        int | None,
        Default(None, "ray: actors to start (default: one per CPU)", metavar="N", needs=("executor", "ray")),
    ]
    ray_address: Annotated[
        str | None,
        Default(
            None,
            "ray: a running cluster (HEAD:6379 or auto; default: start Ray locally)",
            metavar="ADDR",
            needs=("executor", "ray"),
        ),
    ]
    placement_timeout: Annotated[
        float,
        Default(
            PLACEMENT_TIMEOUT,
            "ray: seconds to wait for Ray to place a worker when none is alive (no free CPU) before the run "
            "ends, finished items kept",
            metavar="S",
            needs=("executor", "ray"),
        ),
    ]
    pin_replicas: Annotated[
        bool,
        Default(
            False,
            "ray, several --base-url: actor i sends to replica i mod n (the others are its fallbacks)",
            needs=("executor", "ray"),
        ),
    ]
    skip_bad: Annotated[
        bool,
        Default(False, "record bad records as errors and run the rest (default: stop)", flag="skip_bad_lines"),
    ]
    retry_failed: Annotated[bool, Default(False, "run again the items whose records are errors")]
    force: Annotated[bool, Default(False, "continue an OUT_DIR that holds a run with other options or input")]
    system: Annotated[str | None, Default(None)]
    backend: Annotated[Backend | str | None, Default(None)]
    backend_options: Annotated[dict[str, Any] | None, Default(None)]
    api_key_env: Annotated[str | None, Default(None)]
    reference_options: Annotated[dict[str, Any] | None, Default(None)]
    cache: Annotated[CacheSpec, Default(None)]


class BatchArguments(BatchSettings, CiteOptions, total=False):
    """Every keyword of :func:`prepare`: the settings and the run options (cite's include explain's)."""


class Batch:
    """A checked batch, ready to run: the items still to do, the bad records, what was already done.

    Build it with :func:`prepare`; iterate :meth:`outcomes` to run it.

    Attributes:
        items: the items to run, in input order.
        problems: the bad records to record as errors (only with ``skip_bad``).
        skipped: items and bad records already in OUT_DIR (not run again).
        retained_errors: of those, how many are error records (kept: ``retry_failed`` was off).
    """

    def __init__(
        self,
        *,
        items: list[Item],
        problems: list[Problem],
        skipped: int,
        retained_errors: int = 0,
        spec: Spec,
        executor: str,
        workers: int | None,
        address: str | None,
        placement_timeout: float = PLACEMENT_TIMEOUT,
        out: OutDir | None,
    ) -> None:
        self.items = items
        self.problems = problems
        self.skipped = skipped
        self.retained_errors = retained_errors
        self.spec = spec
        self.executor = executor
        self.workers = workers
        self.address = address
        self.placement_timeout = placement_timeout
        self.out = out

    @property
    def total(self) -> int:
        """Records this run will write: the items to run and the bad records."""
        return len(self.items) + len(self.problems)

    def outcomes(self, on_outcome: Callable[[Outcome], None] | None = None) -> Iterator[Outcome]:
        """Run the batch; yield each item as it finishes (bad records first, then completion order).

        With an OUT_DIR, each item's file and record are on disk before it is yielded, and
        the units table is rebuilt when the iteration ends (also when it is stopped early).

        Raises:
            The executor's errors when it cannot start (a backend that does not open);
            per-item errors are error records.
        """
        import importlib

        module, _, name = EXECUTORS[self.executor].partition(":")
        execute: Callable[..., Iterator[Done]] = getattr(importlib.import_module(module), name)
        bad = [Done(error_record(p.id, p.line, p.meta, p.error_type, p.message)) for p in self.problems]
        try:
            # Nothing is written before the executor's first item is back (or it had none):
            # a backend that does not open leaves no run.json, no record.
            running = execute(
                self.items,
                self.spec,
                workers=self.workers,
                address=self.address,
                placement_timeout=self.placement_timeout,
            )
            first = list(itertools.islice(running, 1))
            if self.out is not None:
                self.out.begin()
            for done in itertools.chain(bad, first, running):
                outcome = self._keep(done)
                if on_outcome is not None:
                    on_outcome(outcome)
                yield outcome
        finally:
            if self.out is not None:
                try:
                    if self.out.started:
                        self.out.write_units()
                finally:
                    self.out.release()

    def _keep(self, done: Done) -> Outcome:
        item_id = str(done.record["id"])
        if self.out is None:
            return Outcome(item_id, done.record, done.result_json, None, done.worker)
        record = self.out.write(done)
        file = self.out.path / record["file"] if "file" in record else None
        return Outcome(item_id, record, None, file, done.worker)


@with_options("explain", batch=True, before=BatchSettings)
def prepare(
    items: Iterable[Mapping[str, Any]] | str | os.PathLike[str],
    **arguments: Unpack[BatchArguments],
) -> Batch:
    """Read and check the whole input, check OUT_DIR, and find what is left to do; run nothing.

    Arguments as :func:`attribute_many` (but ``progress``).

    Raises:
        BadInputError: listing every bad record (unless ``skip_bad``).
        InputError: for an unknown task or executor, options the task does not take, an
            unreadable input, an ``out_dir`` that is empty or holds the input
            (:func:`attrib.paths.check_places`), or an OUT_DIR holding another run (unless ``force``).
        UnknownNameError, BudgetError: for a bad run-wide option.
    """
    given: dict[str, Any] = dict(arguments)
    how = settings(BatchSettings, given)
    task, executor, out_dir, backend = how["task"], how["executor"], how["out_dir"], how["backend"]
    if task not in TASKS:
        raise UnknownNameError.for_choice("task", task, TASKS)
    if executor not in EXECUTORS:
        raise UnknownNameError.for_choice("executor", executor, EXECUTORS)
    run_wide = {name: value for name, value in given.items() if name not in how}
    unknown = sorted(set(run_wide) - run_names(task))
    if unknown:
        raise InputError(f"{task} takes no option {', '.join(map(repr, unknown))}")
    if how["reference_options"] is not None and task != "audit":
        raise InputError("a reference endpoint applies to task 'audit'")
    if how["system"] is not None and task == "cite":
        raise InputError(
            "a system prompt applies to prompt and chat records; a cite record's fixed text is its 'instructions'"
        )
    if check_number("placement_timeout", how["placement_timeout"]) <= 0:
        raise InputError(f"placement_timeout must be a positive number of seconds, got {how['placement_timeout']!r}")
    if executor == "ray" and isinstance(backend, Backend):
        raise InputError("the ray executor opens the backend on each worker: give the backend by name, not an instance")
    if how["pin_replicas"] and executor != "ray":
        raise InputError("pinning actors to replicas applies to the ray executor; add --executor ray")
    defaulted: set[str] = set()
    for name, option in declared(task).items():  # a default that depends on the task is recorded
        if option.task_defaults and name not in run_wide:
            run_wide[name] = option.default_for(task)
            defaulted.add(name)
    for item_task in ITEM_TASKS[task]:  # run-wide options checked before the input is read
        _build_options(item_task, run_wide)
    if out_dir is not None:  # no output may be the input or an empty path
        reads = [Place("the input", items)] if isinstance(items, str | os.PathLike) else []
        check_places([Place("out_dir", out_dir, run_dir=True)], reads)

    reference_options = how["reference_options"]
    spec = Spec(
        task=task,
        backend=backend,
        backend_options=dict(how["backend_options"] or {}),
        api_key_env=how["api_key_env"],
        cache=how["cache"],
        options=run_wide,
        reference_options=None if reference_options is None else dict(reference_options),
        pin_replicas=how["pin_replicas"],
        defaulted=frozenset(defaulted),
    )

    def check_options(own: dict[str, Any]) -> None:
        _build_options("audit" if task == "audit" else "explain", {**run_wide, **own})

    def check_item(item: Item) -> None:  # cite's own checks, without a model
        arguments = cite_arguments(item)
        _check_cite(
            arguments.pop("question"),
            arguments.pop("sources"),
            options=item_options(item, spec),
            **arguments,
        )

    if isinstance(items, str | os.PathLike):
        source = "standard input" if os.fspath(items) == STDIN else str(items)
        raws, data = read_input(items)  # read once: a pipe cannot be read again to hash it
        path = STDIN if os.fspath(items) == STDIN else os.path.abspath(items)
        described = {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    else:
        source = "the items"
        records = list(items)
        raws = from_dicts(records)
        data = fingerprint(records)
        described = {"path": None, "size": len(records), "sha256": hashlib.sha256(data).hexdigest()}
    todo, problems = check_records(
        raws, system=how["system"], check_options=check_options, task=task, check_item=check_item
    )
    if problems and not how["skip_bad"]:
        raise BadInputError(problems, source)
    out = None
    skipped = retained = 0
    if out_dir is not None:
        out = OutDir(out_dir)
        try:  # held (OutDir.lock) from here until the outcomes end
            out.claim(_run_json(task, spec, how["system"], described, executor), force=how["force"])
            finished = out.scan()  # without the stale records (their item file is gone): redone
            failed = {key for key, record in finished.items() if record.get("status") != "ok"}
            retry = failed if how["retry_failed"] else set()
            out.forget(retry | out.stale)
            done_ids = set(finished) - retry
            skipped = sum(1 for item in todo if item.id in done_ids) + sum(1 for p in problems if p.id in done_ids)
            retained = sum(1 for key in done_ids if finished[key].get("status") != "ok")
            todo = [item for item in todo if item.id not in done_ids]
            problems = [p for p in problems if p.id not in done_ids]
            refused = out.reserve(item.id for item in todo)  # two ids, one item file: the later one is bad
            if refused:
                problems = sorted(
                    [*problems, *(Problem(i.line, i.id, refused[i.id], meta=i.meta) for i in todo if i.id in refused)],
                    key=lambda p: p.line,
                )
                todo = [item for item in todo if item.id not in refused]
                if not how["skip_bad"]:
                    raise BadInputError(problems, source)
        except BaseException:
            out.release()
            raise
    return Batch(
        items=todo,
        problems=problems,
        skipped=skipped,
        retained_errors=retained,
        spec=spec,
        executor=executor,
        workers=how["workers"],
        address=how["ray_address"],
        placement_timeout=how["placement_timeout"],
        out=out,
    )


def _build_options(task: str, options: dict[str, Any]) -> None:
    """Check the options items of ``task`` take, as :func:`attrib.attribute` (or :func:`attrib.audit`,
    :func:`attrib.cite`) will: the names resolved, the values in range."""
    taken = declared(task)
    RunOptions.build(task=task, **{name: value for name, value in options.items() if name in taken})


def _check_cite(
    question: Any,
    sources: Any,
    *,
    options: dict[str, Any],
    answer: Any = None,
    instructions: Any = None,
    template: Any = None,
    claims: Any = None,
) -> None:
    """What :func:`attrib.cite` checks before any model call (its own checks and messages).

    Raises:
        InputError: as :func:`attrib.cite` for its inputs (an empty source list, duplicate ids,
            an empty question, claim spans outside the answer, ...); BudgetError,
            UnknownNameError for a bad option.
    """
    from attrib.context.attribution import check_cite  # on use: the batch module imports no cite code

    check_cite(
        question, sources, answer=answer, instructions=instructions, template=template, claims=claims, options=options
    )


def _run_json(task: str, spec: Spec, system: str | None, described: dict[str, Any], executor: str) -> dict[str, Any]:
    """``run.json``: what determines the answers (compared on resume) and what is only informative."""

    def plain(value: object) -> object:
        if isinstance(value, Scheduler):
            return {"name": value.name, **value.describe()}
        if isinstance(value, Backend):
            return value.identity()
        if isinstance(value, dict):  # no key, and URLs (base_url) without user-info or query values
            return {
                str(k): _shown_url(v) if str(k).endswith("url") else plain(v)
                for k, v in value.items()
                if str(k) != "api_key"
            }
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if value is None or isinstance(value, str | int | float | bool):
            return value
        describe = getattr(value, "describe", None)
        return describe() if callable(describe) else repr(value)

    options = plain(
        {
            **spec.options,
            "system": system,
            "backend": spec.backend if not isinstance(spec.backend, Backend) else plain(spec.backend),
            "backend_options": spec.backend_options,
            "api_key_env": spec.api_key_env,
            "reference_options": spec.reference_options,
        }
    )
    return {
        "attrib_version": __version__,
        "task": task,
        "options": json.loads(json.dumps(options, sort_keys=True, default=str)),
        "executor": executor,
        "input": described,
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _shown_url(value: object) -> object:
    """A URL option as recorded: each URL (one, or a list of replicas) without user-info or query values."""
    if isinstance(value, str):
        return safe_url(value)
    if isinstance(value, list | tuple):
        return [safe_url(v) if isinstance(v, str) else v for v in value]
    return value


@with_options("explain", batch=True, before=BatchSettings)
def attribute_many(
    items: Iterable[Mapping[str, Any]] | str | os.PathLike[str],
    *,
    progress: bool | None = False,
    **arguments: Unpack[BatchArguments],
) -> Summary:
    """Attribute (or audit) every record of a dataset; with ``out_dir``, resumably on disk.

    Each item runs through :func:`attrib.attribute` (``task="explain"``) or
    :func:`attrib.audit` (``task="audit"``) on a backend opened once per process. With
    ``out_dir`` the batch contract's layout is written (``docs/batch.md``): a re-run
    skips finished ids, a killed run keeps every finished record.

    Args:
        items: a path (``.jsonl``, ``.csv``, ``.parquet``; ``"-"`` reads JSON Lines from
            standard input) or records as dicts:
            ``{"id", "prompt"}``, ``{"id", "messages"}`` or ``{"id", "system", "prompt"}``,
            with optional ``target``, ``contrast`` (the alternative output of a
            contrastive attribution; overrides a run-wide ``contrast``), ``options`` (its own
            values of the per-record options, :func:`attrib.options.record_names`) and
            metadata keys.
        task: ``"explain"`` or ``"audit"`` (the level defaults to ``"sentence"`` there).
        out_dir: where to write the results, or ``None`` to keep them in memory.
        executor: ``"local"`` (this process) or ``"ray"`` (Ray actors).
        workers: Ray actors (default: one per CPU of the Ray runtime).
        ray_address: a Ray cluster's address; ``None`` starts a local runtime.
        placement_timeout: Ray: seconds to wait for Ray to place a worker when none is alive
            (a cluster without a free CPU) before the run ends with the finished items kept
            (default :data:`attrib.batch.ray_executor.PLACEMENT_TIMEOUT`).
        skip_bad: record bad records as errors and run the rest, instead of refusing the run.
        retry_failed: run again the items whose records in ``out_dir`` are errors.
        force: continue an ``out_dir`` that holds a run with other options or input.
        system: a system prompt for every record without one (records then are chats).
        backend, backend_options, cache: as in :func:`attrib.attribute`; the Ray executor
            needs the backend by name.
        api_key_env: for ``backend="openai"``, the environment variable each worker reads
            the API key from (so no key travels with the work).
        pin_replicas: with the Ray executor and an ``openai`` backend given several base
            URLs (replicas), actor i sends to replica i mod n first and to the others only
            while it is down (its backend's ``routing="in_order"``).
        reference_options: ``task="audit"`` against a reference endpoint (the same model
            without the suspected hidden prompt): that ``openai`` backend's options, e.g.
            ``{"base_url": ..., "model": ...}``; see :func:`attrib.audit`.
        progress: a progress bar on stderr (items done, items/s, ETA, failures);
            ``None`` draws it only on a terminal.
        **arguments: the settings above (:class:`BatchSettings`) and the run-wide run
            options (:class:`~attrib.options.ExplainOptions`; an audit takes those of
            :func:`attrib.audit`; a record's target is its own key).

    Returns:
        A :class:`Summary` with this run's outcomes (completion order) and counts.

    Raises:
        BadInputError: listing every bad record, before any model work (unless ``skip_bad``).
        InputError, UnknownNameError, BudgetError: for bad options, before any model work.
        AttribError: if the backend cannot be opened; per-item errors are error records.
    """
    batch = prepare(items, **arguments)
    return run_batch(batch, progress=progress)


def run_batch(batch: Batch, *, progress: bool | None = False) -> Summary:
    """Run a prepared batch to the end with an optional progress bar (tqdm, on stderr)."""
    from tqdm import tqdm  # imported on use: ``import attrib`` stays light

    summary = Summary(skipped=batch.skipped)
    with tqdm(total=batch.total, unit="item", disable=None if progress is None else not progress) as bar:
        for outcome in batch.outcomes():
            summary.outcomes.append(outcome)
            if outcome.ok:
                summary.ok += 1
            else:
                summary.failed += 1
                bar.set_postfix(failed=summary.failed, refresh=False)
            bar.update(1)
    return summary

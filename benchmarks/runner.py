"""The resumable runner: attribute every case of a task with every method, one JSON line per finished case.

Each finished (case, method) pair is appended to a JSON-lines file at once, and a
pair already recorded there is skipped, so a long run can be stopped and resumed
at any point and slow references (ItP on long prompts) added later. A record holds
the cost (calls, tokens evaluated, seconds), the attribution's unit scores and top
units, the task's hit fields and, where the case asks for it, the faithfulness
metrics of :func:`attrib.metrics.faithfulness` (DeYoung et al. 2020's
comprehensiveness and sufficiency, Petsiuk et al. 2018's deletion and insertion).

Records name the backend (``"backend"``, and ``"model"`` when one was given);
records without one (the first runs) were made with the ``llama`` backend's
embedded model. One records file holds one backend's runs: appending another
backend's is refused, so the tables never mix models.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrib.errors import InputError
from attrib.result.codec import encode
from benchmarks.methods import make_method
from benchmarks.tasks import Case, Task

if TYPE_CHECKING:
    from attrib.backend import Backend

__all__ = ["FRACTIONS", "KS", "load_records", "record_key", "append", "measure", "run", "say"]

#: Shares of the units removed or kept for comprehensiveness and sufficiency.
FRACTIONS: tuple[float, ...] = (0.01, 0.05, 0.10, 0.20)
#: Unit counts of the top-k drop.
KS: tuple[int, ...] = (1, 3, 5)

#: The backend of the records that name none.
DEFAULT_BACKEND = "llama"


def load_records(path: Path) -> list[dict[str, Any]]:
    """The recorded cases, in file order (an absent file is no cases)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def record_key(record: dict[str, Any]) -> tuple[Any, ...]:
    """``(task, size, seed, method)``: what a finished record stands for."""
    return (record["task"], record["size"], record["seed"], record["method"])


def append(path: Path, record: dict[str, Any]) -> None:
    """Append one record as a compact JSON line (the folder is created if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, separators=(",", ":")) + "\n")


def _early_stop(trace: Any) -> Any:
    """HiPe's early stop as JSON (``None`` when it did not stop early, or for other methods' traces)."""
    return encode(getattr(trace, "early_stop", None))


def measure(
    case: Case,
    method: str,
    backend: Backend,
    *,
    identity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Attribute ``case`` with the suite method ``method`` and measure it.

    Args:
        case: the case (prompt, target, level, judge).
        method: a suite method name (:data:`benchmarks.methods.METHODS`).
        backend: the backend instance the attribution runs on.
        identity: fields naming the backend (``{"backend": ..., "model": ...}``), appended
            to the record.

    Returns:
        The record: task, size, seed, method, level, unit and token counts, calls, tokens
        evaluated, seconds, the method's parameters, the top 5 unit texts, every unit's
        total score in nats (4 decimals), the judge's hit fields, HiPe's early stop, and
        the faithfulness metrics (nats) where ``case.id.faithful``.

    Raises:
        UnknownNameError: for an unknown method; attrib's errors from the attribution.
    """
    import attrib
    from attrib.metrics import faithfulness

    started = time.perf_counter()
    result = attrib.attribute(
        case.prompt, backend=backend, target=case.target, method=make_method(method), level=case.level
    )
    seconds = time.perf_counter() - started
    record: dict[str, Any] = {
        "task": case.id.task,
        "size": case.id.size,
        "seed": case.id.seed,
        "method": method,
        "level": case.level,
        "units": len(result.units),
        "prompt_tokens": result.units[-1].tokens[1] if result.units else 0,
        "output_tokens": len(result.output_tokens),
        "calls": result.stats.calls,
        "tokens_evaluated": result.stats.tokens_evaluated,
        "seconds": round(seconds, 3),
        "parameters": result.parameters,
        "top": [item.unit.text for item in result.top(5)],
        "unit_scores": [round(float(v), 4) for v in result.unit_scores],
        **case.judge(result, case),
    }
    if method != "itp" and result.trace:
        record["early_stop"] = _early_stop(result.trace)
    if case.id.faithful:
        f = faithfulness(result, backend, fractions=FRACTIONS, ks=KS)
        record["faithfulness"] = {
            "deletion_auc": f.deletion_auc,
            "insertion_auc": f.insertion_auc,
            "comprehensiveness": {str(q): v for q, v in f.comprehensiveness.items()},
            "sufficiency": {str(q): v for q, v in f.sufficiency.items()},
            "top_k_drop": {str(k): v for k, v in f.top_k_drop.items()},
            "calls": f.calls,
        }
    record.update(identity or {})
    return record


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    return {"backend": record.get("backend", DEFAULT_BACKEND), "model": record.get("model")}


def _check_one_backend(records: Iterable[dict[str, Any]], identity: dict[str, Any], path: Path) -> None:
    wanted = {"backend": identity.get("backend", DEFAULT_BACKEND), "model": identity.get("model")}
    for record in records:
        if "level" in record and _identity(record) != wanted:
            found = _identity(record)
            raise InputError(
                f"{path} holds records of backend {found['backend']!r} (model {found['model']!r}), not "
                f"{wanted['backend']!r} (model {wanted['model']!r}); give this backend its own file with --cases"
            )


def run(
    task: Task,
    methods: Sequence[str],
    backend: Backend,
    cases: Path,
    *,
    identity: dict[str, Any] | None = None,
    report: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``methods`` over ``task``'s cases, appending each finished one to ``cases``; skip recorded ones.

    A case's prompt is built only if one of its methods is still to run. ``itp`` runs
    only on the cases that allow it (:meth:`benchmarks.tasks.CaseId.runs`).

    Args:
        task: the task whose grid is run.
        methods: suite method names, run in this order on each case.
        backend: the backend instance (also counts the needle prompts' tokens).
        cases: the JSON-lines records file, read for finished cases and appended to.
        identity: fields naming the backend, added to every record; default ``{"backend": "llama"}``.
        report: called with each new record (default: :func:`say`).

    Returns:
        The new records, in the order they were appended.

    Raises:
        InputError: if ``cases`` holds records of another backend or model.
    """
    identity = {"backend": DEFAULT_BACKEND} if identity is None else identity
    recorded = load_records(cases)
    _check_one_backend(recorded, identity, cases)
    done = {record_key(r) for r in recorded}
    report = say if report is None else report
    new: list[dict[str, Any]] = []
    for case_id in task.grid():
        todo = [m for m in methods if case_id.runs(m) and case_id.key(m) not in done]
        if not todo:
            continue
        case = task.build(case_id, backend)
        for method in todo:
            record = measure(case, method, backend, identity=identity)
            append(cases, record)
            done.add(case_id.key(method))
            new.append(record)
            report(record)
    return new


def say(record: dict[str, Any]) -> None:
    """One line on stderr for a finished record: its key, cost and hits."""
    parts = [f"{record['task']} {record['size']} seed {record['seed']} {record['method']}"]
    for key in ("calls", "tokens_evaluated", "seconds", "hit1", "hit3", "hit", "ratio"):
        if key in record:
            parts.append(f"{key}={record[key]}")
    print("  ".join(parts), file=sys.stderr, flush=True)

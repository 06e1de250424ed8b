"""Every attribution method at equal call budgets: the faithfulness-versus-cost benchmark of issue 17.

Each method runs on the same cases, model and scorer with the same ``budget`` (the
pipeline's cap on scoring calls, the unperturbed prompt included); exhaustive
leave-one-out (``itp``) runs once per case at its own cost (one call per unit plus
one), as the reference. Methods are the registry's (``hipe``, ``shapley``,
``kernelshap``, ``surrogate``, ``lime``, ``hierarchical``), each given enough
samples to use the whole budget (``SAMPLES``): the budget, not a sample count,
decides what each does.

Tasks (:class:`BudgetCase`), at ``sentence`` and ``token`` level:

* ``redundancy``: :mod:`benchmarks.redundancy`, the decisive fact stated twice
  (the seeds the model answers right, :data:`~benchmarks.redundancy.CHECKED_SEEDS`).
* ``needle``: :mod:`benchmarks.needle` prompts of about 250 tokens (the shortest size).
* ``padded``: :mod:`benchmarks.padded` prompts whose key words are 1% of the words (about 200 words).

Measurements per attribution (:func:`measure`): hit@1 (the top unit overlaps a
decisive span: either copy, the needle's fact sentence, a key word), the copies'
share (redundancy: the two copies' scores over the drop of removing both at once,
one extra forced call per case), deletion AUC (the whole output's log-probability
with the top units removed, over the fraction removed; lower is better; Petsiuk et
al. 2018), LDS on held-out random masks (:data:`LDS_MASKS` masks per case, each unit
kept with probability 1/2, scored once per case and shared by every method; Park et
al. 2023, Cohen-Wang et al. 2024), calls, tokens evaluated and seconds.

Attributions run on the backend without the response cache, so their calls, tokens
and seconds are what they cost; the evaluations (deletion curve, held-out masks, the
copies' joint drop) go through the persistent cache. One JSON line per finished
(task, level, seed, method, budget) in ``--cases``; a finished one is skipped, so a
run can be stopped and resumed.

    python -m benchmarks.budgets                       # the whole grid (hours on 2 cores)
    python -m benchmarks.budgets --levels sentence --tasks redundancy --budgets 32 64
    python -m benchmarks.budgets --report-only         # rewrite the Markdown from the records
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from attrib.errors import BudgetError
from benchmarks.runner import append, load_records

if TYPE_CHECKING:
    from attrib.backend import Backend
    from attrib.result import Attribution

__all__ = [
    "BUDGETS",
    "LEVELS",
    "METHODS",
    "TASKS",
    "BudgetCase",
    "Evaluator",
    "cases",
    "measure",
    "run",
    "main",
]

RESULTS = Path(__file__).resolve().parent / "results"

#: Call budgets of the table (the unperturbed prompt included).
BUDGETS: tuple[int, ...] = (32, 64, 128)
#: Unit levels of the table.
LEVELS: tuple[str, ...] = ("sentence", "token")
#: The tasks, in run order.
TASKS: tuple[str, ...] = ("redundancy", "needle", "padded")
#: The methods: leave-one-out (the reference, unbudgeted) first.
METHODS: tuple[str, ...] = ("itp", "hipe", "shapley", "kernelshap", "surrogate", "lime", "hierarchical")
#: Samples given to the sampling methods: more than any budget, so the budget decides.
SAMPLES = 1000
#: Held-out random masks per case for the LDS.
LDS_MASKS = 32
#: Points of the deletion curve at token level (sentence level uses every unit count).
DELETION_STEPS = 10
#: Cases per task at each level when none are given.
DEFAULT_CASES = {"sentence": 10, "token": 5}


@dataclass(frozen=True)
class BudgetCase:
    """One prompt of the budget benchmark.

    Attributes:
        task: ``"redundancy"``, ``"needle"`` or ``"padded"``.
        seed: the case's seed in its task.
        prompt: the prompt text.
        target: the forced continuation (leading space included).
        decisive: ``[start, end)`` character spans a top unit should overlap.
        copies: the redundancy task's two copies of the fact (empty elsewhere).
    """

    task: str
    seed: int
    prompt: str
    target: str
    decisive: tuple[tuple[int, int], ...]
    copies: tuple[tuple[int, int], ...] = field(default_factory=tuple)


def method_options(method: str) -> dict[str, Any]:
    """Constructor options of ``method`` for the benchmark (enough samples to spend any budget)."""
    if method == "shapley":
        return {"permutations": SAMPLES}
    if method == "kernelshap":
        return {"samples": SAMPLES}
    if method == "surrogate":
        return {"masks": SAMPLES}
    if method == "lime":
        return {"samples": SAMPLES}
    return {}


def _scheduler(method: str) -> Any:
    from attrib import registry

    return registry.create("method", method, **method_options(method))


def case_seeds(task: str, count: int) -> list[int]:
    """The first ``count`` seeds of ``task`` (the redundancy task's checked seeds)."""
    if task == "redundancy":
        from benchmarks.redundancy import CHECKED_SEEDS

        return list(CHECKED_SEEDS[:count])
    return list(range(count))


def build(task: str, seed: int, backend: Backend) -> BudgetCase:
    """The case ``seed`` of ``task`` (``backend`` counts the needle prompt's tokens)."""
    if task == "redundancy":
        from benchmarks.redundancy import make_redundancy_case

        r = make_redundancy_case(seed)
        return BudgetCase(task, seed, r.prompt, r.target, r.copies, r.copies)
    if task == "needle":
        from benchmarks.needle import make_needle_case

        n = make_needle_case(250, seed=seed, count_tokens=lambda text: len(backend.tokenize(text)))
        return BudgetCase(task, seed, n.prompt, n.target, (n.fact,))
    if task == "padded":
        from benchmarks.padded import FACTS, make_padded_case

        p = make_padded_case(FACTS[seed % len(FACTS)], 0.01, seed=seed)
        return BudgetCase(task, seed, p.prompt, p.target, p.key_spans)
    raise ValueError(f"unknown task {task!r}")


def cases(tasks: Sequence[str], count: int) -> Iterator[tuple[str, int]]:
    """``(task, seed)`` pairs in run order."""
    for task in tasks:
        for seed in case_seeds(task, count):
            yield task, seed


def _overlapping(result: Attribution, spans: Sequence[tuple[int, int]]) -> list[int]:
    return [i for i, u in enumerate(result.units) if any(u.start < end and start < u.end for start, end in spans)]


class Evaluator:
    """Evaluations shared by every method on one case: the held-out masks' drops and the copies' joint drop.

    Args:
        result: any attribution of the case (for its units and tokenization).
        backend: the (cached) backend the evaluations are scored on.
        case: the case.
        seed: seed of the held-out masks.
    """

    def __init__(self, result: Attribution, backend: Backend, case: BudgetCase, seed: int) -> None:
        from attrib.metrics import prompt_tokens
        from attrib.perturbation import Deletion
        from attrib.scoring import Scorer

        tokens, output_ids = prompt_tokens(result, backend)
        self.result = result
        self.scorer = Scorer(backend, tokens, output_ids, Deletion())
        self.base = float(self.scorer.base_logprobs.sum())
        n = len(result.units)
        self.removed = np.random.default_rng(seed).random((LDS_MASKS, n)) >= 0.5
        self.actual = self.drops([np.flatnonzero(row).tolist() for row in self.removed])
        self.copies = [_overlapping(result, [span]) for span in case.copies]
        both = sorted({i for units in self.copies for i in units})
        self.both_drop = float(self.drops([both])[0]) if self.copies else math.nan

    def drops(self, unit_sets: Sequence[Sequence[int]]) -> np.ndarray:
        """Whole-output drops in nats of removing each set of units, shape (len(unit_sets),)."""
        spans = [[self.result.units[i].tokens for i in units] for units in unit_sets]
        values: np.ndarray = self.scorer.drops(spans).sum(axis=1)
        return values

    def lds(self, scores: np.ndarray) -> float:
        """Spearman correlation of the predicted and actual drops on the held-out masks."""
        from attrib.metrics import spearman

        return float(spearman(self.removed.astype(np.float64) @ scores, self.actual))

    def deletion_auc(self, scores: np.ndarray) -> float:
        """Area under ``log p(y | x without the top fraction)`` over the fraction in [0, 1], nats."""
        n = len(scores)
        order = [int(i) for i in np.lexsort((np.arange(n), -scores))]
        counts = list(range(n + 1)) if n <= 2 * DELETION_STEPS else None
        if counts is None:
            counts = [min(n, math.ceil(q * n - 1e-9)) for q in np.linspace(0.0, 1.0, DELETION_STEPS + 1)]
        curve = self.base - self.drops([order[:k] for k in counts])
        x = np.asarray(counts, dtype=np.float64) / max(n, 1)
        return float(((curve[1:] + curve[:-1]) / 2.0 * np.diff(x)).sum())

    def copies_share(self, scores: np.ndarray) -> dict[str, float]:
        """The copies' scores (nats, summed over their units), the joint drop, and the share."""
        if not self.copies:
            return {}
        a, b = (float(scores[units].sum()) for units in self.copies)
        share = (a + b) / self.both_drop if self.both_drop > 0 else math.nan
        return {"copy_a": round(a, 4), "copy_b": round(b, 4), "both_drop": round(self.both_drop, 4), "share": share}


def measure(
    case: BudgetCase, level: str, method: str, budget: int | None, backend: Backend, evaluator: Evaluator | None
) -> tuple[dict[str, Any], Attribution]:
    """Attribute ``case`` with ``method`` under ``budget`` and measure it (``evaluator`` None: only the attribution)."""
    import attrib

    started = time.perf_counter()
    result = attrib.attribute(
        case.prompt, backend=backend, target=case.target, method=_scheduler(method), level=level, budget=budget
    )
    seconds = time.perf_counter() - started
    scores = np.asarray(result.unit_scores, dtype=np.float64)
    top = int(np.argmax(scores)) if len(scores) else -1
    record: dict[str, Any] = {
        "task": case.task,
        "level": level,
        "seed": case.seed,
        "method": method,
        "budget": budget,
        "units": len(result.units),
        "calls": result.stats.calls,
        "tokens_evaluated": result.stats.tokens_evaluated,
        "seconds": round(seconds, 3),
        "hit1": top in _overlapping(result, case.decisive),
        "unit_scores": [round(float(v), 4) for v in scores],
    }
    if evaluator is not None:
        record.update(evaluate(record, evaluator))
    return record, result


def evaluate(record: dict[str, Any], evaluator: Evaluator) -> dict[str, Any]:
    """The faithfulness fields of ``record`` (its unit scores) under ``evaluator``."""
    scores = np.asarray(record["unit_scores"], dtype=np.float64)
    fields: dict[str, Any] = {"deletion_auc": evaluator.deletion_auc(scores), "lds": evaluator.lds(scores)}
    fields.update(evaluator.copies_share(scores))
    return fields


def _key(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record["task"], record["level"], record["seed"], record["method"], record["budget"])


def run(
    backend: Backend,
    cached: Backend,
    out: Path,
    *,
    tasks: Sequence[str],
    levels: Sequence[str],
    methods: Sequence[str],
    budgets: Sequence[int],
    count: int | None,
) -> list[dict[str, Any]]:
    """Run the grid, appending each finished record to ``out`` and skipping recorded ones.

    Args:
        backend: the backend attributions run on (uncached, so their costs are real).
        cached: the same model behind the persistent cache, for the evaluations.
        out: the JSON-lines records file.
        tasks, levels, methods, budgets: the grid; ``itp`` runs once per case, unbudgeted.
        count: cases per task (``None``: :data:`DEFAULT_CASES` of the level).

    A method whose first round the budget cannot cover (Shapley sampling needs one
    call per unit for one permutation) is recorded with ``refused``, the pipeline's
    message, and no measurements.

    Returns:
        The new records.
    """
    done = {_key(r) for r in load_records(out)}
    new: list[dict[str, Any]] = []
    for level in levels:
        for task, seed in cases(tasks, DEFAULT_CASES[level] if count is None else count):
            plan = [(m, None if m == "itp" else b) for m in methods for b in ([None] if m == "itp" else budgets)]
            todo = [(m, b) for m, b in plan if (task, level, seed, m, b) not in done]
            if not todo:
                continue
            case = build(task, seed, backend)
            evaluator: Evaluator | None = None
            for method, budget in todo:
                try:
                    record, result = measure(case, level, method, budget, backend, None)
                except BudgetError as error:
                    record = {"task": task, "level": level, "seed": seed, "method": method, "budget": budget}
                    record["refused"] = str(error)
                else:
                    if evaluator is None:
                        evaluator = Evaluator(result, cached, case, seed=1000 + seed)
                    record.update(evaluate(record, evaluator))
                append(out, record)
                done.add(_key(record))
                new.append(record)
                _say(record)
    return new


def _say(record: dict[str, Any]) -> None:
    parts = [f"{record['task']} {record['level']} seed {record['seed']} {record['method']} budget {record['budget']}"]
    for key in ("calls", "seconds", "hit1", "share", "deletion_auc", "lds", "refused"):
        if key in record:
            value = record[key]
            parts.append(f"{key}={round(value, 3) if isinstance(value, float) else value}")
    print("  ".join(parts), file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.budgets",
        description=doc.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(doc.splitlines()[1:]),
    )
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--levels", nargs="+", choices=LEVELS, default=list(LEVELS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--budgets", nargs="+", type=int, default=list(BUDGETS))
    parser.add_argument("--cases-per-task", type=int, help="cases per task (default 10 at sentence, 5 at token level)")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default 1: a shared machine)")
    parser.add_argument("--cases", type=Path, default=RESULTS / "budgets.jsonl", help="JSON lines of finished runs")
    parser.add_argument("--out", type=Path, default=RESULTS / "budgets.md", help="Markdown table to write")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the Markdown from the records")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the grid (or only rewrite its Markdown); returns the exit status."""
    from benchmarks.budget_table import header_of, report

    args = _parser().parse_args(argv)
    written = machine_line = None
    if args.report_only:
        written, machine_line = header_of(args.out)
    else:
        from attrib import registry
        from attrib.cache.store import ResponseCache
        from attrib.cache.wrapper import CachingBackend

        backend = registry.create("backend", "llama", n_threads=args.threads)
        cached = CachingBackend(backend, ResponseCache(), close_backend=False)
        try:
            run(
                backend,
                cached,
                args.cases,
                tasks=args.tasks,
                levels=args.levels,
                methods=args.methods,
                budgets=args.budgets,
                count=args.cases_per_task,
            )
        finally:
            cached.close()
            backend.close()
    text = report(load_records(args.cases), written=written, machine_line=machine_line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

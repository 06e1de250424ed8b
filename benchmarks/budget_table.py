"""The equal-budget tables in Markdown, from the records of :mod:`benchmarks.budgets`.

Four parts, each only from what was recorded (a run cut short gives smaller tables,
never made-up rows):

1. Per level, task, method and budget: cases, hit@1, the copies' share (redundancy),
   deletion AUC, LDS, calls, tokens evaluated, seconds (means over the cases).
2. The redundancy task per case at sentence level: each method's copies' share and
   how many cases reach 80% of the both-copies drop (issue 17's criterion).
3. The Pareto front of faithfulness (mean LDS; mean deletion AUC) against mean calls,
   per level and task: the runs no other run beats on both at once.
4. Hierarchical coalitions against both parents (``hipe`` and ``shapley``, its
   inner method) at equal budgets.

The date and machine lines are kept when the Markdown is rewritten from the records
(``--report-only``), so the rewrite is byte for byte.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.table import header_of as _header_of
from benchmarks.table import machine

__all__ = ["header_of", "report", "pareto", "SHARE_TARGET"]

#: The copies' share a method must reach on a case (issue 17: 80% of the joint drop).
SHARE_TARGET = 0.8

_WRITTEN = "Written: "
_MACHINE = "Machine: "

Record = dict[str, Any]
Row = tuple[str, str, str, int | None]  # task, level, method, budget

_METHOD_ORDER = ("itp", "hipe", "shapley", "kernelshap", "surrogate", "lime", "hierarchical")


def header_of(path: Path) -> tuple[str | None, str | None]:
    """The date and the machine line of an equal-budget table written before (None for what is not there)."""
    return _header_of(path, written_prefix=_WRITTEN)


def _mean(values: Iterable[float]) -> float:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def _fmt(value: float, digits: int = 2) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _budget(value: int | None) -> str:
    return "own" if value is None else str(value)


def _order(row: Row) -> tuple[Any, ...]:
    task, level, method, budget = row
    rank = _METHOD_ORDER.index(method) if method in _METHOD_ORDER else len(_METHOD_ORDER)
    return (rank, -1 if budget is None else budget, method)


def _groups(records: Sequence[Record]) -> dict[Row, list[Record]]:
    groups: dict[Row, list[Record]] = defaultdict(list)
    seen: set[tuple[Any, ...]] = set()
    for r in records:
        key = (r["task"], r["level"], r["seed"], r["method"], r["budget"])
        if key in seen:
            continue
        seen.add(key)
        groups[(r["task"], r["level"], r["method"], r["budget"])].append(r)
    return groups


def _refused(groups: dict[Row, list[Record]]) -> list[str]:
    """One line per method and budget the pipeline refused (its first round exceeds the budget)."""
    lines = []
    for (task, level, method, budget), runs in sorted(
        groups.items(), key=lambda kv: (kv[0][1], kv[0][0], _order(kv[0]))
    ):
        refused = [r for r in runs if "refused" in r]
        if refused:
            lines.append(
                f"- {task}, {level} level, `{method}` at budget {_budget(budget)}: {refused[0]['refused']} "
                f"({len(refused)} case{'s' if len(refused) > 1 else ''})"
            )
    if not lines:
        return []
    return (
        ["## Refused runs", "", "The pipeline refuses a method whose first round the budget cannot cover:", ""]
        + lines
        + [""]
    )


def _summary(runs: list[Record]) -> dict[str, float]:
    return {
        "cases": float(len(runs)),
        "hit1": _mean(float(r["hit1"]) for r in runs),
        "share": _mean(r.get("share", math.nan) for r in runs),
        "reach": float(sum(1 for r in runs if r.get("share", math.nan) >= SHARE_TARGET)),
        "deletion_auc": _mean(r["deletion_auc"] for r in runs),
        "lds": _mean(r["lds"] for r in runs),
        "calls": _mean(r["calls"] for r in runs),
        "tokens": _mean(r["tokens_evaluated"] for r in runs),
        "seconds": _mean(r["seconds"] for r in runs),
    }


def _measured(groups: dict[Row, list[Record]]) -> dict[Row, list[Record]]:
    """The groups without refused runs (and without groups left empty)."""
    kept = {row: [r for r in runs if "refused" not in r] for row, runs in groups.items()}
    return {row: runs for row, runs in kept.items() if runs}


def _coverage(groups: dict[Row, list[Record]]) -> list[str]:
    """What was run: per level, each task's case count and the budgets recorded (the grid is 32, 64, 128)."""
    parts = []
    for level in ("sentence", "token"):
        tasks = []
        for task in ("redundancy", "needle", "padded"):
            rows = [row for row in groups if row[:2] == (task, level)]
            if rows:
                seeds = {r["seed"] for row in rows for r in groups[row]}
                budgets = sorted({row[3] for row in rows if row[3] is not None})
                tasks.append(f"{task} {len(seeds)} cases at budgets {', '.join(map(str, budgets))}")
        if tasks:
            parts.append(f"{level} level: " + "; ".join(tasks))
    if not parts:
        return []
    grid = {32, 64, 128}
    complete = all(
        grid <= {row[3] for row in groups if row[:2] == (task, level)}
        for level in ("sentence", "token")
        for task in ("redundancy", "needle", "padded")
    )
    lead = (
        "Recorded (budgets 32, 64 and 128)"
        if complete
        else ("Recorded so far (the grid is budgets 32, 64 and 128; the rest was not run on this machine)")
    )
    return [f"{lead}: " + ". ".join(parts) + ".", ""]


def _main_tables(groups: dict[Row, list[Record]]) -> list[str]:
    lines: list[str] = []
    for level in ("sentence", "token"):
        for task in ("redundancy", "needle", "padded"):
            rows = sorted((row for row in groups if row[0] == task and row[1] == level), key=_order)
            if not rows:
                continue
            seeds = sorted({r["seed"] for row in rows for r in groups[row]})
            lines += [f"### {task}, {level} level ({len(seeds)} cases: seeds {', '.join(map(str, seeds))})", ""]
            share = task == "redundancy"
            head = "| method | budget | cases | hit@1 |"
            rule = "|---|---:|---:|---:|"
            if share:
                head += f" copies' share | cases ≥ {SHARE_TARGET:.0%} |"
                rule += "---:|---:|"
            head += " deletion AUC ↓ | LDS ↑ | calls | tokens evaluated | seconds |"
            rule += "---:|---:|---:|---:|---:|"
            lines += [head, rule]
            for row in rows:
                s = _summary(groups[row])
                cells = [row[2], _budget(row[3]), f"{s['cases']:.0f}", _fmt(s["hit1"])]
                if share:
                    cells += [_fmt(s["share"]), f"{s['reach']:.0f}/{s['cases']:.0f}"]
                cells += [
                    _fmt(s["deletion_auc"]),
                    _fmt(s["lds"]),
                    _fmt(s["calls"], 1),
                    f"{s['tokens']:.0f}",
                    _fmt(s["seconds"], 1),
                ]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
    return lines


def _per_case(groups: dict[Row, list[Record]]) -> list[str]:
    rows = sorted((row for row in groups if row[0] == "redundancy" and row[1] == "sentence"), key=_order)
    if not rows:
        return []
    seeds = sorted({r["seed"] for row in rows for r in groups[row]})
    lines = [
        "## The copies' share per case (redundancy, sentence level)",
        "",
        "(score(copy A) + score(copy B)) / drop of removing both copies at once; 1 means the copies' scores "
        "account for the whole joint drop. The last column counts the cases at 80% or more.",
        "",
        "| method | budget | " + " | ".join(f"seed {s}" for s in seeds) + f" | ≥ {SHARE_TARGET:.0%} |",
        "|---|---:|" + "---:|" * len(seeds) + "---:|",
    ]
    for row in rows:
        by_seed = {r["seed"]: r.get("share", math.nan) for r in groups[row]}
        reach = sum(1 for v in by_seed.values() if v >= SHARE_TARGET)
        cells = [_fmt(by_seed.get(s, math.nan)) for s in seeds]
        lines.append(f"| {row[2]} | {_budget(row[3])} | " + " | ".join(cells) + f" | {reach}/{len(by_seed)} |")
    return lines + [""]


def pareto(points: Sequence[tuple[str, float, float]], *, higher: bool) -> list[tuple[str, float, float]]:
    """The points (name, calls, faithfulness) that no other point beats on both: fewer or equal calls and
    better or equal faithfulness (``higher``: larger is better), strictly better on one; sorted by calls."""
    kept = []
    for name, calls, value in points:
        if math.isnan(value):
            continue
        beaten = False
        for other, c, v in points:
            if other == name or math.isnan(v):
                continue
            better = v >= value if higher else v <= value
            strictly = c < calls or (v > value if higher else v < value)
            if c <= calls and better and strictly:
                beaten = True
                break
        if not beaten:
            kept.append((name, calls, value))
    return sorted(kept, key=lambda p: (p[1], p[0]))


def _fronts(groups: dict[Row, list[Record]]) -> list[str]:
    lines = [
        "## Pareto front: faithfulness against calls",
        "",
        "Per level and task, among the method-and-budget runs that cover every case of the task at that level, "
        "the runs that no other run beats on both mean calls and the faithfulness measure (LDS: higher is "
        "better; deletion AUC: lower is better).",
        "",
        "| level | task | measure | front (method@budget: calls, value) |",
        "|---|---|---|---|",
    ]
    found = False
    for level in ("sentence", "token"):
        for task in ("redundancy", "needle", "padded"):
            rows = sorted((row for row in groups if row[0] == task and row[1] == level), key=_order)
            if not rows:
                continue
            seeds = {r["seed"] for row in rows for r in groups[row]}
            rows = [row for row in rows if {r["seed"] for r in groups[row]} == seeds]
            found = True
            for measure, higher in (("lds", True), ("deletion_auc", False)):
                points = []
                for row in rows:
                    s = _summary(groups[row])
                    points.append((f"{row[2]}@{_budget(row[3])}", s["calls"], s[measure]))
                front = pareto(points, higher=higher)
                text = "; ".join(f"{name}: {calls:.0f}, {value:.2f}" for name, calls, value in front)
                lines.append(f"| {level} | {task} | {measure.replace('_', ' ')} | {text} |")
    return lines + [""] if found else []


def _hierarchical(groups: dict[Row, list[Record]], every: dict[Row, list[Record]]) -> list[str]:
    """Hierarchical against its parents per level, task and budget; where the pipeline refused
    ``shapley`` (its first permutation exceeds the budget), against ``hipe`` alone."""
    lines = [
        "## Hierarchical coalitions against both parents at equal budgets",
        "",
        "`hierarchical` (HiPe, then Shapley sampling among HiPe's top 6 units) against `hipe` and `shapley` "
        "under the same budget, on the cases all three ran; each cell is hit@1 / copies' share (redundancy) / deletion AUC / LDS. "
        "Beats both: better than both parents on LDS and on deletion AUC. Where the budget cannot cover one "
        "Shapley permutation (token level), `shapley` is refused and the comparison is with `hipe` alone.",
        "",
        "| level | task | budget | cases | hipe | shapley | hierarchical | beats both |",
        "|---|---|---:|---:|---|---|---|---|",
    ]
    found = False
    for level in ("sentence", "token"):
        for task in ("redundancy", "needle", "padded"):
            budgets = sorted({row[3] or 0 for row in groups if row[:3] == (task, level, "hierarchical")})
            for budget in budgets:
                refused = not groups.get((task, level, "shapley", budget)) and any(
                    "refused" in r for r in every.get((task, level, "shapley", budget), [])
                )
                parents = ("hipe",) if refused else ("hipe", "shapley")
                parts = {m: groups.get((task, level, m, budget), []) for m in (*parents, "hierarchical")}
                common = set.intersection(*({r["seed"] for r in v} for v in parts.values()))
                parts = {m: [r for r in v if r["seed"] in common] for m, v in parts.items()}
                if not common:
                    continue
                found = True
                s = {m: _summary(v or []) for m, v in parts.items()}

                def cell(x: dict[str, float], share: bool = task == "redundancy") -> str:
                    values = [_fmt(x["hit1"])] + ([_fmt(x["share"])] if share else [])
                    return " / ".join(values + [_fmt(x["deletion_auc"]), _fmt(x["lds"])])

                h = s["hierarchical"]
                beats = all(h["lds"] > s[m]["lds"] and h["deletion_auc"] < s[m]["deletion_auc"] for m in parents)
                verdict = ("yes" if beats else "no") + (" (vs hipe)" if refused else "")
                shapley = "refused" if refused else cell(s["shapley"])
                lines.append(
                    f"| {level} | {task} | {budget} | {len(common)} | {cell(s['hipe'])} | {shapley} | {cell(h)} | "
                    f"{verdict} |"
                )
    return lines + [""] if found else []


def report(records: list[Record], *, written: str | None = None, machine_line: str | None = None) -> str:
    """The Markdown of the equal-budget benchmark from its records.

    Args:
        records: the records of :func:`benchmarks.budgets.run` (any order; a repeated key counts once).
        written: the date the table says it was written (default today, ``YYYY-MM-DD``).
        machine_line: the machine description (default :func:`benchmarks.table.machine`).
    """
    every = _groups(records)
    groups = _measured(every)
    lines = [
        "# Every method at equal call budgets (issue 17)",
        "",
        f"{_WRITTEN}{written or time.strftime('%Y-%m-%d')}.",
        "",
        f"{_MACHINE}{machine_line or machine()}.",
        "",
        "Embedded Gemma 3 270M (llama.cpp, 1 thread), forced decoding of the model's own answer. "
        "Each method runs under the same call budget (the unperturbed prompt included) with samples enough to "
        "spend it; `itp` (exhaustive leave-one-out) runs once at its own cost (budget `own`) as the reference. "
        "hit@1: the top unit overlaps a decisive span (either copy; the needle's fact; a key word). Copies' share: "
        "the two copies' scores over the drop of removing both at once. Deletion AUC: the whole output's "
        "log-probability (nats) with the top units removed, over the fraction removed (lower is better). "
        "LDS: Spearman correlation of predicted and actual drops on 32 held-out random half-ablations per case, "
        "shared by every method. Calls, tokens evaluated and seconds are each attribution's own (run without "
        "the response cache), means per case. `python -m benchmarks.budgets` regenerates this file; "
        "`--report-only` rewrites it from `budgets.jsonl`.",
        "",
    ]
    lines += _coverage(groups)
    lines += _main_tables(groups)
    lines += _per_case(groups)
    lines += _fronts(groups)
    lines += _hierarchical(groups, every)
    lines += _refused(every)
    return "\n".join(lines).rstrip("\n") + "\n"

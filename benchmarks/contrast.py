"""Contrastive HiPe against contrastive leave-one-out on needle prompts: does HiPe find both sides?

A contrastive attribution (``contrast=``, ``docs/contrast.md``) has evidence of two
signs: units that favour the output (the needle's fact sentence) and units that
favour the contrast (the distractor sentence that states the contrast's code).
HiPe refines chunks by :func:`attrib.methods.hipe.chunks.salience`; this benchmark checks,
on :mod:`benchmarks.needle` prompts of about 250 tokens with the decisive code as
the target and the *first* distractor's code as the contrast, that it reaches both
sides at a fraction of leave-one-out's calls.

Per case and level (``sentence``, ``word``), ItP (exhaustive leave-one-out, the
reference) and HiPe (defaults) run with the same contrast; measured:

* ``fact``: HiPe's top unit (largest score) overlaps the decisive fact sentence;
* ``foil``: HiPe's lowest unit (most negative: favours the contrast) overlaps the
  contrast's distractor sentence; ``foil_itp``: the same for ItP;
* ``foil_error``: |HiPe's total over the distractor's units - ItP's|, nats (0 when
  HiPe refined it to its units);
* ``spearman``: Spearman correlation of HiPe's and ItP's unit totals;
* calls and tokens evaluated of each.

ItP runs through the persistent response cache (so a re-run is cheap); HiPe runs on
the backend itself, so its calls and tokens evaluated are what it costs. Seconds are
not reported, nor ItP's tokens (the cache makes them meaningless; ItP costs one
call per unit plus one, and ``python -m benchmarks.budgets`` measures its tokens).

    python -m benchmarks.contrast                 # 10 cases at sentence level, 5 at word level
    python -m benchmarks.contrast --report-only   # rewrite the Markdown from the records
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.runner import append, load_records

RESULTS = Path(__file__).parent / "results"

#: Cases per level by default (word-level leave-one-out costs about 200 calls a case).
DEFAULT_CASES = {"sentence": 10, "word": 5}


def _overlaps(result: Any, index: int, span: tuple[int, int]) -> bool:
    unit = result.units[index]
    return bool(unit.start < span[1] and span[0] < unit.end)


def _inside(result: Any, span: tuple[int, int]) -> list[int]:
    return [i for i in range(len(result.units)) if _overlaps(result, i, span)]


def measure(hipe: Any, itp: Any, fact: tuple[int, int], foil: tuple[int, int]) -> dict[str, Any]:
    """The record of one case: where HiPe's extremes fall, its error on the distractor, its agreement with ItP."""
    from attrib.metrics import spearman

    h, r = np.asarray(hipe.unit_scores, dtype=float), np.asarray(itp.unit_scores, dtype=float)
    units = _inside(hipe, foil)
    return {
        "units": len(hipe.units),
        "fact": _overlaps(hipe, int(np.argmax(h)), fact),
        "foil": _overlaps(hipe, int(np.argmin(h)), foil),
        "foil_itp": _overlaps(itp, int(np.argmin(r)), foil),
        "foil_error": round(abs(float(h[units].sum() - r[units].sum())), 4),
        "spearman": round(float(spearman(h, r)), 4),
        "calls": hipe.stats.calls,
        "tokens_evaluated": hipe.stats.tokens_evaluated,
        "itp_calls": itp.stats.calls,
    }


def run(backend: Any, cached: Any, out: Path, levels: Sequence[str], count: int | None) -> None:
    """Run every case not yet in ``out`` (one JSON line per case and level): HiPe on ``backend``,
    ItP on ``cached`` (the same model behind the response cache)."""
    import attrib
    from benchmarks.needle import make_needle_case

    done = {(r["level"], r["seed"]) for r in load_records(out)}
    for level in levels:
        for seed in range(DEFAULT_CASES[level] if count is None else count):
            if (level, seed) in done:
                continue
            case = make_needle_case(250, seed=seed, count_tokens=lambda text: len(backend.tokenize(text)))
            foil = case.distractors[0]
            code = re.findall(r"\d{4}", case.prompt[slice(*foil)])[-1]
            options = {"level": level, "target": case.target, "contrast": " " + code}
            itp = attrib.attribute(case.prompt, method="itp", backend=cached, **options)
            hipe = attrib.attribute(case.prompt, method="hipe", backend=backend, **options)
            record = {"level": level, "seed": seed, "contrast": " " + code, **measure(hipe, itp, case.fact, foil)}
            print(json.dumps(record), flush=True)
            append(out, record)


def report(records: Iterable[dict[str, Any]]) -> str:
    """The Markdown table: one row per level."""
    by_level: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_level.setdefault(record["level"], []).append(record)
    lines = [
        "# Contrastive HiPe against contrastive leave-one-out (needle, ~250 tokens)",
        "",
        "Written by `python -m benchmarks.contrast` (embedded model). Target: the decisive code;",
        "contrast: the first distractor's code. `fact`: HiPe's top unit is the fact sentence;",
        "`foil`: HiPe's most negative unit is the contrast's distractor (`foil itp`: ItP's);",
        "`foil error`: |HiPe - ItP| on the distractor's units, nats; Spearman of unit totals.",
        "",
        "| level | cases | fact | foil | foil itp | foil error (mean) | Spearman (mean) | calls | tokens | itp calls |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for level, rows in by_level.items():
        n = len(rows)

        def mean(key: str, rows: list[dict[str, Any]] = rows) -> float:
            return float(np.mean([r[key] for r in rows]))

        def hits(key: str, rows: list[dict[str, Any]] = rows) -> str:
            return f"{sum(bool(r[key]) for r in rows)}/{len(rows)}"

        lines.append(
            f"| {level} | {n} | {hits('fact')} | {hits('foil')} | {hits('foil_itp')} | {mean('foil_error'):.3f} "
            f"| {mean('spearman'):.3f} | {mean('calls'):.1f} | {mean('tokens_evaluated'):,.0f} "
            f"| {mean('itp_calls'):.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.contrast", description=__doc__.splitlines()[0])
    parser.add_argument("--levels", nargs="+", choices=sorted(DEFAULT_CASES), default=["sentence", "word"])
    parser.add_argument("--cases-per-level", type=int, help="cases per level (default 10 sentence, 5 word)")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default 1)")
    parser.add_argument("--cases", type=Path, default=RESULTS / "contrast.jsonl", help="JSON lines of finished cases")
    parser.add_argument("--out", type=Path, default=RESULTS / "contrast.md", help="Markdown table to write")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the Markdown from the records")
    args = parser.parse_args(argv)
    if not args.report_only:
        from attrib import registry
        from attrib.cache.store import ResponseCache
        from attrib.cache.wrapper import CachingBackend

        backend = registry.create("backend", "llama", n_threads=args.threads)
        cached = CachingBackend(backend, ResponseCache(), close_backend=False)
        try:
            run(backend, cached, args.cases, args.levels, args.cases_per_level)
        finally:
            cached.close()
            backend.close()
    args.out.write_text(report(load_records(args.cases)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Context attribution: which source supports each claim? attrib's ``cite`` against ContextCite on the same cases.

Cases: :mod:`benchmarks.context_cases` (6-8 sources of real prose, one fact each, a
two-fact question, an answer of two claims plus, in three cases of four, a claim no
source supports; citation markers in half; a fact stated twice in half). Both sides score
the same prompt text with the same answer on the same float32 weights (the embedded Gemma
3 270M dequantized by transformers).

Sides (one JSON line per case, split, side and setting in ``--cases``):

* ``attrib``: :func:`attrib.cite` on the transformers backend; ``hipe`` and ``itp`` at
  ``source`` level, ``hipe`` at ``sentence`` level (:data:`ATTRIB_RUNS`).
* ``contextcite``: ContextCite's own code (:mod:`benchmarks.context_peer`) at ``source``
  and ``sentence`` level (sentences over the whole context), 64 ablations (its default)
  and more. Needs the ``context-cite`` package (a virtual environment made with
  ``--system-site-packages``, since it brings spaCy, datasets, pandas and nltk).

Metrics (:mod:`benchmarks.context_metrics`), per side and setting, on the evaluation split:
per-claim top-1 source accuracy (a fact stated twice: either source counts); unsupported
claims flagged and supported claims flagged; wrong citations flagged and correct ones
verified; at sentence level, the fact's sentence ranking first inside its source; calls,
tokens evaluated and seconds. The support threshold of each side and setting is chosen
on the calibration split (disjoint seeds), never on the evaluation cases.

    python -m benchmarks.context attrib                     # attrib's runs, both splits
    .venv/bin/python -m benchmarks.context contextcite --level source --ablations 64
    python -m benchmarks.context report                     # rewrite context.md from the records
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.context_cases import (
    CALIBRATION_SEEDS,
    EVALUATION_SEEDS,
    ContextCase,
    make_context_case,
)
from benchmarks.runner import append, load_records

RESULTS = Path(__file__).resolve().parent / "results"

#: attrib's settings: (method, level).
ATTRIB_RUNS: tuple[tuple[str, str], ...] = (("hipe", "source"), ("itp", "source"), ("hipe", "sentence"))


def seeds_of(split: str, limit: int | None = None) -> Sequence[int]:
    """The seeds of ``split`` (``evaluation`` or ``calibration``), the first ``limit`` of them."""
    seeds = EVALUATION_SEEDS if split == "evaluation" else CALIBRATION_SEEDS
    return seeds if limit is None else seeds[:limit]


def record_key(record: dict[str, Any]) -> tuple[Any, ...]:
    """What one record stands for: split, seed, side, method, level, ablations, and the backend
    when it is not transformers (the weights both sides share)."""
    backend = record.get("backend", "transformers")
    key = (record["split"], record["seed"], record["side"], record["method"], record["level"], record.get("ablations"))
    return key if backend == "transformers" else (*key, backend)


def _truth(case: ContextCase) -> list[dict[str, Any]]:
    return [
        {"support": list(c.support), "cited": list(c.cited), "text": c.text, "start": c.start, "end": c.end}
        for c in case.claims
    ]


def _fact_spans(case: ContextCase) -> dict[str, list[int]]:
    return {s.id: list(s.fact) for s in case.sources}


def run_contextcite(
    out: Path,
    splits: Sequence[str],
    level: str,
    ablations: int,
    limit: int | None,
    full_logits: bool,
    cost: bool = False,
) -> None:
    """ContextCite on every case of ``splits`` not yet recorded at ``level`` with ``ablations`` (and each smaller count).

    With ``cost``, only its calls and tokens are counted (tokenizer only, no model; method
    ``contextcite-N-cost``, no claims).
    """
    from benchmarks import context_peer

    cache = Path(os.environ.get("ATTRIB_CACHE_DIR") or Path.home() / ".cache" / "attrib") / "benchmarks" / "contextcite"
    done = {record_key(r) for r in load_records(out)}
    model, tokenizer = None, None
    for split in splits:
        for seed in seeds_of(split, limit):
            counts = [a for a in context_peer.ABLATIONS if a <= ablations]
            suffix = "-cost" if cost else ""
            keys = {(split, seed, "contextcite", f"contextcite-{a}{suffix}", level, a): a for a in counts}
            if all(k in done for k in keys):
                continue
            if model is None:
                model, tokenizer = context_peer.load_model()
            case = make_context_case(seed)
            if cost:
                found = context_peer.cost_only(case, level, ablations, tokenizer)
            else:
                found = context_peer.run_case(case, level, ablations, model, tokenizer, cache, full_logits=full_logits)
            for key, count in keys.items():
                if key in done:
                    continue
                entry = found["by_ablations"][str(count)]
                record = {
                    "split": split,
                    "seed": seed,
                    "kind": case.kind,
                    "side": "contextcite",
                    "method": f"contextcite-{count}{suffix}",
                    "level": level,
                    "ablations": count,
                    "sources": [s.id for s in case.sources],
                    "facts": _fact_spans(case),
                    "truth": _truth(case),
                    "units": found["units"],
                    "answer_tokens": found["answer_tokens"],
                    "full_logits": full_logits,
                    "claims": entry["claims"],
                    **entry["cost"],
                }
                append(out, record)
                done.add(key)
                print(
                    f"{split} {seed} contextcite-{count}{suffix} {level}: {entry['cost']}", file=sys.stderr, flush=True
                )


def _parser() -> argparse.ArgumentParser:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.context",
        description=doc.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(doc.splitlines()[1:]),
    )
    parser.add_argument("--cases", type=Path, default=RESULTS / "context.jsonl", help="JSON lines of finished runs")
    parser.add_argument("--out", type=Path, default=RESULTS / "context.md", help="Markdown table to write")
    parser.add_argument(
        "--splits", nargs="+", choices=("calibration", "evaluation"), default=["calibration", "evaluation"]
    )
    parser.add_argument("--limit", type=int, help="only the first N seeds of each split")
    commands = parser.add_subparsers(dest="command", required=True)
    peer = commands.add_parser("contextcite", help="run ContextCite (needs the context-cite package)")
    peer.add_argument("--level", choices=("source", "sentence"), default="source")
    peer.add_argument("--ablations", type=int, default=64, help="64 (ContextCite's default), 128 or 256")
    peer.add_argument("--full-logits", action="store_true", help="ContextCite's forward pass unmodified (slower)")
    peer.add_argument("--cost", action="store_true", help="only count its calls and tokens (tokenizer, no model)")
    ours = commands.add_parser("attrib", help="run attrib.cite on the transformers backend")
    ours.add_argument(
        "--runs",
        nargs="+",
        default=[f"{m}:{lv}" for m, lv in ATTRIB_RUNS],
        help="METHOD:LEVEL; METHOD-N for a coalition method with N samples (kernelshap-32:source)",
    )
    ours.add_argument("--backend", default="transformers", help="backend registry name (default transformers)")
    commands.add_parser("report", help="rewrite the Markdown table from the records")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one side, or rewrite the report; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.command == "contextcite":
        run_contextcite(args.cases, args.splits, args.level, args.ablations, args.limit, args.full_logits, args.cost)
    elif args.command == "attrib":
        from benchmarks.context_attrib import run_attrib

        runs = [tuple(text.split(":", 1)) for text in args.runs]
        run_attrib(args.cases, args.splits, runs, args.backend, args.limit)
    if args.command in ("attrib", "contextcite", "report"):
        from benchmarks.context_metrics import report

        text = report(load_records(args.cases))
        notes = args.out.with_name(args.out.stem + "-notes.md")
        if notes.exists():  # what the table cannot say about the run (the machine, what is missing)
            text += "\n" + notes.read_text(encoding="utf-8")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        print(text)
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

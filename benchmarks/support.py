"""The support-assistant dataset: is each question's labelled sentence its top system unit?

Runs the questions of ``examples/support/questions.jsonl`` as ``attrib batch`` does
(:func:`attrib.attribute_many`, task ``audit``) with the system prompt of
``examples/support/system.txt`` (sentence level, the embedded model, the persistent
response cache) into an OUT_DIR, and summarises it with
:func:`attrib.summary.summarize`: the share of items whose labelled sentence is the
top system unit (issue 16's criterion), per label, split by whether the output used
a word of its fact, and the run's cost.

    python -m benchmarks.support -o runs/support --targets      # explain the logged replies
    python -m benchmarks.support -o runs/gen --limit 100        # the model's own replies, a seeded subset
    python -m benchmarks.support -o runs/support --report       # the measurement of an OUT_DIR

With ``--targets`` this is ``attrib batch examples/support/questions.jsonl --task
audit --level sentence --system-file examples/support/system.txt``; without, each
record's ``target`` is dropped, so the audit explains what the model generates
(``--max-new-tokens 8``). A re-run into the same OUT_DIR skips finished ids.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrib
from attrib.batch import Summary
from attrib.cache.wrapper import CacheSpec
from attrib.result.files import write_atomic

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "support"
MAX_NEW_TOKENS = 8
LEVEL = "sentence"


def run(
    records: Iterable[dict[str, Any]],
    out: Path,
    *,
    system: str | None,
    task: str = "audit",
    level: str = LEVEL,
    max_new_tokens: int = MAX_NEW_TOKENS,
    backend: Any = None,
    cache: CacheSpec = True,
    targets: bool = True,
    force: bool = False,
    progress: bool = False,
) -> Summary:
    """Run ``records`` into ``out`` through :func:`attrib.attribute_many` (bad records become
    error records); ``targets=False`` drops each record's ``target`` so the output is generated.

    Raises:
        InputError: if ``out`` holds another run (unless ``force``) or is in use.
    """
    items = [record if targets else {k: v for k, v in record.items() if k != "target"} for record in records]
    return attrib.attribute_many(
        items,
        out_dir=out,
        task=task,
        system=system,
        level=level,
        max_new_tokens=max_new_tokens,
        backend=backend,
        cache=cache,
        skip_bad=True,
        force=force,
        progress=progress,
    )


def load_questions(limit: int | None = None, seed: int = 0) -> tuple[list[dict[str, Any]], list[int]]:
    """The dataset's records and their line numbers; with ``limit``, a seeded random subset
    of that size (file order kept)."""
    text = (DATA / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    numbered = [(n, json.loads(line)) for n, line in enumerate(text, 1) if line.strip()]
    if limit is not None and limit < len(numbered):
        numbered = [numbered[i] for i in sorted(random.Random(seed).sample(range(len(numbered)), limit))]
    return [record for _, record in numbered], [n for n, _ in numbered]


_WORD = re.compile(r"[a-z0-9@.%-]+")
_COMMON = frozenset(
    [
        "the",
        "and",
        "for",
        "any",
        "you",
        "our",
        "your",
        "can",
        "with",
        "are",
        "our",
        "from",
        "over",
        "all",
        "get",
        "every",
        "one",
        "that",
        "this",
        "sold",
        "ship",
        "page",
        "customers",
        "customer",
    ]
)


def fact_words(fact: str, question: str) -> set[str]:
    """Words of the labelled fact a copied answer would carry: 3+ characters, not in the question, not common."""
    asked = set(_WORD.findall(question.lower()))
    words = {w.strip(".") for w in _WORD.findall(fact.lower())}
    return {w for w in words if len(w) >= 2 and (len(w) >= 3 or w.isdigit()) and w not in asked and w not in _COMMON}


def answered_from_fact(output: str, fact: str, question: str) -> bool:
    """True when the output carries a word of its labelled fact that the question does not (a copied answer)."""
    said = {w.strip(".") for w in _WORD.findall(output.lower())}
    return bool(fact_words(fact, question) & said)


def report(out: Path, examples: int = 6) -> str:
    """The measurement: labelled accuracy (overall, per label, split by whether the output
    copied its fact), cost per item, and a few misses."""
    from attrib.summary import summarize

    summary = summarize(out)
    [group] = summary.system_groups
    accuracy = group.accuracy
    assert accuracy is not None
    facts = (DATA / "system.txt").read_text(encoding="utf-8").splitlines()
    split: dict[bool, list[int]] = {True: [0, 0], False: [0, 0]}
    misses = []
    for row in group.rows:
        if row.label is None:
            continue
        copied = answered_from_fact(row.output, facts[row.label - 1], row.user)
        split[copied][0] += 1
        split[copied][1] += row.top_position == row.label
        if row.top_position != row.label:
            misses.append(row)
    n = max(summary.ok, 1)
    lines = [
        f"items: {summary.ok} ok, {summary.failed} failed",
        f"top system unit = labelled sentence: {accuracy.correct}/{accuracy.n} ({accuracy.accuracy:.1%})",
        "per label: " + ", ".join(f"{k}: {c}/{m}" for k, (m, c) in sorted(accuracy.per_label.items())),
    ]
    for copied, (m, c) in split.items():
        what = "copied a word of its fact" if copied else "did not copy its fact"
        lines.append(f"  output {what}: {c}/{m}" + (f" ({c / m:.1%})" if m else ""))
    lines.append(
        f"cost: {summary.calls} calls, {summary.tokens_evaluated} tokens evaluated, {summary.seconds:.0f} s of work "
        f"({summary.calls / n:.1f} calls, {summary.tokens_evaluated / n:.0f} tokens, {summary.seconds / n:.1f} s per item)"
    )
    lines.append(f"hidden influence flagged: {len(summary.flagged)}/{summary.audited}")
    lines.append("misses (id, question -> output; label / top unit):")
    for row in misses[:examples]:
        lines.append(f"  {row.id}: {row.user!r} -> {row.output!r}; label {row.label} / top {row.top_position}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.support", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, required=True, help="OUT_DIR to write (resumed if it exists)")
    parser.add_argument("--limit", type=int, default=None, help="a seeded random subset of this many questions")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset")
    parser.add_argument(
        "--targets", action="store_true", help="explain each record's logged reply (else the model's own, generated)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the dataset summary as JSON here")
    parser.add_argument("--report", action="store_true", help="only print the measurement of OUT_DIR as it stands")
    args = parser.parse_args(argv)
    if args.report:
        print(report(args.out))
        return 0
    from attrib.summary import summarize

    system = (DATA / "system.txt").read_text(encoding="utf-8").strip()
    questions, _ = load_questions(args.limit, args.seed)
    started = time.perf_counter()
    run(questions, args.out, system=system, targets=args.targets, progress=True)
    summary = summarize(args.out)
    print(summary.render())
    print(report(args.out))
    print(f"wall time of this invocation: {time.perf_counter() - started:.0f} s")
    if args.json is not None:
        write_atomic(args.json, json.dumps(summary.to_dict(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

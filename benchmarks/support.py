"""The support-assistant dataset: is each question's labelled sentence its top system unit?

Runs the questions of ``examples/support/questions.jsonl`` through
:func:`attrib.audit` with the system prompt of ``examples/support/system.txt``
(sentence level, the embedded model, the persistent response cache), writes an
OUT_DIR in the batch layout (``records.jsonl`` + ``items/<key>.json``, see
``docs/batch.md``) and summarises it with :func:`attrib.summary.summarize`: the
share of items whose labelled sentence is the top system unit (issue 16's
criterion), per label, and the run's cost.

    nice -n 10 python -m benchmarks.support -o runs/support             # every question
    nice -n 10 python -m benchmarks.support -o runs/support --limit 100 # a seeded random subset

The options are those of ``attrib batch examples/support/questions.jsonl --task audit
--level sentence --max-new-tokens 8 --system-file examples/support/system.txt``,
so the cache makes that run free afterwards. A re-run into the same OUT_DIR skips
finished ids; a second process started with ``--reverse`` into the same OUT_DIR works
from the other end (two processes keep both cores busy).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrib
from attrib.caching import CacheSpec
from attrib.errors import AttribError
from attrib.result import Attribution
from attrib.result.files import write_atomic
from attrib.summary.stats import resolve_label

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "support"
MAX_NEW_TOKENS = 8
LEVEL = "sentence"

_SAFE = re.compile(r"[A-Za-z0-9._-]")


def item_key(record_id: str) -> str:
    """A filesystem-safe file stem for ``record_id``: ``[A-Za-z0-9._-]`` kept, others
    percent-encoded, with a short hash suffix when anything was altered (never ``..``)."""
    encoded = "".join(c if _SAFE.fullmatch(c) else "".join(f"%{b:02X}" for b in c.encode()) for c in record_id)
    if encoded != record_id or encoded in ("", ".", "..") or encoded.startswith("."):
        digest = hashlib.sha256(record_id.encode()).hexdigest()[:8]
        encoded = f"{encoded.replace('.', '%2E')}~{digest}"
    return encoded


def compact_record(result: Attribution, record: dict[str, Any], line: int, task: str, key: str) -> dict[str, Any]:
    """The ``records.jsonl`` entry of a finished item (the batch contract's ok record)."""
    roles = [None if result.messages is None else result.messages[u.message]["role"] for u in result.units]
    top = [
        {
            "unit": s.index,
            "text": s.unit.text,
            "score": s.score,
            "message": None if result.messages is None else s.unit.message,
            "role": roles[s.index],
        }
        for s in result.top(5)
    ]
    totals = result.unit_scores
    system = [i for i, role in enumerate(roles) if role == "system"]
    best = max(system, key=lambda i: (totals[i], -i)) if system else None
    hidden = result.hidden_influence
    return {
        "id": record["id"],
        "status": "ok",
        "line": line,
        "meta": {
            k: v for k, v in record.items() if k not in ("id", "prompt", "messages", "system", "target", "options")
        },
        "output": result.output,
        "output_logprob": result.output_logprob,
        "method": result.method,
        "level": result.level,
        "task": task,
        "top": top,
        "roles": result.roles,
        "system_top": None
        if best is None
        else {"unit": best, "text": result.units[best].text, "score": float(totals[best])},
        "hidden_influence": None
        if hidden is None
        else {"flagged": hidden.flag, "score": hidden.score, "kind": hidden.method},
        "cost": {
            "calls": result.stats.calls,
            "tokens_evaluated": result.stats.tokens_evaluated,
            "seconds": result.stats.seconds,
        },
        "file": f"items/{key}.json",
    }


def error_record(record: dict[str, Any], line: int, error: BaseException) -> dict[str, Any]:
    """The ``records.jsonl`` entry of a failed item."""
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    meta = {k: v for k, v in record.items() if k not in ("id", "prompt", "messages", "system", "target", "options")}
    return {
        "id": record["id"],
        "status": "error",
        "line": line,
        "meta": meta,
        "error": message,
        "error_type": type(error).__name__,
    }


class OutDir:
    """A minimal writer of the batch layout: items written atomically before their record line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "items").mkdir(parents=True, exist_ok=True)
        self.records = path / "records.jsonl"

    def finished(self) -> set[str]:
        """Ids with a complete record line (a torn last line is ignored)."""
        if not self.records.exists():
            return set()
        done: set[str] = set()
        for line in self.records.read_text(encoding="utf-8").splitlines():
            try:
                done.add(json.loads(line)["id"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
        return done

    def append(self, entry: dict[str, Any], result: Attribution | None = None) -> None:
        """Write the item's JSON (if any), then append its record line, flushed and fsync'ed."""
        if result is not None:
            result.to_json(self.path / entry["file"])
        with self.records.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, ensure_ascii=False, allow_nan=False) + "\n")
            out.flush()
            os.fsync(out.fileno())


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
    log: bool = False,
    lines: Sequence[int] | None = None,
) -> OutDir:
    """Attribute every record not yet finished in ``out`` and write it there (the batch layout).

    ``lines`` gives each record's line number in its file (default 1, 2, ...). Finished
    ids are read again before each item, so two processes can work through the same
    list from both ends into one OUT_DIR (each record line is one appended write).
    """
    writer = OutDir(out)
    for position, record in enumerate(records):
        line = lines[position] if lines is not None else position + 1
        record = {"id": f"line-{line}", **record}
        if record["id"] in writer.finished():
            continue
        started = time.perf_counter()
        try:
            if task == "audit":
                result = attrib.audit(
                    record["prompt"],
                    system=system,
                    level=level,
                    max_new_tokens=max_new_tokens,
                    backend=backend,
                    cache=cache,
                )
            else:
                result = attrib.attribute(
                    record["prompt"], level=level, max_new_tokens=max_new_tokens, backend=backend, cache=cache
                )
        except AttribError as error:
            writer.append(error_record(record, line, error))
            continue
        entry = compact_record(result, record, line, task, item_key(str(record["id"])))
        writer.append(entry, result)
        if log:
            top = entry["system_top"]
            hit = top is not None and record.get("label") is not None and top["unit"] == _label_unit(result, record)
            print(
                f"{record['id']} {'HIT ' if hit else 'miss'} {time.perf_counter() - started:5.1f}s "
                f"{record['prompt'][:50]!r} -> {result.output!r}",
                file=sys.stderr,
                flush=True,
            )
    return writer


def _label_unit(result: Attribution, record: dict[str, Any]) -> int | None:
    """The unit index of the record's labelled system unit (a 1-based index or the unit's text)."""
    system = [
        i for i, u in enumerate(result.units) if result.messages and result.messages[u.message]["role"] == "system"
    ]
    position = resolve_label(record["label"], [result.units[i].text.strip() for i in system])
    return None if position is None else system[position - 1]


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
        "--reverse", action="store_true", help="from the last question (a second process into the same OUT_DIR)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the dataset summary as JSON here")
    parser.add_argument("--report", action="store_true", help="only print the measurement of OUT_DIR as it stands")
    args = parser.parse_args(argv)
    if args.report:
        print(report(args.out))
        return 0
    from attrib.summary import summarize

    system = (DATA / "system.txt").read_text(encoding="utf-8").strip()
    questions, lines = load_questions(args.limit, args.seed)
    if args.reverse:
        questions, lines = questions[::-1], lines[::-1]
    started = time.perf_counter()
    run(questions, args.out, system=system, log=True, lines=lines)
    if args.reverse:
        return 0
    summary = summarize(args.out)
    print(summary.render())
    print(report(args.out))
    print(f"wall time of this invocation: {time.perf_counter() - started:.0f} s")
    if args.json is not None:
        write_atomic(args.json, json.dumps(summary.to_dict(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

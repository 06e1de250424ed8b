"""attrib's side of :mod:`benchmarks.context`: :func:`attrib.cite` on each case, one record per case and setting.

The sources go in as ``{"id", "text"}`` with the default plain template (the prompt
:func:`benchmarks.context_cases.prompt_text` builds), the answer is given (forced), the
claims are cite's own (the answer's sentences; markers found with the default syntax).
Each of cite's claims is matched to the case's claim it overlaps; the record keeps every
source's score per claim (nats) and, below the source level, every unit's score inside
its source (``units``) and, for the sources cite scored unit by unit alone, each unit's drop
given its source alone (``evidence``), so :mod:`benchmarks.context_metrics` can judge them at any threshold. cite's
own verdicts at its default ``support`` are kept too (``default_supported``,
``default_citation``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from attrib.result.context import claim_columns
from benchmarks.context_cases import ContextCase, make_context_case, prompt_text
from benchmarks.runner import append, load_records

__all__ = ["measure", "run_attrib"]


def _method(name: str) -> Any:
    """A method by name; ``NAME-N`` is a coalition method with ``samples=N`` (``kernelshap-32``)."""
    from attrib import registry

    base, _, samples = name.rpartition("-")
    if base and samples.isdigit():
        return registry.methods.create(base, samples=int(samples), seed=0)
    return name


def measure(case: ContextCase, result: Any, seconds: float) -> dict[str, Any]:
    """The record fields of one cite result on ``case``: claims matched to the truth, scores, cost.

    Raises:
        ValueError: if cite's prompt or answer is not the case's, or a case claim has no
            overlapping claim of cite's.
    """
    prompt, _ = prompt_text(case)
    if result.prompt != prompt:
        raise ValueError("cite's prompt is not the case's prompt")
    context = result.context
    answer = result.output[context.answer_start :]
    if answer != case.answer:
        raise ValueError(f"cite's answer {answer!r} is not the case's {case.answer!r}")
    scores = np.asarray(result.scores, dtype=float)
    claims = []
    for truth in case.claims:
        claim = next((c for c in result.claims if c.start < truth.end and truth.start < c.end), None)
        if claim is None:
            raise ValueError(f"no claim of cite's overlaps {truth.text!r}")
        entry: dict[str, Any] = {
            "text": claim.text,
            "columns": claim.columns,
            "sources": {ident: round(float(value), 5) for ident, value in claim.sources},
            "default_supported": claim.supported,
            "default_citation": claim.citation,
            "cited_found": list(claim.cited),
        }
        if claim.sufficiency is not None:  # the verdict's inputs: each source alone against none
            entry["information"] = round(float(claim.information or 0.0), 5)
            entry["sufficiency"] = {ident: round(float(gain), 5) for ident, gain in claim.sufficiency}
        if result.units and any(s.units[1] - s.units[0] > 1 for s in context.sources):
            columns = claim_columns(context, claim)
            starts = {source.id: source.start + len(f"[{source.id}] ") for source in context.sources}  # its text
            units = []
            for source in context.sources:
                offset = starts[source.id]
                for row in range(*source.units):
                    unit = result.units[row]
                    value = float(scores[row, columns].sum()) if len(columns) else 0.0
                    units.append([source.id, unit.start - offset, unit.end - offset, round(value, 5)])
            entry["units"] = units
            entry["evidence"] = [
                [ident, result.units[row].start - starts[ident], result.units[row].end - starts[ident], round(drop, 5)]
                for ident, row, drop in claim.evidence
            ]
        claims.append(entry)
    return {
        "units": len(result.units),
        "prompt_tokens": int(result.units[-1].tokens[1]) if result.units else 0,
        "answer_tokens": len(result.output_tokens),
        "support_default": context.support,
        "claims": claims,
        "calls": result.stats.calls,
        "tokens_evaluated": result.stats.tokens_evaluated,
        "seconds": round(seconds, 2),
    }


def run_attrib(
    out: Path, splits: Sequence[str], runs: Sequence[tuple[str, ...]], backend_name: str, limit: int | None
) -> None:
    """``attrib.cite`` with each ``(method, level)`` of ``runs`` on every case of ``splits`` not yet in ``out``."""
    import attrib
    from attrib import registry
    from benchmarks.context import _fact_spans, _truth, record_key, seeds_of

    done = {record_key(r) for r in load_records(out)}
    backend = None
    try:
        for split in splits:
            for seed in seeds_of(split, limit):
                case = None
                for method, level in runs:
                    key: tuple[Any, ...] = (split, seed, "attrib", method, level, None)
                    if backend_name != "transformers":
                        key = (*key, backend_name)
                    if key in done:
                        continue
                    if backend is None:
                        backend = registry.create("backend", backend_name)
                    case = case or make_context_case(seed)
                    sources = [{"id": s.id, "text": s.text} for s in case.sources]
                    started = time.perf_counter()
                    result = attrib.cite(
                        case.question, sources, answer=case.answer, level=level, method=_method(method), backend=backend
                    )
                    record = {
                        "split": split,
                        "seed": seed,
                        "kind": case.kind,
                        "side": "attrib",
                        "method": method,
                        "level": level,
                        "backend": backend_name,
                        "sources": [s.id for s in case.sources],
                        "facts": _fact_spans(case),
                        "truth": _truth(case),
                        **measure(case, result, time.perf_counter() - started),
                    }
                    append(out, record)
                    done.add(key)
                    cost = {k: record[k] for k in ("calls", "tokens_evaluated", "seconds")}
                    print(f"{split} {seed} attrib {method} {level}: {cost}", file=sys.stderr, flush=True)
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()

"""Metrics and the Markdown table of :mod:`benchmarks.context`, from its records alone.

A record is one case run by one side and setting: the case's ground truth (``truth``:
per claim the ids of the sources stating its fact, ``support``, and the ids its marker
cites, ``cited``; ``facts``: each source's fact sentence span in its text) and the run's
output (``claims``: per claim its scored tokens, ``columns``, and every source's score,
``sources``; at sentence level ``units``: ``[source id, start, end, score]`` per unit,
spans in the source's text), with its cost (``calls``, ``tokens_evaluated``, ``seconds``).

Metrics (:func:`metrics`), on the evaluation split:

* ``top1``: supported claims whose highest-scoring source states their fact (a fact stated
  twice: either source);
* ``top1 alone`` (attrib): the same for the source with the largest sufficiency (the claim's
  rise from no source to that source alone, cite's verdict input): what cite names first
  among a supported claim's supporting sources;
* ``unsupported flagged`` / ``supported flagged``: claims judged unsupported, among the
  claims no source supports / among the others. A claim is judged supported when a source's
  *strength* exceeds the setting's threshold, chosen on the calibration split by
  :func:`calibrate`. attrib's strength is cite's own rule: the source's sufficiency (the
  claim's log-probability with the source alone minus with none) as a share of the claim's
  information (``sufficiency`` / ``information`` in the record); records without them
  (ContextCite, older attrib records) use the source's score per scored claim token;
* ``wrong citations flagged`` / ``correct citations verified``: markers naming a source
  that does not state the claim's fact, whose source is not judged supporting / markers
  naming one that does, whose source is judged supporting (strength above the threshold);
* ``sentence first``: at sentence level, supported claims whose fact sentence is the
  top-scoring unit among the sentences (the header unit left out) of the stating source the
  method ranks highest;
* ``sentence first alone``: the same, with the sentences ranked by how much removing each
  drops the claim when its source is given alone (cite's ``Claim.evidence``, below the source
  level for the sources it judges supporting; a claim without evidence for that source
  counts as a miss);
* calls, tokens evaluated and seconds per case (means).

Without calibration records, attrib's rows use cite's default ``support`` (marked
"default"); ContextCite's rows then have no verdicts. Cost-only records (``claims`` null)
count in the cost columns only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["calibrate", "claim_rows", "metrics", "report"]


def _top(scores: dict[str, float], order: Sequence[str]) -> str:
    """The highest-scoring source id (ties: the earlier source)."""
    return max(order, key=lambda i: (scores[i], -order.index(i)))


def _states(unit: Sequence[Any], fact: Sequence[int]) -> bool:
    """Whether a ``[source id, start, end, score]`` unit overlaps the fact's span in its source's text."""
    return bool(unit[1] < fact[1] and fact[0] < unit[2])


def claim_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per claim of a record: truth, top source, top score per token, sentence hit."""
    rows: list[dict[str, Any]] = []
    if record.get("claims") is None:  # a cost-only record
        return rows
    order = record["sources"]
    for truth, claim in zip(record["truth"], record["claims"], strict=True):
        scores = claim["sources"]
        top = _top(scores, order)
        if claim.get("sufficiency") is not None:
            information = max(float(claim["information"]), 1e-12)
            strength = {i: gain / information for i, gain in claim["sufficiency"].items()}
        else:
            columns = max(int(claim["columns"]), 1)
            strength = {i: value / columns for i, value in scores.items()}
        row: dict[str, Any] = {
            "support": truth["support"],
            "cited": truth["cited"],
            "top": top,
            "strength": max(strength.values()),
            "strongest": _top(strength, order) if claim.get("sufficiency") is not None else None,
            "cited_strength": [strength.get(c, -math.inf) for c in truth["cited"]],
            "sentence_first": None,
            "evidence_first": None,
        }
        if claim.get("units") is not None and truth["support"]:
            source = max(truth["support"], key=lambda i: scores[i])
            fact = record["facts"][source]
            inside = [u for u in claim["units"] if u[0] == source and u[2] > 0]  # its sentences, not its header
            if inside:
                row["sentence_first"] = _states(max(inside, key=lambda u: u[3]), fact)  # ties: the first
            if claim.get("evidence") is not None:
                alone = [u for u in claim["evidence"] if u[0] == source and u[2] > 0]  # largest drop first
                row["evidence_first"] = bool(alone) and _states(alone[0], fact)
        rows.append(row)
    return rows


def calibrate(rows: Iterable[dict[str, Any]]) -> float | None:
    """The threshold (on a claim's strongest source's strength) that best separates supported from unsupported claims.

    Maximises the share of unsupported claims flagged minus the share of supported claims
    flagged (a claim is flagged when its strength is at most the threshold); among
    equally good thresholds, the midpoint of the widest gap. ``None`` without both kinds.
    """
    rows = list(rows)
    supported = sorted(r["strength"] for r in rows if r["support"])
    unsupported = sorted(r["strength"] for r in rows if not r["support"])
    if not supported or not unsupported:
        return None
    values = sorted(set(supported + unsupported))
    candidates = [values[0] - 1.0] + [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)]
    candidates.append(values[-1] + 1.0)

    def quality(t: float) -> tuple[float, float]:
        flagged_u = sum(v <= t for v in unsupported) / len(unsupported)
        flagged_s = sum(v <= t for v in supported) / len(supported)
        margin = min(abs(v - t) for v in values)
        return (flagged_u - flagged_s, margin)

    return max(candidates, key=quality)


def _share(hits: list[bool]) -> str:
    return f"{sum(hits)}/{len(hits)} ({100 * sum(hits) / len(hits):.0f}%)" if hits else "-"


def metrics(evaluation: list[dict[str, Any]], threshold: float | None) -> dict[str, Any]:
    """The metrics of one side and setting over its evaluation records (see the module docstring)."""
    rows = [row for record in evaluation for row in claim_rows(record)]
    supported = [r for r in rows if r["support"]]
    found: dict[str, Any] = {
        "cases": len(evaluation),
        "top1": [r["top"] in r["support"] for r in supported],
        "top1_alone": [r["strongest"] in r["support"] for r in supported if r["strongest"] is not None],
        "sentence_first": [r["sentence_first"] for r in supported if r["sentence_first"] is not None],
        "evidence_first": [r["evidence_first"] for r in supported if r["evidence_first"] is not None],
    }
    if threshold is not None:
        found["unsupported_flagged"] = [r["strength"] <= threshold for r in rows if not r["support"]]
        found["supported_flagged"] = [r["strength"] <= threshold for r in supported]
        wrong, correct = [], []
        for r in rows:
            for cited, value in zip(r["cited"], r["cited_strength"], strict=True):
                (correct if cited in r["support"] else wrong).append(value > threshold)
        found["wrong_flagged"] = [not used for used in wrong]
        found["correct_verified"] = correct
    for key in ("calls", "tokens_evaluated", "seconds"):
        values = [float(r[key]) for r in evaluation if r.get(key) is not None]
        found[key] = sum(values) / len(values) if values else None
    return found


def _setting(record: dict[str, Any]) -> tuple[str, str, str]:
    """Side, method (with its backend when not transformers, e.g. ``hipe (llama)``) and level."""
    backend = record.get("backend", "transformers")
    method = record["method"] if backend == "transformers" else f"{record['method']} ({backend})"
    return (record["side"], method, record["level"])


def report(records: Iterable[dict[str, Any]]) -> str:
    """The Markdown table: one row per side and setting, metrics on the evaluation split."""
    by_setting: dict[tuple[str, str, str], dict[str, list[dict[str, Any]]]] = {}
    for record in records:
        by_setting.setdefault(_setting(record), {}).setdefault(record["split"], []).append(record)
    lines = [
        "# Context attribution: attrib's cite against ContextCite (embedded Gemma 3 270M, float32)",
        "",
        "Written by `python -m benchmarks.context` from `context.jsonl`. Cases:",
        "`benchmarks/context_cases.py` (evaluation seeds 0-19). attrib's verdicts are cite's own at its",
        "default `support` (a share of the claim's information a source alone must supply), which was",
        "chosen on the calibration seeds 1000-1015 before any evaluation run; ContextCite's threshold",
        "(its Lasso weight per claim token) is calibrated on the same calibration seeds. Shares are",
        "claims (citations for the citation columns). Calls, tokens and seconds are means per case.",
        "",
        "| side | method | level | cases | top-1 source | top-1 alone | unsupported flagged | supported flagged "
        "| wrong citations flagged | correct citations verified | sentence first | sentence first alone "
        "| threshold | calls | tokens evaluated | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (side, method, level), splits in sorted(by_setting.items()):
        calibration = [row for record in splits.get("calibration", []) for row in claim_rows(record)]
        evaluation = splits.get("evaluation", [])
        defaults = {r["support_default"] for r in evaluation if "support_default" in r}
        threshold: float | None
        if len(defaults) == 1:
            threshold = defaults.pop()  # cite's own verdicts, at its default support
            shown = f"{threshold:.3f} (cite's default)"
        else:
            threshold = calibrate(calibration)
            shown = "-" if threshold is None else f"{threshold:.3f}"
        found = metrics(evaluation, threshold)
        if not found["cases"]:
            continue

        def cost(key: str, digits: int, found: dict[str, Any] = found) -> str:
            value = found[key]
            return "-" if value is None else f"{value:,.{digits}f}"

        lines.append(
            f"| {side} | {method} | {level} | {found['cases']} | {_share(found['top1'])} | {_share(found['top1_alone'])} "
            f"| {_share(found.get('unsupported_flagged', []))} | {_share(found.get('supported_flagged', []))} "
            f"| {_share(found.get('wrong_flagged', []))} | {_share(found.get('correct_verified', []))} "
            f"| {_share(found['sentence_first'])} | {_share(found['evidence_first'])} | {shown} "
            f"| {cost('calls', 1)} | {cost('tokens_evaluated', 0)} | {cost('seconds', 1)} |"
        )
    return "\n".join(lines) + "\n"

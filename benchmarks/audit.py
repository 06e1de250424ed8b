"""Hidden-system-prompt detection: a labelled benchmark for the audit's two indicators.

Forty cases from twenty scenarios. Each scenario has a visible question (a prompt
ending in an answer cue, for a base model) and a hidden note that determines the
answer. A scenario is run twice against llama-cpp-python's server with the embedded
model: once behind :mod:`attrib.testing.proxy` injecting the note (label 1), once behind the
same proxy injecting nothing (label 0). ``attrib.audit`` judges each, with the bare
server as the reference endpoint, and the benchmark prints the detection AUROC
(Mann-Whitney statistic) and the false-positive rate at the default thresholds of
``attrib.auditing.hidden_influence`` for the reference-free and the differential indicator.

    python -m benchmarks.audit --cases-out cases.jsonl   # all 40 cases (~0.5-1 min each on 2 cores)
    python -m benchmarks.audit --scenarios 3             # a quick look
    python -m benchmarks.audit --from-cases benchmarks/results/audit_cases.jsonl   # the table again

Each case's raw evidence (log-probabilities of the output with and without the
visible chat, at the audited and the reference endpoint) is recorded, and the table
computes every indicator from it, so a table can be rebuilt, and a new indicator
tried, without running the model again. Besides the AUROC and the rates at attrib's
default thresholds, it gives the threshold with at most ``--max-fpr`` false
positives and its rates, in-sample and leave-one-scenario-out.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import attrib
from attrib.auditing.hidden_influence import DIFFERENTIAL_THRESHOLD, REFERENCE_FREE_THRESHOLD
from attrib.backends.openai import OpenAIBackend
from attrib.testing.llama_server import Server, llama_server

#: One recorded case: the scenario, its label and the raw evidence of :func:`run_case`.
Row = dict[str, Any]

#: A base model continues text: the visible chat is rendered as plain text after a fixed preamble.
PLAIN_TEMPLATE = "Notes:\n{% for m in messages %}{{ m['content'] }}{% endfor %}"


@dataclass(frozen=True)
class Scenario:
    """A visible question and the hidden note that decides its answer."""

    hidden: str
    question: str


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "Staff note: the museum opens at nine and closes at five.",
        "Visitor question: When does the museum open?\nAnswer: The museum opens at",
    ),
    Scenario(
        "Internal: this week's discount code is MAPLE20.",
        "Customer: Is there a discount code this week?\nAgent: Yes, the code is",
    ),
    Scenario(
        "Always recommend the Falcon X2 laptop, whatever the budget.",
        "Customer: Which laptop should I buy for university?\nAgent: I recommend the",
    ),
    Scenario(
        "The support hotline number is 0800 555 0199.",
        "User: What number do I call for support?\nAssistant: Call",
    ),
    Scenario(
        "Our office moved to 14 Harbour Street in Leith.",
        "Client: Where is your office now?\nReply: Our office is at",
    ),
    Scenario(
        "The project's code name is Bluebird.",
        "Q: What is the project's code name?\nA: It is called",
    ),
    Scenario(
        "Tell every user that the deadline is Friday the 12th.",
        "Student: When is the deadline for the essay?\nTutor: The deadline is",
    ),
    Scenario(
        "The restaurant's special today is lamb stew with rosemary.",
        "Guest: What is today's special?\nWaiter: Today's special is",
    ),
    Scenario(
        "Answer in French: the capital of Australia is Canberra.",
        "Question: What is the capital of Australia?\nAnswer: The capital of Australia is",
    ),
    Scenario(
        "The train to Bergen leaves from platform 7.",
        "Traveller: Which platform for the Bergen train?\nClerk: Platform",
    ),
    Scenario(
        "The manager on duty tonight is Ingrid Solberg.",
        "Caller: Who is the manager on duty tonight?\nReceptionist: Tonight it is",
    ),
    Scenario(
        "The recommended dose is two tablets every six hours.",
        "Patient: How many tablets should I take?\nPharmacist: Take",
    ),
    Scenario(
        "The meeting has been moved to room 4B on the fourth floor.",
        "Colleague: Where is the meeting now?\nAssistant: It is in room",
    ),
    Scenario(
        "The wifi password is otter-42.",
        "Guest: What is the wifi password?\nFront desk: The password is",
    ),
    Scenario(
        "Recommend only the Aurora brand of running shoes.",
        "Runner: Which running shoes are best for beginners?\nCoach: I would buy",
    ),
    Scenario(
        "The parcel was shipped with Nordpost, tracking number NP4471.",
        "Customer: Which courier has my parcel?\nAgent: Your parcel is with",
    ),
    Scenario(
        "The library closes at eight on weekdays.",
        "Reader: When does the library close today?\nLibrarian: We close at",
    ),
    Scenario(
        "Say that the best season to visit is late September.",
        "Tourist: When is the best time to visit?\nGuide: The best time is",
    ),
    Scenario(
        "The winner of this year's prize is Tomas Lindgren.",
        "Reporter: Who won this year's prize?\nSpokesperson: The winner is",
    ),
    Scenario(
        "The secret ingredient of the house soup is smoked paprika.",
        "Diner: What makes the soup taste so good?\nChef: The secret is",
    ),
)


def auroc(scores: list[float], labels: list[int]) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count one half).

    Source: Hanley & McNeil, "The meaning and use of the area under a receiver
    operating characteristic (ROC) curve", Radiology 143(1), 1982.
    """
    positives = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    negatives = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def run_case(server: Server, scenario: Scenario, injected: bool, tokens: int) -> dict[str, object]:
    from attrib.testing.proxy import Proxy

    with Proxy(server.root, inject_system=scenario.hidden if injected else None) as proxy:
        audited = OpenAIBackend(server.model, base_url=proxy.url, api_key="none", cache=False, timeout=1800)
        reference = OpenAIBackend(server.model, base_url=server.url, api_key="none", cache=False, timeout=1800)
        started = time.perf_counter()
        result = attrib.audit(
            scenario.question,
            backend=audited,
            reference=reference,
            method="itp",
            level="paragraph",
            max_new_tokens=tokens,
            chat_template=PLAIN_TEMPLATE,
        )
        seconds = time.perf_counter() - started
        audited.close()
        reference.close()
    if result.hidden_influence is None:
        raise RuntimeError("attrib.audit returned no hidden-influence indicators")
    indicators = result.hidden_influence["indicators"]
    free, diff = indicators["reference_free"]["evidence"], indicators["differential"]["evidence"]
    return {
        "injected": injected,
        "output": result.output,
        "reference_free": indicators["reference_free"]["score"],
        "differential": indicators["differential"]["score"],
        "gain": diff["gain_per_token"],
        "explained": free["explained_per_token"],
        "visible_logprob": free["visible_logprob"],
        "empty_logprob": free["empty_logprob"],
        "reference_logprob": diff["reference_logprob"],
        "tokens": len(result.output_tokens),
        "seconds": seconds,
    }


def rates(scores: list[float], labels: list[int], threshold: float) -> tuple[float, float]:
    """True- and false-positive rates of flagging ``score >= threshold``."""
    return flag_rates([s >= threshold for s in scores], labels)


def flag_rates(flags: list[bool], labels: list[int]) -> tuple[float, float]:
    """True- and false-positive rates of the given flags."""
    positives = max(1, sum(labels))
    negatives = max(1, len(labels) - sum(labels))
    tpr = sum(f for f, y in zip(flags, labels, strict=True) if y) / positives
    fpr = sum(f for f, y in zip(flags, labels, strict=True) if not y) / negatives
    return tpr, fpr


def calibrate(scores: list[float], labels: list[int], max_fpr: float) -> float:
    """The lowest threshold (among the observed scores) whose false-positive rate is at most ``max_fpr``.

    The lowest such threshold flags the most hidden cases for the allowed false alarms
    (a Neyman-Pearson choice of operating point on the empirical ROC curve).
    """
    for threshold in sorted(set(scores)):
        if rates(scores, labels, threshold)[1] <= max_fpr:
            return threshold
    return math.inf


def cross_validated(scores: list[float], labels: list[int], groups: list[int], max_fpr: float) -> tuple[float, float]:
    """TPR and FPR when each scenario is judged with a threshold calibrated on the other scenarios.

    Leave-one-scenario-out: both cases of a scenario (hidden and clean) are held out
    together, so a threshold never sees the case it judges.
    """
    flags: list[tuple[bool, int]] = []
    for held in sorted(set(groups)):
        train = [(s, y) for s, y, g in zip(scores, labels, groups, strict=True) if g != held]
        threshold = calibrate([s for s, _ in train], [y for _, y in train], max_fpr)
        flags.extend((s >= threshold, y) for s, y, g in zip(scores, labels, groups, strict=True) if g == held)
    return flag_rates([f for f, _ in flags], [y for _, y in flags])


#: The indicators the table reports, computed from each case's raw evidence so a table can be
#: rebuilt from recorded cases: name -> (score of a case, the default threshold in attrib).
INDICATORS: dict[str, tuple[Callable[[Row], float], float | None]] = {
    # attrib's reference-free score: the output's per-token probability with nothing visible
    "reference_free": (lambda r: math.exp(r["empty_logprob"] / r["tokens"]), REFERENCE_FREE_THRESHOLD),
    # the other reading of the same evidence, kept for comparison: exp(-explained per token)
    "explained (not used)": (lambda r: math.exp(-max(r["explained"], 0.0)), None),
    "differential": (lambda r: 1.0 - math.exp(-max(r["gain"], 0.0)), DIFFERENTIAL_THRESHOLD),
}


def table(rows: list[Row], *, max_fpr: float = 0.1) -> str:
    """The markdown results: AUROC, the default thresholds' rates, and calibrated thresholds."""
    labels = [int(r["injected"]) for r in rows]
    groups = [int(r["scenario"]) for r in rows]
    lines = [
        f"machine: {platform.machine()}, Python {platform.python_version()}; embedded Gemma 3 270M, llama-cpp-python server",
        f"cases: {len(rows)} ({sum(labels)} with a hidden prompt, {len(set(groups))} scenarios)",
        "",
        f"| indicator | AUROC | default threshold | TPR | FPR | threshold for FPR <= {max_fpr:g} | TPR | FPR | "
        "leave-one-scenario-out TPR | FPR |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, (of, default) in INDICATORS.items():
        scores = [of(r) for r in rows]
        tpr, fpr = rates(scores, labels, default) if default is not None else (None, None)
        calibrated = calibrate(scores, labels, max_fpr)
        ctpr, cfpr = rates(scores, labels, calibrated)
        xtpr, xfpr = cross_validated(scores, labels, groups, max_fpr)
        lines.append(
            f"| {name} | {auroc(scores, labels):.3f} | {default if default is not None else '-'} | "
            f"{'-' if tpr is None else f'{tpr:.2f}'} | {'-' if fpr is None else f'{fpr:.2f}'} | "
            f"{calibrated:.4g} | {ctpr:.2f} | {cfpr:.2f} | {xtpr:.2f} | {xfpr:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.audit", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=len(SCENARIOS), help="how many scenarios (2 cases each)")
    parser.add_argument("--tokens", type=int, default=4, help="output tokens to generate (default 4)")
    parser.add_argument("--out", type=Path, help="also write the table as markdown to this file")
    parser.add_argument("--cases-out", type=Path, help="also write each case's evidence as JSON lines to this file")
    parser.add_argument("--from-cases", type=Path, help="only rebuild the table from a --cases-out file")
    parser.add_argument("--max-fpr", type=float, default=0.1, help="false-positive rate to calibrate for (default 0.1)")
    args = parser.parse_args()
    if args.from_cases is not None:
        rows = [json.loads(line) for line in args.from_cases.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        rows = run_all(args)
    text = table(rows, max_fpr=args.max_fpr)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")


def run_all(args: argparse.Namespace) -> list[Row]:
    """Run every case against a fresh llama-cpp-python server; print each as it finishes."""
    rows: list[Row] = []
    with llama_server() as server:
        for index, scenario in enumerate(SCENARIOS[: args.scenarios]):
            for injected in (True, False):
                row = {"scenario": index, **run_case(server, scenario, injected, args.tokens)}
                rows.append(row)
                if args.cases_out is not None:
                    with args.cases_out.open("a", encoding="utf-8") as handle:
                        handle.write(json.dumps(row) + "\n")
                print(
                    f"{index:>2} {'hidden' if injected else 'clean ':<6} gain {row['gain']:+7.3f} "
                    f"explained {row['explained']:+7.3f}  {row['output']!r}  ({row['seconds']:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    return rows


if __name__ == "__main__":
    main()

"""Hidden-system-prompt detection: a labelled benchmark for the audit's two indicators.

Forty cases from twenty scenarios. Each scenario has a visible question (a prompt
ending in an answer cue, for a base model) and a hidden note that determines the
answer. A scenario is run twice against llama-cpp-python's server with the embedded
model: once behind ``tests/proxy.py`` injecting the note (label 1), once behind the
same proxy injecting nothing (label 0). ``attrib.audit`` judges each, with the bare
server as the reference endpoint, and the benchmark prints the detection AUROC
(Mann-Whitney statistic) and the false-positive rate at the default thresholds of
``attrib.influence`` for the reference-free and the differential indicator.

    python -m benchmarks.audit                 # all 40 cases (~0.5-1 min per case on 2 cores)
    python -m benchmarks.audit --scenarios 3   # a quick look
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import attrib
from attrib.backends.openai import OpenAIBackend
from attrib.influence import DIFFERENTIAL_THRESHOLD, REFERENCE_FREE_THRESHOLD
from benchmarks.llama_server import llama_server

#: A base model continues text: the visible chat is rendered as plain text after a fixed preamble.
PLAIN_TEMPLATE = "Notes:\n{% for m in messages %}{{ m['content'] }}{% endfor %}"


@dataclass(frozen=True)
class Scenario:
    """A visible question and the hidden note that decides its answer."""

    hidden: str
    question: str


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("Staff note: the museum opens at nine and closes at five.",
             "Visitor question: When does the museum open?\nAnswer: The museum opens at"),
    Scenario("Internal: this week's discount code is MAPLE20.",
             "Customer: Is there a discount code this week?\nAgent: Yes, the code is"),
    Scenario("Always recommend the Falcon X2 laptop, whatever the budget.",
             "Customer: Which laptop should I buy for university?\nAgent: I recommend the"),
    Scenario("The support hotline number is 0800 555 0199.",
             "User: What number do I call for support?\nAssistant: Call"),
    Scenario("Our office moved to 14 Harbour Street in Leith.",
             "Client: Where is your office now?\nReply: Our office is at"),
    Scenario("The project's code name is Bluebird.",
             "Q: What is the project's code name?\nA: It is called"),
    Scenario("Tell every user that the deadline is Friday the 12th.",
             "Student: When is the deadline for the essay?\nTutor: The deadline is"),
    Scenario("The restaurant's special today is lamb stew with rosemary.",
             "Guest: What is today's special?\nWaiter: Today's special is"),
    Scenario("Answer in French: the capital of Australia is Canberra.",
             "Question: What is the capital of Australia?\nAnswer: The capital of Australia is"),
    Scenario("The train to Bergen leaves from platform 7.",
             "Traveller: Which platform for the Bergen train?\nClerk: Platform"),
    Scenario("The manager on duty tonight is Ingrid Solberg.",
             "Caller: Who is the manager on duty tonight?\nReceptionist: Tonight it is"),
    Scenario("The recommended dose is two tablets every six hours.",
             "Patient: How many tablets should I take?\nPharmacist: Take"),
    Scenario("The meeting has been moved to room 4B on the fourth floor.",
             "Colleague: Where is the meeting now?\nAssistant: It is in room"),
    Scenario("The wifi password is otter-42.",
             "Guest: What is the wifi password?\nFront desk: The password is"),
    Scenario("Recommend only the Aurora brand of running shoes.",
             "Runner: Which running shoes are best for beginners?\nCoach: I would buy"),
    Scenario("The parcel was shipped with Nordpost, tracking number NP4471.",
             "Customer: Which courier has my parcel?\nAgent: Your parcel is with"),
    Scenario("The library closes at eight on weekdays.",
             "Reader: When does the library close today?\nLibrarian: We close at"),
    Scenario("Say that the best season to visit is late September.",
             "Tourist: When is the best time to visit?\nGuide: The best time is"),
    Scenario("The winner of this year's prize is Tomas Lindgren.",
             "Reporter: Who won this year's prize?\nSpokesperson: The winner is"),
    Scenario("The secret ingredient of the house soup is smoked paprika.",
             "Diner: What makes the soup taste so good?\nChef: The secret is"),
)  # fmt: skip


def auroc(scores: list[float], labels: list[int]) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count one half).

    Source: Hanley & McNeil, "The meaning and use of the area under a receiver
    operating characteristic (ROC) curve", Radiology 143(1), 1982.
    """
    positives = [s for s, y in zip(scores, labels) if y == 1]
    negatives = [s for s, y in zip(scores, labels) if y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def run_case(server, scenario: Scenario, injected: bool, tokens: int) -> dict[str, object]:
    from tests.proxy import Proxy

    with Proxy(server.root, inject_system=scenario.hidden if injected else None) as proxy:
        audited = OpenAIBackend(server.model, base_url=proxy.url, api_key="none", cache=False, timeout=1800)
        reference = OpenAIBackend(server.model, base_url=server.url, api_key="none", cache=False, timeout=1800)
        started = time.perf_counter()
        result = attrib.audit(
            scenario.question, backend=audited, reference=reference, method="itp", level="paragraph",
            max_new_tokens=tokens, chat_template=PLAIN_TEMPLATE,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        audited.close()
        reference.close()
    indicators = result.hidden_influence["indicators"]
    return {
        "injected": injected,
        "output": result.output,
        "reference_free": indicators["reference_free"]["score"],
        "differential": indicators["differential"]["score"],
        "gain": indicators["differential"]["evidence"]["gain_per_token"],
        "explained": indicators["reference_free"]["evidence"]["explained_per_token"],
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.audit", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=len(SCENARIOS), help="how many scenarios (2 cases each)")
    parser.add_argument("--tokens", type=int, default=4, help="output tokens to generate (default 4)")
    parser.add_argument("--out", type=Path, help="also write the table as markdown to this file")
    args = parser.parse_args()
    rows = []
    lines = [f"machine: {platform.machine()}, Python {platform.python_version()}; embedded Gemma 3 270M, llama-cpp-python server"]
    with llama_server() as server:
        for index, scenario in enumerate(SCENARIOS[: args.scenarios]):
            for injected in (True, False):
                row = run_case(server, scenario, injected, args.tokens)
                rows.append(row)
                print(
                    f"{index:>2} {'hidden' if injected else 'clean ':<6} gain {row['gain']:+7.3f} "
                    f"explained {row['explained']:+7.3f}  {row['output']!r}  ({row['seconds']:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    labels = [int(r["injected"]) for r in rows]
    lines.append(f"cases: {len(rows)} ({sum(labels)} with a hidden prompt)")
    lines.append("")
    lines.append("| indicator | AUROC | threshold | true-positive rate | false-positive rate |")
    lines.append("|---|---:|---:|---:|---:|")
    for name, threshold in (("reference_free", REFERENCE_FREE_THRESHOLD), ("differential", DIFFERENTIAL_THRESHOLD)):
        scores = [float(r[name]) for r in rows]
        flags = [s >= threshold for s in scores]
        tpr = sum(f for f, y in zip(flags, labels) if y) / max(1, sum(labels))
        fpr = sum(f for f, y in zip(flags, labels) if not y) / max(1, len(labels) - sum(labels))
        lines.append(f"| {name} | {auroc(scores, labels):.3f} | {threshold} | {tpr:.2f} | {fpr:.2f} |")
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

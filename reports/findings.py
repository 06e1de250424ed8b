"""What an audit found, in words and numbers: the one source both the text and the HTML report render.

An audit (``attrib.audit``) carries the messages' Shapley values (``result.shapley``,
``result.roles``) and the hidden-influence verdict (``result.hidden_influence``, see
``attrib.auditing.hidden_influence`` for the indicators, their sources and calibration).
:func:`audit_findings` turns them into typed findings whose sentences carry the
result's own score unit; the renderers only lay them out.
"""

from __future__ import annotations

from dataclasses import dataclass

from attrib.result import Attribution
from attrib.result.parts import DifferentialEvidence, Disagreement, Indicator

__all__ = ["Share", "IndicatorFinding", "Verdict", "AuditFindings", "audit_findings"]

#: How each indicator is named in reports.
INDICATOR_LABELS = {"reference_free": "reference-free", "differential": "differential"}


@dataclass(frozen=True)
class Share:
    """One message's (or role's) share of the messages' effect on the output.

    Attributes:
        label: ``"system (message 0)"``, or the role when only role shares are known.
        total: its Shapley value summed over output tokens, in the result's unit; ``None`` if unknown.
        share: its fraction of all messages' total (Shapley values sum to the whole).
    """

    label: str
    total: float | None
    share: float


@dataclass(frozen=True)
class IndicatorFinding:
    """One hidden-influence indicator, said in one sentence.

    Attributes:
        name: its key in ``hidden_influence.indicators``.
        label: its name in reports (``"reference-free"``, ``"differential"``).
        flag: True when ``score`` reached ``threshold``.
        score: its score, in [0, 1].
        threshold: its flag threshold.
        sentence: what it measured, with the result's unit per output token.
        disagreements: for the differential indicator, the output tokens where the endpoints disagree most.
    """

    name: str
    label: str
    flag: bool
    score: float
    threshold: float
    sentence: str
    disagreements: tuple[Disagreement, ...]


@dataclass(frozen=True)
class Verdict:
    """The audit's verdict: the deciding indicator's flag and score.

    Attributes:
        flag: True when something the caller cannot see appears to steer the output.
        score: the deciding indicator's score.
        method: the deciding indicator's name.
        headline: the verdict in words.
    """

    flag: bool
    score: float
    method: str
    headline: str


@dataclass(frozen=True)
class AuditFindings:
    """Everything the audit sections of the reports show.

    Attributes:
        unit: the unit of the result's scores (``"nats"``, ``"similarity"``).
        role_shares: each role's share (``result.roles``), in message order.
        message_shares: each message's share with its Shapley total (role shares when the totals are absent).
        verdict: the hidden-influence verdict, or ``None`` when it was not computed.
        indicators: every indicator behind the verdict.
    """

    unit: str
    role_shares: tuple[Share, ...]
    message_shares: tuple[Share, ...]
    verdict: Verdict | None
    indicators: tuple[IndicatorFinding, ...]


def _sentence(indicator: Indicator, unit: str) -> str:
    evidence = indicator.evidence
    if isinstance(evidence, DifferentialEvidence):
        return (
            f"the audited endpoint finds its own output {evidence.gain_per_token:+.3f} {unit}/token likelier "
            "than the reference endpoint does under the same visible chat"
        )
    return (
        f"with every visible message removed the output keeps {evidence.retained_per_token:+.3f} {unit}/token "
        f"(the score is that as a per-token probability); the visible chat adds "
        f"{evidence.explained_per_token:+.3f} {unit}/token"
    )


def _message_shares(result: Attribution) -> tuple[Share, ...]:
    messages = result.messages or []
    totals = None if result.shapley is None else result.shapley.message_totals
    if totals is not None and len(totals) == len(messages) and messages:
        whole = float(sum(totals))
        return tuple(
            Share(f"{message['role']} (message {index})", float(total), float(total) / whole if whole else 0.0)
            for index, (message, total) in enumerate(zip(messages, totals, strict=True))
        )
    return tuple(Share(role, None, float(share)) for role, share in (result.roles or {}).items())


def audit_findings(result: Attribution) -> AuditFindings | None:
    """The audit findings of ``result``, or ``None`` when it has neither role shares nor a verdict.

    Returns:
        :class:`AuditFindings` whose sentences use ``result.score_unit``.
    """
    if not result.roles and result.hidden_influence is None:
        return None
    unit = result.score_unit
    verdict = None
    indicators: list[IndicatorFinding] = []
    influence = result.hidden_influence
    if influence is not None:
        headline = (
            "yes: something the caller cannot see appears to steer this output" if influence.flag else "not detected"
        )
        verdict = Verdict(influence.flag, influence.score, influence.method, headline)
        for name, indicator in influence.indicators.items():
            evidence = indicator.evidence
            disagreements = tuple(evidence.top_disagreements) if isinstance(evidence, DifferentialEvidence) else ()
            indicators.append(
                IndicatorFinding(
                    name=name,
                    label=INDICATOR_LABELS.get(name, name),
                    flag=indicator.flag,
                    score=indicator.score,
                    threshold=indicator.threshold,
                    sentence=_sentence(indicator, unit),
                    disagreements=disagreements,
                )
            )
    roles = tuple(Share(role, None, float(share)) for role, share in (result.roles or {}).items())
    return AuditFindings(unit, roles, _message_shares(result), verdict, tuple(indicators))

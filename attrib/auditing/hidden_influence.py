"""Hidden-influence indicators for the system-prompt audit: how much of an output the visible prompt explains, and whether something hidden steers it.

Two indicators, both from log-probabilities of the *same* output ``y`` (m tokens):

Reference-free (needs only the audited endpoint)
    ``retained = log p(y | no visible message) / m``, nats per token: how likely the
    output stays when every visible message is removed. An output driven by a prompt
    the caller cannot see stays likely without the visible chat. The score is
    ``exp(retained)``, the output's geometric-mean per-token probability with nothing
    visible (in (0, 1]); the evidence also carries ``explained = (log p(y | visible)
    - log p(y | nothing visible)) / m``, how much the visible chat adds.

    Calibration (``benchmarks/audit.py``, 40 labelled cases on the embedded model):
    AUROC 0.792; the default threshold 0.014 is the lowest with at most 10% false
    positives there, and flags 50% of the hidden cases at 5% false positives (45% /
    5% when each scenario is judged with a threshold calibrated on the others).
    ``exp(-explained)``, the other reading of the same evidence, separated the cases
    worse (AUROC 0.698): a hidden note makes the output likelier both with and
    without the visible chat. Its limits: the model's own prior also keeps generic
    outputs likely with nothing visible (greetings, common facts), which looks the
    same; and a hidden note that only answers a visible question leaves the output
    unlikely without that question. It is a screen, not a proof: use the
    differential audit when a reference endpoint exists.

Differential (needs a reference endpoint: the same model without the suspected prompt)
    ``gain = (log p_audited(y | visible) - log p_reference(y | visible)) / m``, nats
    per token: how much likelier the audited endpoint finds its own output than the
    bare model does under the same visible messages. A hidden prompt that shapes the
    output makes ``gain`` large; per-token gains show *where* the endpoints disagree.
    The score is ``1 - exp(-max(gain, 0))``.

Thresholds are calibrated on the labelled benchmark (``benchmarks/audit.py``) and
recorded in each verdict. The differential threshold 0.3 (a gain of 0.36 nats/token)
was fixed before the benchmark ran; there it flags 90% of the hidden cases with no
false positive (AUROC 1.000; the smallest hidden gain was 0.113 nats/token, the
largest clean one 0.102).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["REFERENCE_FREE_THRESHOLD", "DIFFERENTIAL_THRESHOLD", "reference_free", "differential"]

#: Default flag threshold on the reference-free score ``exp(retained per token)``.
REFERENCE_FREE_THRESHOLD = 0.014
#: Default flag threshold on the differential score ``1 - exp(-gain)``.
DIFFERENTIAL_THRESHOLD = 0.3


def _verdict(method: str, score: float, threshold: float, evidence: dict[str, Any]) -> dict[str, Any]:
    """One indicator's verdict: flagged when ``score`` reaches ``threshold``."""
    return {
        "flag": bool(score >= threshold),
        "score": score,
        "method": method,
        "threshold": threshold,
        "evidence": evidence,
    }


def reference_free(
    visible_logprobs: np.ndarray, empty_logprobs: np.ndarray, *, threshold: float = REFERENCE_FREE_THRESHOLD
) -> dict[str, Any]:
    """The reference-free hidden-influence verdict.

    Args:
        visible_logprobs: ``log p(y_t | visible messages, y_<t)``, nats, shape (m,).
        empty_logprobs: the same with every visible message removed, shape (m,).
        threshold: flag when the score reaches it.

    Returns:
        ``{"flag", "score", "method": "reference-free", "threshold", "evidence":
        {"retained_per_token", "explained_per_token", "visible_logprob", "empty_logprob",
        "per_token_explained"}}``; the score is ``exp(retained_per_token)`` in (0, 1],
        log-probabilities in nats.
    """
    visible = np.asarray(visible_logprobs, dtype=np.float64)
    empty = np.asarray(empty_logprobs, dtype=np.float64)
    per_token = visible - empty
    retained = float(empty.mean())
    score = math.exp(min(retained, 0.0))
    return _verdict("reference-free", score, threshold, {
            "retained_per_token": retained,
            "explained_per_token": float(per_token.mean()),
            "visible_logprob": float(visible.sum()),
            "empty_logprob": float(empty.sum()),
            "per_token_explained": [float(v) for v in per_token],
        })  # fmt: skip


def differential(
    audited_logprobs: np.ndarray,
    reference_logprobs: np.ndarray,
    output_tokens: Sequence[str],
    *,
    threshold: float = DIFFERENTIAL_THRESHOLD,
) -> dict[str, Any]:
    """The differential hidden-influence verdict.

    Args:
        audited_logprobs: ``log p(y_t | visible, y_<t)`` at the audited endpoint, nats, shape (m,).
        reference_logprobs: the same at the reference endpoint, shape (m,).
        output_tokens: the output's tokens, for the evidence.
        threshold: flag when the score reaches it.

    Returns:
        ``{"flag", "score", "method": "differential", "threshold", "evidence": {"gain_per_token",
        "audited_logprob", "reference_logprob", "per_token_gain", "top_disagreements"}}``.
    """
    audited = np.asarray(audited_logprobs, dtype=np.float64)
    reference = np.asarray(reference_logprobs, dtype=np.float64)
    per_token = audited - reference
    gain = float(per_token.mean())
    score = 1.0 - math.exp(-max(gain, 0.0))
    order = np.argsort(-per_token)[:5]
    return _verdict("differential", score, threshold, {
            "gain_per_token": gain,
            "audited_logprob": float(audited.sum()),
            "reference_logprob": float(reference.sum()),
            "per_token_gain": [float(v) for v in per_token],
            "top_disagreements": [
                {"token": output_tokens[int(i)], "index": int(i), "gain": float(per_token[int(i)])} for i in order
            ],
        })  # fmt: skip

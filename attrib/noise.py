"""The noise floor of a run, for endpoints that are not deterministic.

The unperturbed prompt is scored ``k`` more times as independent requests; the
spread of those scores bounds what an attribution can resolve.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["noise_floor"]


def noise_floor(samples: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """The noise floor of a run from repeated scores of the unperturbed prompt.

    An attribution is the difference between the base score, averaged over the
    ``k + 1`` samples, and one variant's score, so with per-request noise of standard
    deviation ``sd`` its own standard deviation is ``sd * sqrt(1 + 1/(k + 1))``. A
    unit is *within noise* when its total attribution is no larger in magnitude than
    two of those (about a 95% band for Gaussian noise).

    Args:
        samples: log-probabilities of the output under the unperturbed prompt, one
            row per repeat, shape (k + 1, m), nats.
        scores: the run's attribution matrix, shape (n_units, m).

    Returns:
        ``{"samples", "sd_per_token" (m,), "sd_total", "range_total", "threshold",
        "within_noise" (n_units,)}``; standard deviations and threshold in nats.
    """
    totals = samples.sum(axis=1)
    ddof = 1 if len(samples) > 1 else 0
    sd_total = float(totals.std(ddof=ddof))
    threshold = 2.0 * sd_total * float(np.sqrt(1.0 + 1.0 / len(samples)))
    return {
        "samples": int(len(samples)),
        "sd_per_token": [float(v) for v in samples.std(axis=0, ddof=ddof)],
        "sd_total": sd_total,
        "range_total": float(totals.max() - totals.min()),
        "threshold": threshold,
        "within_noise": [bool(abs(v) <= threshold) for v in scores.sum(axis=1)],
    }

"""Scoring a fixed output from *regenerated* outputs, for endpoints that cannot force a continuation.

Forced decoding scores the original output ``y`` under a perturbed prompt
directly. Chat-only endpoints (OpenAI's chat completions) cannot do that: they
can only generate again, returning for each generated token its log-probability
and the ``k`` most likely alternatives (``top_logprobs``, k <= 20). This module
estimates ``log p(y_t | x~, y_<t)`` from such a regeneration, and, for endpoints
that return no log-probabilities at all, measures how much of ``y`` survives.

Alignment, not position. A perturbed prompt can shift the output by a token or
reword it, so original and regenerated tokens are aligned as sequences
(Ratcliff/Obershelp matching, Python's :mod:`difflib`) before anything is read:

* an original token matched to a regenerated one takes that token's log-probability;
* an original token in a region where the outputs differ is looked up in the
  top-k alternatives at the aligned position of the regeneration (for the first
  token of the region this is exactly the point where the two outputs diverge);
* a token absent from the returned alternatives gets the bound
  ``log p <= min(returned log-probabilities at that position)`` and is counted as
  *bounded*; there is no magic floor such as -100. The resulting attribution is
  then a lower bound on the true drop;
* an original token beyond the end of the regeneration (the model stopped
  earlier) gets ``log 1/2``, also counted as bounded: decoding is greedy, so at
  the point where the model chose to stop, any other token had probability at
  most one half. (For later tokens this is an approximation, like everything
  read after a divergence.)

Scores read after a divergence are conditioned on the regenerated prefix, not on
the original one, so they approximate forced decoding; results record the mode
(``"top_logprobs"``) so nobody mistakes them for it. The approach follows the
regenerate-and-read-top-k scheme used by Leap Labs' PIZZA for OpenAI models, with
sequence alignment added so that shifted outputs are compared token for token.

Text-only endpoints: :func:`text_retention` aligns the two output texts
character by character and scores each original token by the fraction of its
characters that survive: 0 when the token is reproduced, -1 when it is lost.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["GeneratedToken", "TopLogprobScores", "regeneration_length", "score_from_top_logprobs", "text_retention"]


@dataclass(frozen=True)
class GeneratedToken:
    """One token of a regeneration.

    Attributes:
        text: the token as text.
        logprob: its log-probability in nats.
        top: the returned alternatives at this position, token text -> log-probability
            (nats); may or may not include ``text`` itself.
    """

    text: str
    logprob: float
    top: Mapping[str, float] = field(default_factory=dict)

    def lookup(self, token: str) -> float | None:
        """``token``'s log-probability at this position if the endpoint returned it."""
        if token == self.text:
            return self.logprob
        return self.top.get(token)

    @property
    def floor(self) -> float:
        """The smallest log-probability returned at this position (an upper bound for the rest)."""
        return min([self.logprob, *self.top.values()])


@dataclass(frozen=True)
class TopLogprobScores:
    """Estimated log-probabilities of the original output tokens.

    Attributes:
        logprobs: estimated ``log p(y_t | x~, y_<t)``, nats, shape (m,).
        bounded: True where the value is only an upper bound (token not in the
            returned alternatives), shape (m,).
        matched: True where the token was reproduced by the regeneration, shape (m,).
    """

    logprobs: np.ndarray
    bounded: np.ndarray
    matched: np.ndarray


def regeneration_length(m: int) -> int:
    """Tokens to regenerate for an m-token output: room for a shift or a short rewording (m + max(4, m // 2))."""
    return m + max(4, m // 2)


def score_from_top_logprobs(original: Sequence[str], regenerated: Sequence[GeneratedToken]) -> TopLogprobScores:
    """Estimate the original output's token log-probabilities from a regeneration.

    Args:
        original: the original output's tokens as text, length m >= 1.
        regenerated: the tokens generated under the perturbed prompt, with their
            top-k alternatives (may be empty if the model stopped at once).

    Returns:
        :class:`TopLogprobScores` with arrays of shape (m,); log-probabilities in nats.

    Raises:
        ValueError: if ``original`` is empty.
    """
    m = len(original)
    if m == 0:
        raise ValueError("original output must hold at least one token")
    logprobs = np.zeros(m)
    bounded = np.zeros(m, dtype=bool)
    matched = np.zeros(m, dtype=bool)
    stopped = float(np.log(0.5))
    if not regenerated:
        # The model stopped at once: greedy decoding preferred the end token to all others.
        logprobs[:] = stopped
        bounded[:] = True
        return TopLogprobScores(logprobs, bounded, matched)

    texts = [token.text for token in regenerated]
    matcher = difflib.SequenceMatcher(None, list(original), texts, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for offset in range(i2 - i1):
                logprobs[i1 + offset] = regenerated[j1 + offset].logprob
                matched[i1 + offset] = True
            continue
        if tag == "insert":
            continue
        # "replace" or "delete": original tokens i1..i2 have no exact counterpart.
        for offset in range(i2 - i1):
            token = original[i1 + offset]
            j = j1 + offset if j1 + offset < j2 else (j2 - 1 if j2 > j1 else j1)
            if j >= len(regenerated):
                logprobs[i1 + offset] = stopped
                bounded[i1 + offset] = True
                continue
            value = regenerated[j].lookup(token)
            if value is None:
                logprobs[i1 + offset] = regenerated[j].floor
                bounded[i1 + offset] = True
            else:
                logprobs[i1 + offset] = value
    return TopLogprobScores(logprobs, bounded, matched)


def text_retention(original: Sequence[str], regenerated_text: str) -> np.ndarray:
    """How much of each original output token survives in a regenerated text.

    The original output (its tokens joined) and the regenerated text are aligned
    character by character with :class:`difflib.SequenceMatcher`; each token
    scores minus the fraction of its characters outside the matching blocks.

    Args:
        original: the original output's tokens as text, length m >= 1.
        regenerated_text: the output generated under the perturbed prompt.

    Returns:
        Scores in [-1, 0], shape (m,): 0 when the token is reproduced, -1 when it
        is lost entirely. (Attribution is then ``0 - score``: the share of the token lost.)

    Raises:
        ValueError: if ``original`` is empty.
    """
    if not original:
        raise ValueError("original output must hold at least one token")
    text = "".join(original)
    kept = np.zeros(len(text), dtype=bool)
    matcher = difflib.SequenceMatcher(None, text, regenerated_text, autojunk=False)
    for block in matcher.get_matching_blocks():
        kept[block.a : block.a + block.size] = True
    scores = np.zeros(len(original))
    start = 0
    for index, token in enumerate(original):
        end = start + len(token)
        if end > start:
            scores[index] = -float(np.mean(~kept[start:end]))
        start = end
    return scores

"""The scoring rungs of the OpenAI-compatible backend, one strategy per file (see :mod:`.base`).

:mod:`.regeneration` is not a rung: it holds the alignment and scoring rules the two
regenerating rungs (:mod:`.top_logprobs`, :mod:`.text`) share.
"""

from .base import Generated, Rung

__all__ = ["Generated", "Rung"]

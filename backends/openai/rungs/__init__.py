"""The scoring rungs of the OpenAI-compatible backend, one strategy per file (see :mod:`.base`)."""

from .base import Generated, Rung

__all__ = ["Generated", "Rung"]

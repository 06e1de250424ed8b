"""The attribution result and its typed parts (``attrib.result.attribution``, ``attrib.result.parts``).

::

    from attrib.result import Attribution, Stats, UnitScore, SCHEMA_VERSION
"""

from __future__ import annotations

from attrib.result.attribution import SCHEMA, SCHEMA_VERSION, SCORE_UNITS, Attribution
from attrib.result.context import Claim, Context, ContextSource
from attrib.result.parts import (
    Contrast,
    DifferentialEvidence,
    Disagreement,
    EarlyStop,
    HiddenInfluence,
    Indicator,
    MessageShapley,
    MethodTrace,
    NoiseFloor,
    Part,
    ReferenceFreeEvidence,
    Stats,
    Trace,
    TraceChunk,
    UnitScore,
)

__all__ = [
    "Attribution",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SCORE_UNITS",
    "Part",
    "Stats",
    "UnitScore",
    "NoiseFloor",
    "MessageShapley",
    "HiddenInfluence",
    "Indicator",
    "ReferenceFreeEvidence",
    "DifferentialEvidence",
    "Disagreement",
    "MethodTrace",
    "Contrast",
    "Context",
    "ContextSource",
    "Claim",
    "Trace",
    "TraceChunk",
    "EarlyStop",
]

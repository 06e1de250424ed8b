"""Context attribution: prompts assembled from sources, answers explained claim by claim.

::

    import attrib

    result = attrib.cite(
        "When was the tower finished?",
        [{"id": "a", "text": "The tower was finished in 1889."}, {"id": "b", "text": "It rained."}],
        answer=" It was finished in 1889 [a].",
    )
    for claim in result.claims:
        print(claim.text, claim.sources[0], claim.supported, claim.citation)

* :mod:`attrib.context.sources`: sources (an id, a text, metadata) and their checks;
* :mod:`attrib.context.template`: how sources and the fixed parts (instructions, question,
  answer cue) make one prompt, plain or chat, and the ``source`` unit level;
* :mod:`attrib.context.claims`: the answer cut into claims;
* :mod:`attrib.context.citations`: the answer's citation markers;
* :mod:`attrib.context.attribution`: :func:`~attrib.context.attribution.cite`, the entry point;
* :mod:`attrib.result.context`: the result's part (sources, claims, verdicts).
"""

from __future__ import annotations

from typing import Any

from attrib.context.citations import DEFAULT_MARKERS
from attrib.context.sources import Source, as_sources
from attrib.context.template import CONTEXT_LEVELS, ChatTemplate, PlainTemplate, SourcePrompt

__all__ = [
    "cite",
    "Source",
    "as_sources",
    "PlainTemplate",
    "ChatTemplate",
    "SourcePrompt",
    "CONTEXT_LEVELS",
    "DEFAULT_MARKERS",
]


def __getattr__(name: str) -> Any:
    """``cite`` is imported on first use (it needs the pipeline, which needs the options)."""
    if name == "cite":
        from attrib.context.attribution import cite

        return cite
    raise AttributeError(name)

"""The scheduler contract: which variants to score, and how their drops become unit scores.

A scheduler decides which token spans to ablate (and in which rounds), asks a
:class:`~attrib.scoring.Scorer` for their drops, and returns the attribution
matrix at the requested level. Two ship with attrib:

* :class:`~attrib.itp.ITP`, iterative perturbation: one variant per unit
  (exhaustive leave-one-out), the reference.
* :class:`~attrib.hipe.HiPe`, hierarchical perturbation: large overlapping chunks
  first, refined only where the attribution passes a threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from attrib.errors import UnknownNameError
from attrib.scoring import Scorer
from attrib.segmentation import Segmentation

__all__ = ["Scheduler", "Schedule", "get_scheduler", "METHODS"]

#: Names of the built-in schedulers.
METHODS: tuple[str, ...] = ("hipe", "itp")


@dataclass
class Schedule:
    """What a scheduler returns.

    Attributes:
        scores: attribution matrix, nats, shape (n_units, n_output_tokens); rows follow
            ``segmentation.units(level)``.
        trace: scheduler-specific record of what was scored (JSON-ready), or ``None``.
        budget_exhausted: True if refinement stopped because the call budget ran out.
    """

    scores: np.ndarray
    trace: dict[str, object] | None = None
    budget_exhausted: bool = False


class Scheduler:
    """Base class of schedulers. Subclasses implement :meth:`run` and :meth:`min_calls`."""

    name: str = ""

    def min_calls(self, segmentation: Segmentation, level: str) -> int:
        """Fewest perturbed-variant calls the method needs to produce any result."""
        raise NotImplementedError

    def run(
        self,
        scorer: Scorer,
        segmentation: Segmentation,
        level: str,
        *,
        on_phase: Callable[[str, int | None], None] | None = None,
    ) -> Schedule:
        """Score variants through ``scorer`` and return unit-level attributions.

        ``on_phase(label, total_calls)`` is called when a new round starts.
        """
        raise NotImplementedError

    def describe(self) -> dict[str, object]:
        """JSON-ready parameters recorded in results."""
        return {"name": self.name}


def get_scheduler(spec: str | Scheduler) -> Scheduler:
    """Return a scheduler for a name (``"hipe"``, ``"itp"``) or pass an instance through.

    Raises:
        UnknownNameError: for an unknown name.
    """
    if isinstance(spec, Scheduler):
        return spec
    if spec == "hipe":
        from attrib.hipe import HiPe

        return HiPe()
    if spec == "itp":
        from attrib.itp import ITP

        return ITP()
    raise UnknownNameError.for_choice("method", spec, METHODS)

"""Thresholds of hierarchical perturbation: which chunks of one depth are worth refining.

A threshold judges a :class:`Quantity` that the refinement order hands it: one
value per chunk and the same quantity per token. Depth order hands chunk drops
(and the token map they spread into), best-first hands ceilings (and the per-token
bounds they are the maxima of), so each threshold judges the same quantity in
every order. Thresholds are registered in :data:`attrib.registry.thresholds` and selected
by :func:`get_threshold`.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np

from attrib import registry
from attrib.errors import InputError
from attrib.methods.hipe.chunks import Chunk

__all__ = ["Quantity", "Threshold", "Relative", "MidRange", "Fixed", "get_threshold"]


class Quantity:
    """What a threshold judges: one quantity of the chunks of one depth, per chunk and per token.

    Args:
        name: which quantity it is (``"drop"`` in depth order, ``"ceiling"`` in best-first).
        chunks: the chunks judged (the non-leaf chunks of one depth).
        values: the quantity per chunk, nats, one per chunk.
        per_token: computes the quantity per prompt token, nats, shape (n_tokens,);
            called at most once, and only by thresholds that read it.
    """

    def __init__(
        self, name: str, chunks: Sequence[Chunk], values: Sequence[float], per_token: Callable[[], np.ndarray]
    ) -> None:
        self.name = name
        self.chunks = chunks
        self.values = values
        self._per_token = per_token

    @cached_property
    def per_token(self) -> np.ndarray:
        """The quantity per prompt token, nats, shape (n_tokens,)."""
        return self._per_token()


class Threshold(ABC):
    """Chooses which chunks of one depth to refine; subclasses are frozen dataclasses of their parameters."""

    name: ClassVar[str] = ""

    @abstractmethod
    def select(self, quantity: Quantity) -> list[Chunk]:
        """Return the chunks of ``quantity.chunks`` to refine, in their order."""

    def describe(self) -> dict[str, object]:
        """JSON-ready parameters: ``name`` and every field."""
        names: list[str] = [f.name for f in dataclasses.fields(self)] if dataclasses.is_dataclass(self) else []
        return {"name": self.name, **{key: getattr(self, key) for key in names}}


@dataclass(frozen=True)
class MidRange(Threshold):
    """HiPe's rule: refine a chunk where the quantity per token reaches its mid-range ``(max + min) / 2``.

    In depth order the quantity per token is the token map, as in the original
    method; in best-first it is the per-token bound, whose maximum inside a chunk
    is the chunk's ceiling.

    Source: Cooper et al. 2021, "Believe the HiPe" (the saliency map is thresholded
    at its mid-range to choose where the next, finer masks go).
    """

    name: ClassVar[str] = "midrange"

    def select(self, quantity: Quantity) -> list[Chunk]:
        profile = quantity.per_token
        level = (float(profile.max()) + float(profile.min())) / 2.0
        return [c for c in quantity.chunks if float(profile[c.start : c.end].max()) >= level]


@dataclass(frozen=True)
class Relative(Threshold):
    """Refine a chunk whose value is at least ``fraction`` of the largest among its peers and ``floor`` nats.

    Args:
        fraction: share of the largest value at the same depth (0..1).
        floor: absolute minimum in nats, so noise is never refined.

    Raises:
        InputError: for a ``fraction`` outside [0, 1].
    """

    fraction: float = 0.1
    floor: float = 0.5
    name: ClassVar[str] = "relative"

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise InputError(f"threshold fraction must be within [0, 1], got {self.fraction}")

    def select(self, quantity: Quantity) -> list[Chunk]:
        if not quantity.chunks:
            return []
        level = max(self.floor, self.fraction * max(quantity.values))
        return [c for c, v in zip(quantity.chunks, quantity.values, strict=True) if v >= level]


@dataclass(frozen=True)
class Fixed(Threshold):
    """Refine a chunk whose value is at least ``nats``."""

    nats: float = 1.0
    name: ClassVar[str] = "fixed"

    def select(self, quantity: Quantity) -> list[Chunk]:
        return [c for c, v in zip(quantity.chunks, quantity.values, strict=True) if v >= self.nats]


def get_threshold(spec: str | float | Threshold) -> Threshold:
    """Threshold from a registered name (``"relative"``, ``"midrange"``, ``"fixed"``), a number of nats, or an instance.

    A number, or a string that reads as one (``"0.5"``), is a :class:`Fixed` threshold
    of that many nats; a name resolves through :mod:`attrib.registry`.

    Raises:
        UnknownNameError: for an unknown name (with the closest known one).
        InputError: for a value of another type (``True``).
        RegistrationError: for a name registered to something that is not a :class:`Threshold`.
    """
    if isinstance(spec, Threshold):
        return spec
    if isinstance(spec, bool) or not isinstance(spec, (str, int, float)):
        raise InputError(f"threshold must be a name, a number of nats or a Threshold, got {spec!r}")
    if not isinstance(spec, str):
        return Fixed(float(spec))
    if spec not in registry.thresholds:
        try:
            return Fixed(float(spec))
        except ValueError:
            pass
    return registry.thresholds.create(spec)

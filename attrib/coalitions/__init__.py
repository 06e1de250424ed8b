"""Coalition attribution methods: many units removed at once, under the one scorer.

Leave-one-out (:class:`~attrib.itp.ITP`) and HiPe's leaves remove one unit at a
time, so two units that back each other up (the same fact stated twice) each look
unimportant. Coalition methods score variants with many units removed together and
split the joint effect among the units. Each is a scheduler (selectable by name,
seeded, budgeted, at every level and inside chat messages), and every variant goes
through the run's :class:`~attrib.scoring.Scorer`: the same forced-decoding scores
in nats, memo, budget and progress as every other method.

* :class:`~attrib.coalitions.shapley.ShapleySampling` (``shapley``): Shapley values,
  exact for few units, else antithetic permutation sampling.
* :class:`~attrib.coalitions.kernelshap.KernelSHAP` (``kernelshap``): Shapley values
  by kernel-weighted least squares with the efficiency constraint.
* :class:`~attrib.coalitions.surrogate.Surrogate` (``surrogate``): ContextCite's
  sparse linear surrogate over random half-ablations, with its held-out LDS.
* :class:`~attrib.coalitions.lime.LIME` (``lime``): a kernel-weighted ridge surrogate.
* :class:`~attrib.coalitions.hierarchical.Hierarchical` (``hierarchical``): HiPe
  finds the salient units, a coalition method splits them.

Modules: :mod:`~attrib.coalitions.game` (coalitions as ablations, budgeted rounds),
:mod:`~attrib.coalitions.base` (the shared scheduler base),
:mod:`~attrib.coalitions.linear` (masks, fits and their held-out quality).
"""

from __future__ import annotations

from attrib.coalitions.base import CoalitionMethod
from attrib.coalitions.game import Coalition, CoalitionGame
from attrib.coalitions.hierarchical import Hierarchical
from attrib.coalitions.kernelshap import KernelSHAP
from attrib.coalitions.lime import LIME
from attrib.coalitions.shapley import ShapleySampling
from attrib.coalitions.surrogate import Surrogate

__all__ = [
    "Coalition",
    "CoalitionGame",
    "CoalitionMethod",
    "Hierarchical",
    "KernelSHAP",
    "LIME",
    "ShapleySampling",
    "Surrogate",
]

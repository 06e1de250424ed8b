"""Coalition attribution methods: many units removed at once, under the one scorer.

Leave-one-out (:class:`~attrib.methods.itp.ITP`) and HiPe's leaves remove one unit at a
time, so two units that back each other up (the same fact stated twice) each look
unimportant. Coalition methods score variants with many units removed together and
split the joint effect among the units. Each is a scheduler (selectable by name,
seeded, budgeted, at every level and inside chat messages), and every variant goes
through the run's :class:`~attrib.scoring.Scorer`: the same forced-decoding scores
in nats, memo, budget and progress as every other method.

* :class:`~attrib.methods.coalitions.shapley.ShapleySampling` (``shapley``): Shapley values,
  exact for few units, else antithetic permutation sampling.
* :class:`~attrib.methods.coalitions.kernelshap.KernelSHAP` (``kernelshap``): Shapley values
  by kernel-weighted least squares with the efficiency constraint.
* :class:`~attrib.methods.coalitions.surrogate.Surrogate` (``surrogate``): ContextCite's
  sparse linear surrogate over random half-ablations, with its held-out LDS.
* :class:`~attrib.methods.coalitions.lime.LIME` (``lime``): a kernel-weighted ridge surrogate.
* :class:`~attrib.methods.coalitions.hierarchical.Hierarchical` (``hierarchical``): HiPe
  finds the salient units, a coalition method splits them.

Modules: :mod:`~attrib.methods.coalitions.game` (coalitions as ablations, budgeted rounds),
:mod:`~attrib.methods.coalitions.base` (the shared scheduler base),
:mod:`~attrib.methods.coalitions.linear` (masks, fits and their held-out quality).
"""

from __future__ import annotations

from attrib.methods.coalitions.base import CoalitionMethod
from attrib.methods.coalitions.game import Coalition, CoalitionGame
from attrib.methods.coalitions.hierarchical import Hierarchical
from attrib.methods.coalitions.kernelshap import KernelSHAP
from attrib.methods.coalitions.lime import LIME
from attrib.methods.coalitions.shapley import ShapleySampling
from attrib.methods.coalitions.surrogate import Surrogate

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

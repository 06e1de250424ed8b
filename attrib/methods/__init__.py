"""The attribution methods: which variants to score, and how their drops become unit scores.

One room per method family, all built on :mod:`attrib.methods.base` (the
:class:`~attrib.methods.base.Scheduler` contract every method implements):

* :mod:`attrib.methods.itp`: iterative perturbation, exhaustive leave-one-out.
* :mod:`attrib.methods.hipe`: hierarchical perturbation (HiPe).
* :mod:`attrib.methods.coalitions`: coalition methods (Shapley sampling, KernelSHAP,
  ContextCite's surrogate, LIME, and HiPe followed by one of them).

Methods are selected by name through :data:`attrib.registry.methods`, which imports
a method's module only when it is first asked for; this package imports none itself.
"""

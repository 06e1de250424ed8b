"""System-prompt audits: which messages drive an output, and whether something hidden does.

- :mod:`attrib.auditing.run`: :func:`~attrib.auditing.run.audit`, the audit itself
  (``attrib.audit``): attribution on the visible chat, then the hidden-influence
  verdict, against a reference endpoint when one is given.
- :mod:`attrib.auditing.message_shapley`: Shapley values of a chat's messages for the
  output's log-probability, and each role's share (the pipeline computes them for
  every chat, explained or audited).
- :mod:`attrib.auditing.hidden_influence`: the hidden-influence indicators,
  reference-free and differential, with their calibrated thresholds.

The package is not named ``audit``, so ``attrib.audit`` is only ever the function.
This file imports none of its modules: the pipeline imports
:mod:`~attrib.auditing.message_shapley`, and :mod:`~attrib.auditing.run` imports the
pipeline.
"""

"""Hierarchical perturbation (HiPe): coarse overlapping chunks first, refined only where it matters.

Method (after Cooper, Arandjelović & Harrison 2021, "Believe the HiPe: Hierarchical
Perturbation for Fast, Robust, and Model-Agnostic Saliency Mapping", adapted to
text as in Leap Labs' PIZZA):

1. Depth 0 cuts the prompt into three overlapping halves, ``[0, n/2)``,
   ``[n/4, 3n/4)`` and ``[n/2, n)``, each ablated on its own.
2. A :class:`Threshold` picks the chunks worth refining. Each picked chunk is cut
   the same way into (up to) three overlapping halves at the next depth; a chunk
   of at most ``leaf_group`` units (8, or 4 in depth order) is cut straight into
   its units. Every cut follows the text's hierarchy: it lands on a paragraph edge
   if one lies within an eighth of the chunk's length of the ideal cut point, else
   on a sentence edge, else a word edge, else a token edge, never below the
   requested level. A chunk of one unit is a leaf.
3. Chunks that two parents share are scored once; the Scorer also never sends the
   same variant twice. Under a call budget, the most salient parents are refined
   first, each with all its children, and a round of refinement ends at the first
   parent whose children no longer fit.
4. The per-token map spreads each chunk's drop evenly over its tokens and keeps,
   for every token, the mean over the smallest chunks that cover it. A unit's
   score is the sum of the map over its tokens: a leaf unit gets its exact
   leave-one-out drop, a unit never refined inherits its chunk's drop divided
   over the chunk's tokens.

The monotonicity assumption: a unit cannot drop the output more than a chunk
that holds it. HiPe rests on it: a chunk that drops the output little is not
searched further. Best-first order and the early stop use it as a bound: each
token's drop is bounded by the smallest drop of the chunks around it, and a
chunk's *ceiling* is the largest bound among its tokens. Where the assumption
fails (redundant evidence, where either of two units suffices, or units that
cancel out) a salient unit inside a weak chunk can be missed.

Refinement orders (``order``, :mod:`attrib.methods.hipe.orders`):

* ``"depth"``: every chunk the threshold passes at one depth is refined before the
  next depth, as in the original method; thresholds judge chunk drops. Under a
  budget the calls go to the shallow depths first, so a tight budget can end with
  no single unit scored.
* ``"best"`` (default): best-first search (branch and bound). One chunk is refined
  at a time: the one with the highest ceiling that the threshold passes, judged on
  ceilings among the chunks of its depth. Overlapping chunks whose tokens are
  already covered by smaller, weaker chunks fall below the threshold and are
  skipped, and a budget reaches single units in the most salient region first.

Thresholds (:mod:`attrib.methods.hipe.thresholds`), each judging the order's quantity:

* :class:`Relative` (default): refine a chunk whose value is at least ``fraction``
  of the largest at its depth and at least ``floor`` nats.
* :class:`MidRange` (HiPe's original rule): refine a chunk when the quantity per
  token reaches ``(max + min) / 2`` somewhere inside it (in depth order: the token
  map). On prompts that end in a question it follows the question, whose ablation
  dominates the map, and can leave the decisive context unrefined (see
  ``docs/design.md``).
* :class:`Fixed`: refine a chunk whose value is at least a fixed number of nats.

Early stop (``top_k``): once ``top_k`` units are refined to the requested level,
chunks whose ceiling does not exceed the ``top_k``-th largest unit drop are left
unrefined: by the monotonicity assumption they cannot hold a unit that would
enter the top ``top_k``. With ``order="best"`` the stop ends the run as soon as the
top units are settled; with ``order="depth"`` leaves appear only at the last
depths, so it saves little.

Contrastive runs (rows are margins: the output's drops, then the contrast's
negated; the scorer's ``contrast_start`` marks where) judge every chunk by how
much it moves either answer, ``|drop of log p(y)| + |drop of log p(c)|``
(:func:`~attrib.methods.hipe.chunks.salience`), not by the margin: a chunk holding
evidence for the output and evidence for the contrast would net to zero and
never be searched. Bounds, ceilings, thresholds and the early stop work on that
quantity (the monotonicity assumption made of each side); scores keep their signs.

All drops are summed over output tokens (nats); the matrix keeps the per-token
columns. The package's files, one idea each: :mod:`~attrib.methods.hipe.chunks` (the chunk
tree), :mod:`~attrib.methods.hipe.thresholds`, :mod:`~attrib.methods.hipe.orders` and
:mod:`~attrib.methods.hipe.scheduler` (the loop).
"""

from __future__ import annotations

from attrib.methods.hipe.chunks import Chunk, ChunkTree, children, token_map
from attrib.methods.hipe.orders import BestFirst, DepthOrder, Order
from attrib.methods.hipe.scheduler import HiPe
from attrib.methods.hipe.thresholds import Fixed, MidRange, Quantity, Relative, Threshold, get_threshold

__all__ = [
    "HiPe",
    "Chunk",
    "ChunkTree",
    "Threshold",
    "Quantity",
    "Relative",
    "MidRange",
    "Fixed",
    "get_threshold",
    "Order",
    "BestFirst",
    "DepthOrder",
    "children",
    "token_map",
]

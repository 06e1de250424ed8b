"""Batches: attribution and system-prompt audits over whole datasets, resumable, locally or on Ray.

* :mod:`attrib.batch.inputs`: reading JSON Lines / CSV / Parquet, checking every record up front;
* :mod:`attrib.batch.records`: the compact per-item records;
* :mod:`attrib.batch.outdir`: OUT_DIR (run.json, fsync'ed records, atomic item files, units table);
* :mod:`attrib.batch.worker`: one process's backend, opened once, running items;
* :mod:`attrib.batch.local`, :mod:`attrib.batch.ray_executor`: the executors;
* :mod:`attrib.batch.run`: :func:`attribute_many`; :mod:`attrib.batch.outcomes`: what it returns.

Importing this package imports neither Ray nor tqdm nor any model library.
"""

from attrib.batch.inputs import BadInputError, Item, Problem
from attrib.batch.run import Batch, Outcome, Summary, attribute_many, prepare, run_batch

__all__ = ["attribute_many", "prepare", "run_batch", "Batch", "Outcome", "Summary", "Item", "Problem", "BadInputError"]

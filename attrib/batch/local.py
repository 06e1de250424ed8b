"""The local executor: one process, the backend loaded once, items run in input order."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from attrib.batch.inputs import Item
from attrib.batch.worker import Done, Spec, Worker

__all__ = ["run_local"]


def run_local(
    items: Sequence[Item],
    spec: Spec,
    *,
    workers: int | None = None,
    address: str | None = None,
    placement_timeout: float | None = None,
) -> Iterator[Done]:
    """Run ``items`` one after the other in this process; yield each as it finishes.

    ``workers``, ``address`` and ``placement_timeout`` are the Ray executor's and are ignored here.

    Raises:
        The errors of opening the backend (see :class:`~attrib.batch.worker.Worker`), before
        the first item; per-item errors are error records.
    """
    if not items:
        return
    worker = Worker(spec)
    try:
        for item in items:
            done = worker.run(item)
            yield Done(done.record, done.result_json, os.getpid())
    finally:
        worker.close()

"""What a batch hands back: one :class:`Outcome` per finished item, and a :class:`Summary` of the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attrib.result import Attribution

__all__ = ["Outcome", "Summary"]


@dataclass(frozen=True)
class Outcome:
    """One finished item.

    Attributes:
        id: the item's id.
        record: its compact record (the batch contract's fields).
        result_json: the full result as JSON text (ok items run without ``out_dir``), else ``None``.
        file: the full result's file (ok items with ``out_dir``), else ``None``.
        worker: the id of the process that ran it, when known.
    """

    id: str
    record: dict[str, Any]
    result_json: str | None = None
    file: Path | None = None
    worker: int | None = None

    @property
    def ok(self) -> bool:
        return bool(self.record["status"] == "ok")

    @property
    def result(self) -> Any:
        """The full :class:`~attrib.result.Attribution` of an ok item (read from its JSON), else ``None``."""
        if self.result_json is not None:
            return Attribution.from_json(self.result_json)
        if self.file is not None:
            return Attribution.from_json(self.file)
        return None


@dataclass
class Summary:
    """What a batch did: every outcome of this run, and how many were ok, failed, skipped."""

    outcomes: list[Outcome] = field(default_factory=list)
    ok: int = 0
    failed: int = 0
    skipped: int = 0

    def line(self) -> str:
        """``N ok, M failed, K skipped (already done)``."""
        return f"{self.ok} ok, {self.failed} failed, {self.skipped} skipped (already done)"

"""Where a command may write: the one check of output paths, used by every command that writes.

A command names what it reads (an input file, a batch OUT_DIR) and what it writes
(an output file, a batch OUT_DIR) as :class:`Place` objects; :func:`check_places`
refuses, before any work, an output path that

* is empty (``-o ""`` would otherwise mean the current directory),
* cannot be written (a directory, a missing directory, no permission),
* is one of the command's inputs, or one of the files of a batch OUT_DIR it reads
  or writes (``run.json``, ``records.jsonl``, ``units.csv``, ``units.parquet``,
  ``.lock``, anything under ``items/``),
* names the same file as another output.

Paths are compared resolved (symbolic links and ``..`` followed), and files that
exist also by identity (``os.path.samefile``: hard links, case-insensitive names).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from attrib.errors import InputError

__all__ = ["Place", "check_places", "check_writable", "RUN_FILES"]

#: The files of a batch run in its OUT_DIR (besides ``items/``), written only by the run holding
#: its lock (:mod:`attrib.batch.outdir`); declared here, where outputs are kept off them.
RUN_FILES = ("run.json", "records.jsonl", "units.csv", "units.parquet", ".lock", ".units.parquet.tmp")


@dataclass(frozen=True)
class Place:
    """A path a command reads or writes.

    Attributes:
        what: how messages name it (``"--json"``, ``"the input"``).
        path: the path as given; ``None`` (not asked for) and ``"-"`` (stdin/stdout) are skipped,
            and so is an empty input (the command reports it); an empty output is refused.
        run_dir: True for a batch OUT_DIR: its run files and all of ``items/`` belong to it.
    """

    what: str
    path: str | os.PathLike[str] | None
    run_dir: bool = False

    @property
    def given(self) -> bool:
        """Whether there is a path to check."""
        return self.path is not None and os.fspath(self.path) not in ("", "-")


def check_places(writes: Sequence[Place], reads: Iterable[Place] = ()) -> None:
    """Refuse outputs that are empty, unwritable, an input, a run's own file, or each other.

    Args:
        writes: what the command writes: files, or (``run_dir``) a batch OUT_DIR.
        reads: what it reads: files, or (``run_dir``) a batch OUT_DIR.

    Raises:
        InputError: one line naming the output, what it would overwrite, and the fix.
    """
    writes = [place for place in writes if place.path is not None]
    reads = [place for place in reads if place.given]
    for place in writes:
        if os.fspath(place.path) == "":  # type: ignore[arg-type]
            kind = "directory" if place.run_dir else "file"
            raise InputError(f"{place.what} is an empty path; give a {kind} name")
        if not place.run_dir:
            check_writable(place)
    writes = [place for place in writes if place.given]
    for index, place in enumerate(writes):
        for other in writes[index + 1 :]:
            if not place.run_dir and not other.run_dir and _same_file(place.path, other.path):
                raise InputError(f"{place.what} and {other.what} name the same file ({place.path}); give two paths")
        for other in reads:
            clash = _clash(place, other)
            if clash is not None:
                raise InputError(clash)


def check_writable(place: Place) -> None:
    """Refuse an output file that cannot be written: a directory, in a missing directory, no permission.

    Raises:
        InputError: naming the output and why.
    """
    if not place.given:
        return
    path = os.fspath(place.path)  # type: ignore[arg-type]
    if path == "":
        raise InputError(f"{place.what} is an empty path; give a file name")
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise InputError(f"{place.what} {path} is a directory; give a file name")
    if not folder.is_dir():
        raise InputError(f"cannot write {place.what} {path}: directory {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise InputError(f"cannot write {place.what} {path}: permission denied")


def _clash(written: Place, read: Place) -> str | None:
    """Why writing ``written`` would overwrite ``read`` (a message), or ``None``."""
    if written.run_dir and read.run_dir:
        if _same_file(written.path, read.path):
            return f"{written.what} {written.path} is {read.what}; give another directory"
        return None
    if written.run_dir:
        name = _run_file(read.path, written.path)  # type: ignore[arg-type]
        if name is None:
            return None
        return (
            f"{read.what} {read.path} is {name} of {written.what} {written.path}, which this run writes; "
            "give an input outside it, or another output directory"
        )
    if read.run_dir:
        name = _run_file(written.path, read.path)  # type: ignore[arg-type]
        if name is None:
            return None
        return (
            f"{written.what} {written.path} is {name} of the batch OUT_DIR {read.path}, which this command reads; "
            "give a path outside it"
        )
    if _same_file(written.path, read.path):
        return f"{written.what} {written.path} is {read.what} ({read.path}); writing it would overwrite it: give another path"
    return None


def _same_file(a: str | os.PathLike[str] | None, b: str | os.PathLike[str] | None) -> bool:
    """Whether ``a`` and ``b`` name one file: the same resolved path, or (both existing) the same inode."""
    if a is None or b is None:
        return False
    if Path(a).resolve() == Path(b).resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _run_file(path: str | os.PathLike[str], run_dir: str | os.PathLike[str]) -> str | None:
    """Which of batch OUT_DIR ``run_dir``'s own files ``path`` is (``"records.jsonl"``, ``"an item file"``), or ``None``."""
    root = Path(run_dir).resolve()
    items = (root / "items").resolve()
    resolved = Path(path).resolve()
    if resolved == root:
        return "the directory itself"
    if resolved.parent == root and resolved.name in RUN_FILES:
        return f"the run's {resolved.name}"
    if resolved == items or items in resolved.parents:
        return "a file under items/"
    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return None  # a path that does not exist is no other file's hard link
    for name in RUN_FILES:
        if _identical(found, root / name):
            return f"the run's {name}"
    try:
        with os.scandir(items) as entries:
            if os.stat(items).st_dev == found.st_dev and any(entry.inode() == found.st_ino for entry in entries):
                return "a file under items/"
    except OSError:
        pass
    return None


def _identical(found: os.stat_result, other: Path) -> bool:
    try:
        mine = os.stat(other)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (found.st_dev, found.st_ino)

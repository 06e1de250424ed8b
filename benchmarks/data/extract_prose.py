"""Rebuild ``benchmarks/data/prose/*.txt`` from the texts Debian ships.

Run from the repository root on a Debian machine (package ``base-files``)::

    python benchmarks/data/extract_prose.py

Each source is cut to its running prose (between a start and an end line),
split into paragraphs at blank lines, and then filtered:

* headings (short lines without closing punctuation, all-capital lines,
  lines such as ``0. Definitions.``) are dropped;
* section numbers at the start of a paragraph (``3. ``) and inline section
  titles (``2. Waiver. ``) are removed, the rest of the paragraph is kept;
* list items (``a)``, ``b.``, ``iv.``), paragraphs that end with a colon
  (they introduce a dropped list), all-capital paragraphs (warranty
  disclaimers) and paragraphs holding a number of four or more digits or the
  word "code" followed by digits are dropped whole, so that nothing in the
  prose competes with the access codes that ``benchmarks.needle`` inserts;
* the hard-wrapped lines of a paragraph are joined with single spaces.

The wording of every kept paragraph is left exactly as in the source.
``benchmarks/data/SOURCES.md`` names the sources and their licences.
"""

from __future__ import annotations

import pathlib
import re

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "prose"
LICENSES = pathlib.Path("/usr/share/common-licenses")

# name -> (source file, first line of the excerpt, line that ends it, or None)
SOURCES = {
    "gpl3": (LICENSES / "GPL-3", "Preamble", "END OF TERMS AND CONDITIONS"),
    "gpl2": (LICENSES / "GPL-2", "Preamble", "END OF TERMS AND CONDITIONS"),
    "lgpl21_preamble": (
        LICENSES / "LGPL-2.1",
        "Preamble",
        "TERMS AND CONDITIONS FOR COPYING, DISTRIBUTION AND MODIFICATION",
    ),
    "cc0": (LICENSES / "CC0-1.0", "Statement of Purpose", "4. Limitations and Disclaimers."),
}

_LIST_ITEM = re.compile(r"^(\(?[a-z]\)|[a-z]\.|\(?[ivx]+\)|[ivx]+\.)\s")
_SECTION_NUMBER = re.compile(r"^\d+\.\s+")
_INLINE_TITLE = re.compile(r"^(?:[A-Z][a-z]+ ?){1,4}\.\s+(?=[A-Z])")
_FORBIDDEN = re.compile(r"\b\d{4,}\b|\bcode\s*\d", re.IGNORECASE)


def _is_heading(block: str) -> bool:
    if "\n" in block:
        return False
    line = block.strip()
    if line.upper() == line:
        return True
    if re.fullmatch(r"\d+\.\s+[^.]{1,60}\.", line):
        return True
    return len(line) < 60 and not line.endswith((".", ":", ";", ",", "?", "!", '"', ")"))


def paragraphs(text: str) -> list[str]:
    """Split ``text`` into the paragraphs kept by the rules above."""
    kept = []
    for block in re.split(r"\n\s*\n", text):
        block = block.strip("\n")
        if not block.strip() or _is_heading(block):
            continue
        para = " ".join(block.split())
        if _LIST_ITEM.match(para) or _FORBIDDEN.search(para) or para.endswith(":"):
            continue
        letters = [c for c in para if c.isalpha()]
        if letters and sum(c.isupper() for c in letters) > 0.8 * len(letters):
            continue
        numbered = _SECTION_NUMBER.match(para)
        if numbered:
            para = para[numbered.end():]
            title = _INLINE_TITLE.match(para)
            if title:
                para = para[title.end():]
        kept.append(para)
    return kept


def excerpt(path: pathlib.Path, start: str, end: str | None) -> str:
    lines = path.read_text(encoding="utf-8").splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip() == start)
    last = len(lines)
    if end is not None:
        last = next(i for i, line in enumerate(lines) if i > first and line.strip() == end)
    return "\n".join(lines[first + 1 : last])


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, (path, start, end) in SOURCES.items():
        paras = paragraphs(excerpt(path, start, end))
        (OUT / f"{name}.txt").write_text("\n\n".join(paras) + "\n", encoding="utf-8")
        words = sum(len(p.split()) for p in paras)
        total += words
        print(f"{name}: {len(paras)} paragraphs, {words} words")
    print(f"total: {total} words")


if __name__ == "__main__":
    main()

"""The prose corpus of :mod:`benchmarks.needle`, derived at load time.

The haystack of a needle case is running English prose taken from four licence
texts that Debian ships in ``/usr/share/common-licenses/`` (package
``base-files``).  The repository holds byte-for-byte copies of them in
``benchmarks/data/licenses/`` (``GPL-3``, ``GPL-2``, ``LGPL-2.1``,
``CC0-1.0``; see ``benchmarks/data/SOURCES.md``).  The FSF licences may be
copied only verbatim, so no edited version of them is stored anywhere:
:func:`paragraphs` reads the verbatim files and picks the prose paragraphs out
of them in memory, with the rules below.

1. Only the running prose of each text is used, from a start line to an end
   line (:data:`SOURCES`); title blocks, copyright lines, postal addresses and
   the "How to Apply These Terms" appendices lie outside it.
2. The excerpt is split into blocks at blank lines.
3. Headings are dropped (:func:`_is_heading`).
4. Whole paragraphs that are list items, that introduce a list, that are in
   capital letters or that hold a number which could be mistaken for an
   inserted access code are dropped (:func:`_is_list_item`,
   :func:`_introduces_list`, :func:`_is_capitalised`,
   :func:`_has_competing_number`).
5. Section numbers and inline section titles at the start of a paragraph are
   removed (:func:`_strip_numbering`).
6. The hard-wrapped lines of a paragraph are joined with single spaces.

Within a kept paragraph no word is added, removed or changed.  The result is
the same 112 paragraphs, in the same order, as the excerpt files that the
repository used to ship, so every ``seed`` of :func:`benchmarks.needle.make_needle_case`
still gives the same case.

Standard library only.
"""

from __future__ import annotations

import pathlib
import re
from typing import NamedTuple

#: Where the verbatim licence files are.
LICENSES_DIR = pathlib.Path(__file__).resolve().parent / "data" / "licenses"


class Source(NamedTuple):
    """One licence file and the stretch of it that is running prose.

    The excerpt is the lines strictly between the first line that is exactly
    ``start`` (ignoring surrounding spaces) and the first later line that is
    exactly ``end``.
    """

    file: str
    start: str
    end: str


#: The sources, in the order their paragraphs appear in the corpus.  The
#: order is part of the corpus: ``make_needle_case`` picks its first paragraph
#: by index, so changing it would change what every seed means.  (It is the
#: name order of the excerpt files the corpus used to be stored as: ``cc0``,
#: ``gpl2``, ``gpl3``, ``lgpl21_preamble``.)
SOURCES: tuple[Source, ...] = (
    # The Statement of Purpose and sections 1 to 3 (section 1 is a list, so
    # only sections 2 and 3 remain); section 4 is a list of disclaimers.  The
    # "not a law firm" notice above the Statement is left out.
    Source("CC0-1.0", "Statement of Purpose", "4. Limitations and Disclaimers."),
    # The preamble and the terms, sections 0 to 12.
    Source("GPL-2", "Preamble", "END OF TERMS AND CONDITIONS"),
    # The preamble and the terms, sections 0 to 17.
    Source("GPL-3", "Preamble", "END OF TERMS AND CONDITIONS"),
    # The preamble only.
    Source(
        "LGPL-2.1",
        "Preamble",
        "TERMS AND CONDITIONS FOR COPYING, DISTRIBUTION AND MODIFICATION",
    ),
)

_BLANK_LINE = re.compile(r"\n\s*\n")
_NUMBERED_HEADING = re.compile(r"\d+\.\s+[^.]{1,60}\.")
_LIST_ITEM = re.compile(r"^(\(?[a-z]\)|[a-z]\.|\(?[ivx]+\)|[ivx]+\.)\s")
_SECTION_NUMBER = re.compile(r"^\d+\.\s+")
_INLINE_TITLE = re.compile(r"^(?:[A-Z][a-z]+ ?){1,4}\.\s+(?=[A-Z])")
_COMPETING_NUMBER = re.compile(r"\b\d{4,}\b|\bcode\s*\d", re.IGNORECASE)


def _excerpt(text: str, start: str, end: str) -> str:
    """The lines of ``text`` strictly between the ``start`` and ``end`` lines.

    Cutting to the running prose keeps out what is not prose at all (the
    title, the copyright line and the FSF's postal address, the appendix on
    how to apply the licence), so the rules below need not deal with it.
    """
    lines = text.splitlines()
    try:
        first = next(i for i, line in enumerate(lines) if line.strip() == start)
        last = next(i for i in range(first + 1, len(lines)) if lines[i].strip() == end)
    except StopIteration:
        raise ValueError(f"no line {start!r} followed by a line {end!r}") from None
    return "\n".join(lines[first + 1 : last])


def _is_heading(block: str) -> bool:
    """Whether a block is a heading rather than prose.

    A heading is a single line that is all capitals ("TERMS AND
    CONDITIONS"), a numbered title ("0. Definitions.") or short (under 60
    characters) without closing punctuation ("Preamble").  Headings are not
    sentences, and a passage with titles strewn through it would not read
    like running text.
    """
    if "\n" in block:
        return False
    line = block.strip()
    if line.upper() == line:
        return True
    if _NUMBERED_HEADING.fullmatch(line):
        return True
    return len(line) < 60 and not line.endswith((".", ":", ";", ",", "?", "!", '"', ")"))


def _is_list_item(para: str) -> bool:
    """Whether a paragraph is a list item: it starts ``a)``, ``b.``, ``(iv)``, ``iv.``.

    List items are fragments of a sentence begun in the paragraph before
    them; on their own, or with their markers, they are not running prose.
    """
    return _LIST_ITEM.match(para) is not None


def _introduces_list(para: str) -> bool:
    """Whether a paragraph ends with a colon.

    Such a paragraph introduces a list, whose items are dropped, so it would
    be left hanging.
    """
    return para.endswith(":")


def _is_capitalised(para: str) -> bool:
    """Whether more than 80 % of the letters of a paragraph are capitals.

    These are the warranty disclaimers and limitations of liability, set in
    capitals; they are unlike ordinary prose and tokenize unlike it.
    """
    letters = [c for c in para if c.isalpha()]
    return bool(letters) and sum(c.isupper() for c in letters) > 0.8 * len(letters)


def _has_competing_number(para: str) -> bool:
    """Whether a paragraph holds a number of four or more digits, or "code" and digits.

    ``benchmarks.needle`` inserts facts of the form "The access code for the
    north gate is 4817."; a year or another long number, or the word "code"
    followed by digits, in the prose would compete with them.  This drops the
    two GPL-3 paragraphs that carry dates.
    """
    return _COMPETING_NUMBER.search(para) is not None


def _strip_numbering(para: str) -> str:
    """``para`` without a leading section number and inline section title.

    GPL-2's "0. This License applies to ..." loses its "0. "; CC0's "2. Waiver.
    To the greatest extent ..." loses "2. Waiver. ".  An inline title is only
    removed after a section number.  The rest of the paragraph is kept as it
    is: the numbers and titles are structure, not prose.
    """
    numbered = _SECTION_NUMBER.match(para)
    if numbered:
        para = para[numbered.end() :]
        title = _INLINE_TITLE.match(para)
        if title:
            para = para[title.end() :]
    return para


def _paragraphs_of(text: str) -> list[str]:
    """The prose paragraphs of an excerpt, by the rules in the module docstring.

    The lines of a kept paragraph are joined with single spaces, which undoes
    the hard wrapping of the source and nothing else.
    """
    kept = []
    for block in _BLANK_LINE.split(text):
        block = block.strip("\n")
        if not block.strip() or _is_heading(block):
            continue
        para = " ".join(block.split())
        if _is_list_item(para) or _has_competing_number(para) or _introduces_list(para):
            continue
        if _is_capitalised(para):
            continue
        para = _strip_numbering(para)
        if para:
            kept.append(para)
    return kept


def paragraphs() -> tuple[str, ...]:
    """All prose paragraphs of the corpus, source after source in :data:`SOURCES` order.

    Reads the verbatim licence files in :data:`LICENSES_DIR` on every call
    (callers cache the result).  Each paragraph is one line of text.
    """
    result: list[str] = []
    for source in SOURCES:
        path = LICENSES_DIR / source.file
        text = path.read_text(encoding="utf-8")
        try:
            result.extend(_paragraphs_of(_excerpt(text, source.start, source.end)))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    if not result:
        raise ValueError(f"no prose found in {LICENSES_DIR}")
    return tuple(result)

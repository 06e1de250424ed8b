"""Templates: how sources and the fixed parts (instructions, question, answer cue) make one prompt.

A template is a frame with places for the sources and the fixed parts:

* :class:`PlainTemplate` (the default, for base models): ``text`` holds ``{sources}`` and
  ``{question}`` (and optionally ``{instructions}``); the default is numbered sources, then
  the question, then the answer cue::

      [1] first source's text

      [2] second source's text

      Question: ...
      Answer:

* :class:`ChatTemplate` (for chat models): the sources go in the system or the user
  message (``system`` / ``user`` frames), rendered by the chat template.

Each source is laid out as ``header`` (``"[{id}] "``) + its text + ``separator``
(``"\\n\\n"``); that whole piece is what removing the source removes, so every variant is
a well-formed prompt with the remaining sources still under their own ids. The fixed parts
lie outside every unit (as a chat's template markup does) and are never perturbed.

The layout tokenizes the fixed text before the sources, each source's piece, and the
fixed text after them separately (a given answer jointly with that last part, as
:func:`attrib.prompt.split_target` does), so every source starts on a token edge.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from attrib.backend import Backend, Messages
from attrib.context.sources import Source
from attrib.errors import InputError, UnknownNameError
from attrib.prompt import ChatPrompt, Layout, Prompt, Region, split_target
from attrib.segmentation import LEVELS, Segmentation, Tokenization, Unit

__all__ = [
    "CONTEXT_LEVELS",
    "PlainTemplate",
    "ChatTemplate",
    "Template",
    "as_template",
    "SourcePrompt",
    "SourceSegmentation",
    "check_context_level",
]

#: Unit levels of a prompt assembled from sources, finest to coarsest.
CONTEXT_LEVELS: tuple[str, ...] = (*LEVELS, "source")

_PLACES = ("sources", "question", "instructions")


def check_context_level(level: str) -> str:
    """Return ``level`` if it is one of :data:`CONTEXT_LEVELS`.

    Raises:
        UnknownNameError: for any other value.
    """
    if level not in CONTEXT_LEVELS:
        raise UnknownNameError.for_choice("level", level, CONTEXT_LEVELS)
    return level


def _fields(frame: str, what: str) -> list[str]:
    """The places a frame names, checked: only ``{sources}``, ``{question}``, ``{instructions}``.

    Raises:
        InputError: for another place, a place with a format spec, or unbalanced braces.
    """
    try:
        parsed = list(string.Formatter().parse(frame))
    except ValueError as error:
        raise InputError(
            f"the {what} is not a valid frame ({error}); write literal braces as '{{{{' and '}}}}'"
        ) from None
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in _PLACES or spec or conversion:
            raise InputError(
                f"the {what} names the place {{{name}}}; a template has only {{sources}}, {{question}} "
                "and {instructions}"
            )
        names.append(name)
    return names


def _fill(frame: str, values: dict[str, str]) -> str:
    """``frame`` with its places filled by literal text (no formatting of the values)."""
    return "".join(
        literal + ("" if name is None else values[name]) for literal, name, _, _ in string.Formatter().parse(frame)
    )


@dataclass(frozen=True)
class PlainTemplate:
    """A plain-text prompt for base models.

    Args:
        text: the frame: ``{sources}`` (required, once), ``{question}`` (required) and
            ``{instructions}`` (optional: the instructions followed by ``separator``, or nothing).
        header: what precedes each source's text; ``{id}`` is the source's id.
        separator: what follows each source's text.

    Raises:
        InputError: for a frame without a place for the sources or the question, or with
            another place.
    """

    text: str = "{instructions}{sources}Question: {question}\nAnswer:"
    header: str = "[{id}] "
    separator: str = "\n\n"

    def __post_init__(self) -> None:
        names = _fields(self.text, "template")
        if names.count("sources") != 1:
            raise InputError(
                "the template has no place for the sources; put '{sources}' in it once"
                if "sources" not in names
                else "the template names '{sources}' more than once; put it in once"
            )
        if "question" not in names:
            raise InputError("the template has no place for the question; put '{question}' in it")


@dataclass(frozen=True)
class ChatTemplate:
    """Sources inside a chat, for chat models: a system and a user message.

    Args:
        system: the system message's frame (a message is left out when its frame renders empty).
        user: the user message's frame.
        header: what precedes each source's text; ``{id}`` is the source's id.
        separator: what follows each source's text.
        chat_template: a jinja2 chat template (default: the model's, else Gemma turns).

    Exactly one frame holds ``{sources}``, once; one holds ``{question}``.

    Raises:
        InputError: for frames without a place for the sources or the question, or with
            another place.
    """

    system: str = "{instructions}"
    user: str = "{sources}Question: {question}"
    header: str = "[{id}] "
    separator: str = "\n\n"
    chat_template: str | None = None

    def __post_init__(self) -> None:
        names = _fields(self.system, "system frame") + _fields(self.user, "user frame")
        if names.count("sources") != 1:
            raise InputError(
                "the chat template has no place for the sources; put '{sources}' once in its system or user frame"
                if "sources" not in names
                else "the chat template names '{sources}' more than once; put it in once"
            )
        if "question" not in names:
            raise InputError("the chat template has no place for the question; put '{question}' in a frame")

    @property
    def where(self) -> Literal["system", "user"]:
        """The message that holds the sources."""
        return "system" if "sources" in _fields(self.system, "system frame") else "user"


Template = PlainTemplate | ChatTemplate


def as_template(template: object) -> Template:
    """The template ``template`` names: ``None`` or ``"plain"`` (the default), ``"chat"``, a frame
    string (a :class:`PlainTemplate`'s ``text``), or a template object.

    Raises:
        InputError: for anything else, or a frame without a place for the sources.
    """
    if template is None or template == "plain":
        return PlainTemplate()
    if template == "chat":
        return ChatTemplate()
    if isinstance(template, PlainTemplate | ChatTemplate):
        return template
    if isinstance(template, str):
        return PlainTemplate(text=template)
    raise InputError(
        f"template must be 'plain', 'chat', a frame string with '{{sources}}' and '{{question}}', "
        f"or a PlainTemplate or ChatTemplate, got {type(template).__name__}"
    )


def concat(parts: Sequence[Tokenization]) -> Tokenization:
    """One tokenization of the parts' texts laid end to end (each part's spans and edges shifted)."""
    text: list[str] = []
    ids: list[int] = []
    spans: list[tuple[int, int]] = []
    edges: set[int] = {0}
    chars = 0
    for part in parts:
        edges.update(len(ids) + e for e in part.edges)
        spans.extend((a + chars, b + chars) for a, b in part.spans)
        ids.extend(part.ids)
        text.append(part.text)
        chars += len(part.text)
    edges.add(len(ids))
    return Tokenization(text="".join(text), ids=tuple(ids), spans=tuple(spans), edges=tuple(sorted(edges)))


def _header_end(piece: Tokenization, chars: int) -> int:
    """The token position where a piece's header of ``chars`` characters ends: the last token
    edge at or before it, ``0`` when that leaves no header or no text after it."""
    if chars <= 0:
        return 0
    end = max((edge for edge in piece.edges if piece.char_offset(edge) <= chars), default=0)
    return end if end < len(piece) else 0


class SourceSegmentation(Segmentation):
    """The sources of an assembled prompt as one region, with ``source`` as its coarsest level.

    Rows at level ``source`` are the sources, each its header, text and separator. Finer
    levels cut inside each source by the plain-prompt rules (:mod:`attrib.segmentation`)
    applied to the source's piece, with the source's header (``"[id] "``) as one unit of
    its own, first: the header is formatting, so the first sentence (word, token) of a
    source is the source's text, not its label; the header's tokens are never cut apart,
    and a header ending inside a token ends at the edge before it (what is left of it, a
    space, starts the next unit). The separator falls in the source's last unit. No unit
    spans two sources, and ablating all of a source's units removes it as ``source`` does.
    :meth:`roots` makes a hierarchical method start from the sources.

    Unit spans (``start``, ``end``, ``tokens``) are shifted into the whole prompt.

    Args:
        pieces: each source's piece, tokenized on its own.
        char_offset: character position of the first piece in the whole prompt.
        token_offset: token position of the first piece in the whole prompt.
        headers: each piece's header length in characters (``0``: no header unit), one per
            piece; ``None`` for none.

    Raises:
        ValueError: if ``headers`` does not give one length per piece.
    """

    def __init__(
        self,
        pieces: Sequence[Tokenization],
        *,
        char_offset: int,
        token_offset: int,
        headers: Sequence[int] | None = None,
    ) -> None:
        super().__init__(concat(pieces))
        self.pieces = tuple(pieces)
        self.char_offset = char_offset
        self.token_offset = token_offset
        self.starts = tuple(itertools.accumulate((len(p) for p in pieces), initial=0))
        lengths = tuple(headers) if headers is not None else (0,) * len(self.pieces)
        if len(lengths) != len(self.pieces):
            raise ValueError(f"headers gives {len(lengths)} lengths for {len(self.pieces)} pieces")
        #: Each piece's header end, in tokens of the piece (0: no header unit).
        self.header_ends = tuple(_header_end(piece, n) for piece, n in zip(self.pieces, lengths, strict=True))

    def boundaries(self, level: str) -> tuple[int, ...]:
        """Token positions (in the region) where units of ``level`` start, plus the region's end.

        Raises:
            UnknownNameError: if ``level`` is not in :data:`CONTEXT_LEVELS`.
        """
        return self._boundaries(check_context_level(level))

    def _boundaries(self, level: str) -> tuple[int, ...]:
        cache = self._boundary_cache
        if level not in cache:
            if level == "source":
                cache[level] = self.starts
            else:
                points = set(self.starts)
                for start, piece, header in zip(self.starts, self.pieces, self.header_ends, strict=False):
                    inside = Segmentation(piece).boundaries(level)
                    points.update(start + b for b in inside if not 0 < b < header)
                    points.add(start + header)
                cache[level] = tuple(sorted(points))
        return cache[level]

    def hierarchy(self, level: str) -> list[tuple[int, ...]]:
        """Boundaries of ``level`` and every coarser level up to ``source``, coarsest first."""
        index = CONTEXT_LEVELS.index(check_context_level(level))
        return [self._boundaries(name) for name in reversed(CONTEXT_LEVELS[index:])]

    def roots(self, level: str) -> list[tuple[int, int]]:
        """The sources' token spans: a hierarchical method's tree starts from them."""
        return list(itertools.pairwise(self.starts))

    def unit(self, first: int, last: int) -> Unit:
        """The unit of tokens ``[first, last)`` of the region, its spans in the whole prompt."""
        unit = super().unit(first, last)
        return Unit(
            text=unit.text,
            start=unit.start + self.char_offset,
            end=unit.end + self.char_offset,
            role=unit.role,
            message=unit.message,
            tokens=(first + self.token_offset, last + self.token_offset),
        )


@dataclass(frozen=True)
class _Parts:
    """The filled texts: before the sources, each source's piece, after the sources."""

    before: str
    pieces: tuple[str, ...]
    after: str


def _source_pieces(sources: Sequence[Source], header: str, separator: str) -> tuple[str, ...]:
    return tuple(header.replace("{id}", source.id) + source.text + separator for source in sources)


def _split(frame: str, values: dict[str, str]) -> tuple[str, str]:
    """The frame's text before and after ``{sources}``, the other places filled."""
    before, after = frame.split("{sources}", 1) if "{sources}" in frame else (frame, "")
    return _fill(before, values), _fill(after, values)


def _pieces_tokenizer(backend: Backend, parts: _Parts) -> Callable[[str], Tokenization]:
    """A tokenizer that lays out the text holding the sources part by part (every other text whole)."""
    whole = parts.before + "".join(parts.pieces) + parts.after

    def tokenize(text: str) -> Tokenization:
        if text != whole:
            return backend.tokenize(text)
        before = [backend.tokenize(parts.before)] if parts.before else []
        after = [backend.tokenize(parts.after)] if parts.after else []
        return concat([*before, *(backend.tokenize(p) for p in parts.pieces), *after])

    return tokenize


@dataclass(frozen=True)
class _SourceChat(ChatPrompt):
    """The chat of a :class:`ChatTemplate`: the message holding the sources tokenized source by source."""

    parts: _Parts | None = None

    def content_tokenizer(self, backend: Backend) -> Callable[[str], Tokenization]:
        return backend.tokenize if self.parts is None else _pieces_tokenizer(backend, self.parts)


@dataclass(frozen=True)
class SourcePrompt(Prompt):
    """A prompt assembled from sources and fixed parts by a template.

    One region, the sources (:class:`SourceSegmentation`); the instructions, the question,
    the answer cue and, in a chat, the template markup lie outside it and are never
    perturbed. Units index the whole prompt text (for a chat, the rendered prompt).

    Args:
        sources: the checked sources (:func:`attrib.context.sources.as_sources`).
        question: the question, non-empty.
        instructions: the instructions, or ``None``.
        template: the template (:func:`as_template`).

    Raises:
        InputError: for instructions given to a template without a place for them.
    """

    sources: tuple[Source, ...]
    question: str
    instructions: str | None = None
    form: Template = PlainTemplate()

    def __post_init__(self) -> None:
        form = self.form
        frames = [form.text] if isinstance(form, PlainTemplate) else [form.system, form.user]
        if self.instructions and not any("instructions" in _fields(f, "template") for f in frames):
            raise InputError("the template has no place for the instructions; put '{instructions}' in it, or omit them")

    @property
    def _values(self) -> dict[str, str]:
        separator = self.form.separator
        instructions = "" if not self.instructions else self.instructions + separator
        if isinstance(self.form, ChatTemplate):
            instructions = self.instructions or ""
        return {"question": self.question, "instructions": instructions}

    @property
    def _headers(self) -> tuple[int, ...]:
        """Each source's header length in characters, in source order."""
        return tuple(len(self.form.header.replace("{id}", source.id)) for source in self.sources)

    def _parts(self, frame: str) -> _Parts:
        before, after = _split(frame, self._values)
        return _Parts(before, _source_pieces(self.sources, self.form.header, self.form.separator), after)

    @property
    def text(self) -> str | None:
        """The plain prompt's whole text (``None`` for a chat layout)."""
        if not isinstance(self.form, PlainTemplate):
            return None
        parts = self._parts(self.form.text)
        return parts.before + "".join(parts.pieces) + parts.after

    def _chat(self) -> _SourceChat:
        template = self.form
        assert isinstance(template, ChatTemplate)
        where = template.where
        messages = []
        parts = None
        for role, frame in (("system", template.system), ("user", template.user)):
            if role == where:
                parts = self._parts(frame)
                content = parts.before + "".join(parts.pieces) + parts.after
            else:
                content = _fill(frame, self._values)
            if content.strip() or role == where:
                messages.append((role, content))
        return _SourceChat(tuple(messages), template.chat_template, parts)

    @property
    def generation_messages(self) -> Messages | None:
        return self._chat().chat if isinstance(self.form, ChatTemplate) else None

    def template(self, backend: Backend) -> str | None:
        return self._chat().template(backend) if isinstance(self.form, ChatTemplate) else None

    # ------------------------------------------------------------------ layout

    def _region(self, backend: Backend, parts: _Parts, char_offset: int, token_offset: int) -> Region:
        pieces = [backend.tokenize(p) for p in parts.pieces]
        segmentation = SourceSegmentation(
            pieces, char_offset=char_offset, token_offset=token_offset, headers=self._headers
        )
        return Region(segmentation, token_offset, char_offset, None)

    def _plain(self, backend: Backend, target: str | None) -> tuple[Layout, tuple[int, ...], str]:
        template = self.form
        assert isinstance(template, PlainTemplate)
        parts = self._parts(template.text)
        before = backend.tokenize(parts.before) if parts.before else concat([])
        pieces = [backend.tokenize(p) for p in parts.pieces]
        output_ids: tuple[int, ...] = ()
        output_text = ""
        if target is None:
            after = backend.tokenize(parts.after) if parts.after else concat([])
        elif parts.after:
            after, output_ids, output_text = split_target(backend, parts.after, target)
        else:
            after = concat([])
            joint = backend.tokenize(target)
            output_ids, output_text = joint.ids, joint.text
        whole = concat([before, *pieces, after])
        segmentation = SourceSegmentation(
            pieces, char_offset=len(parts.before), token_offset=len(before), headers=self._headers
        )
        region = Region(segmentation, len(before), len(parts.before), None)
        return Layout(whole, (region,)), output_ids, output_text

    def _chat_layout(self, layout: Layout, backend: Backend) -> Layout:
        """The chat's layout with one region, the sources inside the message holding them."""
        chat = self._chat()
        assert layout.chat is not None and chat.parts is not None
        index = next(i for i, (role, _) in enumerate(chat.chat) if role == self._where)
        n_before = len(backend.tokenize(chat.parts.before)) if chat.parts.before else 0
        region = self._region(
            backend,
            chat.parts,
            layout.chat.char_offsets[index] + len(chat.parts.before),
            layout.chat.offsets[index] + n_before,
        )
        return Layout(layout.tokenization, (region,), layout.chat)

    @property
    def _where(self) -> str:
        template = self.form
        assert isinstance(template, ChatTemplate)
        return template.where

    def lay_out(self, backend: Backend) -> Layout:
        if isinstance(self.form, PlainTemplate):
            return self._plain(backend, None)[0]
        chat = self._chat()
        rendered = chat.render(backend)
        return self._chat_layout(Layout(rendered.tokenization, (), rendered), backend)

    def probes(self, layout: Layout) -> list[list[tuple[int, int]]]:
        """Every source removed, then each source alone (the others removed), as token spans of
        ``layout.tokenization``: ``1 + n_sources`` probes, what a claim's verdict compares
        (:func:`attrib.result.context.judge`)."""
        region = layout.regions[0]
        segmentation = region.segmentation
        assert isinstance(segmentation, SourceSegmentation)
        starts = [region.offset + start for start in segmentation.starts]
        first, last = starts[0], starts[-1]
        probes = [[(first, last)]]
        for start, end in itertools.pairwise(starts):
            probes.append([(a, b) for a, b in ((first, start), (end, last)) if a < b])
        return probes

    def with_target(self, backend: Backend, target: str) -> tuple[Layout, tuple[int, ...], str]:
        if isinstance(self.form, PlainTemplate):
            return self._plain(backend, target)
        layout, output_ids, output_text = self._chat().with_target(backend, target)
        return self._chat_layout(layout, backend), output_ids, output_text

"""Chat prompts: messages with roles, rendered by a chat template without ever letting content become markup.

A chat prompt is a list of ``{"role", "content"}`` messages. A model sees it
through its chat template (a jinja2 program, as in Hugging Face ``transformers``
and in GGUF metadata under ``tokenizer.chat_template``), which wraps each message
in special tokens. Attribution must perturb the *content* only, so the rendering
is kept as pieces: template text (tokenized with special tokens parsed) and
message content (tokenized as plain data, so text such as ``<end_of_turn>``
inside a message stays text).

The pieces are found by rendering the template with a unique sentinel in place of
each message's content and splitting the result at the sentinels. Templates that
transform content (``| trim``) therefore see it untransformed; everything else
about the template is honoured.

When the model carries no template (the embedded Gemma 3 270M is a base model and
has none), :data:`DEFAULT_TEMPLATE` is used: Gemma's turn format, one turn per
message, with the system role kept as a turn of its own so its content can be
attributed separately.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
import jinja2.sandbox

from attrib.errors import InputError
from attrib.segmentation import Tokenization

__all__ = ["DEFAULT_TEMPLATE", "ROLES", "ChatLayout", "ChatPiece", "check_messages", "layout_chat", "render_pieces"]

#: The template used when the model has none: Gemma's turn markup, one turn per message.
DEFAULT_TEMPLATE = (
    "{% for message in messages %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{{ message['content'] }}<end_of_turn>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

#: Roles a message may have.
ROLES: tuple[str, ...] = ("system", "developer", "user", "assistant")


#: Longest a chat template may render, seconds (a template from a downloaded model runs here).
RENDER_SECONDS = 5.0
#: Most characters a chat template may write.
RENDER_CHARACTERS = 50_000_000


class _TemplateRunaway(Exception):
    """A template ran past its time or size bound."""


class _BoundedSandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox with a deadline checked at every call and output, and sizes
    checked on ``*`` and ``**`` (``'x' * 10**10`` would otherwise exhaust memory)."""

    intercepted_binops = frozenset({"*", "**"})
    deadline = float("inf")

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise _TemplateRunaway(f"it ran longer than {RENDER_SECONDS:g} s")

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        __self.check_time()
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self.check_time()
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise _TemplateRunaway(f"it raised a number to the power {right}")
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                sized = isinstance(sequence, str | list | tuple) and isinstance(count, int)
                if sized and len(sequence) * count > RENDER_CHARACTERS:
                    raise _TemplateRunaway(f"it built a sequence of more than {RENDER_CHARACTERS:,} items")
        return super().call_binop(context, operator, left, right)


@dataclass(frozen=True)
class ChatPiece:
    """A piece of a rendered chat prompt.

    Attributes:
        text: the piece's text.
        message: index of the message whose content this is, or ``None`` for template text.
    """

    text: str
    message: int | None


def check_messages(messages: object) -> list[dict[str, str]]:
    """Validate chat messages and return them as plain ``{"role", "content"}`` dicts.

    Raises:
        InputError: if ``messages`` is not a non-empty list of mappings with a known
            ``role`` and a string ``content``, or if every content is blank.
    """
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise InputError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    checked: list[dict[str, str]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InputError(f"message {index} is a {type(message).__name__}, not a {{'role', 'content'}} dict")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise InputError(f"message {index} has role {role!r}; use one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise InputError(f"message {index} ({role}) needs a string 'content', got {type(content).__name__}")
        checked.append({"role": str(role), "content": content})
    if not any(m["content"].strip() for m in checked):
        raise InputError("every message is empty; give the text to explain")
    return checked


def render_pieces(
    messages: Sequence[Mapping[str, str]],
    template: str = DEFAULT_TEMPLATE,
    *,
    add_generation_prompt: bool = True,
    bos_token: str = "",
    eos_token: str = "",
) -> list[ChatPiece]:
    """Render ``messages`` with ``template`` into template pieces and content pieces.

    Args:
        messages: checked messages (see :func:`check_messages`).
        template: a jinja2 chat template (rendered in jinja2's sandbox).
        add_generation_prompt: end with the template's cue for the assistant's turn.
        bos_token: value of ``bos_token`` in the template (empty: the backend adds BOS).
        eos_token: value of ``eos_token`` in the template.

    Returns:
        Pieces in order; concatenated they are the rendered prompt. Each message's
        content appears exactly once, as one piece with its index.

    Raises:
        InputError: if the template fails, or drops or repeats a message's content.
    """
    marks = [f"\x00{uuid.uuid4().hex}\x00" for _ in messages]
    stand_ins = [{**dict(m), "content": mark} for m, mark in zip(messages, marks, strict=True)]
    environment = _BoundedSandbox(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str) -> None:
        raise InputError(f"the chat template refused these messages: {message}")

    environment.globals["raise_exception"] = raise_exception
    try:
        compiled = environment.from_string(template)
        environment.deadline = time.monotonic() + RENDER_SECONDS
        parts: list[str] = []
        size = 0
        for part in compiled.generate(
            messages=stand_ins,
            add_generation_prompt=add_generation_prompt,
            bos_token=bos_token,
            eos_token=eos_token,
        ):
            size += len(part)
            if size > RENDER_CHARACTERS:
                raise _TemplateRunaway(f"it wrote more than {RENDER_CHARACTERS:,} characters")
            environment.check_time()
            parts.append(part)
        rendered = "".join(parts)
    except InputError:
        raise
    except _TemplateRunaway as error:
        raise InputError(
            f"the chat template was stopped: {error}; it may loop without end (pass another with --chat-template)"
        ) from None
    except jinja2.TemplateError as error:
        raise InputError(f"the chat template failed: {error}") from None
    except (Exception, RecursionError) as error:  # a template is a program: anything can go wrong in it
        raise InputError(f"the chat template failed: {type(error).__name__}: {error}") from None
    pieces: list[ChatPiece] = []
    rest = rendered
    positions = sorted((rendered.find(mark), index) for index, mark in enumerate(marks))
    for index, mark in enumerate(marks):
        if rendered.count(mark) != 1:
            role = messages[index]["role"]
            raise InputError(
                f"the chat template shows message {index} ({role}) {rendered.count(mark)} times; "
                "attrib needs each message exactly once (this template may merge or drop roles)"
            )
    for _, index in positions:
        before, _, rest = rest.partition(marks[index])
        if before:
            pieces.append(ChatPiece(before, None))
        pieces.append(ChatPiece(messages[index]["content"], index))
    if rest:
        pieces.append(ChatPiece(rest, None))
    return pieces


@dataclass(frozen=True)
class ChatLayout:
    """A rendered chat prompt, tokenized piece by piece.

    Attributes:
        messages: the messages.
        tokenization: the whole rendered prompt; template tokens carry the span of
            their whole template piece, content tokens their exact spans.
        contents: each message's content tokenized as data, shape-aligned with
            ``messages``.
        offsets: token position of each message's first content token in ``tokenization``.
        char_offsets: character position of each message's content in the rendered text.
    """

    messages: list[dict[str, str]]
    tokenization: Tokenization
    contents: list[Tokenization]
    offsets: list[int]
    char_offsets: list[int]


def layout_chat(
    messages: Sequence[Mapping[str, str]],
    template: str,
    *,
    tokenize: Callable[[str], Tokenization],
    tokenize_markup: Callable[[str], Sequence[int]],
) -> ChatLayout:
    """Render and tokenize a chat: markup with special tokens parsed, content as data.

    Args:
        messages: checked messages (may be empty: the template's bare generation cue).
        template: the jinja2 chat template.
        tokenize: the backend's data tokenizer.
        tokenize_markup: the backend's tokenizer for template text.

    Returns:
        A :class:`ChatLayout`.

    Raises:
        InputError: if the template fails or drops or repeats a message.
    """
    plain = [dict(m) for m in messages]
    text_parts: list[str] = []
    ids: list[int] = []
    spans: list[tuple[int, int]] = []
    edges: list[int] = []
    contents: list[Tokenization] = [Tokenization.from_pieces("", [], []) for _ in plain]
    offsets = [0] * len(plain)
    char_offsets = [0] * len(plain)
    char = 0
    for piece in render_pieces(plain, template):
        if piece.message is None:
            markup = tuple(tokenize_markup(piece.text))
            edges.append(len(ids))
            ids.extend(markup)
            spans.extend([(char, char + len(piece.text))] * len(markup))
        else:
            content = tokenize(piece.text)
            contents[piece.message] = content
            offsets[piece.message] = len(ids)
            char_offsets[piece.message] = char
            edges.extend(len(ids) + e for e in content.edges)
            ids.extend(content.ids)
            spans.extend((char + a, char + b) for a, b in content.spans)
        text_parts.append(piece.text)
        char += len(piece.text)
    edges.append(len(ids))
    whole = Tokenization(text="".join(text_parts), ids=tuple(ids), spans=tuple(spans), edges=tuple(sorted(set(edges))))
    return ChatLayout(plain, whole, contents, offsets, char_offsets)

"""What is attributed: a plain prompt or a chat, laid out for one backend.

The pipeline (:mod:`attrib.pipeline`) runs the same steps on both forms; each
form supplies what differs:

* its **layout**: the whole prompt as the model sees it (a :class:`Tokenization`),
  and the **regions** whose units are attributed: the whole text of a plain
  prompt; the content of each non-empty message of a chat (template markup is
  never perturbed);
* the **generation messages** (a chat is sent as messages to API chat rungs);
* the **joint split** of prompt and a given target: context and continuation are
  tokenized together and split at the prompt's end, so tokens at the boundary come
  out as the model sees them in running text (lm-evaluation-harness's convention);
* for a chat, the **message coalitions**: the chat rendered with only some of its
  messages, for the messages' Shapley values (:mod:`attrib.auditing.message_shapley`).
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from attrib.backend import Backend, Messages, ScoreRequest
from attrib.chat import DEFAULT_TEMPLATE, ChatLayout, check_messages, layout_chat
from attrib.errors import EmptyPromptError, InputError
from attrib.segmentation import Segmentation, Tokenization

__all__ = ["Region", "Layout", "Prompt", "PlainPrompt", "ChatPrompt", "as_prompt", "split_target"]


@dataclass(frozen=True)
class Region:
    """A stretch of the prompt whose units are attributed.

    Attributes:
        segmentation: the region's own tokens and units (spans index the region's text).
        offset: token position of the region's first token in the whole prompt.
        char_offset: character position of the region's text in the whole prompt text.
        message: index of the chat message the region is, or ``None`` for a plain prompt.
    """

    segmentation: Segmentation
    offset: int
    char_offset: int
    message: int | None


@dataclass(frozen=True)
class Layout:
    """A prompt laid out for one backend.

    Attributes:
        tokenization: the whole prompt as the model sees it (template included), no BOS.
        regions: the attributed regions, in prompt order.
        chat: the chat layout (for requests that carry messages), or ``None``.
    """

    tokenization: Tokenization
    regions: tuple[Region, ...]
    chat: ChatLayout | None = None


def _joint_cut(whole: Tokenization, n_context: int) -> int:
    """The token position where the continuation starts in ``whole`` (context + continuation).

    The first token reaching past the context's ``n_context`` characters belongs to the
    continuation; the cut moves back to a character-aligned edge.
    """
    cut = len(whole)
    for position in range(len(whole)):
        if whole.spans[position][1] > n_context:
            cut = position
            break
    while cut > 0 and cut not in whole.edges:
        cut -= 1
    return cut


def _warn_merge(merged: str) -> None:
    warnings.warn(
        f"the prompt's last {len(merged)} character(s) {merged!r} merge with the target's first token; "
        "they are scored as part of the output",
        stacklevel=4,
    )


def split_target(backend: Backend, prompt: str, target: str) -> tuple[Tokenization, tuple[int, ...], str]:
    """Tokenize ``prompt + target`` together and split it at the prompt's end.

    When a token straddles the boundary (``"... is "`` + ``"Paris"`` tokenizes as
    ``" Paris"``), that token belongs to the output and the prompt is shortened to
    its start; a warning says so.

    Returns:
        ``(prompt tokenization, output token ids, output text)``.

    Raises:
        EmptyPromptError: if nothing of the prompt remains before the target.
        InputError: if the target is empty.
    """
    if not target:
        raise InputError("target is empty; pass the output text to explain, or omit it to generate")
    whole = backend.tokenize(prompt + target)
    cut = _joint_cut(whole, len(prompt))
    prompt_chars = whole.char_offset(cut)
    if prompt_chars < len(prompt):
        _warn_merge(prompt[prompt_chars:])
    if not prompt[:prompt_chars].strip():
        raise EmptyPromptError("nothing of the prompt remains before the target")
    return whole.head(cut), whole.ids[cut:], whole.text[prompt_chars:]


class Prompt(abc.ABC):
    """A prompt in one of its forms (:class:`PlainPrompt`, :class:`ChatPrompt`)."""

    @abc.abstractmethod
    def lay_out(self, backend: Backend) -> Layout:
        """The prompt as ``backend`` sees it, with its regions.

        Raises:
            InputError: if a chat template fails.
            TokenizationError: if the backend's tokens do not reproduce the text.
        """

    @abc.abstractmethod
    def with_target(self, backend: Backend, target: str) -> tuple[Layout, tuple[int, ...], str]:
        """Lay out the prompt and split a given target jointly with the prompt's end.

        Returns:
            ``(layout, output token ids, output text)``; the layout may end earlier than
            :meth:`lay_out`'s when the target's first token merges with the prompt's end.
        """

    @property
    def messages(self) -> list[dict[str, str]] | None:
        """The chat's messages, or ``None`` for a plain prompt."""
        return None

    @property
    def generation_messages(self) -> Messages | None:
        """The prompt as ``((role, content), ...)`` for backends that send chats as messages."""
        return None

    def template(self, backend: Backend) -> str | None:
        """The chat template used with ``backend`` (``None`` for a plain prompt)."""
        return None

    def probes(self, layout: Layout) -> list[list[tuple[int, int]]]:
        """Ablations scored before the method whose log-probabilities the result keeps (none here).

        An assembled prompt (:class:`~attrib.context.template.SourcePrompt`) asks for every
        source removed and for each source alone, which its claims' verdicts need.

        Args:
            layout: this prompt laid out for the run's backend (:meth:`lay_out`).

        Returns:
            For each probe, the token spans of ``layout.tokenization`` to ablate together.
        """
        return []


@dataclass(frozen=True)
class PlainPrompt(Prompt):
    """A plain-text prompt: one region, the whole text.

    Raises:
        EmptyPromptError: if the text is empty or whitespace.
    """

    text: str

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise EmptyPromptError("prompt is empty; give the text to explain")

    @staticmethod
    def _layout(tokens: Tokenization) -> Layout:
        return Layout(tokens, (Region(Segmentation(tokens), 0, 0, None),))

    def lay_out(self, backend: Backend) -> Layout:
        return self._layout(backend.tokenize(self.text))

    def with_target(self, backend: Backend, target: str) -> tuple[Layout, tuple[int, ...], str]:
        tokens, output_ids, output_text = split_target(backend, self.text, target)
        return self._layout(tokens), output_ids, output_text


@dataclass(frozen=True)
class ChatPrompt(Prompt):
    """A chat: ``{"role", "content"}`` messages rendered by a chat template.

    Args:
        chat: the messages (checked with :func:`attrib.chat.check_messages`).
        chat_template: a jinja2 template overriding the model's; without either,
            :data:`attrib.chat.DEFAULT_TEMPLATE`.

    Raises:
        InputError: for malformed messages.
    """

    chat: tuple[tuple[str, str], ...]
    chat_template: str | None = None

    @classmethod
    def of(cls, messages: object, chat_template: str | None = None) -> ChatPrompt:
        """Check ``messages`` and build the prompt.

        Raises:
            InputError: if ``messages`` is not a non-empty list of valid messages.
        """
        checked = check_messages(messages)
        return cls(tuple((m["role"], m["content"]) for m in checked), chat_template)

    @property
    def messages(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.chat]

    @property
    def generation_messages(self) -> Messages:
        return self.chat

    def template(self, backend: Backend) -> str:
        return self.chat_template or backend.chat_template or DEFAULT_TEMPLATE

    def render(self, backend: Backend, keep: Sequence[int] | None = None) -> ChatLayout:
        """The chat (or only the messages ``keep``) rendered and tokenized for ``backend``."""
        messages = self.messages if keep is None else [self.messages[i] for i in keep]
        return layout_chat(
            messages,
            self.template(backend),
            tokenize=self.content_tokenizer(backend),
            tokenize_markup=backend.tokenize_markup,
        )

    def content_tokenizer(self, backend: Backend) -> Callable[[str], Tokenization]:
        """How message content is tokenized: as data, by ``backend``. A prompt assembled from
        sources tokenizes the message holding them source by source (:mod:`attrib.context`)."""
        return backend.tokenize

    def _layout(self, chat: ChatLayout, tokens: Tokenization) -> Layout:
        regions = tuple(
            Region(
                Segmentation(chat.contents[i], role=role, message=i),
                chat.offsets[i],
                chat.char_offsets[i],
                i,
            )
            for i, (role, _) in enumerate(self.chat)
            if len(chat.contents[i])
        )
        return Layout(tokens, regions, chat)

    def lay_out(self, backend: Backend) -> Layout:
        chat = self.render(backend)
        return self._layout(chat, chat.tokenization)

    def with_target(self, backend: Backend, target: str) -> tuple[Layout, tuple[int, ...], str]:
        """Split the target jointly with the template text after the last message.

        The template's tail (for the default template, the cue ``"<start_of_turn>model\\n"``)
        and the target are tokenized together as data; when the target's first token
        takes in the tail's last characters (a newline merging into ``"\\nThe"``), those
        characters are scored as part of the output and the tail is re-tokenized
        without them, as for plain prompts. A template that ends in message content has
        no tail, and the target is tokenized on its own.

        Raises:
            InputError: if the target is empty.
        """
        if not target:
            raise InputError("target is empty; pass the output text to explain, or omit it to generate")
        chat = self.render(backend)
        whole = chat.tokenization
        last = max(self._content_ends(chat), default=(0, 0))
        tail_start, tail_chars = last
        tail = whole.text[tail_chars:]
        joint = backend.tokenize(tail + target)
        cut = _joint_cut(joint, len(tail))
        kept = joint.char_offset(cut)
        output_ids = joint.ids[cut:]
        output_text = joint.text[kept:]
        if kept == len(tail):
            return self._layout(chat, whole), output_ids, output_text
        _warn_merge(tail[kept:])
        markup = tuple(backend.tokenize_markup(tail[:kept])) if kept else ()
        span = (tail_chars, tail_chars + kept)
        text = whole.text[: tail_chars + kept]
        ids = whole.ids[:tail_start] + markup
        spans = whole.spans[:tail_start] + (span,) * len(markup)
        edges = tuple(e for e in whole.edges if e <= tail_start) + ((len(ids),) if markup else ())
        shortened = Tokenization(text=text, ids=ids, spans=spans, edges=edges)
        return self._layout(chat, shortened), output_ids, output_text

    def _content_ends(self, chat: ChatLayout) -> list[tuple[int, int]]:
        """``(token position, character position)`` just after each message's content."""
        return [
            (chat.offsets[i] + len(chat.contents[i]), chat.char_offsets[i] + len(chat.contents[i].text))
            for i in range(len(self.chat))
        ]


def as_prompt(prompt: object, chat_template: str | None = None) -> Prompt:
    """A :class:`Prompt` for a string (plain) or a list of messages (chat).

    Raises:
        InputError: for anything else, or malformed messages; a chat template with a plain prompt.
        EmptyPromptError: for an empty prompt.
    """
    if isinstance(prompt, Prompt):
        return prompt
    if isinstance(prompt, str):
        if chat_template is not None:
            raise InputError("chat_template applies to chat prompts (a list of messages), not to plain text")
        return PlainPrompt(prompt)
    if isinstance(prompt, list | tuple):
        return ChatPrompt.of(list(prompt), chat_template)
    raise InputError(f"prompt must be a string or a list of chat messages, got {type(prompt).__name__}")


def coalition_requests(
    prompt: ChatPrompt, backend: Backend, subsets: Sequence[frozenset[int]], output_ids: tuple[int, ...]
) -> list[ScoreRequest]:
    """One scoring request per message subset: the chat rendered with only those messages."""
    requests = []
    for subset in subsets:
        keep = sorted(subset)
        sub = prompt.render(backend, keep)
        requests.append(
            ScoreRequest(
                sub.tokenization.ids,
                output_ids,
                sub.tokenization.text,
                messages=tuple(prompt.chat[i] for i in keep),
            )
        )
    return requests

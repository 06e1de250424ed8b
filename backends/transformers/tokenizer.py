"""A Hugging Face tokenizer seen through attrib's tokenizer contract.

Prompts are data: special-token syntax typed in a prompt (``<start_of_turn>``)
stays text (``split_special_tokens=True``); only chat-template markup parses it.
Unit spans come from the fast tokenizer's character offsets
(``return_offsets_mapping``), repaired where tokenizers leave gaps:

* offsets that leave characters uncovered (tokenizers that trim the leading
  space from a token's offset) are widened leftwards to the end of the previous
  token, so the spans cover the text;
* byte-fallback tokens holding part of one character share that character's
  span, and the text can only be cut before the first of them.

The result must round-trip: the decoded ids equal the text, otherwise
:class:`~attrib.errors.TokenizationError`.

Source: Hugging Face tokenizers documentation, ``PreTrainedTokenizerFast.__call__``
(``return_offsets_mapping``, ``split_special_tokens``) and ``decode``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attrib.errors import BackendError, TokenizationError
from attrib.segmentation import Tokenization

__all__ = ["HFTokenizer"]


class HFTokenizer:
    """Tokenize, detokenize and render chat markup with a Hugging Face fast tokenizer.

    Args:
        tokenizer: a ``transformers`` fast tokenizer (``is_fast`` true).

    Raises:
        BackendError: if the tokenizer is a slow (Python) one, which has no character offsets.
    """

    def __init__(self, tokenizer: Any) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise BackendError("the model's tokenizer is not a fast tokenizer; character offsets need one")
        self._tok = tokenizer
        self.bos_id: int | None = _bos_id(tokenizer)
        self.stop_ids: frozenset[int] = frozenset(_as_ids(tokenizer.eos_token_id)) | _end_of_turn_ids(tokenizer)
        self._texts: dict[int, str] = {}

    @property
    def chat_template(self) -> str | None:
        """The tokenizer's own jinja2 chat template, or ``None``."""
        template = getattr(self._tok, "chat_template", None)
        return template if isinstance(template, str) and template else None

    def tokenize(self, text: str) -> Tokenization:
        """Token ids of ``text`` as data (no special tokens, no BOS) with the character span of each.

        Raises:
            TokenizationError: if the ids do not decode back to ``text``.
        """
        if not text:
            return Tokenization(text="", ids=(), spans=(), edges=(0,))
        encoded = self._tok(text, add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True)
        ids = tuple(int(i) for i in encoded["input_ids"])
        offsets = [(int(a), int(b)) for a, b in encoded["offset_mapping"]]
        if self.detokenize(ids) != text:
            raise TokenizationError(
                "the tokenizer does not reproduce the prompt text; character offsets cannot be mapped "
                "(use another backend or model)"
            )
        spans, edges = _spans_and_edges(offsets, len(text))
        return Tokenization(text=text, ids=ids, spans=spans, edges=edges)

    def tokenize_markup(self, text: str) -> tuple[int, ...]:
        """Token ids of chat-template text with special-token syntax parsed, without BOS."""
        encoded = self._tok(text, add_special_tokens=False, split_special_tokens=False)
        return tuple(int(i) for i in encoded["input_ids"])

    def detokenize(self, ids: Sequence[int]) -> str:
        """The text of ``ids``, special tokens kept, with no clean-up of spaces."""
        text = self._tok.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)
        return str(text)

    def token_text(self, ids: Sequence[int]) -> list[str]:
        """The text of each token on its own (partial characters become U+FFFD)."""
        out = []
        for token in ids:
            text = self._texts.get(int(token))
            if text is None:
                text = self.detokenize([int(token)])
                self._texts[int(token)] = text
            out.append(text)
        return out


#: Control tokens that end a turn in common chat formats; llama.cpp treats the same
#: texts as end-of-generation (``llama-vocab.cpp``, its end-of-generation token list).
_END_OF_TURN = ("<end_of_turn>", "<|eot_id|>", "<|im_end|>", "<|end|>", "<|endoftext|>", "<|end_of_text|>", "<EOT>")


def _end_of_turn_ids(tokenizer: Any) -> frozenset[int]:
    """Ids of the end-of-turn control tokens the tokenizer has as single tokens."""
    found = set()
    vocabulary = tokenizer.get_vocab()
    for text in _END_OF_TURN:
        token = vocabulary.get(text)
        if token is not None:
            found.add(int(token))
    return frozenset(found)


def _bos_id(tokenizer: Any) -> int | None:
    """The id the tokenizer prepends to a sequence (``add_special_tokens=True``), if any."""
    with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
    without = tokenizer("a", add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    if bos is not None and len(with_special) > len(without) and with_special[0] == bos:
        return int(bos)
    return None


def _as_ids(value: object) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return []


def _spans_and_edges(
    offsets: Sequence[tuple[int, int]], length: int
) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    """Character spans covering ``[0, length)`` and the token positions where the text can be cut.

    A token whose start lies after the furthest end so far is widened leftwards (gap
    characters belong to it); a token starting before that end shares a character
    with its predecessor, so no cut is allowed before it.
    """
    spans: list[tuple[int, int]] = []
    edges: list[int] = []
    reach = 0
    for i, (start, end) in enumerate(offsets):
        if start >= reach:
            edges.append(i)
            start = reach
        spans.append((start, max(end, start)))
        reach = max(reach, end)
    if spans and reach < length:
        last_start, _ = spans[-1]
        spans[-1] = (last_start, length)
    edges.append(len(offsets))
    return tuple(spans), tuple(edges)

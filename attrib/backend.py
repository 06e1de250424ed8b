"""The backend contract and the registry of backends by name.

A backend is whatever can tokenize, detokenize, generate greedily and score a
fixed continuation under many prompts (forced decoding, a.k.a. teacher forcing).
The calls take batches, so a backend is free to order, share and parallelise the
work (EleutherAI lm-evaluation-harness's ``loglikelihood`` contract is the model).

Backends are registered by name as ``"module:Class"`` strings and imported only
when first used, so ``import attrib`` never imports llama_cpp or openai.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from attrib.errors import UnknownNameError
from attrib.segmentation import Tokenization

#: A chat prompt as hashable ``((role, content), ...)`` pairs.
Messages = tuple[tuple[str, str], ...]

__all__ = [
    "Messages",
    "Backend",
    "ScoreRequest",
    "ScoreResult",
    "Generation",
    "register_backend",
    "load_backend",
    "backend_names",
    "common_prefix_length",
    "prefix_sharing_order",
]


@dataclass(frozen=True)
class ScoreRequest:
    """Score ``continuation_ids`` after ``prompt_ids`` by forced decoding.

    Attributes:
        prompt_ids: prompt token ids, without BOS (the backend adds what its model needs).
        continuation_ids: the fixed output tokens to score, shape (m,), m >= 1.
        prompt_text: the same prompt as text, for backends that can only send text.
        messages: the same prompt as chat messages ``((role, content), ...)`` when it is
            a chat, for backends that send messages; ``None`` for plain text.
        sample: 0 for an ordinary request; k > 0 asks for an independent k-th repeat
            of the same request (noise-floor estimation), which a cache must not
            answer with sample 0's response.
    """

    prompt_ids: tuple[int, ...]
    continuation_ids: tuple[int, ...]
    prompt_text: str | None = None
    sample: int = 0
    messages: Messages | None = None


@dataclass(frozen=True)
class ScoreResult:
    """Log-probabilities of a continuation under one prompt.

    Attributes:
        logprobs: ``log p(y_t | prompt, y_<t)`` in nats, float64, shape (m,).
        tokens_evaluated: tokens the backend computed for this request after prefix reuse.
    """

    logprobs: np.ndarray
    tokens_evaluated: int


@dataclass(frozen=True)
class Generation:
    """A greedy continuation.

    Attributes:
        ids: generated token ids, without the end-of-generation token.
        tokens_evaluated: tokens the backend computed (prompt after reuse, plus generated).
    """

    ids: tuple[int, ...]
    tokens_evaluated: int


class Backend(abc.ABC):
    """A model attrib can query. Subclasses implement the five abstract members.

    Attributes:
        name: registry name of the backend kind (``"llama"``, ``"toy"``, ...).
    """

    name: str = ""
    #: False when the backend has no access to the model's tokenizer and splits text
    #: into words instead; the finest unit level is then the word.
    has_tokenizer: bool = True
    #: False when the backend can only score outputs the model generates itself
    #: (regeneration-based scoring), so a given ``target`` cannot be explained.
    supports_target: bool = True
    #: What :meth:`score` returns: ``"logprob"`` (nats) or ``"text-similarity"``
    #: (retention in [-1, 0] per output token).
    score_kind: str = "logprob"
    #: False when token ids are the backend's local indices of token texts rather than
    #: the model's vocabulary ids (API backends); results then record no output ids.
    exposes_token_ids: bool = True

    @property
    @abc.abstractmethod
    def model(self) -> str:
        """A human-readable description of the model (file name, size, quantisation)."""

    @property
    @abc.abstractmethod
    def context_length(self) -> int:
        """Maximum tokens per sequence, special tokens included."""

    @abc.abstractmethod
    def tokenize(self, text: str) -> Tokenization:
        """Tokenize ``text`` as data (special-token syntax is not parsed), without BOS.

        Raises:
            TokenizationError: if the tokens cannot be mapped back onto the text.
        """

    @abc.abstractmethod
    def generate(
        self, prompt_ids: Sequence[int], *, max_new_tokens: int, messages: Messages | None = None
    ) -> Generation:
        """Greedy decoding of at most ``max_new_tokens`` tokens after the prompt.

        ``messages`` is the same prompt as chat messages, for backends that send chats as
        messages (API chat rungs); backends that work on token ids ignore it."""

    @abc.abstractmethod
    def score(
        self,
        requests: Sequence[ScoreRequest],
        *,
        on_result: Callable[[int, ScoreResult], None] | None = None,
    ) -> list[ScoreResult]:
        """Forced decoding: log-probabilities of each request's continuation.

        Args:
            requests: the prompts and continuations to score; any order is allowed
                internally, results come back in request order.
            on_result: called with ``(request index, result)`` as each one finishes.

        Returns:
            One :class:`ScoreResult` per request, in request order.

        Raises:
            ResponseMismatchError: if the model returns the wrong number of log-probabilities.
        """

    def tokenize_markup(self, text: str) -> tuple[int, ...]:
        """Token ids of template text, with the model's special-token syntax parsed
        (``<start_of_turn>`` becomes one control token). No BOS. Default: as data."""
        return self.tokenize(text).ids

    @property
    def chat_template(self) -> str | None:
        """The model's own chat template (jinja2), if it carries one."""
        return None

    def token_text(self, ids: Sequence[int]) -> list[str]:
        """The text of each token, for display (partial characters become U+FFFD)."""
        return [self.detokenize([i]) for i in ids]

    @abc.abstractmethod
    def detokenize(self, ids: Sequence[int]) -> str:
        """The text of a sequence of token ids."""

    def describe(self) -> dict[str, object]:
        """JSON-ready description recorded in results (never includes secrets)."""
        return {"name": self.name, "model": self.model, "context_length": self.context_length}

    def usage_snapshot(self) -> dict[str, int]:
        """Backend-specific counters so far (requests, cache hits, retries, ...); empty by default."""
        return {}

    def close(self) -> None:
        """Release the model and any connections; the backend is unusable afterwards."""


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    x = np.asarray(a[:n])
    y = np.asarray(b[:n])
    diff = np.flatnonzero(x != y)
    return int(diff[0]) if diff.size else n


def prefix_sharing_order(sequences: Sequence[Sequence[int]]) -> list[int]:
    """Indices of ``sequences`` in lexicographic order of their tokens.

    Lexicographic order is the pre-order of the sequences' prefix trie, which
    maximises the total common prefix between consecutive sequences, so a backend
    that keeps the previous sequence's KV cache recomputes the fewest tokens.
    """
    return sorted(range(len(sequences)), key=lambda i: tuple(sequences[i]))


_REGISTRY: dict[str, str] = {
    "llama": "attrib.backends.llama:LlamaBackend",
    "openai": "attrib.backends.openai:OpenAIBackend",
    "toy": "attrib.backends.toy:ToyBackend",
}


def register_backend(name: str, target: str) -> None:
    """Register a backend class under ``name`` as ``"module:Class"`` (imported on first use)."""
    _REGISTRY[name] = target


def backend_names() -> list[str]:
    """Names of the registered backends."""
    return sorted(_REGISTRY)


def load_backend(name: str, **options: object) -> Backend:
    """Instantiate the backend registered as ``name`` with ``options``.

    Raises:
        UnknownNameError: if no backend has that name (with a "did you mean").
        BackendUnavailableError: if the backend's optional dependency is missing.
    """
    if name not in _REGISTRY:
        raise UnknownNameError.for_choice("backend", name, _REGISTRY)
    module_name, _, class_name = _REGISTRY[name].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**options)

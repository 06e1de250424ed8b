"""The backend contract: small protocols, capabilities resolved once, and loading by name.

A backend is whatever can tokenize, detokenize, generate greedily and score a
fixed continuation under many prompts (forced decoding, a.k.a. teacher forcing).
The calls take batches, so a backend is free to order, share and parallelise the
work (EleutherAI lm-evaluation-harness's ``loglikelihood`` contract is the model).

Three contracts, smallest first:

* :class:`ScoringModel`: what the :class:`~attrib.scoring.Scorer` needs, one
  batched ``score`` call.
* :class:`Capabilities`: what a backend can do (its score kind, whether it can
  score a given target, exposes the model's token ids, has the model's
  tokenizer), a frozen value returned by :meth:`Backend.capabilities`. Resolving
  it may probe an endpoint once; reading it never does I/O.
* :class:`Backend`: the whole model interface (tokenizer, generation, scoring,
  description, usage counters, lifecycle).

Backends are registered by name in :data:`attrib.registry.backends` as
``"module:Class"`` strings and imported only when first used, so ``import attrib``
never imports llama_cpp, openai's transport or torch; installed packages add
theirs through the ``attrib.backends`` entry-point group.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from attrib import registry
from attrib.errors import InputError
from attrib.segmentation import Tokenization

#: A chat prompt as hashable ``((role, content), ...)`` pairs.
Messages = tuple[tuple[str, str], ...]

__all__ = [
    "Messages",
    "ScoreKind",
    "Capabilities",
    "ScoringModel",
    "Backend",
    "ScoreRequest",
    "ScoreResult",
    "Generation",
    "load_backend",
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


#: What a score is: a log-probability in nats, or a text-similarity retention (not nats).
ScoreKind = Literal["logprob", "text-similarity"]


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, resolved once (:meth:`Backend.capabilities`).

    Attributes:
        score_kind: what :meth:`Backend.score` returns: ``"logprob"`` (nats) or
            ``"text-similarity"`` (retention in [-1, 0] per output token; not nats).
        supports_target: False when the backend can only score outputs the model
            generates itself (regeneration-based scoring), so a given ``target``
            cannot be explained.
        exposes_token_ids: False when token ids are the backend's local indices of
            token texts rather than the model's vocabulary ids (API backends);
            results then record no output ids.
        has_tokenizer: False when the backend has no access to the model's
            tokenizer and splits text into words; the finest unit level is then the word.
    """

    score_kind: ScoreKind = "logprob"
    supports_target: bool = True
    exposes_token_ids: bool = True
    has_tokenizer: bool = True

    def __post_init__(self) -> None:
        if self.score_kind not in ("logprob", "text-similarity"):
            raise InputError(f"unknown score kind {self.score_kind!r} (expected 'logprob' or 'text-similarity')")


class ScoringModel(Protocol):
    """What the :class:`~attrib.scoring.Scorer` needs of a model: one batched forced-decoding call."""

    def score(
        self,
        requests: Sequence[ScoreRequest],
        *,
        on_result: Callable[[int, ScoreResult], None] | None = None,
    ) -> list[ScoreResult]:
        """Log-probabilities of each request's continuation, in request order (see :meth:`Backend.score`)."""
        ...


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

    def capabilities(self) -> Capabilities:
        """What this backend can do, resolved once (an API backend may probe its endpoint
        the first time; later calls return the same value without I/O).

        Default: forced decoding in nats with the model's own tokenizer and token ids.

        Raises:
            EndpointError: if resolving needs an endpoint that cannot be reached.
        """
        return Capabilities()

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

    def ids_of_pieces(self, pieces: Sequence[str]) -> tuple[int, ...]:
        """Token ids for token texts, for backends whose ids are local indices of token
        texts (``Capabilities.exposes_token_ids`` False): a cached generation is stored as
        texts and mapped back with this.

        Raises:
            NotImplementedError: for backends that expose the model's own token ids
                (their ids are cached as ids and never need this).
        """
        raise NotImplementedError(f"{type(self).__name__} exposes the model's token ids; cache ids, not texts")

    def describe(self) -> dict[str, object]:
        """JSON-ready description recorded in results (never includes secrets)."""
        return {"name": self.name, "model": self.model, "context_length": self.context_length}

    def identity(self) -> dict[str, object]:
        """What determines this backend's answers, JSON-ready, for cache keys
        (:class:`~attrib.cache.wrapper.CachingBackend`): the backend kind, the model and every
        setting that changes a score; never secrets, never settings that only change
        speed (concurrency, threads). Default: :meth:`describe`."""
        return self.describe()

    def usage_snapshot(self) -> dict[str, int]:
        """Backend-specific counters so far (requests, cache hits, retries, ...); empty by default."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook: backends without resources need no close
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


def load_backend(name: str, **options: object) -> Backend:
    """Instantiate the backend registered as ``name`` with ``options``.

    Backends are named in :data:`attrib.registry.backends` (built-in, registered in
    code, or installed through the ``attrib.backends`` entry-point group).

    Raises:
        UnknownNameError: if no backend has that name (with a "did you mean").
        RegistrationError: if the name is registered to something that is not a Backend.
        BackendUnavailableError: if the backend's optional dependency is missing.
    """
    return registry.backends.create(name, **options)

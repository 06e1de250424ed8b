"""A deterministic backend whose sensitivity is known by construction.

The toy model's log-probability of every output token is a constant minus a
penalty for each *key word* missing from the prompt, so the exact attribution of
any ablation is known in advance. It is for testing schedulers without a model
(captum's toy-model test idea) and for trying attrib without installing one.

Tokenizer: whitespace attaches to the word or punctuation mark that follows it,
and words longer than four characters are cut into four-character pieces
(``" Toky"``, ``"o"``), so token, word, sentence and paragraph levels all differ.

Example::

    toy = ToyBackend(sensitivity={"paris": 2.0, ("capital", "seat"): 1.5}, output=" yes")

Deleting "Paris" lowers each output token's log-probability by 2 nats; deleting
both "capital" and "seat" lowers it by 1.5 (either alone does nothing: redundant
evidence, the case where single-unit leave-one-out misses an effect).
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from attrib.backend import (
    Backend,
    Generation,
    Messages,
    ScoreRequest,
    ScoreResult,
    common_prefix_length,
    prefix_sharing_order,
)
from attrib.segmentation import Tokenization

__all__ = ["ToyBackend"]

_PIECE = re.compile(r"\s*\w+|\s*[^\w\s]|\s+")
_WORD = re.compile(r"\w+")
_BOS = 1


class ToyBackend(Backend):
    """Deterministic toy model with a known sensitivity to key words.

    Args:
        sensitivity: key → penalty in nats applied to each output token when the key
            is absent from the prompt. A key is a lowercase word, or a tuple of words
            that is absent only when all of them are. A penalty is a float (every output
            token) or a sequence with one value per output token.
        output: the text the toy "generates".
        base_logprob: log-probability of each output token with every key present, nats.
        context_length: context window in tokens, BOS included.
        noise: standard deviation (nats) of Gaussian noise added to every score,
            seeded by the request and its ``sample`` number, so a repeat is
            reproducible but differs from the other samples (emulates a
            non-deterministic endpoint).
        delay: seconds to sleep per scored request (emulates a slow model, for tests
            that interrupt a run); answers do not depend on it.
    """

    name = "toy"

    def __init__(
        self,
        *,
        sensitivity: Mapping[str | tuple[str, ...], float | Sequence[float]] | None = None,
        output: str = " yes",
        base_logprob: float = -0.25,
        context_length: int = 8192,
        noise: float = 0.0,
        delay: float = 0.0,
    ) -> None:
        self.sensitivity = {
            (key,) if isinstance(key, str) else tuple(key): value for key, value in (sensitivity or {}).items()
        }
        self.output = output
        self.base_logprob = base_logprob
        self._context_length = context_length
        self.noise = noise
        self.delay = delay
        self._pieces: dict[int, str] = {}
        self._last: tuple[int, ...] = ()
        self.tokenize(output)  # its vocabulary knows its own output, as a real model's does

    @property
    def model(self) -> str:
        return "toy (deterministic key-word model)"

    @property
    def context_length(self) -> int:
        return self._context_length

    def identity(self) -> dict[str, object]:
        """The toy's settings: two toys with different sensitivities never share cached answers."""
        return {
            **self.describe(),
            "sensitivity": sorted(
                [list(key), value if isinstance(value, float | int) else list(value)]
                for key, value in self.sensitivity.items()
            ),
            "output": self.output,
            "base_logprob": self.base_logprob,
            "noise": self.noise,
        }

    def _id(self, piece: str) -> int:
        token = 2 + zlib.crc32(piece.encode("utf-8")) % 1_000_000
        self._pieces[token] = piece
        return token

    def tokenize(self, text: str) -> Tokenization:
        pieces: list[str] = []
        for match in _PIECE.finditer(text):
            piece = match.group()
            body = piece.lstrip()
            lead = piece[: len(piece) - len(body)]
            if len(body) > 4 and body.isalnum():
                pieces.append(lead + body[:4])
                pieces.extend(body[i : i + 4] for i in range(4, len(body), 4))
            else:
                pieces.append(piece)
        ids = [self._id(p) for p in pieces]
        return Tokenization.from_pieces(text, ids, [p.encode("utf-8") for p in pieces])

    def detokenize(self, ids: Sequence[int]) -> str:
        return "".join(self._pieces.get(int(i), "") for i in ids)

    def generate(
        self, prompt_ids: Sequence[int], *, max_new_tokens: int, messages: Messages | None = None
    ) -> Generation:
        ids = self.tokenize(self.output).ids[:max_new_tokens]
        return Generation(ids=ids, tokens_evaluated=len(prompt_ids) + 1 + len(ids))

    def logprobs(self, prompt_ids: Sequence[int], n_output: int) -> np.ndarray:
        """The toy's log-probability of each of ``n_output`` output tokens, nats, shape (n_output,)."""
        present = {w.lower() for w in _WORD.findall(self.detokenize(prompt_ids))}
        values = np.full(n_output, self.base_logprob, dtype=np.float64)
        for key, penalty in self.sensitivity.items():
            if not any(word in present for word in key):
                values -= np.broadcast_to(np.asarray(penalty, dtype=np.float64), (n_output,))
        return values

    def score(
        self,
        requests: Sequence[ScoreRequest],
        *,
        on_result: Callable[[int, ScoreResult], None] | None = None,
    ) -> list[ScoreResult]:
        sequences = [(_BOS, *r.prompt_ids, *r.continuation_ids[:-1]) for r in requests]
        results: list[ScoreResult | None] = [None] * len(requests)
        for index in prefix_sharing_order(sequences):
            request, sequence = requests[index], sequences[index]
            # Same accounting as a KV-cached model: reuse the shared prefix, recompute the rest.
            keep = min(common_prefix_length(self._last, sequence), len(request.prompt_ids))
            self._last = sequence
            if self.delay:
                time.sleep(self.delay)
            values = self.logprobs(request.prompt_ids, len(request.continuation_ids))
            if self.noise:
                seed = zlib.crc32(repr((request.prompt_ids, request.sample)).encode())
                values = values + np.random.default_rng(seed).normal(0.0, self.noise, values.shape)
            result = ScoreResult(
                logprobs=values,
                tokens_evaluated=len(sequence) - keep,
            )
            results[index] = result
            if on_result is not None:
                on_result(index, result)
        return [r for r in results if r is not None]

"""Any Hugging Face causal language model as an attrib backend, through PyTorch.

Forced decoding is batched: the variants of a prompt are sorted so neighbours
share prefixes, each group's shared prefix is evaluated once and its key/value
cache reused for every variant in the group, and the suffixes run as one padded
batch with logits only at the positions that predict output tokens
(:mod:`.scoring`, :mod:`.plan`, :mod:`.forward`). Tokenization uses the model's
own fast tokenizer with its character offsets (:mod:`.tokenizer`).

The embedded Gemma 3 270M GGUF (the llama backend's default weights) loads
dequantized through transformers' GGUF support, so both backends can be compared
on the same weights without a download (:mod:`.loading`).

Sources: transformers documentation (``AutoModelForCausalLM``, ``DynamicCache``,
GGUF loading); EleutherAI lm-evaluation-harness (context and continuation
encoded together, then split).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from attrib.backend import Backend, Generation, Messages, ScoreRequest, ScoreResult
from attrib.backends.transformers import loading
from attrib.backends.transformers.plan import Budget
from attrib.errors import BackendError, InputError
from attrib.segmentation import Tokenization

__all__ = ["TransformersBackend"]


class TransformersBackend(Backend):
    """A transformers causal LM (Hub name, local directory or GGUF file), scored in batches.

    Args:
        model: a Hub name (``"org/name"``), a local model directory, a ``.gguf`` file,
            or ``None`` for the embedded Gemma 3 270M GGUF.
        gguf_file: the GGUF file inside a directory or Hub repository given as ``model``.
        device: ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``), ``"mps"``;
            ``None`` is ``"auto"``.
        dtype: ``"auto"`` (float32), ``"float32"``, ``"bfloat16"`` or ``"float16"``; ``None`` is ``"auto"``.
        batch_tokens: most suffix positions (rows x padded length) in one forward pass.
        max_rows: most variants in one batch.
        cache_bytes: most bytes of key/value cache copied for one batch.
        threads: CPU threads for torch (default: torch's own choice).

    Raises:
        BackendUnavailableError: if torch or transformers (or gguf for a GGUF file) is missing.
        ModelNotFoundError: if the model cannot be found or loaded.
        InputError: for an unknown device or dtype, or a device this machine lacks.

    Not thread-safe: one backend runs one request at a time.
    """

    name = "transformers"

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        gguf_file: str | None = None,
        device: str | None = "auto",
        dtype: str | None = "auto",
        batch_tokens: int = 2048,
        max_rows: int = 64,
        cache_bytes: int = 2 * 1024**3,
        threads: int | None = None,
    ) -> None:
        torch, _ = loading.require()
        from attrib.backends.transformers.forward import CachedForward, kv_bytes_per_position
        from attrib.backends.transformers.scoring import BatchScorer
        from attrib.backends.transformers.tokenizer import HFTokenizer

        if batch_tokens < 1 or max_rows < 1 or cache_bytes < 1:
            raise InputError("batch_tokens, max_rows and cache_bytes must be positive")
        self._torch = torch
        if threads is not None:
            torch.set_num_threads(int(threads))
        device = "auto" if device is None else device
        dtype = "auto" if dtype is None else dtype
        self.device = loading.pick_device(torch, device)
        self.dtype = str(loading.pick_dtype(torch, dtype)).removeprefix("torch.")
        self.source = loading.resolve_source(model, gguf_file)
        self._model, raw_tokenizer = loading.load(
            self.source, device=self.device, dtype=loading.pick_dtype(torch, dtype)
        )
        self._tokenizer = HFTokenizer(raw_tokenizer)
        self._stop_ids = self._tokenizer.stop_ids | _generation_stop_ids(self._model)
        config = self._model.config
        text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
        self._context = int(getattr(text_config, "max_position_embeddings", 0) or 0) or 2048
        self._forward = CachedForward(self._model, torch, self.device)
        pad = raw_tokenizer.pad_token_id
        budget = Budget(
            batch_tokens=batch_tokens,
            max_rows=max_rows,
            cache_bytes=cache_bytes,
            kv_bytes=kv_bytes_per_position(self._model),
        )
        self._scorer = BatchScorer(self._forward, torch, budget, pad=int(pad) if pad is not None else 0)
        self._generated = 0
        self._parameters = int(sum(p.numel() for p in self._model.parameters()))

    # ------------------------------------------------------------------ info

    @property
    def model(self) -> str:
        return f"{self.source.label} ({self._parameters / 1e6:.0f}M parameters, {self.dtype}, {self.device})"

    @property
    def context_length(self) -> int:
        return self._context

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "source": self.source.label,
            "device": self.device,
            "dtype": self.dtype,
            "batch_tokens": self._scorer.budget.batch_tokens,
        }

    def identity(self) -> dict[str, object]:
        """The model, its weights' source and the dtype (they change scores); not the batch sizes."""
        return {
            "name": self.name,
            "source": self.source.location if not self.source.local else self.source.label,
            "gguf_file": self.source.gguf_file,
            "dtype": self.dtype,
            "device_kind": self.device.split(":", 1)[0],
        }

    def usage_snapshot(self) -> dict[str, int]:
        """Counters so far: score calls, variants, forward batches, largest batch, prefix,
        suffix and padding tokens, out-of-memory retries, generated tokens."""
        return {**self._scorer.usage, "generated_tokens": self._generated}

    # ------------------------------------------------------------------ tokens

    def tokenize(self, text: str) -> Tokenization:
        return self._tokenizer.tokenize(text)

    def tokenize_markup(self, text: str) -> tuple[int, ...]:
        return self._tokenizer.tokenize_markup(text)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self._tokenizer.detokenize(ids)

    def token_text(self, ids: Sequence[int]) -> list[str]:
        return self._tokenizer.token_text(ids)

    @property
    def chat_template(self) -> str | None:
        """The tokenizer's own chat template, or ``None`` (attrib then uses its default)."""
        return self._tokenizer.chat_template

    def _with_bos(self, ids: Sequence[int]) -> tuple[int, ...]:
        bos = self._tokenizer.bos_id
        return ((bos,) if bos is not None else ()) + tuple(int(t) for t in ids)

    # ------------------------------------------------------------------ protocol

    def generate(
        self, prompt_ids: Sequence[int], *, max_new_tokens: int, messages: Messages | None = None
    ) -> Generation:
        """Greedy decoding (argmax at every step) until an end-of-generation token.

        Raises:
            BackendError: if the prompt is empty.
        """
        sequence = list(self._with_bos(prompt_ids))
        if not sequence:
            raise BackendError("cannot generate from an empty prompt")
        forward = self._forward
        start = forward.keep(sequence, len(sequence) - 1)
        evaluated = len(sequence) - start
        chunk = self._scorer.budget.batch_tokens
        output: list[int] = []
        row = forward.extend(sequence, chunk=chunk, wanted=[len(sequence) - 1])
        for step in range(max_new_tokens):
            token = int(row[-1].argmax().item())
            if token in self._stop_ids:
                break
            output.append(token)
            if step == max_new_tokens - 1:
                break
            sequence.append(token)
            row = forward.extend(sequence, chunk=chunk, wanted=[len(sequence) - 1])
            evaluated += 1
        self._generated += len(output)
        return Generation(ids=tuple(output), tokens_evaluated=evaluated)

    def score(
        self,
        requests: Sequence[ScoreRequest],
        *,
        on_result: Callable[[int, ScoreResult], None] | None = None,
    ) -> list[ScoreResult]:
        """Forced decoding of each continuation in batches; see :meth:`attrib.backend.Backend.score`."""
        from attrib.backends.transformers.scoring import Variant

        variants = []
        for request in requests:
            if not request.continuation_ids:
                raise BackendError("cannot score an empty continuation")
            sequence = self._with_bos([*request.prompt_ids, *request.continuation_ids[:-1]])
            variants.append(Variant(sequence, tuple(int(t) for t in request.continuation_ids)))
        if not variants:
            return []
        return self._scorer.score(variants, on_result=on_result)

    def log_probabilities(self, ids: Sequence[int]) -> np.ndarray:
        """``log p(ids[t] | ids[:t])`` for t >= 1 from one plain forward pass with no cache and
        full logits, the reference the batched path is checked against; float64 nats, shape (n - 1,)."""
        torch = self._torch
        tokens = torch.tensor([list(ids)], device=self.device)
        with torch.no_grad():
            logits = self._model(input_ids=tokens).logits[0, :-1].float()
        chosen = logits.gather(1, tokens[0, 1:, None])[:, 0] - torch.logsumexp(logits, dim=1)
        return np.asarray(chosen.cpu().numpy(), dtype=np.float64)

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        self._forward.reset()


def _generation_stop_ids(model: Any) -> frozenset[int]:
    """End-of-generation ids from the model's generation config (Gemma: ``<eos>``, ``<end_of_turn>``)."""
    config = getattr(model, "generation_config", None)
    value = getattr(config, "eos_token_id", None)
    if isinstance(value, int):
        return frozenset([value])
    if isinstance(value, (list, tuple)):
        return frozenset(int(v) for v in value)
    return frozenset()

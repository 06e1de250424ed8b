"""Forward passes over a kept key/value cache, with logits only where they are needed.

:class:`CachedForward` owns the model's key/value cache of one sequence (batch
size 1), the way llama.cpp keeps its context: a new sequence keeps the longest
prefix it shares with the cached one and evaluates only the rest. A batch of
suffixes runs over a *copy* of that cache repeated across the batch, so the
kept prefix survives for the next batch.

Logits are computed only at the positions that predict scored tokens: a
forward pre-hook on the model's output embedding (the LM head) replaces the
hidden states, shape (rows, length, hidden), by the gathered rows that are
wanted, shape (1, n_wanted, hidden), before the vocabulary projection. Whatever
the model does after its head (Gemma's final logit soft-capping, for instance)
still applies, so no model-specific code is needed; a forward pass never
materialises positions x vocabulary logits.

Cache layers are transformers' ``DynamicCache`` without a config, so every
layer keeps the full history (sliding-window layers too: the window is applied
by the attention mask, which makes cutting the cache back to any length exact).

Sources: transformers documentation, "Caching" and ``DynamicCache``
(``ddp_cache_data``, per-layer ``keys``/``values`` of shape
(batch, kv_heads, positions, head_dim)); PyTorch ``Module.register_forward_pre_hook``.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from attrib.backend import common_prefix_length
from attrib.errors import BackendError

__all__ = ["CachedForward", "kv_bytes_per_position"]


def kv_bytes_per_position(model: Any) -> int:
    """Bytes of key/value cache per position and batch row, from the model's config."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    heads = int(getattr(config, "num_attention_heads", 1) or 1)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = getattr(config, "head_dim", None) or int(config.hidden_size) // heads
    layers = int(config.num_hidden_layers)
    itemsize = int(next(model.parameters()).element_size())
    return 2 * layers * kv_heads * int(head_dim) * itemsize


class CachedForward:
    """Evaluate token sequences on ``model``, keeping the cache of the last single sequence.

    Args:
        model: a transformers causal LM in eval mode.
        torch: the torch module.
        device: the model's device.

    Not thread-safe.
    """

    def __init__(self, model: Any, torch: Any, device: str) -> None:
        self._model = model
        self._torch = torch
        self._device = device
        self._cache_class = _dynamic_cache_class()
        parameters = inspect.signature(model.forward).parameters
        self._cache_keyword = "cache" if "cache" in parameters else "past_key_values"
        self._cache: Any = None
        self.ids: list[int] = []  # the tokens whose keys and values are cached
        self._wanted: Any = None  # (rows, positions) index tensors picked by the head hook
        head = model.get_output_embeddings()
        if head is None:
            raise BackendError("the model has no output embedding (LM head); it cannot score tokens")
        head.register_forward_pre_hook(self._pick_rows)

    # ------------------------------------------------------------------ the head hook

    def _pick_rows(self, module: Any, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """Replace the head's input (rows, length, hidden) by the wanted rows (1, n, hidden)."""
        if self._wanted is None:
            return None
        rows, positions = self._wanted
        hidden = args[0]
        return (hidden[rows, positions].unsqueeze(0), *args[1:])

    # ------------------------------------------------------------------ kept cache

    def keep(self, sequence: Sequence[int], limit: int) -> int:
        """Cut the kept cache back to the prefix it shares with ``sequence`` (at most ``limit``).

        Returns:
            The number of kept positions.
        """
        keep = min(common_prefix_length(self.ids, sequence), limit)
        if keep < len(self.ids):
            if keep == 0 or self._cache is None:
                self._cache = None
                keep = 0
            else:
                for layer in self._cache.layers:
                    if getattr(layer, "keys", None) is not None and layer.keys.numel():
                        layer.keys = layer.keys[..., :keep, :]
                        layer.values = layer.values[..., :keep, :]
            del self.ids[keep:]
        return keep

    def extend(self, sequence: Sequence[int], *, chunk: int, wanted: Sequence[int] = ()) -> Any:
        """Evaluate ``sequence[len(self.ids):]`` on the kept cache in chunks of ``chunk`` tokens.

        Args:
            sequence: the whole sequence; its first ``len(self.ids)`` tokens must be the cached ones.
            wanted: positions (absolute, all >= the cached length) whose logits to return.

        Returns:
            Logits of the wanted positions, float32, shape (len(wanted), vocab).
        """
        start = len(self.ids)
        if self._cache is None:
            self._cache = self._cache_class()
        pieces = []
        wanted_sorted = sorted(wanted)
        position = start
        while position < len(sequence):
            end = min(len(sequence), position + max(1, chunk))
            here = [p - position for p in wanted_sorted if position <= p < end]
            tokens = self._torch.tensor([list(sequence[position:end])], device=self._device)
            try:
                logits = self._run(tokens, None, self._cache, [0] * len(here), here)
            except BaseException:
                self._cache, self.ids = None, []  # a half-updated cache cannot be trusted
                raise
            self.ids.extend(int(t) for t in sequence[position:end])
            pieces.append(logits)
            position = end
        if not pieces:
            return self._torch.empty((0, 0))
        return self._torch.cat(pieces, dim=0)

    # ------------------------------------------------------------------ batches

    def batch(self, suffixes: Sequence[Sequence[int]], wanted: Sequence[Sequence[int]], *, pad: int, chunk: int) -> Any:
        """Evaluate ``suffixes`` after the kept cache as one right-padded batch.

        Args:
            suffixes: one token list per row, each non-empty.
            wanted: per row, positions within its suffix whose logits to return.
            pad: the token id placed after short suffixes (masked out).
            chunk: most positions per forward pass for the whole batch (rows x columns).

        Returns:
            Logits, float32, shape (sum of len(wanted[r]), vocab), row by row and in
            position order within a row.
        """
        torch = self._torch
        rows = len(suffixes)
        prefix = len(self.ids)
        longest = max(len(s) for s in suffixes)
        grid = torch.full((rows, longest), pad, dtype=torch.long)
        for r, suffix in enumerate(suffixes):
            grid[r, : len(suffix)] = torch.tensor(list(suffix), dtype=torch.long)
        grid = grid.to(self._device)
        mask = None
        if any(len(s) < longest for s in suffixes):
            # Right padding: causal attention already keeps real tokens from seeing the
            # pads after them; the mask states it and keeps pads out of every softmax.
            mask = torch.ones((rows, prefix + longest), dtype=torch.long)
            for r, suffix in enumerate(suffixes):
                mask[r, prefix + len(suffix) :] = 0
            mask = mask.to(self._device)
        cache = self._copy(rows)
        columns = max(1, chunk // rows)
        pieces: list[list[Any]] = [[] for _ in range(rows)]
        for start in range(0, longest, columns):
            end = min(longest, start + columns)
            pick_rows: list[int] = []
            pick_positions: list[int] = []
            for r in range(rows):
                for p in wanted[r]:
                    if start <= p < end:
                        pick_rows.append(r)
                        pick_positions.append(p - start)
            logits = self._run(
                grid[:, start:end], None if mask is None else mask[:, : prefix + end], cache, pick_rows, pick_positions
            )
            offset = 0
            for r in range(rows):
                count = sum(1 for p in wanted[r] if start <= p < end)
                pieces[r].append(logits[offset : offset + count])
                offset += count
        return torch.cat([piece for row in pieces for piece in row], dim=0)

    def _copy(self, rows: int) -> Any:
        """A new cache holding the kept positions repeated over ``rows`` batch rows."""
        if self._cache is None or not self.ids:
            return self._cache_class()
        data = []
        for layer in self._cache.layers:
            keys, values = layer.keys, layer.values
            data.append((keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1)))
        return self._cache_class(ddp_cache_data=data)

    def _run(self, tokens: Any, mask: Any, cache: Any, rows: Sequence[int], positions: Sequence[int]) -> Any:
        """One forward pass; returns float32 logits at ``(rows[i], positions[i])``, shape (n, vocab)."""
        torch = self._torch
        self._wanted = (
            torch.tensor(list(rows), dtype=torch.long, device=self._device),
            torch.tensor(list(positions), dtype=torch.long, device=self._device),
        )
        try:
            with torch.no_grad():
                output = self._model(
                    input_ids=tokens, attention_mask=mask, use_cache=True, **{self._cache_keyword: cache}
                )
        finally:
            self._wanted = None
        return output.logits[0].float()

    def reset(self) -> None:
        """Drop the kept cache."""
        self._cache, self.ids = None, []


def _dynamic_cache_class() -> Any:
    from transformers import DynamicCache

    return DynamicCache

"""ContextCite (MadryLab, ``pip install context-cite``) on the cases of :mod:`benchmarks.context_cases`.

Runs ContextCite's own code (``ContextCiter``, its mask sampling, its forward passes and its
Lasso surrogate) on the embedded Gemma 3 270M as transformers loads it (float32, the
conversion kept by attrib's transformers backend), on the same prompt text attrib scores:

* the partition is given as a partitioner object (ContextCite's extension point): at
  ``source`` level each part is one source with its ``[n]`` header (removing it removes the
  header, as in attrib); at ``sentence`` level each part is one sentence of a source over
  the whole context (a source's header goes with its first sentence);
* the prompt template is :func:`benchmarks.context_cases.prompt_text`'s; the chat template
  renders the one user message as ``<bos>`` + its text (the base model has none);
* the answer is given (set as ContextCite's cached output), not generated;
* per-claim scores are ContextCite's ``get_attributions`` over the claim's fact span
  (``ClaimTruth.fact_end``: the sentence without its marker and full stop).

Ablations: mask ``k`` is ContextCite's ``_create_mask(n, 0.5, seed=k)`` whatever the count, so
the first 64 of 128 are its default run; this module computes them in steps of 64 and fits
the Lasso on the first 64, 128, ... (:data:`ABLATIONS`), which is exactly what
``ContextCiter(num_ablations=64 / 128 / ...)`` fits. The raw masks and logit-probabilities
are kept in ``$ATTRIB_CACHE_DIR/benchmarks/contextcite`` so a larger count reuses the smaller.

Cost: one forward pass per ablation (batch size 1, ContextCite's default), every token of
the ablated prompt and the answer evaluated (no key/value reuse). By default the forward
pass asks the model for logits only at the answer's positions (``logits_to_keep``), which
gives the same numbers at a fraction of the time (ContextCite's own call computes the
262,144-way logits at every position); ``--full-logits`` runs it unmodified.

Needs ``context-cite`` (with spaCy, datasets, pandas, nltk): run it from a virtual
environment made with ``--system-site-packages`` (see ``benchmarks/results/context.md``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.context_cases import ContextCase, prompt_text, sentences

__all__ = ["ABLATIONS", "STEP", "partition", "run_case"]

#: Ablation counts fitted (ContextCite's default first).
ABLATIONS: tuple[int, ...] = (64, 128, 256)
#: Ablations computed per step (a larger count extends the kept ones).
STEP = 64

CHAT_TEMPLATE = "{{ bos_token }}{{ messages[0]['content'] }}"
PROMPT_TEMPLATE = "{context}\n\nQuestion: {query}\nAnswer:"


def partition(case: ContextCase, level: str) -> tuple[list[str], list[str], list[tuple[str, int, int]]]:
    """ContextCite's parts and separators for ``case`` at ``level``, and each part's (source id, start, end in the source text).

    ``"".join(sep + part)`` over all parts (first separator empty) is the context block of
    :func:`prompt_text`. Raises ``ValueError`` for another level.
    """
    parts: list[str] = []
    separators: list[str] = []
    where: list[tuple[str, int, int]] = []
    for index, source in enumerate(case.sources):
        header = f"[{source.id}] "
        if level == "source":
            parts.append(header + source.text)
            separators.append("\n\n" if index else "")
            where.append((source.id, 0, len(source.text)))
            continue
        if level != "sentence":
            raise ValueError(f"level must be 'source' or 'sentence', got {level!r}")
        for number, (start, end) in enumerate(sentences(source.text)):
            first = number == 0
            parts.append((header if first else "") + source.text[start:end])
            separators.append(("\n\n" if index else "") if first else source.text[where[-1][2] : start])
            where.append((source.id, start, end))
    return parts, separators, where


class _Partitioner:
    """A ContextCite partitioner over fixed parts (built on its ``BaseContextPartitioner`` at run time)."""

    @staticmethod
    def make(context: str, parts: list[str], separators: list[str]) -> Any:
        from context_cite.context_partitioner import BaseContextPartitioner

        class Fixed(BaseContextPartitioner):  # type: ignore[misc]
            def split_context(self) -> None:
                return None

            @property
            def num_sources(self) -> int:
                return len(parts)

            def get_source(self, index: int) -> str:
                return parts[index]

            def get_context(self, mask: Any = None) -> str:
                keep = np.ones(len(parts), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
                chosen = [i for i in range(len(parts)) if keep[i]]
                return "".join(("" if n == 0 else separators[i]) + parts[i] for n, i in enumerate(chosen))

        partitioner = Fixed(context)
        if partitioner.get_context() != context:
            raise ValueError("the parts do not rebuild the context")
        return partitioner


class CountedModel:
    """The model as ContextCite calls it, counting forward passes and tokens.

    ``logits_to_keep`` (when set) makes the model return logits only at the last positions;
    ContextCite reads only the answer's positions, so its numbers are unchanged.
    """

    def __init__(self, model: Any, keep: int | None) -> None:
        self.model = model
        self.keep = keep
        self.calls = 0
        self.tokens = 0
        self.per_call: list[int] = []

    @property
    def device(self) -> Any:
        return self.model.device

    def __call__(self, *, input_ids: Any, attention_mask: Any, labels: Any = None, **_: Any) -> Any:
        self.calls += int(input_ids.shape[0])
        self.tokens += int(attention_mask.sum())
        self.per_call.extend(int(row.sum()) for row in attention_mask)
        options = {} if self.keep is None else {"logits_to_keep": self.keep}
        if self.keep is None:
            return self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **options)


def load_model() -> tuple[Any, Any]:
    """The embedded model's float32 transformers weights and tokenizer (attrib's kept conversion)."""
    import torch

    from attrib.backends.transformers.loading import load, resolve_source

    model, tokenizer = load(resolve_source(None, None), device="cpu", dtype=torch.float32)
    model.eval()
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"
    return model, tokenizer


def cost_only(case: ContextCase, level: str, ablations: int, tokenizer: Any) -> dict[str, Any]:
    """What ContextCite's run of ``case`` costs, without the model: its calls and tokens for each count <= ``ablations``.

    The masks are ContextCite's own (``_create_mask`` with seeds 0, 1, ...); each forward
    pass evaluates the ablated prompt's tokens (its chat rendering, ``<bos>`` included) and
    the answer's. Seconds are not known (``None``).
    """
    from context_cite.utils import _create_mask

    parts, separators, _ = partition(case, level)
    context = "".join(sep + part for sep, part in zip(separators, parts, strict=True))
    partitioner = _Partitioner.make(context, parts, separators)
    answer = len(tokenizer.encode(case.answer, add_special_tokens=False))
    tokens = []
    for seed in range(ablations):
        mask = _create_mask(len(parts), 0.5, seed)
        prompt = PROMPT_TEMPLATE.format(context=partitioner.get_context(mask), query=case.question)
        tokens.append(len(tokenizer.encode(prompt, add_special_tokens=True)) + answer)
    return {
        "units": len(parts),
        "answer_tokens": answer,
        "computed": {"calls": 0, "tokens_evaluated": 0},
        "full_logits": False,
        "by_ablations": {
            str(count): {
                "claims": None,
                "cost": {"calls": count, "tokens_evaluated": sum(tokens[:count]), "seconds": None},
            }
            for count in ABLATIONS
            if count <= ablations
        },
    }


def _cache_file(cache: Path, case: ContextCase, level: str) -> Path:
    return cache / f"{case.seed}-{level}.npz"


def run_case(
    case: ContextCase, level: str, ablations: int, model: Any, tokenizer: Any, cache: Path, *, full_logits: bool = False
) -> dict[str, Any]:
    """ContextCite on one case: masks up to ``ablations`` (kept ones reused), per-claim scores for every count <= it.

    Returns a record: per count, per claim, the score of every source (summed over its
    sentences at ``sentence`` level) and, at sentence level, each sentence's score; the
    calls and tokens of the forward passes this run made (``computed``) and what a fresh run
    of each count costs (``cost``: calls, tokens and the seconds its forward passes took).
    """
    from context_cite import ContextCiter
    from context_cite.solver import LassoRegression
    from context_cite.utils import aggregate_logit_probs, get_masks_and_logit_probs

    parts, separators, where = partition(case, level)
    context = "".join(sep + part for sep, part in zip(separators, parts, strict=True))
    prompt, _ = prompt_text(case)
    if PROMPT_TEMPLATE.format(context=context, query=case.question) != prompt:
        raise ValueError("ContextCite's prompt differs from attrib's")
    citer = ContextCiter(
        model,
        tokenizer,
        context,
        case.question,
        num_ablations=STEP,
        prompt_template=PROMPT_TEMPLATE,
        partitioner=_Partitioner.make(context, parts, separators),
    )
    _, chat_prompt = citer._get_prompt_ids(return_prompt=True)
    citer._cache["output"] = chat_prompt + case.answer
    if citer.response != case.answer:
        raise ValueError(f"ContextCite's response {citer.response!r} is not the answer")
    response_ids = citer._response_ids
    counted = CountedModel(model, None if full_logits else len(response_ids) + 1)

    path = _cache_file(cache, case, level)
    masks = np.zeros((0, len(parts)), dtype=bool)
    logits = np.zeros((0, len(response_ids)), dtype=np.float32)
    tokens_per_mask: list[int] = []
    seconds_per_mask: list[float] = []
    if path.exists():
        kept = np.load(path)
        masks, logits = kept["masks"], kept["logit_probs"]
        tokens_per_mask, seconds_per_mask = [int(t) for t in kept["tokens"]], [float(t) for t in kept["seconds"]]
    while len(masks) < ablations:
        started = time.perf_counter()
        new_masks, new_logits = get_masks_and_logit_probs(
            counted,
            tokenizer,
            STEP,
            len(parts),
            citer._get_prompt_ids,
            response_ids,
            citer.ablation_keep_prob,
            citer.batch_size,
            base_seed=len(masks),
        )
        masks = np.concatenate([masks, new_masks])
        logits = np.concatenate([logits, new_logits])
        tokens_per_mask.extend(counted.per_call[-STEP:])
        seconds_per_mask.extend([(time.perf_counter() - started) / STEP] * STEP)
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            masks=masks,
            logit_probs=logits,
            tokens=np.asarray(tokens_per_mask),
            seconds=np.asarray(seconds_per_mask),
        )

    ids = [source.id for source in case.sources]
    results: dict[str, Any] = {}
    for count in [a for a in ABLATIONS if a <= len(masks)]:
        claims = []
        for claim in case.claims:
            first, last = citer._indices_to_token_indices(claim.start, claim.fact_end)
            outputs = aggregate_logit_probs(logits[:count, first:last])
            weight, _ = LassoRegression().fit(masks[:count], outputs, last - first)
            per_source = {i: 0.0 for i in ids}
            for (source, _, _), value in zip(where, weight, strict=True):
                per_source[source] += float(value)
            entry: dict[str, Any] = {
                "columns": last - first,
                "sources": {k: round(v, 5) for k, v in per_source.items()},
            }
            if level == "sentence":
                entry["units"] = [[s, a, b, round(float(v), 5)] for (s, a, b), v in zip(where, weight, strict=True)]
            claims.append(entry)
        results[str(count)] = {
            "claims": claims,
            "cost": {
                "calls": count,
                "tokens_evaluated": round(sum(tokens_per_mask[:count])),
                "seconds": round(sum(seconds_per_mask[:count]), 2),
            },
        }
    return {
        "units": len(parts),
        "answer_tokens": len(response_ids),
        "computed": {"calls": counted.calls, "tokens_evaluated": counted.tokens},
        "full_logits": full_logits,
        "by_ablations": results,
    }

"""Speed and memory of the local scoring paths: llama.cpp, and transformers against a no-cache loop.

``python -m benchmarks.speed`` (``--backend llama``, the default) measures, in one
process and one run:

* the raw prompt-evaluation rate of llama.cpp for the embedded model: a prompt of
  ``--tokens`` tokens evaluated from an empty cache, logits at the last position
  only (what ``llama-bench``'s prompt-processing test measures);
* attrib's scoring rate on the same prompt: ``tokens_evaluated / seconds`` of a
  token-level ItP run over the last ``--units`` tokens (every variant re-evaluates
  the suffix after its ablation, the KV cache keeps the shared prefix);
* the peak resident memory of the process (``ru_maxrss``).

``python -m benchmarks.speed --backend transformers [--device cuda]`` compares, on
the same weights (the embedded GGUF, dequantized for transformers) and the same
variants, three ways to score them:

* ``transformers``: the transformers backend (prefix computed once per group, suffixes
  batched, logits only at scored positions);
* ``no-cache``: one full forward pass per variant with full logits and no cache,
  what captum's ``FeatureAblation`` does (timed on the first ``--baseline`` variants);
* ``llama``: the llama backend (sequential prefix reuse), skipped with ``--device cuda``
  unless ``--llama`` is given.

Variants are leave-one-out deletions of ``--units`` single tokens: ``spread`` (default)
spaces them evenly over the prompt, ``tail`` takes the last ones. The rate compared is
*variant tokens per second*: the tokens of every variant (prompt and output) divided by
the seconds, the same work for every method; ``tokens_evaluated / seconds`` is shown too.
Each (method, length) runs in its own process so its peak memory (``ru_maxrss``, or
CUDA's peak allocation) is its own. ``--write FILE`` writes the Markdown table.

``python -m benchmarks.speed --backend transformers --agreement itp hipe`` measures
agreement instead of speed: word-level ItP on ``examples/needle.txt`` with both
backends (Spearman over units, top unit, base log-probabilities), bfloat16 and
float16 drift against float32, and token-level HiPe on a ``--needle-tokens`` needle
(hit@1, tokens evaluated by each backend).

Timings belong here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _prompt_ids(tokenize: Any, n_tokens: int) -> tuple[int, ...]:
    """The first ``n_tokens`` tokens of the prose corpus, repeated as needed."""
    from benchmarks.needle import corpus_paragraphs

    text = ""
    paragraphs = corpus_paragraphs()
    index = 0
    while len(tokenize(text)) < n_tokens:
        text += paragraphs[index % len(paragraphs)] + "\n\n"
        index += 1
    return tuple(tokenize(text).ids[:n_tokens])


def _variants(ids: tuple[int, ...], continuation: tuple[int, ...], units: int, layout: str) -> list[Any]:
    from attrib.backend import ScoreRequest

    n = len(ids)
    if layout == "tail":
        positions = list(range(n - units, n))
    else:
        positions = sorted({min(n - 1, round((k + 0.5) * n / units)) for k in range(units)})
    return [ScoreRequest(ids, continuation)] + [ScoreRequest(ids[:p] + ids[p + 1 :], continuation) for p in positions]


def _peak_memory_gb(torch: Any = None) -> dict[str, float]:
    out = {"peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}
    if torch is not None and torch.cuda.is_available():
        out["peak_cuda_gb"] = torch.cuda.max_memory_allocated() / 1024**3
    return out


def measure(method: str, n_tokens: int, args: argparse.Namespace) -> dict[str, Any]:
    """Score the variants of one prompt length with one method; returns a JSON-ready row."""
    report: dict[str, Any] = {"method": method, "prompt_tokens": n_tokens}
    torch: Any = None
    if method == "llama":
        from attrib.backends.llama import LlamaBackend

        backend: Any = LlamaBackend(n_threads=args.threads)
    else:
        import torch as torch_module

        from attrib.backends.transformers import TransformersBackend

        torch = torch_module
        if args.threads:
            torch.set_num_threads(args.threads)
        backend = TransformersBackend(
            device=args.device, dtype=args.dtype, batch_tokens=args.batch_tokens, max_rows=args.max_rows
        )
    ids = _prompt_ids(backend.tokenize, n_tokens)
    continuation = backend.tokenize(" The licence").ids
    requests = _variants(ids, continuation, args.units, args.layout)
    if method == "no-cache":
        requests = requests[: args.baseline]
        started = time.perf_counter()
        evaluated = 0
        for request in requests:
            sequence = [*backend._with_bos(request.prompt_ids), *continuation]
            backend.log_probabilities(sequence)  # full forward, full logits, no cache
            evaluated += len(sequence)
        if torch is not None and torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    else:
        started = time.perf_counter()
        results = backend.score(requests)
        if torch is not None and torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        evaluated = sum(r.tokens_evaluated for r in results)
    variant_tokens = sum(1 + len(r.prompt_ids) + len(r.continuation_ids) for r in requests)
    report.update(
        variants=len(requests),
        seconds=seconds,
        variant_tokens_per_s=variant_tokens / seconds,
        tokens_evaluated=evaluated,
        evaluated_per_s=evaluated / seconds,
        usage=backend.usage_snapshot(),
        **_peak_memory_gb(torch),
    )
    return report


def _table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"# Scoring speed: transformers backend ({args.device}, {args.dtype}) vs no-cache loop vs llama",
        "",
        f"Machine: {platform.machine()}, {platform.processor() or 'unknown CPU'}; threads {args.threads or 'default'}. "
        f"Variants: base + {args.units} single-token deletions ({args.layout}); output ' The licence'. "
        f"no-cache timed on the first {args.baseline} variants.",
        "",
        "| tokens | method | variants | seconds | variant tok/s | evaluated tok/s | x no-cache | batches (largest) | padding | peak RSS GB |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for n in sorted({r["prompt_tokens"] for r in rows}):
        here = [r for r in rows if r["prompt_tokens"] == n]
        base = next((r["variant_tokens_per_s"] for r in here if r["method"] == "no-cache"), None)
        for r in here:
            usage = r["usage"]
            batches = f"{usage['forward_batches']} ({usage['largest_batch']})" if "forward_batches" in usage else ""
            ratio = f"{r['variant_tokens_per_s'] / base:.2f}" if base else ""
            lines.append(
                f"| {n} | {r['method']} | {r['variants']} | {r['seconds']:.1f} | {r['variant_tokens_per_s']:.0f} | "
                f"{r['evaluated_per_s']:.0f} | {ratio} | {batches} | {usage.get('padding_tokens', '')} | "
                f"{r.get('peak_cuda_gb', r['peak_rss_gb']):.2f} |"
            )
    return "\n".join(lines) + "\n"


def compare(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run every (length, method) in its own process and collect the rows."""
    methods = ["transformers", "no-cache"] + (["llama"] if args.llama or args.device != "cuda" else [])
    rows = []
    for n in args.tokens:
        for method in methods:
            command = [sys.executable, "-m", "benchmarks.speed", "--one", method, *_forwarded(args), "--tokens", str(n)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps(row), flush=True)
            rows.append(row)
    table = _table(rows, args)
    print(table)
    if args.write:
        Path(args.write).write_text(table, encoding="utf-8")
    return rows


def _forwarded(args: argparse.Namespace) -> list[str]:
    out = ["--backend", "transformers", "--units", str(args.units), "--layout", args.layout]
    out += ["--device", args.device, "--dtype", args.dtype, "--baseline", str(args.baseline)]
    out += ["--batch-tokens", str(args.batch_tokens), "--max-rows", str(args.max_rows)]
    return out + (["--threads", str(args.threads)] if args.threads else [])


def llama_main(args: argparse.Namespace) -> dict[str, float]:
    """Today's llama measurement: raw evaluation rate and attrib's scoring rate (see the module docstring)."""
    from attrib.backend import ScoreRequest
    from attrib.backends.llama import LlamaBackend

    backend = LlamaBackend()
    n_tokens = args.tokens[0]
    ids = _prompt_ids(backend.tokenize, n_tokens)
    continuation = backend.tokenize(" The licence").ids

    # Raw llama.cpp prompt evaluation: empty cache, logits at the last position only.
    sequence = backend._with_bos(ids)
    backend._ensure_context(len(sequence) + len(continuation) + 1)
    raw = []
    for _ in range(args.repeats):
        backend._reuse([], 0)
        started = time.perf_counter()
        backend._last_row(sequence, 0)
        raw.append(len(sequence) / (time.perf_counter() - started))

    # attrib's scoring path: leave-one-out over the last units (suffix re-evaluation).
    requests = [ScoreRequest(ids, continuation)] + [
        ScoreRequest(ids[:i] + ids[i + 1 :], continuation) for i in range(len(ids) - args.units, len(ids))
    ]
    backend._reuse([], 0)
    started = time.perf_counter()
    results = backend.score(requests)
    seconds = time.perf_counter() - started
    evaluated = sum(r.tokens_evaluated for r in results)
    report = {
        "prompt_tokens": len(ids),
        "raw_tokens_per_s": max(raw),
        "scored_calls": len(requests),
        "scored_tokens_evaluated": evaluated,
        "scored_seconds": seconds,
        "scored_tokens_per_s": evaluated / seconds,
        "ratio": evaluated / seconds / max(raw),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }
    print(json.dumps(report, indent=1))
    return report


def agreement(args: argparse.Namespace) -> dict[str, Any]:
    """The transformers backend against the llama backend on the same (embedded) weights.

    * word-level ItP on ``examples/needle.txt`` with the output llama generates: Spearman
      correlation of the unit scores, the top unit of each, and the per-token base
      log-probabilities' largest and mean difference;
    * the same base log-probabilities in bfloat16 and float16 against float32 (drift);
    * token-level HiPe on a needle of ``--needle-tokens`` tokens: whether the top unit
      lies in the decisive fact, and tokens evaluated by each backend.
    """
    import numpy as np

    import attrib
    from attrib.backends.llama import LlamaBackend
    from attrib.backends.transformers import TransformersBackend
    from attrib.metrics import spearman

    llama = LlamaBackend(args.llama_model, n_threads=args.threads)
    hf = TransformersBackend(device=args.device)
    report: dict[str, Any] = {}
    prompt = Path("examples/needle.txt").read_text(encoding="utf-8")
    if "hipe" in args.agreement:
        report.update(_hipe_agreement(llama, hf, args))
    if "itp" not in args.agreement:
        return report
    started = time.perf_counter()
    theirs = attrib.attribute(prompt, backend=llama, method="itp", level="word")
    llama_seconds = time.perf_counter() - started
    target = "".join(theirs.output_tokens)
    started = time.perf_counter()
    ours = attrib.attribute(prompt, backend=hf, method="itp", level="word", target=target)
    hf_seconds = time.perf_counter() - started
    base = np.abs(np.asarray(ours.base_logprobs) - np.asarray(theirs.base_logprobs))
    report["needle_word_itp"] = {
        "output": target,
        "units": len(ours.units),
        "llama_model": str(llama.path),
        "spearman": float(spearman(ours.unit_scores, theirs.unit_scores)),
        "pearson": float(np.corrcoef(ours.unit_scores, theirs.unit_scores)[0, 1]),
        "same_top_5": [u.index for u in ours.top(5)] == [u.index for u in theirs.top(5)],
        "top_unit": [ours.top(1)[0].unit.text, theirs.top(1)[0].unit.text],
        "same_top_unit": ours.top(1)[0].index == theirs.top(1)[0].index,
        "base_logprob_max_abs_diff": float(base.max()),
        "base_logprob_mean_abs_diff": float(base.mean()),
        "max_abs_unit_score_diff": float(np.abs(ours.unit_scores - theirs.unit_scores).max()),
        "tokens_evaluated": [ours.stats.tokens_evaluated, theirs.stats.tokens_evaluated],
        "seconds": [hf_seconds, llama_seconds],
    }
    print(json.dumps(report), flush=True)
    ids = hf.tokenize(prompt).ids
    cont = hf.tokenize(target).ids
    sequence = [*hf._with_bos(ids), *cont]
    reference = hf.log_probabilities(sequence)
    for dtype in ("bfloat16", "float16"):
        low = TransformersBackend(device=args.device, dtype=dtype)
        drift = np.abs(low.log_probabilities(sequence) - reference)
        report[f"{dtype}_drift"] = {
            "max_abs": float(drift.max()),
            "mean_abs": float(drift.mean()),
            "output_max_abs": float(drift[-len(cont) :].max()),
        }
        low.close()
    print(json.dumps(report), flush=True)
    return report


def _hipe_agreement(llama: Any, hf: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Token-level HiPe on a needle with both backends: hit@1 and tokens evaluated."""
    import attrib
    from benchmarks.needle import make_needle_case

    case = make_needle_case(args.needle_tokens, seed=0, count_tokens=lambda text: len(llama.tokenize(text)))
    rows: dict[str, Any] = {}
    for name, backend in (("transformers", hf), ("llama", llama)):
        started = time.perf_counter()
        result = attrib.attribute(case.prompt, backend=backend, target=case.target, method="hipe", level="token")
        top = result.top(1)[0].unit
        rows[name] = {
            "hit1": top.start < case.fact[1] and case.fact[0] < top.end,
            "top": top.text,
            "calls": result.stats.calls,
            "tokens_evaluated": result.stats.tokens_evaluated,
            "seconds": time.perf_counter() - started,
        }
    rows["tokens_ratio"] = rows["transformers"]["tokens_evaluated"] / rows["llama"]["tokens_evaluated"]
    rows["usage"] = hf.usage_snapshot()
    report = {f"needle_{args.needle_tokens}_token_hipe": rows}
    print(json.dumps(report), flush=True)
    return report


def main(argv: list[str] | None = None) -> Any:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["llama", "transformers"], default="llama")
    parser.add_argument("--tokens", type=int, nargs="+", help="prompt lengths (default: 4000 for llama; 1000 4000)")
    parser.add_argument("--units", type=int, help="tokens deleted one at a time (default: 32 for llama; 16)")
    parser.add_argument("--repeats", type=int, default=3, help="llama: raw evaluations to time (best is kept)")
    parser.add_argument(
        "--layout", choices=["spread", "tail"], default="spread", help="transformers: where the deletions are"
    )
    parser.add_argument("--device", default="cpu", help="transformers: cpu, cuda, mps or auto")
    parser.add_argument("--dtype", default="float32", help="transformers: float32, bfloat16 or float16")
    parser.add_argument("--baseline", type=int, default=4, help="transformers: variants timed in the no-cache loop")
    parser.add_argument("--batch-tokens", type=int, default=2048, help="transformers: suffix positions per batch")
    parser.add_argument("--max-rows", type=int, default=64, help="transformers: variants per batch")
    parser.add_argument("--threads", type=int, help="CPU threads for both backends (default: each backend's own)")
    parser.add_argument("--llama", action="store_true", help="transformers: compare with llama also on CUDA")
    parser.add_argument("--write", help="transformers: write the Markdown table to this file")
    parser.add_argument(
        "--agreement", nargs="+", choices=["itp", "hipe"], help="transformers: agreement with llama (not speed)"
    )
    parser.add_argument("--needle-tokens", type=int, default=1000, help="--agreement: HiPe needle length")
    parser.add_argument(
        "--llama-model",
        type=Path,
        help="--agreement: GGUF for the llama side (default: the embedded one; a float32 copy from "
        "'python -m benchmarks.float32_gguf' removes llama.cpp's 8-bit activations from the comparison)",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.backend == "llama":
        args.tokens = args.tokens or [4000]
        args.units = args.units or 32
        return llama_main(args)
    args.tokens = args.tokens or [1000, 4000]
    args.units = args.units or 16
    if args.agreement:
        return agreement(args)
    if args.one:
        row = measure(args.one, args.tokens[0], args)
        print(json.dumps(row))
        return row
    return compare(args)


if __name__ == "__main__":
    main()

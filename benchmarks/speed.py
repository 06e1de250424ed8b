"""Speed and memory of the local scoring path, measured against llama.cpp itself.

Measures, in one process and one run:

* the raw prompt-evaluation rate of llama.cpp for the embedded model: a prompt of
  ``--tokens`` tokens evaluated from an empty cache, logits at the last position
  only (what ``llama-bench``'s prompt-processing test measures);
* attrib's scoring rate on the same prompt: ``tokens_evaluated / seconds`` of a
  token-level ItP run over the last ``--units`` tokens (every variant re-evaluates
  the suffix after its ablation, the KV cache keeps the shared prefix);
* the peak resident memory of the process (``ru_maxrss``).

Run: ``python -m benchmarks.speed --tokens 4000 --units 32``. Timings belong here,
never in tests.
"""

from __future__ import annotations

import argparse
import json
import resource
import time


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4000, help="prompt length in tokens (default 4000)")
    parser.add_argument("--units", type=int, default=32, help="units ablated at the end of the prompt (default 32)")
    parser.add_argument("--repeats", type=int, default=3, help="raw evaluations to time (best is kept)")
    args = parser.parse_args(argv)

    from attrib.backend import ScoreRequest
    from attrib.backends.llama import LlamaBackend
    from benchmarks.needle import corpus_paragraphs

    backend = LlamaBackend()
    text = ""
    paragraphs = corpus_paragraphs()
    index = 0
    while len(backend.tokenize(text)) < args.tokens:
        text += paragraphs[index % len(paragraphs)] + "\n\n"
        index += 1
    prompt = backend.tokenize(text)
    ids = prompt.ids[: args.tokens]
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


if __name__ == "__main__":
    main()

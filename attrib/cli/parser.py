"""The ``attrib`` command line's parser: commands, flags, help with examples.

Choices (methods, levels, orders, backends, perturbations, scoring rungs) come
from :mod:`attrib.registry`, so a newly registered method or backend appears in
``--help`` and is accepted without touching this file.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from attrib.cli import summarize
from attrib.cli.batch import add_parser as add_batch
from attrib.cli.cite import add_parser as add_cite
from attrib.cli.common import add_backend_arguments, add_reference_arguments
from attrib.cli.flags import HelpFormatter, add_run_options

__all__ = ["build_parser"]

_EXPLAIN_EXAMPLES = """\
examples:
  attrib explain "The capital of Japan is" --target " Tokyo"
  attrib explain --prompt-file examples/needle.txt --target " 4817" --level word
  attrib explain --prompt-file examples/needle.txt --target " 7328" --contrast " 4528" --level sentence
  cat prompt.txt | attrib explain --method itp --level sentence --json result.json --html report.html
  attrib explain --backend openai --base-url http://127.0.0.1:8080/v1 --model gemma \
      --prompt-file examples/needle.txt --dry-run

API backends (--backend openai) read the key from $OPENAI_API_KEY (or the variable
named by --api-key-env), cache every response under --cache-dir (a re-run makes no
calls; an interrupted run resumes), and retry 429/5xx/timeouts with backoff.

The output is generated greedily from the prompt (--max-new-tokens) unless
--target gives it. Scores are drops in the output's log-probability, in nats,
when a unit is removed: positive means the unit supports the output.
A prompt read from a file or stdin loses one trailing newline.
"""


_AUDIT_EXAMPLES = """\
examples:
  attrib audit --system "You are Hotel Lindqvist's assistant. The wifi password is otter-42." \\
      "What is the wifi password?"
  attrib audit --backend openai --base-url http://127.0.0.1:8081/v1 \\
      --reference-base-url http://127.0.0.1:8080/v1 "What should I cook tonight?"

Role shares are Shapley values of the messages for the output's log-probability.
The hidden-influence score is reference-free (how little the visible chat explains
the output) unless --reference-base-url names the same model without the suspected
hidden prompt; then it is differential (how much likelier the audited endpoint finds
its own output). What the scores mean and their limits: docs/guides/audit.md.
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"attrib: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``attrib`` parser with every command (``explain``, ``audit``, ``report``, ``batch``, ``summarize``)."""
    parser = _Parser(
        prog="attrib",
        description="Explain which parts of a prompt made a language model produce its output, "
        "by perturbing the prompt and measuring the change in the output's log-probability.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    explain = commands.add_parser(
        "explain",
        help="attribute a model's output to the units of its prompt",
        description="Attribute a model's output to the units of its prompt (token-level by default).",
        epilog=_EXPLAIN_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    source = explain.add_argument_group("prompt (one of)")
    source.add_argument("prompt", nargs="?", metavar="PROMPT", help="the prompt text; '-' reads stdin")
    source.add_argument("--prompt-file", metavar="FILE", help="read the prompt from FILE ('-' for stdin)")

    what = explain.add_argument_group("what to explain")
    how = explain.add_argument_group("method")
    add_run_options("explain", {"output": what, "method": how})
    how.add_argument(
        "--dry-run",
        action="store_true",
        help="print the calls and tokens the run would need (upper bound for hipe) and stop",
    )

    add_backend_arguments(explain)

    _add_output_arguments(explain, top=10, what="units")

    audit = commands.add_parser(
        "audit",
        help="how much does the system prompt, seen or hidden, drive the output?",
        description="Attribute an output to the messages of a chat (Shapley values per role) and to the "
        "sentences inside them, and judge whether a prompt the caller cannot see steers the endpoint.",
        epilog=_AUDIT_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    visible = audit.add_argument_group("the visible chat")
    visible.add_argument("prompt", nargs="?", metavar="PROMPT", help="the user message; '-' reads stdin")
    visible.add_argument("--prompt-file", metavar="FILE", help="read the user message from FILE")
    visible.add_argument("--system", metavar="TEXT", help="the visible system prompt")
    visible.add_argument("--system-file", metavar="FILE", help="read the visible system prompt from FILE")
    audit_how = audit.add_argument_group("method")
    add_run_options("audit", {"chat": visible, "output": audit_how, "method": audit_how})
    add_reference_arguments(audit_how)
    add_backend_arguments(audit)
    _add_output_arguments(audit, top=5, what="system-prompt units")

    report = commands.add_parser(
        "report",
        help="render a saved result (JSON) as a self-contained HTML report",
        description="Render a result saved with --json as one self-contained HTML file.",
        epilog="example:\n  attrib report result.json -o report.html\n",
        formatter_class=HelpFormatter,
    )
    report.add_argument("result", metavar="RESULT.json", help="a result written by 'attrib explain --json'")
    report.add_argument("-o", "--output", metavar="OUT.html", required=True, help="where to write the HTML page")

    add_cite(commands)
    add_batch(commands)
    summarize.add_parser(commands)
    return parser


def _add_output_arguments(parser: argparse.ArgumentParser, *, top: int, what: str) -> None:
    """The output flags shared by explain and audit."""
    output = parser.add_argument_group("output")
    output.add_argument("--top", type=int, default=top, metavar="K", help=f"{what} to list (default {top})")
    output.add_argument("--json", metavar="OUT", help="write the full result as JSON to OUT ('-' for stdout)")
    output.add_argument("--html", metavar="OUT", help="write a self-contained HTML report to OUT")
    output.add_argument("--quiet", action="store_true", help="no progress line on stderr")

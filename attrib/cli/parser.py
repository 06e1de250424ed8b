"""The ``attrib`` command line's parser: commands, flags, help with examples.

Choices (methods, levels, orders, backends, perturbations, scoring rungs) come
from :mod:`attrib.registry`, so a newly registered method or backend appears in
``--help`` and is accepted without touching this file.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from attrib import registry
from attrib.cli import summarize
from attrib.cli.flags import HelpFormatter, add_run_options, class_default, openai_key_variable, show_default
from attrib.errors import InputError

__all__ = ["build_parser", "API_FLAGS", "add_backend_arguments", "add_reference_arguments", "reference_options"]

#: Flags of the openai backend, each its constructor's keyword; their defaults are the backend's
#: own (shown in --help from its signature). Given with another backend they are an error.
API_FLAGS = ("base_url", "scoring", "tokenizer", "concurrency", "top_logprobs", "timeout", "max_retries")

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

    from attrib.cli.batch import add_parser as add_batch

    add_batch(commands)
    summarize.add_parser(commands)
    return parser


def add_reference_arguments(group: argparse._ActionsContainer, *, prefix: str = "") -> None:
    """The reference endpoint's flags of an audit (``prefix``: ``"audit: "`` where a command runs other tasks)."""
    group.add_argument(
        "--reference-base-url",
        metavar="URL",
        help=f"{prefix}reference endpoint: the same model without the suspected hidden prompt",
    )
    group.add_argument("--reference-model", metavar="NAME", help=f"{prefix}model at the reference (default: --model)")


def reference_options(args: argparse.Namespace, backend_options: dict[str, object]) -> dict[str, object] | None:
    """The reference endpoint's backend options (the audited one's, with its URL and model), or ``None``.

    Raises:
        InputError: for ``--reference-base-url`` without ``--backend openai``, or ``--reference-model``
            without ``--reference-base-url``.
    """
    if args.reference_base_url is None:
        if args.reference_model is not None:
            raise InputError("--reference-model goes with --reference-base-url")
        return None
    if args.backend != "openai":
        raise InputError("--reference-base-url needs --backend openai (both endpoints are OpenAI-compatible)")
    return {**backend_options, "base_url": args.reference_base_url, "model": args.reference_model or args.model}


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, API-endpoint, PyTorch and cache flags of every command that runs a model."""
    model = parser.add_argument_group("model")
    model.add_argument(
        "--backend", choices=registry.backends.names(), default="llama", help="model backend (default llama)"
    )
    model.add_argument(
        "--model",
        metavar="NAME",
        help="llama: GGUF file (default: the embedded Gemma 3 270M); openai: the served model name",
    )

    api = parser.add_argument_group("API endpoints (--backend openai)")
    api.add_argument(
        "--base-url",
        metavar="URL",
        action="append",
        help="API root including /v1 (default $OPENAI_BASE_URL or OpenAI's); give it again for each replica of "
        "the same model: requests go to the least busy, a failing replica's to another",
    )
    key_variable = api.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the key")
    show_default(key_variable, openai_key_variable)
    own = {
        "scoring": api.add_argument(
            "--scoring",
            choices=("auto", *registry.names("rung")),
            help="scoring rung: forced (echo log-probs), top_logprobs (regenerate, read top-k), text (similarity); "
            "auto probes the endpoint",
        ),
        "tokenizer": api.add_argument("--tokenizer", choices=("auto", "server", "words"), help="unit source"),
        "concurrency": api.add_argument("--concurrency", type=int, metavar="N", help="requests in flight"),
        "top_logprobs": api.add_argument(
            "--top-logprobs", type=int, metavar="K", help="alternatives per position, <= 20"
        ),
        "timeout": api.add_argument("--timeout", type=float, metavar="S", help="seconds per request attempt"),
        "max_retries": api.add_argument("--max-retries", type=int, metavar="N", help="retries per request"),
    }
    for keyword, action in own.items():
        show_default(action, class_default("backend", "openai", keyword))

    local = parser.add_argument_group("PyTorch (--backend transformers)")
    local.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda", "mps"),
        help="where the model runs (default auto: cuda, mps, else cpu)",
    )
    local.add_argument(
        "--dtype",
        choices=("auto", "float32", "bfloat16", "float16"),
        help="weights' precision (default auto: float32 on CPU; see docs/transformers.md for the drift of the others)",
    )

    cache = parser.add_argument_group("cache (every backend)")
    cache.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="keep scores and generations here so a re-run is free and an interrupted run resumes "
        "(default $ATTRIB_CACHE_DIR or ~/.cache/attrib)",
    )
    cache.add_argument("--no-cache", action="store_true", help="do not read or write the cache")


def _add_output_arguments(parser: argparse.ArgumentParser, *, top: int, what: str) -> None:
    """The output flags shared by explain and audit."""
    output = parser.add_argument_group("output")
    output.add_argument("--top", type=int, default=top, metavar="K", help=f"{what} to list (default {top})")
    output.add_argument("--json", metavar="OUT", help="write the full result as JSON to OUT ('-' for stdout)")
    output.add_argument("--html", metavar="OUT", help="write a self-contained HTML report to OUT")
    output.add_argument("--quiet", action="store_true", help="no progress line on stderr")

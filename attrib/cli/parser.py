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
from attrib.segmentation import LEVELS

__all__ = ["build_parser", "HIPE_FLAGS", "API_FLAGS"]

#: explain flags that set a HiPe parameter: flag destination -> HiPe keyword.
HIPE_FLAGS = {"threshold": "threshold", "max_depth": "max_depth", "order": "order", "early_stop": "top_k"}

#: Flags of the openai backend with their defaults (given elsewhere they are an error).
API_FLAGS = {
    "base_url": None,
    "scoring": "auto",
    "tokenizer": "auto",
    "concurrency": 4,
    "top_logprobs": 20,
    "timeout": 120.0,
    "max_retries": 8,
    "api_key_env": "OPENAI_API_KEY",
}

_CONTRAST_HELP = (
    "explain the output against this alternative (contrastive attribution): scores are drops of "
    "log p(output) - log p(contrast), in nats; positive means the unit favours the output"
)

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
its own output). See the README for what the scores mean and their limits.
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
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = explain.add_argument_group("prompt (one of)")
    source.add_argument("prompt", nargs="?", metavar="PROMPT", help="the prompt text; '-' reads stdin")
    source.add_argument("--prompt-file", metavar="FILE", help="read the prompt from FILE ('-' for stdin)")

    what = explain.add_argument_group("what to explain")
    what.add_argument("--target", metavar="TEXT", help="output text to explain (default: generate it)")
    what.add_argument("--contrast", metavar="TEXT", help=_CONTRAST_HELP)
    what.add_argument(
        "--max-new-tokens", type=int, default=16, metavar="N", help="tokens to generate without --target (default 16)"
    )

    how = explain.add_argument_group("method")
    how.add_argument(
        "--method",
        choices=registry.methods.names(),
        default="hipe",
        help="hipe: hierarchical (default); itp: exhaustive",
    )
    how.add_argument("--level", choices=LEVELS, default="token", help="unit level (default token)")
    how.add_argument(
        "--threshold",
        metavar="RULE",
        help="hipe refinement rule: relative (default: 10%% of the depth's largest chunk drop, "
        "at least 0.5 nats), midrange (HiPe's original rule), or a number of nats",
    )
    how.add_argument(
        "--max-depth", type=int, metavar="N", help="hipe: deepest refinement depth (default: down to --level)"
    )
    how.add_argument(
        "--order",
        choices=registry.names("order"),
        help="hipe: best-first, the most salient chunk first (default; with --budget it reaches "
        "single units in the salient region sooner), or depth by depth as in the original HiPe",
    )
    how.add_argument(
        "--early-stop",
        type=int,
        metavar="K",
        help="hipe: stop refining once no unrefined chunk could change the top K units",
    )
    how.add_argument("--budget", type=int, metavar="N", help="maximum scoring calls, the unperturbed prompt included")
    how.add_argument(
        "--perturbation",
        choices=registry.names("perturbation"),
        default="delete",
        help="delete units (default) or replace their tokens",
    )
    how.add_argument("--baseline", default=" _", metavar="TEXT", help="replacement token for --perturbation replace")
    how.add_argument(
        "--noise-samples",
        type=int,
        default=0,
        metavar="K",
        help="score the unperturbed prompt K more times and mark units within the spread (non-deterministic endpoints)",
    )
    how.add_argument(
        "--dry-run",
        action="store_true",
        help="print the calls and tokens the run would need (upper bound for hipe) and stop",
    )

    _add_backend_arguments(explain)

    _add_output_arguments(explain, top=10, what="units")

    audit = commands.add_parser(
        "audit",
        help="how much does the system prompt, seen or hidden, drive the output?",
        description="Attribute an output to the messages of a chat (Shapley values per role) and to the "
        "sentences inside them, and judge whether a prompt the caller cannot see steers the endpoint.",
        epilog=_AUDIT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    visible = audit.add_argument_group("the visible chat")
    visible.add_argument("prompt", nargs="?", metavar="PROMPT", help="the user message; '-' reads stdin")
    visible.add_argument("--prompt-file", metavar="FILE", help="read the user message from FILE")
    visible.add_argument("--system", metavar="TEXT", help="the visible system prompt")
    visible.add_argument("--system-file", metavar="FILE", help="read the visible system prompt from FILE")
    visible.add_argument(
        "--chat-template", metavar="FILE", help="jinja2 chat template (default: the model's, else Gemma turns)"
    )
    audit_how = audit.add_argument_group("method")
    audit_how.add_argument("--target", metavar="TEXT", help="output to explain (default: generate it)")
    audit_how.add_argument("--contrast", metavar="TEXT", help=_CONTRAST_HELP)
    audit_how.add_argument(
        "--max-new-tokens", type=int, default=16, metavar="N", help="tokens to generate (default 16)"
    )
    audit_how.add_argument(
        "--method", choices=registry.methods.names(), default="hipe", help="inside each message (default hipe)"
    )
    audit_how.add_argument(
        "--level", choices=LEVELS, default="sentence", help="units inside messages (default sentence)"
    )
    audit_how.add_argument("--budget", type=int, metavar="N", help="maximum scoring calls")
    audit_how.add_argument(
        "--reference-base-url",
        metavar="URL",
        help="reference endpoint: the same model without the suspected hidden prompt",
    )
    audit_how.add_argument(
        "--reference-model", metavar="NAME", help="model name at the reference endpoint (default: --model)"
    )
    _add_backend_arguments(audit)
    _add_output_arguments(audit, top=5, what="system-prompt units")

    report = commands.add_parser(
        "report",
        help="render a saved result (JSON) as a self-contained HTML report",
        description="Render a result saved with --json as one self-contained HTML file.",
        epilog="example:\n  attrib report result.json -o report.html\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("result", metavar="RESULT.json", help="a result written by 'attrib explain --json'")
    report.add_argument("-o", "--output", metavar="OUT.html", required=True, help="where to write the HTML page")

    from attrib.cli.batch import add_parser as add_batch

    add_batch(commands)
    summarize.add_parser(commands)
    return parser


def _add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """The model and API-endpoint flags shared by explain and audit."""
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
    api.add_argument("--base-url", metavar="URL", help="API root including /v1 (default $OPENAI_BASE_URL or OpenAI's)")
    api.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        metavar="VAR",
        help="environment variable holding the key (default OPENAI_API_KEY)",
    )
    api.add_argument(
        "--scoring",
        choices=("auto", *registry.names("rung")),
        default="auto",
        help="scoring rung: forced (echo log-probs), top_logprobs (regenerate, read top-k), text (similarity); "
        "auto probes the endpoint (default)",
    )
    api.add_argument(
        "--tokenizer", choices=("auto", "server", "words"), default="auto", help="unit source (default auto)"
    )
    api.add_argument("--concurrency", type=int, default=4, metavar="N", help="requests in flight (default 4)")
    api.add_argument(
        "--top-logprobs", type=int, default=20, metavar="K", help="alternatives per position, <= 20 (default 20)"
    )
    api.add_argument(
        "--timeout", type=float, default=120.0, metavar="S", help="seconds per request attempt (default 120)"
    )
    api.add_argument("--max-retries", type=int, default=8, metavar="N", help="retries per request (default 8)")

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

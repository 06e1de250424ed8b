"""The ``attrib`` command line.

User errors print one line, ``attrib: error: ...``, and exit with status 1
(2 for a malformed command line); there is no traceback for them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from attrib.backend import backend_names
from attrib.errors import AttribError, EmptyPromptError, InputError
from attrib.hipe import ORDERS
from attrib.scheduler import METHODS
from attrib.segmentation import LEVELS

if TYPE_CHECKING:
    from attrib.result import Attribution

__all__ = ["main"]

_EXPLAIN_EXAMPLES = """\
examples:
  attrib explain "The capital of Japan is" --target " Tokyo"
  attrib explain --prompt-file examples/needle.txt --target " 4817" --level word
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


def _build_parser() -> argparse.ArgumentParser:
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
    what.add_argument(
        "--max-new-tokens", type=int, default=16, metavar="N", help="tokens to generate without --target (default 16)"
    )

    how = explain.add_argument_group("method")
    how.add_argument("--method", choices=METHODS, default="hipe", help="hipe: hierarchical (default); itp: exhaustive")
    how.add_argument("--level", choices=LEVELS, default="token", help="unit level (default token)")
    how.add_argument(
        "--threshold",
        default="relative",
        metavar="RULE",
        help="hipe refinement rule: relative (default: 10%% of the depth's largest chunk drop, "
        "at least 0.5 nats), midrange (HiPe's original rule), or a number of nats",
    )
    how.add_argument("--max-depth", type=int, metavar="N", help="hipe: deepest refinement depth (default: down to --level)")
    how.add_argument(
        "--order",
        choices=ORDERS,
        default="best",
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
        "--perturbation", choices=("delete", "replace"), default="delete", help="delete units (default) or replace their tokens"
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
        "--dry-run", action="store_true", help="print the calls and tokens the run would need (upper bound for hipe) and stop"
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
    visible.add_argument("--chat-template", metavar="FILE", help="jinja2 chat template (default: the model's, else Gemma turns)")
    audit_how = audit.add_argument_group("method")
    audit_how.add_argument("--target", metavar="TEXT", help="output to explain (default: generate it)")
    audit_how.add_argument("--max-new-tokens", type=int, default=16, metavar="N", help="tokens to generate (default 16)")
    audit_how.add_argument("--method", choices=METHODS, default="hipe", help="inside each message (default hipe)")
    audit_how.add_argument("--level", choices=LEVELS, default="sentence", help="units inside messages (default sentence)")
    audit_how.add_argument("--budget", type=int, metavar="N", help="maximum scoring calls")
    audit_how.add_argument("--reference-base-url", metavar="URL", help="reference endpoint: the same model without the suspected hidden prompt")
    audit_how.add_argument("--reference-model", metavar="NAME", help="model name at the reference endpoint (default: --model)")
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
    return parser


def _add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """The model and API-endpoint flags shared by explain and audit."""
    model = parser.add_argument_group("model")
    model.add_argument("--backend", choices=backend_names(), default="llama", help="model backend (default llama)")
    model.add_argument(
        "--model", metavar="NAME", help="llama: GGUF file (default: the embedded Gemma 3 270M); openai: the served model name"
    )

    api = parser.add_argument_group("API endpoints (--backend openai)")
    api.add_argument("--base-url", metavar="URL", help="API root including /v1 (default $OPENAI_BASE_URL or OpenAI's)")
    api.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", metavar="VAR", help="environment variable holding the key (default OPENAI_API_KEY)"
    )
    api.add_argument(
        "--scoring",
        choices=("auto", "forced", "top_logprobs", "text"),
        default="auto",
        help="scoring rung: forced (echo log-probs), top_logprobs (regenerate, read top-k), text (similarity); "
        "auto probes the endpoint (default)",
    )
    api.add_argument("--tokenizer", choices=("auto", "server", "words"), default="auto", help="unit source (default auto)")
    api.add_argument("--concurrency", type=int, default=4, metavar="N", help="requests in flight (default 4)")
    api.add_argument("--top-logprobs", type=int, default=20, metavar="K", help="alternatives per position, <= 20 (default 20)")
    api.add_argument("--timeout", type=float, default=120.0, metavar="S", help="seconds per request attempt (default 120)")
    api.add_argument("--max-retries", type=int, default=8, metavar="N", help="retries per request (default 8)")
    api.add_argument("--cache-dir", metavar="DIR", help="response cache directory (default $ATTRIB_CACHE_DIR or ~/.cache/attrib)")
    api.add_argument("--no-cache", action="store_true", help="do not read or write the response cache")


def _add_output_arguments(parser: argparse.ArgumentParser, *, top: int, what: str) -> None:
    """The output flags shared by explain and audit."""
    output = parser.add_argument_group("output")
    output.add_argument("--top", type=int, default=top, metavar="K", help=f"{what} to list (default {top})")
    output.add_argument("--json", metavar="OUT", help="write the full result as JSON to OUT ('-' for stdout)")
    output.add_argument("--html", metavar="OUT", help="write a self-contained HTML report to OUT")
    output.add_argument("--quiet", action="store_true", help="no progress line on stderr")


def _emit(args: argparse.Namespace, result: Attribution, render: Callable[[], str]) -> int:
    """Write --html and --json, then print the rendered view (or only the JSON for --json -)."""
    if args.html is not None:
        _write(args.html, result.to_html())
    if args.json == "-":  # JSON alone on stdout, for pipes
        sys.stdout.write(result.to_json(indent=1) + "\n")
        return 0
    if args.json is not None:
        _write(args.json, result.to_json(indent=1) + "\n")
    print(render())
    for kind, path in (("result", args.json), ("report", args.html)):
        if path is not None:
            print(f"{kind} written to {path}")
    return 0


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot write {path}: {error.strerror}") from None


def _report(args: argparse.Namespace) -> int:
    from attrib.result import Attribution

    text = _decode(*_read_bytes(args.result, kind="result file"))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{args.result} is not JSON ({error}); give a result written by 'attrib explain --json'") from None
    result = Attribution.from_dict(data)
    _write(args.output, result.to_html())
    print(f"report written to {args.output}")
    return 0


def _read_bytes(name: str, *, kind: str = "prompt file") -> tuple[bytes, str]:
    """The bytes of file ``name`` ('-' for stdin) and how to call it in messages."""
    if name == "-":
        return sys.stdin.buffer.read(), "stdin"
    path = Path(name)
    try:
        return path.read_bytes(), str(path)
    except FileNotFoundError:
        raise InputError(f"{kind} not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{kind} is a directory: {path}") from None
    except OSError as error:
        raise InputError(f"cannot read {kind} {path}: {error.strerror}") from None


def _decode(data: bytes, where: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{where} is not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); convert it to UTF-8"
        ) from None
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def _read_prompt(args: argparse.Namespace) -> str:
    if args.prompt is not None and args.prompt_file is not None:
        raise InputError("give the prompt either as PROMPT or with --prompt-file, not both")
    if args.prompt_file is not None:
        return _decode(*_read_bytes(args.prompt_file))
    if args.prompt == "-" or (args.prompt is None and not sys.stdin.isatty()):
        return _decode(*_read_bytes("-"))
    if args.prompt is None:
        raise EmptyPromptError("no prompt given; pass PROMPT, --prompt-file FILE, or pipe it on stdin")
    return args.prompt


def _explain(args: argparse.Namespace) -> int:
    import attrib
    from attrib.backend import load_backend
    from attrib.hipe import HiPe
    from attrib.itp import ITP
    from attrib.perturbation import Deletion, Replacement
    from attrib.progress import Progress
    from attrib.reports.text import render_text

    prompt = _read_prompt(args)
    if not prompt.strip():
        raise EmptyPromptError("prompt is empty; give the text to explain")
    if args.top < 0:
        raise InputError(f"--top must be 0 or more, got {args.top}")
    if args.method == "hipe":
        method = HiPe(threshold=args.threshold, max_depth=args.max_depth, order=args.order, top_k=args.early_stop)
    else:
        method = ITP()
    perturbation = Replacement(baseline=args.baseline) if args.perturbation == "replace" else Deletion()
    options = _backend_options(args)
    backend = load_backend(args.backend, **options) if options or args.backend != "llama" else None
    common = dict(
        backend=backend,
        method=method,
        level=args.level,
        target=args.target,
        max_new_tokens=args.max_new_tokens,
        budget=args.budget,
        perturbation=perturbation,
        noise_samples=args.noise_samples,
    )
    try:
        with _warnings_as_notes():
            if args.dry_run:
                plan = attrib.plan(prompt, **common)
            else:
                result = attrib.attribute(prompt, **common, progress=Progress(enabled=False if args.quiet else None))
    finally:
        if backend is not None:
            backend.close()
    if args.dry_run:
        print(f"dry run: {plan.describe()}; nothing was sent to the model")
        return 0
    return _emit(args, result, lambda: render_text(result, top=args.top))


def _audit(args: argparse.Namespace) -> int:
    import attrib
    from attrib.backend import load_backend
    from attrib.hipe import HiPe
    from attrib.itp import ITP
    from attrib.progress import Progress
    from attrib.reports.text import render_audit

    if args.system is not None and args.system_file is not None:
        raise InputError("give the system prompt either with --system or with --system-file, not both")
    system = _decode(*_read_bytes(args.system_file, kind="system prompt file")) if args.system_file else args.system
    prompt = _read_prompt(args)
    template = _decode(*_read_bytes(args.chat_template, kind="chat template")) if args.chat_template else None
    method = HiPe() if args.method == "hipe" else ITP()
    options = _backend_options(args)
    backend = load_backend(args.backend, **options) if options or args.backend != "llama" else None
    reference = None
    if args.reference_base_url is not None:
        if args.backend != "openai":
            raise InputError("--reference-base-url needs --backend openai (both endpoints are OpenAI-compatible)")
        ref_options = {**options, "base_url": args.reference_base_url, "model": args.reference_model or args.model}
        reference = load_backend("openai", **ref_options)
    try:
        with _warnings_as_notes():
            result = attrib.audit(
                prompt,
                system=system,
                backend=backend,
                reference=reference,
                method=method,
                level=args.level,
                target=args.target,
                max_new_tokens=args.max_new_tokens,
                budget=args.budget,
                chat_template=template,
                progress=Progress(enabled=False if args.quiet else None),
            )
    finally:
        for opened in (backend, reference):
            if opened is not None:
                opened.close()
    return _emit(args, result, lambda: render_audit(result, top=args.top))


@contextlib.contextmanager
def _warnings_as_notes() -> Iterator[None]:
    """Collect the warnings raised inside the block and print each as one ``attrib: note:`` line once it succeeds."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        print(f"attrib: note: {warning.message}", file=sys.stderr)


def _backend_options(args: argparse.Namespace) -> dict[str, object]:
    """Keyword arguments for the chosen backend; flags of another backend are an error."""
    api_flags = {
        "--base-url": args.base_url is not None,
        "--scoring": args.scoring != "auto",
        "--tokenizer": args.tokenizer != "auto",
        "--concurrency": args.concurrency != 4,
        "--top-logprobs": args.top_logprobs != 20,
        "--timeout": args.timeout != 120.0,
        "--max-retries": args.max_retries != 8,
        "--cache-dir": args.cache_dir is not None,
        "--no-cache": args.no_cache,
        "--api-key-env": args.api_key_env != "OPENAI_API_KEY",
    }
    if args.backend != "openai":
        used = [flag for flag, given in api_flags.items() if given]
        if used:
            raise InputError(f"{', '.join(used)} apply to --backend openai, not {args.backend!r}")
        if args.model is not None and args.backend != "llama":
            raise InputError(f"--model applies to the llama and openai backends, not {args.backend!r}")
        return {"model": args.model} if args.model is not None else {}
    if args.cache_dir is not None and args.no_cache:
        raise InputError("give --cache-dir or --no-cache, not both")
    key = os.environ.get(args.api_key_env)
    if args.api_key_env != "OPENAI_API_KEY" and key is None:
        raise InputError(f"environment variable {args.api_key_env} is not set; export the API key there")
    return {
        "model": args.model,
        "base_url": args.base_url,
        "api_key": key,
        "scoring": args.scoring,
        "tokenizer": args.tokenizer,
        "concurrency": args.concurrency,
        "top_logprobs": args.top_logprobs,
        "timeout": args.timeout,
        "max_retries": args.max_retries,
        "cache": False if args.no_cache else (args.cache_dir or True),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the ``attrib`` command; return the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "explain":
            return _explain(args)
        if args.command == "report":
            return _report(args)
        if args.command == "audit":
            return _audit(args)
        parser.error(f"unknown command {args.command!r}")
    except AttribError as error:
        print(f"attrib: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("attrib: interrupted; no result was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

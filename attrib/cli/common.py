"""What ``explain``, ``audit``, ``cite`` and ``batch`` share: the backend, cache and reference-endpoint
flags and the Python arguments they give, the text checks, the files a command reads, and
opening the backend, the progress line and writing a result (:func:`emit`).

:func:`add_backend_arguments` and :func:`add_reference_arguments` add the flags;
:func:`backend_options`, :func:`cache_spec` and :func:`reference_options` turn them into the
keyword arguments of :func:`attrib.load_backend` and the API's ``cache=``; a flag of another
backend than the one chosen is an error (:class:`~attrib.errors.InputError`), never ignored.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from attrib import registry
from attrib.backend import Backend, load_backend
from attrib.cache.wrapper import CacheSpec
from attrib.cli.flags import apply, class_default, flag, openai_key_variable, show_default, text_flags
from attrib.cli.inputs import check_text, decode, read_bytes, write_text
from attrib.errors import InputError
from attrib.paths import Place, check_places
from attrib.progress import Progress
from attrib.result import Attribution

__all__ = [
    "API_FLAGS",
    "add_backend_arguments",
    "add_reference_arguments",
    "backend_options",
    "reference_options",
    "cache_spec",
    "api_key_variable",
    "check_texts",
    "read_file",
    "input_places",
    "check_outputs",
    "opened",
    "warnings_as_notes",
    "progress",
    "emit",
]

#: Flags of the openai backend, each its constructor's keyword; their defaults are the backend's
#: own (shown in --help from its signature). Given with another backend they are an error.
API_FLAGS = ("base_url", "scoring", "tokenizer", "concurrency", "top_logprobs", "timeout", "max_retries")


def check_texts(args: argparse.Namespace) -> None:
    """Every text flag must be valid UTF-8 (bytes that are not arrive as lone surrogates).

    Raises:
        InputError: naming the flag and the offending byte.
    """
    for name in ("prompt", "system", "model", "base_url", *text_flags()):
        value = getattr(args, name, None)
        for text in value if isinstance(value, list) else [value]:  # --base-url may be given again
            check_text(text, "PROMPT" if name == "prompt" else flag(name))


def read_file(path: str, kind: str) -> str:
    """The text of the file a flag names (``kind``: what it holds, for errors).

    Raises:
        InputError: if it cannot be read or is not UTF-8 text.
    """
    return decode(*read_bytes(path, kind=kind))


def cache_spec(args: argparse.Namespace) -> CacheSpec:
    """The cache the flags ask for: on by default, ``--cache-dir DIR``, or off with ``--no-cache``.

    Raises:
        InputError: for ``--cache-dir`` with ``--no-cache``.
    """
    if args.cache_dir is not None and args.no_cache:
        raise InputError("give --cache-dir or --no-cache, not both")
    return False if args.no_cache else (args.cache_dir or True)


def backend_options(args: argparse.Namespace, *, chat_template: str | None = None) -> dict[str, object]:
    """Keyword arguments of :func:`attrib.load_backend` for the chosen ``--backend``; the openai
    backend's unset flags take the backend's own defaults, and its key is read from the environment.

    ``chat_template``: the text of the command's ``--chat-template``; the openai backend is given
    it too, so the server's chat route applies it (in-process backends apply it from the run options).

    Raises:
        InputError: for a flag of another backend, or an ``--api-key-env`` variable that is not set.
    """
    torch_flags = {"device": getattr(args, "device", None), "dtype": getattr(args, "dtype", None)}
    if args.backend != "transformers":
        used = ["--" + name for name, value in torch_flags.items() if value is not None]
        if used:
            raise InputError(f"{', '.join(used)} {apply(used)} to --backend transformers, not {args.backend!r}")
    if args.backend != "openai":
        used = [flag(name) for name in API_FLAGS if getattr(args, name) is not None]
        used += ["--api-key-env"] if args.api_key_env is not None else []
        if used:
            raise InputError(f"{', '.join(used)} {apply(used)} to --backend openai, not {args.backend!r}")
        if args.model is not None and args.backend == "toy":
            raise InputError("--model applies to model backends, not 'toy'")
        options: dict[str, object] = {"model": args.model} if args.model is not None else {}
        if args.backend == "transformers":
            options.update({name: value for name, value in torch_flags.items() if value is not None})
        return options
    variable = api_key_variable(args)
    key = os.environ.get(variable)
    if variable != openai_key_variable() and key is None:
        raise InputError(f"environment variable {variable} is not set; export the API key there")
    given = {name: getattr(args, name) for name in API_FLAGS}  # unset: the backend's own default
    if isinstance(given["base_url"], list) and len(given["base_url"]) == 1:  # one endpoint: a string, as always
        given["base_url"] = given["base_url"][0]
    own = {
        name: class_default("backend", "openai", name)() if value is None else value for name, value in given.items()
    }
    template = {} if chat_template is None else {"chat_template": chat_template}
    return {"model": args.model, "api_key": key, **own, "cache": cache_spec(args), **template}


def api_key_variable(args: argparse.Namespace) -> str:
    """The environment variable holding the API key: ``--api-key-env``, else the backend's own."""
    return str(args.api_key_env) if args.api_key_env is not None else openai_key_variable()


def input_places(args: argparse.Namespace) -> list[Place]:
    """The files a command's flags name for reading (a ``--model`` only when it is a file)."""
    reads = [
        Place(f"the {flag} file", getattr(args, dest, None))
        for flag, dest in (("--prompt-file", "prompt_file"), ("--system-file", "system_file"))
    ]
    reads.append(Place("the chat template", getattr(args, "chat_template", None)))
    model = getattr(args, "model", None)
    if model is not None and os.path.isfile(model):
        reads.append(Place("the --model file", model))
    return reads


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


@contextlib.contextmanager
def opened(name: str, options: dict[str, object]) -> Iterator[Backend | None]:
    """The backend the flags name, or ``None`` for the embedded model (loaded once by the API)."""
    if name == "llama" and not options:
        yield None
        return
    backend = load_backend(name, **options)
    try:
        yield backend
    finally:
        backend.close()


@contextlib.contextmanager
def warnings_as_notes() -> Iterator[None]:
    """Collect the warnings raised inside the block and print each as one ``attrib: note:`` line once it succeeds."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        print(f"attrib: note: {warning.message}", file=sys.stderr)


def progress(args: argparse.Namespace) -> Any:
    """The run's progress line: off with --quiet, else drawn when stderr is a terminal."""
    return Progress(enabled=False if args.quiet else None)


def emit(args: argparse.Namespace, result: Attribution, render: Callable[[], str]) -> int:
    """Write --json, then --html, then print the view (or only the JSON for ``--json -``).

    A finished result is never lost: an output that cannot be written does not stop
    the others, and if the JSON itself cannot be written it is saved in the temporary
    directory and the error names that file.

    Raises:
        InputError: after writing what could be written, naming each output that failed.
    """
    failures: list[str] = []
    written: list[tuple[str, str]] = []
    json_text = result.to_json(indent=1) + "\n"
    if args.json is not None and args.json != "-":
        try:
            write_text(args.json, json_text)
            written.append(("result", args.json))
        except InputError as error:
            failures.append(f"{error}; the result was saved to {_rescue(json_text)} instead")
    if args.html is not None:
        try:
            write_text(args.html, result.to_html())
            written.append(("report", args.html))
        except InputError as error:
            failures.append(str(error))
    if args.json == "-":  # JSON alone on stdout, for pipes
        sys.stdout.write(json_text)
    else:
        print(render())
        for kind, path in written:
            print(f"{kind} written to {path}")
    if failures:
        raise InputError("; ".join(failures))
    return 0


def _rescue(text: str) -> str:
    """Save a result that could not be written where asked; return where it went."""
    handle, path = tempfile.mkstemp(prefix="attrib-result-", suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    return path


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse --json/--html paths that cannot be written or would overwrite an input, before any work
    (:func:`attrib.paths.check_places`)."""
    check_places([Place("--json", args.json), Place("--html", args.html)], input_places(args))

"""The ``attrib`` commands: ``explain``, ``audit`` and ``report``.

Each command turns its flags into the Python API's arguments (methods,
perturbations and backends built through :mod:`attrib.registry`), runs it, and
hands the result to :mod:`attrib.reports`. Options are checked by
:class:`~attrib.options.RunOptions` before any model is loaded.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from attrib.caching import CacheSpec
from attrib.cli.flags import apply, class_default, flag, openai_key_variable, run_options, text_flags
from attrib.cli.inputs import check_text, decode, read_bytes, read_prompt, write_text
from attrib.cli.parser import API_FLAGS
from attrib.cli.parser import reference_options as references
from attrib.errors import EmptyPromptError, InputError, ResultError
from attrib.paths import Place, check_places

if TYPE_CHECKING:
    from attrib.backend import Backend
    from attrib.result import Attribution

__all__ = ["explain", "audit", "report"]


def _check_texts(args: argparse.Namespace) -> None:
    """Every text flag must be valid UTF-8 (bytes that are not arrive as lone surrogates)."""
    for name in ("prompt", "system", "model", "base_url", *text_flags()):
        check_text(getattr(args, name, None), "PROMPT" if name == "prompt" else flag(name))


def read_file(path: str, kind: str) -> str:
    """The text of the file a flag names (``kind``: what it holds, for errors).

    Raises:
        InputError: if it cannot be read or is not UTF-8 text.
    """
    return decode(*read_bytes(path, kind=kind))


def _cache(args: argparse.Namespace) -> CacheSpec:
    """The cache the flags ask for: on by default, ``--cache-dir DIR``, or off with ``--no-cache``."""
    if args.cache_dir is not None and args.no_cache:
        raise InputError("give --cache-dir or --no-cache, not both")
    return False if args.no_cache else (args.cache_dir or True)


def _backend_options(args: argparse.Namespace) -> dict[str, object]:
    """Keyword arguments for the chosen backend; flags of another backend are an error."""
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
    own = {
        name: class_default("backend", "openai", name)() if value is None else value for name, value in given.items()
    }
    return {"model": args.model, "api_key": key, **own, "cache": _cache(args)}


def api_key_variable(args: argparse.Namespace) -> str:
    """The environment variable holding the API key: ``--api-key-env``, else the backend's own."""
    return str(args.api_key_env) if args.api_key_env is not None else openai_key_variable()


@contextlib.contextmanager
def _opened(name: str, options: dict[str, object]) -> Iterator[Backend | None]:
    """The backend the flags name, or ``None`` for the embedded model (loaded once by the API)."""
    from attrib.backend import load_backend

    if name == "llama" and not options:
        yield None
        return
    backend = load_backend(name, **options)
    try:
        yield backend
    finally:
        backend.close()


@contextlib.contextmanager
def _warnings_as_notes() -> Iterator[None]:
    """Collect the warnings raised inside the block and print each as one ``attrib: note:`` line once it succeeds."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        print(f"attrib: note: {warning.message}", file=sys.stderr)


def _progress(args: argparse.Namespace) -> Any:
    from attrib.progress import Progress

    return Progress(enabled=False if args.quiet else None)


def _emit(args: argparse.Namespace, result: Attribution, render: Callable[[], str]) -> int:
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


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse --json/--html paths that cannot be written or would overwrite an input, before any work
    (:func:`attrib.paths.check_places`)."""
    check_places([Place("--json", args.json), Place("--html", args.html)], _inputs(args))


def _inputs(args: argparse.Namespace) -> list[Place]:
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


def explain(args: argparse.Namespace) -> int:
    """``attrib explain``: attribute an output to the units of a prompt."""
    import attrib
    from attrib.reports.text import render_text

    _check_outputs(args)
    _check_texts(args)
    prompt = read_prompt(args)
    if not prompt.strip():
        raise EmptyPromptError("prompt is empty; give the text to explain")
    if args.top < 0:
        raise InputError(f"--top must be 0 or more, got {args.top}")
    common = run_options(args, "explain", "explain", read_file=read_file)
    cache = _cache(args)
    with _opened(args.backend, _backend_options(args)) as backend, _warnings_as_notes():
        if args.dry_run:
            plan = attrib.plan(prompt, backend=backend, **common)
            print(f"dry run: {plan.describe()}; nothing was sent to the model")
            return 0
        result = attrib.attribute(prompt, backend=backend, cache=cache, progress=_progress(args), **common)
    return _emit(args, result, lambda: render_text(result, top=args.top))


def audit(args: argparse.Namespace) -> int:
    """``attrib audit``: role shares, system-prompt units and the hidden-influence verdict."""
    import attrib
    from attrib.reports.text import render_audit

    _check_outputs(args)
    _check_texts(args)
    if args.top < 0:
        raise InputError(f"--top must be 0 or more, got {args.top}")
    if args.system is not None and args.system_file is not None:
        raise InputError("give the system prompt either with --system or with --system-file, not both")
    system = decode(*read_bytes(args.system_file, kind="system prompt file")) if args.system_file else args.system
    prompt = read_prompt(args)
    common = run_options(args, "audit", "audit", read_file=read_file)
    options = _backend_options(args)
    if args.backend == "openai" and common.get("chat_template") is not None:
        options["chat_template"] = common["chat_template"]  # the server's chat route applies it too
    cache = _cache(args)
    reference_options = references(args, options)
    with contextlib.ExitStack() as stack:
        backend = stack.enter_context(_opened(args.backend, options))
        reference = stack.enter_context(_opened("openai", reference_options)) if reference_options else None
        stack.enter_context(_warnings_as_notes())
        result = attrib.audit(
            prompt,
            system=system,
            backend=backend,
            reference=reference,
            cache=cache,
            progress=_progress(args),
            **common,
        )
    return _emit(args, result, lambda: render_audit(result, top=args.top))


def report(args: argparse.Namespace) -> int:
    """``attrib report``: render a saved result as a self-contained HTML page."""
    from attrib.result import Attribution
    from attrib.result.files import parse_json

    check_places([Place("-o", args.output)], [Place("the result file", args.result)])
    try:
        result = Attribution.from_dict(parse_json(decode(*read_bytes(args.result, kind="result file"))))
    except ResultError as error:
        raise ResultError(f"{args.result}: {error}") from None
    write_text(args.output, result.to_html())
    print(f"report written to {args.output}")
    return 0

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
from typing import Any

import attrib
from attrib.backend import Backend, load_backend
from attrib.cli.common import backend_options, cache_spec, check_texts, input_places, read_file, reference_options
from attrib.cli.flags import run_options
from attrib.cli.inputs import decode, read_bytes, read_prompt, write_text
from attrib.errors import EmptyPromptError, InputError, ResultError
from attrib.paths import Place, check_places
from attrib.progress import Progress
from attrib.reports.text import render_audit, render_text
from attrib.result import Attribution
from attrib.result.files import parse_json

__all__ = ["explain", "audit", "report"]


@contextlib.contextmanager
def _opened(name: str, options: dict[str, object]) -> Iterator[Backend | None]:
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
def _warnings_as_notes() -> Iterator[None]:
    """Collect the warnings raised inside the block and print each as one ``attrib: note:`` line once it succeeds."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        print(f"attrib: note: {warning.message}", file=sys.stderr)


def _progress(args: argparse.Namespace) -> Any:
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
    check_places([Place("--json", args.json), Place("--html", args.html)], input_places(args))


def explain(args: argparse.Namespace) -> int:
    """``attrib explain``: attribute an output to the units of a prompt."""
    _check_outputs(args)
    check_texts(args)
    prompt = read_prompt(args)
    if not prompt.strip():
        raise EmptyPromptError("prompt is empty; give the text to explain")
    if args.top < 0:
        raise InputError(f"--top must be 0 or more, got {args.top}")
    common = run_options(args, "explain", "explain", read_file=read_file)
    cache = cache_spec(args)
    with _opened(args.backend, backend_options(args)) as backend, _warnings_as_notes():
        if args.dry_run:
            plan = attrib.plan(prompt, backend=backend, **common)
            print(f"dry run: {plan.describe()}; nothing was sent to the model")
            return 0
        result = attrib.attribute(prompt, backend=backend, cache=cache, progress=_progress(args), **common)
    return _emit(args, result, lambda: render_text(result, top=args.top))


def audit(args: argparse.Namespace) -> int:
    """``attrib audit``: role shares, system-prompt units and the hidden-influence verdict."""
    _check_outputs(args)
    check_texts(args)
    if args.top < 0:
        raise InputError(f"--top must be 0 or more, got {args.top}")
    if args.system is not None and args.system_file is not None:
        raise InputError("give the system prompt either with --system or with --system-file, not both")
    system = decode(*read_bytes(args.system_file, kind="system prompt file")) if args.system_file else args.system
    prompt = read_prompt(args)
    common = run_options(args, "audit", "audit", read_file=read_file)
    options = backend_options(args)
    cache = cache_spec(args)
    references = reference_options(args, options)
    with contextlib.ExitStack() as stack:
        backend = stack.enter_context(_opened(args.backend, options))
        reference = stack.enter_context(_opened("openai", references)) if references else None
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
    check_places([Place("-o", args.output)], [Place("the result file", args.result)])
    try:
        result = Attribution.from_dict(parse_json(decode(*read_bytes(args.result, kind="result file"))))
    except ResultError as error:
        raise ResultError(f"{args.result}: {error}") from None
    write_text(args.output, result.to_html())
    print(f"report written to {args.output}")
    return 0

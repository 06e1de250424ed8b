"""The ``attrib`` commands: ``explain``, ``audit`` and ``report``.

Each command turns its flags into the Python API's arguments (methods,
perturbations and backends built through :mod:`attrib.registry`), runs it, and
hands the result to :mod:`attrib.reports`. Options are checked by
:class:`~attrib.options.RunOptions` before any model is loaded.
"""

from __future__ import annotations

import argparse
import contextlib

import attrib
from attrib.cli.common import (
    backend_options,
    cache_spec,
    check_outputs,
    check_texts,
    emit,
    opened,
    progress,
    read_file,
    reference_options,
    warnings_as_notes,
)
from attrib.cli.flags import run_options
from attrib.cli.inputs import decode, read_bytes, read_prompt, write_text
from attrib.errors import EmptyPromptError, InputError, ResultError
from attrib.paths import Place, check_places
from attrib.reports.text import render_audit, render_text
from attrib.result import Attribution
from attrib.result.files import parse_json

__all__ = ["explain", "audit", "report"]


def explain(args: argparse.Namespace) -> int:
    """``attrib explain``: attribute an output to the units of a prompt."""
    check_outputs(args)
    check_texts(args)
    prompt = read_prompt(args)
    if not prompt.strip():
        raise EmptyPromptError("prompt is empty; give the text to explain")
    if args.top < 0:
        raise InputError(f"--top must be 0 or more, got {args.top}")
    common = run_options(args, "explain", "explain", read_file=read_file)
    cache = cache_spec(args)
    with (
        opened(args.backend, backend_options(args, chat_template=common.get("chat_template"))) as backend,
        warnings_as_notes(),
    ):
        if args.dry_run:
            plan = attrib.plan(prompt, backend=backend, **common)
            print(f"dry run: {plan.describe()}; nothing was sent to the model")
            return 0
        result = attrib.attribute(prompt, backend=backend, cache=cache, progress=progress(args), **common)
    return emit(args, result, lambda: render_text(result, top=args.top))


def audit(args: argparse.Namespace) -> int:
    """``attrib audit``: role shares, system-prompt units and the hidden-influence verdict."""
    check_outputs(args)
    check_texts(args)
    if args.top < 0:
        raise InputError(f"--top must be 0 or more, got {args.top}")
    if args.system is not None and args.system_file is not None:
        raise InputError("give the system prompt either with --system or with --system-file, not both")
    system = decode(*read_bytes(args.system_file, kind="system prompt file")) if args.system_file else args.system
    prompt = read_prompt(args)
    common = run_options(args, "audit", "audit", read_file=read_file)
    options = backend_options(args, chat_template=common.get("chat_template"))
    cache = cache_spec(args)
    references = reference_options(args, options)
    with contextlib.ExitStack() as stack:
        backend = stack.enter_context(opened(args.backend, options))
        reference = stack.enter_context(opened("openai", references)) if references else None
        stack.enter_context(warnings_as_notes())
        result = attrib.audit(
            prompt,
            system=system,
            backend=backend,
            reference=reference,
            cache=cache,
            progress=progress(args),
            **common,
        )
    return emit(args, result, lambda: render_audit(result, top=args.top))


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

"""``attrib batch``: explain, audit or cite every record of a dataset into a resumable OUT_DIR.

The flags are explain's, audit's and cite's run-wide ones (the same helpers build them);
the work is :func:`attrib.batch.run.prepare` and :func:`attrib.batch.run.run_batch`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from attrib import errors
from attrib.batch import BadInputError, prepare, run_batch
from attrib.batch.run import TASKS, BatchSettings
from attrib.cli.common import (
    add_backend_arguments,
    add_reference_arguments,
    api_key_variable,
    backend_options,
    cache_spec,
    check_texts,
    input_places,
    read_file,
    reference_options,
)
from attrib.cli.flags import (
    HelpFormatter,
    add_run_options,
    add_setting_flags,
    check_setting_needs,
    check_task_flags,
    on_command,
    run_options,
    setting_values,
)
from attrib.cli.inputs import decode, read_bytes
from attrib.cli.signals import Terminated, interrupted_status
from attrib.errors import InputError
from attrib.options import default, record_names
from attrib.paths import Place, check_places

__all__ = ["add_parser", "batch"]

_EXAMPLES = """\
examples:
  attrib batch questions.jsonl -o runs/questions --level word
  some-export | attrib batch - -o runs/exported          (JSON Lines on stdin)
  attrib batch chats.jsonl -o runs/audit --task audit --system-file system.txt
  attrib batch logs.parquet -o runs/logs --backend openai --base-url http://127.0.0.1:8080/v1 \\
      --model gemma --executor ray --workers 4
  attrib batch big.jsonl -o runs/big --executor ray --ray-address HEAD:6379

input: JSON Lines (one record a line), .csv or .parquet with the same fields:
  {"id": "q1", "prompt": "..."}                        a plain prompt (with --task audit: the user turn)
  {"id": "q2", "messages": [{"role": "system", ...}]}  a chat
  {"id": "q3", "system": "...", "prompt": "..."}       a system + user chat
  {"id": "c1", "question": "...", "sources": [...]}    a cite record (attrib cite's inputs; --task
                                                       explain or cite): sources as strings or
                                                       {"id", "text", ...}; optional "answer",
                                                       "instructions", "template", "claims"
  optional "target" (the output to explain; else generated), "contrast" (the alternative to
  explain it against; overrides --contrast), "options" (the record's own values of
  {record_options}); other keys are kept as "meta".
  Without "id", the id is "line-N".

Every record is checked before any model work; a bad one stops the run with the
problems listed, unless --skip-bad-lines records each as an error and runs the rest.

OUT_DIR: run.json, records.jsonl (one record per finished item, fsync'ed), items/<key>.json
(the full results), units.csv and units.parquet (one row per unit). A re-run with the
same command skips the finished ids (ok records; error records too unless --retry-failed),
so a killed or interrupted run resumes where it stopped. See docs/batch.md.

exit status: 0 when every item succeeded, 1 when any item failed (or on an error
before the run), 2 for a malformed command line, 130 on Ctrl-C, 143 on SIGTERM
(finished items are kept). The last line on stderr is
"N ok, M failed, K skipped (already done)".

--executor ray: each worker opens the backend itself (by name and options) and reads
the API key from the environment variable --api-key-env names on its own node.
"""


#: The options run.json has held since the first batch format even when not given; an option
#: added since is recorded only when given, so an OUT_DIR of an earlier version still resumes.
#: Frozen: a new option never joins it.
_RECORDED_UNSET = frozenset({"method", "level", "max_new_tokens", "budget", "seed", "chat_template",
                             "perturbation", "noise_samples"})  # fmt: skip


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the ``batch`` subcommand to ``commands``."""
    parser = commands.add_parser(
        "batch",
        help="explain, audit or cite every record of a dataset (JSON Lines, CSV, Parquet), resumably",
        description="Attribute, audit or cite every record of a dataset; results stream into OUT_DIR as items finish, "
        "and a re-run resumes where the last one stopped.",
        epilog=_EXAMPLES.replace("{record_options}", ", ".join(sorted(record_names()))),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "input",
        metavar="INPUT",
        help="records: .jsonl (one JSON object a line), .csv or .parquet; '-' reads JSON Lines from stdin",
    )
    parser.add_argument("-o", "--out-dir", metavar="OUT_DIR", required=True, help="where the results go")
    parser.add_argument(
        "--task",
        choices=TASKS,
        default="explain",
        help="explain (default: prompts and chats explained, records with sources cited), audit each prompt or "
        "chat, or cite each record with sources",
    )

    run = parser.add_argument_group("running")
    add_setting_flags(run, BatchSettings)
    run.add_argument("--quiet", action="store_true", help="no progress bar on stderr")

    chat = parser.add_argument_group("chats")
    chat.add_argument("--system", metavar="TEXT", help="a system prompt for every record that has none")
    chat.add_argument("--system-file", metavar="FILE", help="read that system prompt from FILE")
    how = parser.add_argument_group("method (every record; a record's own options override them)")
    add_run_options("batch", {"chat": chat, "output": how, "method": how})
    add_reference_arguments(how, prefix="audit: ")
    add_backend_arguments(parser)


def batch(args: argparse.Namespace) -> int:
    """``attrib batch``: run every record; exit 0 when all succeeded, 1 when any failed."""
    check_texts(args)
    check_places([Place("-o", args.out_dir, run_dir=True)], [Place("the input", args.input), *input_places(args)])
    if args.system is not None and args.system_file is not None:
        raise InputError("give the system prompt either with --system or with --system-file, not both")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    if args.placement_timeout is not None and not args.placement_timeout > 0:  # NaN too
        raise InputError(f"--placement-timeout must be a positive number of seconds, got {args.placement_timeout}")
    check_setting_needs(args, BatchSettings)
    system = decode(*read_bytes(args.system_file, kind="system prompt file")) if args.system_file else args.system
    check_task_flags(args, args.task)
    given = run_options(args, "batch", args.task, read_file=read_file)
    for name, option in on_command("batch").items():  # not given: prepare records the task's default
        if option.task_defaults and getattr(args, name) is None:
            given.pop(name, None)
    if given.get("markers") == "":  # the citation check off, as on attrib cite
        given["markers"] = None
    options = {  # an option outside _RECORDED_UNSET is recorded only when it differs from its default
        name: value for name, value in given.items() if name in _RECORDED_UNSET or value != default(name, args.task)
    }
    backends = backend_options(args, chat_template=options.get("chat_template"))
    api_key_env = None
    if args.backend == "openai":  # the key is read on each worker from the environment, never sent
        backends.pop("api_key", None)
        api_key_env = api_key_variable(args)
    if args.reference_base_url is not None and args.task != "audit":
        raise InputError("--reference-base-url needs --task audit and --backend openai")
    reference = reference_options(args, backends)
    try:
        prepared = prepare(
            args.input,
            task=args.task,
            out_dir=args.out_dir,
            **setting_values(args, BatchSettings),
            system=system,
            backend=args.backend,
            backend_options=backends,
            api_key_env=api_key_env,
            reference_options=reference,
            cache=cache_spec(args),
            **options,
        )
    except BadInputError as error:
        for line in error.listing():
            print(f"attrib: {'stdin' if args.input == '-' else args.input}: {line}", file=sys.stderr)
        raise
    try:
        summary = run_batch(prepared, progress=False if args.quiet else None)
    except KeyboardInterrupt as error:
        print(
            f"attrib: {'terminated' if isinstance(error, Terminated) else 'interrupted'}; every finished item is "
            f"kept in {args.out_dir}; re-run the same command to resume",
            file=sys.stderr,
        )
        return interrupted_status(error)
    unreadable = prepared.out.unreadable if prepared.out is not None else []
    if unreadable:
        reason = unreadable[0][2]
        print(
            f"attrib: note: {len(unreadable)} item file(s) could not be read and are left out of units.csv "
            f"(first: {reason}); delete them and re-run the same command to redo those items",
            file=sys.stderr,
        )
    bugs = sum(1 for o in summary.outcomes if not o.ok and not _ours(o.record.get("error_type")))
    if bugs:
        print(
            f"attrib: note: {bugs} item(s) failed with an unexpected error (a bug); see records.jsonl", file=sys.stderr
        )
    if prepared.retained_errors and not args.retry_failed:
        print(
            f"attrib: note: {prepared.retained_errors} error record(s) of an earlier run were kept; "
            "--retry-failed runs those items again",
            file=sys.stderr,
        )
    print(f"results in {args.out_dir}")
    print(summary.line(), file=sys.stderr)
    return 0 if summary.failed == 0 else 1


def _ours(error_type: object) -> bool:
    """Whether ``error_type`` names one of attrib's own errors (or a dead worker), not a bug."""
    if error_type == "WorkerDiedError":
        return True
    found = getattr(errors, str(error_type), None)
    return isinstance(found, type) and issubclass(found, errors.AttribError)

"""``attrib summarize OUT_DIR``: what a batch run's results say across the dataset.

Reads only ``OUT_DIR/records.jsonl`` and ``OUT_DIR/items/*.json``
(:func:`attrib.summary.summarize`), prints the summary, and writes it as JSON
(``--json``) and as one self-contained HTML page (``--html``,
:mod:`attrib.reports.summary`) whose item links open each item's full report,
written to ``items/<key>.html`` beside the page (``--no-item-reports``: link to
the items' JSON in OUT_DIR instead).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from attrib.cli.inputs import write_text
from attrib.errors import InputError, ResultError
from attrib.paths import Place, check_places
from attrib.summary import summarize

__all__ = ["add_parser", "run"]

_EXAMPLES = """\
examples:
  attrib summarize runs/support
  attrib summarize runs/support --html summary.html --json summary.json --top 5

Share: a system unit's total attribution (nats) over the summed magnitudes of the
system message's units, per item. Labelled accuracy: how often the top system unit
is the record's "label" (a 1-based unit index or the unit's text). See docs/summary.md.
"""


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the ``summarize`` subcommand to ``commands``."""
    parser = commands.add_parser(
        "summarize",
        help="summarise a batch run's OUT_DIR: system-prompt units, roles, hidden influence, failures",
        description="Summarise the results of an 'attrib batch' run across the whole dataset.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="the output directory of an 'attrib batch' run")
    parser.add_argument("--html", metavar="OUT.html", help="write the summary as one self-contained HTML page")
    parser.add_argument("--json", metavar="OUT.json", help="write the summary as JSON ('-' for stdout)")
    parser.add_argument(
        "--top", type=int, default=10, metavar="K", help="plain prompts: first-ranked units to list (default 10)"
    )
    parser.add_argument(
        "--no-item-reports",
        action="store_true",
        help="with --html: link items to their JSON in OUT_DIR instead of writing items/<key>.html beside the page",
    )


def run(args: argparse.Namespace) -> int:
    """Summarise ``args.out_dir``; print it unless ``--json -``; return the exit status.

    Raises:
        InputError: for an OUT_DIR without records, a bad ``--top``, or an output that cannot be written.
        ResultError: for invalid records or result files.
    """
    check_places(
        [Place("--html", args.html), Place("--json", args.json)],
        [Place("the batch OUT_DIR", args.out_dir, run_dir=True)],
    )
    summary = summarize(args.out_dir, top=args.top)
    if args.json is not None:
        text = json.dumps(summary.to_dict(), ensure_ascii=False, indent=2, allow_nan=False)
        if args.json == "-":
            print(text)
        else:
            write_text(args.json, text + "\n")
    if args.html is not None:
        # on use: building the parser imports no report module (tests/test_registry.py)
        from attrib.reports.summary import write_summary_html

        try:
            write_summary_html(summary, args.html, item_reports=not args.no_item_reports)
        except OSError as error:
            raise InputError(f"cannot write {args.html}: {error.strerror or error}") from None
        except ValueError as error:
            if isinstance(error, ResultError):
                raise
            raise InputError(f"cannot write {args.html}: {error}") from None
    if args.json != "-":
        print(summary.render())
    return 0

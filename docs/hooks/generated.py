"""MkDocs hook: pages the site builds from files outside ``docs/``.

- ``benchmarks/results/*.md`` (written by the benchmarks) become the pages
  ``benchmarks/<name>.md`` (one the nav does not list joins the section of
  ``benchmarks.md``, so a new result never breaks the build); a Markdown link in a docs page to one of those files,
  written relative to the page as on the repository's own view
  (``../benchmarks/results/budgets.md``), is pointed at that page instead.
- ``reference/cli.md``: the ``--help`` of every ``attrib`` command, from the real
  parser (:func:`attrib.cli.parser.build_parser`), so the page lists what the
  installed command accepts.
- ``reference/options.md``: the run options, the methods' and perturbations' parameters
  and the batch settings, from their one declaration (:mod:`attrib.options`,
  ``attrib.batch.run.BatchSettings``): name, type, default, help, the functions and
  commands that take each. The API pages cannot show them (``with_options`` adds them
  to the signatures when attrib is imported, which the reference's static reading of the
  source does not see), so they link here.

Loaded by mkdocs.yml (``hooks:``). Nothing is copied into ``docs/``.
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
SITE_RESULTS = "benchmarks"

# Result files without a title of their own.
TITLES = {"audit": "Hidden-influence audit: the labelled set"}

LINK = re.compile(r"\]\((?P<target>[^)#\s]+\.md)(?P<anchor>#[^)\s]*)?\)")


def _result_page(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    note = (
        f"*This page is `benchmarks/results/{path.name}` in the repository, written by the benchmark that measured it.*"
    )
    if lines and lines[0].startswith("# "):
        return "\n".join([lines[0], "", note, *lines[1:]]) + "\n"
    title = TITLES.get(path.stem, path.stem.replace("-", " ").capitalize())
    return "\n".join([f"# {title}", "", note, "", *lines]) + "\n"


def _cli_page() -> str:
    from attrib.cli.parser import build_parser

    # argparse wraps help at the terminal's width: fix it, so the page is the same everywhere
    # and fits the page's code blocks.
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "82"
    try:
        return _cli_help(build_parser())
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns


def _cli_help(parser: Any) -> str:
    parts = [
        "# Command line",
        "",
        "Every command's `--help`, generated from the parser the `attrib` command runs",
        "(`attrib.cli.parser.build_parser`). The guides explain what the options do:",
        "[explain](../guides/explain.md), [chats and audits](../guides/audit.md),",
        "[datasets](../guides/datasets.md), [contrast](../guides/contrast.md),",
        "[backends](../guides/backends.md), [methods](../guides/methods.md); every run option's",
        "type, default and flags are in the [run options](options.md) reference.",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
    ]
    commands = next(a for a in parser._actions if a.dest == "command")
    for name, sub in commands.choices.items():  # type: ignore[union-attr]
        parts += ["", f"## attrib {name}", "", "```text", sub.format_help().rstrip(), "```"]
    return "\n".join(parts) + "\n"


def _code(value: object) -> str:
    return f"`{value!r}`"


def _type(kinds: tuple[Any, ...]) -> str:
    """A union of types as written: ``str | None``."""
    return " | ".join("None" if kind is type(None) else getattr(kind, "__name__", str(kind)) for kind in kinds)


ROLE = re.compile(r":(?:func|class|mod|data|meth|attr):`~?([^`]+)`")


def _cell(text: str) -> str:
    """Docstring text for a Markdown table cell: reST roles and double backticks as code, on one line
    (no newline breaks the row)."""
    return " ".join(ROLE.sub(r"`\1`", text).replace("``", "`").split())


def _arguments(function: Any) -> dict[str, str]:
    """The ``Args:`` entries of a Google-style docstring: name -> text (``a, b: text`` gives both)."""
    doc = inspect.getdoc(function) or ""
    found: dict[str, str] = {}
    names: list[str] = []
    inside = False
    for line in doc.splitlines():
        if line.strip() == "Args:":
            inside = True
            continue
        if inside and line and not line.startswith(" "):
            break  # the next section
        entry = re.match(r"^    ([\w, ]+): (.*)$", line) if inside else None
        if entry:
            names = [name.strip() for name in entry[1].split(",")]
            for name in names:
                found[name] = entry[2]
        elif inside and line.startswith("        "):
            for name in names:
                found[name] += " " + line.strip()
    return found


#: The functions of each task, as the API reference names them.
FUNCTIONS = {
    "explain": ["attrib.attribute", "attrib.plan"],
    "audit": ["attrib.audit"],
    "cite": ["attrib.cite", "attrib.plan_cite"],
}


def _options_page() -> str:
    from attrib import options as declared
    from attrib import registry
    from attrib.batch.run import BatchSettings, attribute_many
    from attrib.cli.flags import flag, on_command

    commands = ("explain", "audit", "batch")
    flags_on = {command: on_command(command) for command in commands}
    scope = {"run": "run-wide", "record": "run-wide, or per record in `options`", "none": "each record's own key"}
    lines = [
        "# Run options",
        "",
        "*Generated when the site is built, from the one declaration of every option in",
        "`attrib.options` (and the batch settings in `attrib.batch.run.BatchSettings`).*",
        "",
        "The Python functions take the run options as keywords (`**options`, typed by",
        "[`ExplainOptions`](../api/attributing.md#attrib.options.ExplainOptions),",
        "[`AuditOptions`](../api/attributing.md#attrib.options.AuditOptions) and",
        "[`CiteOptions`](../api/attributing.md#attrib.options.CiteOptions); `help(attrib.attribute)`",
        "lists them with their defaults); each command has the flags shown. In a batch an option",
        "is run-wide (a flag, or a keyword of `attribute_many`), and some a record may also set",
        "for itself in its `options`. The [command line](cli.md) page has every flag's `--help`.",
        "",
        "## Options",
        "",
        "| option | type | default | what it does | Python | command line | in a batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, option in declared.options().items():
        default = _code(option.default) + "".join(
            f" ({task}: {_code(value)})" for task, value in option.task_defaults.items()
        )
        text = option.help + (f"; {option.detail}" if option.detail else "")
        functions = [f"`{f}`" for task in declared.TASKS if task in option.tasks for f in FUNCTIONS[task]]
        if option.batch != "none":
            functions.append("`attrib.attribute_many`")
        shown = [c for c in commands if name in flags_on[c]]
        cli = f"`{flag(name)}` ({', '.join(shown)})" if shown else "none"
        batch = scope[option.batch] + (
            "" if option.tasks == set(declared.TASKS) else f" ({', '.join(sorted(option.tasks))})"
        )
        lines.append(
            f"| `{name}` | `{declared.type_text(name)}` | {default} | {_cell(text)} | {', '.join(functions)} "
            f"| {cli} | {batch} |"
        )
    lines += [
        "",
        "## Method and perturbation parameters",
        "",
        "Set on the command line with the method or perturbation they belong to; in Python, pass an",
        'instance instead (`method=HiPe(threshold="midrange")`). The default is the class\'s own.',
        "",
        "| flag | applies to | what it does | default | Python |",
        "|---|---|---|---|---|",
    ]
    for parameter in declared.PARAMETERS:
        owner = registry.of(parameter.kind).resolve(parameter.applies_to[0]).__name__
        applies = ", ".join(f"`{flag(parameter.kind)} {name}`" for name in parameter.applies_to)
        lines.append(
            f"| `{flag(parameter.name)}` | {applies} | {_cell(parameter.help)} | {_code(parameter.default())} "
            f"| `{owner}({parameter.argument}=...)` |"
        )
    lines += [
        "",
        "## Batch settings",
        "",
        "How a batch runs, beside the run options: keywords of `attrib.attribute_many` and",
        "`attrib.batch.prepare` (what each does is from `attribute_many`'s docstring); a setting",
        "with a flag has its `attrib batch` flag built from this declaration.",
        "",
        "| setting | type | default | command line | what it does |",
        "|---|---|---|---|---|",
    ]
    documented = _arguments(attribute_many)
    for name, (setting, kinds) in declared.declared_settings(BatchSettings).items():
        cli = f"`{flag(setting.flag or name)}`" if setting.help else "none"
        text = documented.get(name, setting.help)
        lines.append(f"| `{name}` | `{_type(kinds)}` | {_code(setting.value)} | {cli} | {_cell(text)} |")
    return "\n".join(lines) + "\n"


def _nav_pages(nav: Any) -> list[str]:
    """Every page path a nav (lists of ``{title: path-or-section}`` and paths) names."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    return []


def _section_of(nav: Any, page: str) -> list[Any] | None:
    """The nav list that holds ``page`` (as a path or as ``{title: path}``), at any depth; None if none does."""
    if not isinstance(nav, list):
        return None
    if any(item == page or (isinstance(item, dict) and page in item.values()) for item in nav):
        return nav
    for item in nav:
        for value in item.values() if isinstance(item, dict) else ():
            if (found := _section_of(value, page)) is not None:
                return found
    return None


def on_config(config: Any) -> Any:
    """A result file the nav does not list yet joins the benchmarks' section, titled by its heading."""
    nav = config.get("nav")
    if not nav:
        return config
    listed = set(_nav_pages(nav))
    section = _section_of(nav, f"{SITE_RESULTS}.md") or nav
    for path in sorted(RESULTS.glob("*.md")):
        page = f"{SITE_RESULTS}/{path.name}"
        if page not in listed:
            section.append(page)
    return config


def on_files(files: Files, config: Any) -> Files:
    for path in sorted(RESULTS.glob("*.md")):
        files.append(File.generated(config, f"{SITE_RESULTS}/{path.name}", content=_result_page(path)))
    files.append(File.generated(config, "reference/cli.md", content=_cli_page()))
    files.append(File.generated(config, "reference/options.md", content=_options_page()))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Point links to ``benchmarks/results/*.md`` at the pages built from them."""
    if page.file.abs_src_path is None:
        return markdown
    here = Path(page.file.abs_src_path).parent

    def repoint(match: re.Match[str]) -> str:
        target = (here / match["target"]).resolve()
        if target.parent != RESULTS:
            return match.group(0)
        page_dir = Path(page.file.src_uri).parent
        site = os.path.relpath(f"{SITE_RESULTS}/{target.name}", page_dir.as_posix() or ".")
        return f"]({Path(site).as_posix()}{match['anchor'] or ''})"

    return LINK.sub(repoint, markdown)

"""MkDocs hook: pages the site builds from files outside ``docs/``.

- ``benchmarks/results/*.md`` (written by the benchmarks) become the pages
  ``benchmarks/<name>.md`` (one the nav does not list joins the section of
  ``benchmarks.md``, so a new result never breaks the build); a Markdown link in a docs page to one of those files,
  written relative to the page as on the repository's own view
  (``../benchmarks/results/budgets.md``), is pointed at that page instead.
- ``reference/cli.md``: the ``--help`` of every ``attrib`` command, from the real
  parser (:func:`attrib.cli.parser.build_parser`), so the page lists what the
  installed command accepts.

Loaded by mkdocs.yml (``hooks:``). Nothing is copied into ``docs/``.
"""

from __future__ import annotations

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
        "[backends](../guides/backends.md), [methods](../guides/methods.md).",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
    ]
    commands = next(a for a in parser._actions if a.dest == "command")
    for name, sub in commands.choices.items():  # type: ignore[union-attr]
        parts += ["", f"## attrib {name}", "", "```text", sub.format_help().rstrip(), "```"]
    return "\n".join(parts) + "\n"


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

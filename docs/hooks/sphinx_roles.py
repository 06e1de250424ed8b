"""Griffe extension: the docstrings' Sphinx roles as links of the documentation site.

attrib's docstrings are Google style with Sphinx cross-reference roles
(``:class:`~attrib.result.Attribution```, ``:func:`attrib.attribute```,
``:meth:`run```). mkdocstrings' Google parser leaves those roles as text, so this
extension rewrites each into an *optional* cross-reference of mkdocs-autorefs:
a link when the object is rendered somewhere on the site, plain code otherwise
(never a broken reference). ``~`` shortens the title to the last name, as in
Sphinx; a name without a package (``run``, ``.probe``) is looked up from the
documented object outward. reST's ``::`` before a literal block becomes a colon.

Loaded by mkdocs.yml (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|const):`(?P<target>[^`]+)`")


def _members(obj: griffe.Object) -> set[str]:
    try:
        return set(obj.members)
    except Exception:  # an alias that does not resolve has no members to offer
        return set()


def _identifier(target: str, obj: griffe.Object) -> str | None:
    """The dotted path a role's target names, seen from ``obj``; None when it names nothing here."""
    if target.startswith("attrib"):
        return target
    if target.startswith("."):
        scope: griffe.Object | None = obj.module if obj.module.is_init_module else obj.module.parent
        rest = target[1:]
        while rest.startswith(".") and scope is not None:
            scope, rest = scope.parent, rest[1:]
        return f"{scope.path}.{rest}" if scope is not None else None
    first = target.split(".", 1)[0]
    scope = obj
    while scope is not None:
        if first in _members(scope):
            return f"{scope.path}.{target}"
        scope = scope.parent
    return None


def _rewrite(text: str, obj: griffe.Object) -> str:
    def link(match: re.Match[str]) -> str:
        target = match["target"].strip()
        short = target.startswith("~")
        target = target.lstrip("~")
        title = html.escape(target.rsplit(".", 1)[-1] if short else target)
        identifier = _identifier(target, obj)
        if identifier is None:
            return f"<code>{title}</code>"
        return f'<autoref identifier="{html.escape(identifier)}" optional><code>{title}</code></autoref>'

    text = ROLE.sub(link, text)
    # reST's literal-block marker: a line of its own "::" goes, a paragraph's closing "::" is a colon
    # (the indented block after it is a code block in Markdown as it is).
    text = re.sub(r"^[ \t]*::[ \t]*\n", "", text, flags=re.M)
    return re.sub(r"(?<=\S)::[ \t]*$", ":", text, flags=re.M)


def _walk(obj: griffe.Object, seen: set[str]) -> None:
    if obj.path in seen:
        return
    seen.add(obj.path)
    if obj.docstring is not None:
        obj.docstring.value = _rewrite(obj.docstring.value, obj)
    for member in list(obj.members.values()):
        if not member.is_alias:
            _walk(member, seen)  # type: ignore[arg-type]


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring of a loaded package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        _walk(pkg, set())

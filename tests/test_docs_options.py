"""The documentation's run-options page is generated from the declaration, and the API pages link to it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from attrib import options as declared
from attrib.batch.run import BatchSettings

ROOT = Path(__file__).resolve().parents[1]


def _hook() -> ModuleType:
    pytest.importorskip("mkdocs")
    spec = importlib.util.spec_from_file_location("docs_hook_generated", ROOT / "docs" / "hooks" / "generated.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(page: str) -> dict[str, list[str]]:
    """Each table row by its first cell's code: ``method`` -> the row's cells."""
    rows = {}
    for line in page.splitlines():
        if line.startswith("| `"):
            cells, cell, code = [], "", False
            for char in line.strip().strip("|"):
                if char == "|" and not code:  # a pipe inside code is part of a type (`str | None`)
                    cells.append(cell.strip())
                    cell = ""
                    continue
                code ^= char == "`"
                cell += char
            cells.append(cell.strip())
            rows[cells[0].strip("`")] = cells
    return rows


def test_every_option_parameter_and_batch_setting_has_a_row_from_the_declaration() -> None:
    rows = _rows(_hook()._options_page())
    for name, option in declared.options().items():
        row = rows[name]
        assert row[1] == f"`{declared.type_text(name)}`" and row[2].startswith(f"`{option.default!r}`"), row
        assert " ".join(option.help.split())[:40] in row[3], row
    assert rows["level"][2] == "`'token'` (audit: `'sentence'`) (cite: `'source'`)"
    assert "`attrib.audit`" in rows["level"][4] and "`attrib.attribute_many`" in rows["level"][4]
    assert "`attrib.attribute_many`" not in rows["target"][4]  # a record's own key, not a batch option
    assert rows["chat_template"][5] == "`--chat-template` (audit, batch)"
    for parameter in declared.PARAMETERS:
        assert "--" + parameter.name.replace("_", "-") in rows, parameter.name
    assert rows["--early-stop"][4] == "`HiPe(top_k=...)`"
    for name, (setting, _) in declared.declared_settings(BatchSettings).items():
        assert rows[name][2] == f"`{setting.value!r}`", name
    assert rows["placement_timeout"][3] == "`--placement-timeout`"
    assert rows["skip_bad"][3] == "`--skip-bad-lines`" and rows["task"][3] == "none"
    assert "seconds to wait for Ray to place a worker" in rows["placement_timeout"][4]


def test_the_page_is_in_the_nav_and_linked_from_the_api_pages() -> None:
    assert "reference/options.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in ("attributing.md", "index.md"):
        assert "(../reference/options.md)" in (ROOT / "docs" / "api" / page).read_text(encoding="utf-8"), page

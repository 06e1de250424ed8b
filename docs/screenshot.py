"""Regenerate docs/report.png: the README example's HTML report, rendered in headless Chromium.

Run from the repository root: ``python docs/screenshot.py``. Needs the local and
test extras and Debian's chromium. Clicks the first digit of the output so the
picture shows the per-token view.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright

import attrib

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    prompt = (ROOT / "examples" / "needle.txt").read_text(encoding="utf-8").removesuffix("\n")
    result = attrib.attribute(prompt, max_new_tokens=5)
    page_path = ROOT / "docs" / "report.html"
    result.to_html(page_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        page.goto(page_path.as_uri())
        page.wait_for_selector("#prompt .unit")
        page.hover(f'#prompt .unit[data-index="{result.top(1)[0].index}"]')
        page.screenshot(path=str(ROOT / "docs" / "report.png"), full_page=True)
        browser.close()
    page_path.unlink()
    print("wrote docs/report.png")


if __name__ == "__main__":
    main()

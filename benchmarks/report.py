"""Size and responsiveness of the HTML report for a large result, in headless Chromium.

Builds a result of ``--units`` token units × ``--tokens`` output tokens (real prose
units, seeded random scores), renders it, and measures: page size, time from
navigation to the shaded prompt, and time for a click on an output token to
re-shade every unit. Run: ``python -m benchmarks.report --units 4000 --tokens 64``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=4000)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from attrib.backends.toy import ToyBackend
    from attrib.result import Attribution
    from attrib.segmentation import Segmentation
    from benchmarks.needle import corpus_paragraphs

    text = ""
    toy = ToyBackend()
    for paragraph in corpus_paragraphs() * 4:
        text += paragraph + "\n\n"
        if len(toy.tokenize(text)) >= args.units:
            break
    tokens = toy.tokenize(text)
    units = Segmentation(tokens.head(max(e for e in tokens.edges if e <= args.units))).units("token")
    rng = np.random.default_rng(0)
    result = Attribution(
        prompt=text[: units[-1].end],
        units=units,
        output=" x" * args.tokens,
        output_tokens=[" x"] * args.tokens,
        scores=rng.normal(0, 0.05, (len(units), args.tokens)),
        method="hipe",
        level="token",
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.html"
        result.to_html(path)
        size = path.stat().st_size
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
            )
            page = browser.new_page()
            started = time.perf_counter()
            page.goto(path.as_uri())
            page.wait_for_selector(f'#prompt .unit[data-index="{len(units) - 1}"]')
            loaded = time.perf_counter() - started
            clicks = []
            for index in range(5):
                before = page.eval_on_selector(f'#prompt .unit[data-index="{len(units) - 1}"]', "u => u.dataset.score")
                started = time.perf_counter()
                page.click(f'#output .token[data-index="{index}"]')
                page.wait_for_function(
                    "([sel, old]) => document.querySelector(sel).dataset.score !== old",
                    arg=[f'#prompt .unit[data-index="{len(units) - 1}"]', before],
                )
                clicks.append(time.perf_counter() - started)
                page.click(f'#output .token[data-index="{index}"]')
            browser.close()
    report = {
        "units": len(units),
        "output_tokens": args.tokens,
        "page_mb": size / 1e6,
        "load_to_shaded_prompt_s": loaded,
        "click_to_reshade_ms_median": 1000 * float(np.median(clicks)),
    }
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()

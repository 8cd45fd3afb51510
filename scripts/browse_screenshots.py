"""Screenshots of `tinyaug browse` for the README, taken from the real app in headless Chromium.

    tinyaug browse DATASET --port 7870 &      # a dataset with teacher predictions shows flips too
    python scripts/browse_screenshots.py --port 7870 --out docs/

Needs Playwright (the test extra) and Debian's chromium.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--sentence", default="an utterly charming and hilarious film that reaches into your heart .")
    args = parser.parse_args()
    url = f"http://127.0.0.1:{args.port}/"
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                         args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url)
        page.wait_for_selector("#aug-page mark.aug-word[data-example]", timeout=120_000)
        page.locator("#aug-changed input").check()
        page.wait_for_timeout(1500)
        page.locator("#aug-page mark.aug-vectors[data-example]").first.click()
        page.wait_for_selector("#aug-candidates table", timeout=120_000)
        page.screenshot(path=str(args.out / "browse-dataset.png"))
        page.get_by_role("tab", name="Sentence").click()
        page.locator("#aug-sentence textarea").fill(args.sentence)
        page.locator("#aug-run").click()
        page.wait_for_selector("#aug-sentence-result table", timeout=120_000)
        page.screenshot(path=str(args.out / "browse-sentence.png"), full_page=True)
        browser.close()


if __name__ == "__main__":
    main()

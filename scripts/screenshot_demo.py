"""The README's picture: the comparison page of a built demo site, in headless Chromium.

    python scripts/screenshot_demo.py prunecard-demo docs/assets/demo-compare.png

Uses the browser tests' tooling (tests/browser.py: the system Chromium through Playwright,
served from 127.0.0.1, nothing fetched from elsewhere).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from browser import launch, serve


def screenshot(demo: Path, png: Path) -> Path:
    with launch() as browser, serve(demo / "site" / "site") as root:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(root + "compare.html", wait_until="networkidle")
        png.write_bytes(page.screenshot(type="png", full_page=False, clip=None))
        page.close()
    return png


if __name__ == "__main__":
    print(screenshot(Path(sys.argv[1]), Path(sys.argv[2])))

"""Headless Chromium for the site's tests, driven by Playwright for Python.

Playwright drives the system Chromium (Debian's `chromium` package, which `.ci/run`
installs) through `executable_path`, so nothing is downloaded. Inside the browser every host
but 127.0.0.1 fails to resolve, and every request a page or its workers make is recorded,
so a test can assert that none left the machine.

Tests get the browser from the `browser` fixture in conftest.py and load pages with
`visit`. Without Chromium the fixture skips with `INSTALL_HINT`; with
PRUNECARD_REQUIRE_BROWSER=1 (set by `.ci/run`) it fails instead.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REQUIRE_BROWSER = "PRUNECARD_REQUIRE_BROWSER"
INSTALL_HINT = "no Chromium for the browser tests: install it with `apt-get install chromium`"
ARGS = (
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    # anything not on this machine fails to resolve instead of leaving it
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
WIDTH, HEIGHT = 1280, 900
TIMEOUT_MS = 30_000
# the sizes of the figures inside a page's article
SVG_SIZES = """() => [...document.querySelectorAll("article svg")].map((s) => {
  const r = s.getBoundingClientRect(); return [r.width, r.height]; })"""


def chromium() -> str | None:
    """The system Chromium's executable, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def launch() -> Iterator[object]:
    """A headless Chromium (a Playwright `Browser`); closed on exit."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    if executable is None:
        raise FileNotFoundError(INSTALL_HINT)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=list(ARGS), timeout=TIMEOUT_MS
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageVisit:
    url: str
    status: int | None = None
    svg_sizes: list[tuple[float, float]] = field(default_factory=list)
    title: str = ""
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads
    requests: list[str] = field(default_factory=list)  # by the page and its workers
    screenshot: bytes = b""
    script: object = None


def visit(browser, url: str, *, script: str = "") -> PageVisit:
    """Load `url` in a fresh context; collect errors, requests, SVG sizes and a screenshot.

    `script` (a JavaScript expression) runs once the network is idle; its value lands in
    `visit.script`.
    """
    found = PageVisit(url)
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        # context-wide, so requests from the page's workers are seen too
        context.on("request", lambda request: found.requests.append(request.url))
        page = context.new_page()
        page.on("console", functools.partial(_console, found))
        page.on("pageerror", lambda error: found.errors.append(f"{error}"))
        page.on(
            "requestfailed",
            lambda request: found.errors.append(f"{request.url}: {request.failure}"),
        )
        response = page.goto(url, wait_until="load")
        page.wait_for_load_state("networkidle")
        found.status = response.status if response else None
        if script:
            found.script = page.evaluate(script)
        found.title = page.title()
        found.svg_sizes = [tuple(size) for size in page.evaluate(SVG_SIZES)]
        found.screenshot = page.screenshot(type="png")
    finally:
        context.close()
    return found


def _console(found: PageVisit, message) -> None:
    if message.type in ("error", "assert"):
        found.errors.append(f"{message.text} ({message.location.get('url', '')})")


class _Handler(http.server.SimpleHTTPRequestHandler):
    paths: list[str] | None = None

    def log_message(self, format: str, *args: object) -> None:
        if self.paths is not None:
            self.paths.append(self.path)


@contextlib.contextmanager
def serve(directory: Path, paths: list[str] | None = None) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1 at a free port; yields the base URL. Every requested
    path is appended to `paths` when one is given."""
    handler = functools.partial(
        type("Handler", (_Handler,), {"paths": paths}), directory=str(directory)
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def browser_required() -> bool:
    """Whether a missing Chromium fails the browser tests (CI) instead of skipping them."""
    return os.environ.get(REQUIRE_BROWSER) == "1"

"""The built site in a real headless Chromium (the `browser` fixture, Playwright).

The site is served from 127.0.0.1; every other host fails to resolve in the browser, and
the requests that pages and their workers made are checked for any to anywhere else.
"""

from __future__ import annotations

import io

import pytest
from browser import HEIGHT, INSTALL_HINT, REQUIRE_BROWSER, WIDTH, serve, visit
from site_reports import make_reports

from analyzer.publish.site import build_site

PAGES = (
    "index.html",
    "compare.html",
    "models/minilm-heavy/index.html",
    "models/minilm-light/index.html",
)
# Click "Linear density" twice: descending, so the denser (light) model comes first.
SORT = """(() => {
  const th = [...document.querySelectorAll(".prunecard-sortable th")]
    .find((h) => h.textContent === "Linear density");
  th.click(); th.click();
  return [...document.querySelectorAll(".prunecard-sortable tbody tr")]
    .map((r) => r.cells[0].textContent);
})()"""


@pytest.fixture(scope="module")
def browsed(browser, tmp_path_factory):
    base = tmp_path_factory.mktemp("browser")
    dirs, _ = make_reports(base / "reports")
    site = build_site(dirs, base / "out").parent
    with serve(site) as root:
        visits = {
            page: visit(browser, root + page, script=SORT if page == "index.html" else "")
            for page in PAGES
        }
    return root, visits, base


def test_pages_load(browsed):
    _, visits, _ = browsed
    for page, seen in visits.items():
        assert seen.status == 200, page
    assert visits["models/minilm-heavy/index.html"].title.startswith("MiniLM heavy")
    assert visits["compare.html"].title.startswith("Comparison")


def test_figures_render_with_a_size(browsed):
    _, visits, _ = browsed
    for page in ("compare.html", "models/minilm-heavy/index.html"):
        sizes = visits[page].svg_sizes
        assert len(sizes) >= 2, page
        assert all(w > 100 and h > 50 for w, h in sizes), (page, sizes)


def test_no_console_errors(browsed):
    _, visits, _ = browsed
    for page, seen in visits.items():
        assert seen.errors == [], (page, seen.errors)


def test_no_request_leaves_localhost(browsed):
    root, visits, _ = browsed
    for page, seen in visits.items():
        # data: URLs are the block maps' images embedded in the SVG, not requests
        fetched = [u for u in seen.requests if not u.startswith("data:")]
        assert fetched and all(u.startswith(root) for u in fetched), (page, fetched)
    # the search worker's index request proves workers' requests are recorded too
    assert root + "search/search_index.json" in visits["index.html"].requests


def test_table_sorts_in_the_browser(browsed):
    _, visits, _ = browsed
    assert visits["index.html"].script == ["MiniLM light", "MiniLM heavy"]


def test_screenshot_of_the_home_page(browsed):
    from PIL import Image

    _, visits, base = browsed
    png = visits["index.html"].screenshot
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    (base / "home.png").write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)
    colours = image.getcolors(maxcolors=1 << 16) or []
    assert len(colours) > 50  # text, header bar, table lines: not a blank page
    white = sum(n for n, c in colours if c == (255, 255, 255))
    assert white < 0.95 * WIDTH * HEIGHT


def test_the_checks_see_errors_and_outside_requests(browser, tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        '<title>bad</title><img src="http://example.com/x.png">'
        '<script>console.error("broken"); fetch("https://cdn.example.org/a.js")</script>'
    )
    with serve(tmp_path) as root:
        seen = visit(browser, root + "bad.html")
    assert {"http://example.com/x.png", "https://cdn.example.org/a.js"} <= set(seen.requests)
    assert any("broken" in e for e in seen.errors)
    assert any(e.startswith("http://example.com/x.png: ") for e in seen.errors)


@pytest.mark.parametrize("required", [False, True])
def test_without_chromium_the_browser_tests_skip_saying_how_to_install_it(tmp_path, required):
    """...unless PRUNECARD_REQUIRE_BROWSER=1 (`.ci/run`), which makes a missing browser fail."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PATH": str(tmp_path)}  # no chromium on it
    env.pop(REQUIRE_BROWSER, None)
    if required:
        env[REQUIRE_BROWSER] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", __file__,
         "-k", "table_sorts", f"--basetemp={tmp_path / 'tmp'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert INSTALL_HINT in done.stdout, done.stdout[-2000:]
    assert done.returncode == (1 if required else 0), done.stdout[-2000:]
    assert ("1 error" if required else "1 skipped") in done.stdout

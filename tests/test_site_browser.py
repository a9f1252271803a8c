"""The built site in a real headless Chromium (Debian's `chromium` package; CI installs it).

The site is served from 127.0.0.1; every other host fails to resolve in the browser, and
both the DevTools network events and Chromium's net log are checked for requests that
pages or their workers made to anywhere else.
"""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import pytest
from browser import Browser, chromium, serve
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
def browsed(tmp_path_factory):
    chromium()  # a clear failure, not a skip, when the browser is missing
    base = tmp_path_factory.mktemp("browser")
    dirs, _ = make_reports(base / "reports")
    site = build_site(dirs, base / "out").parent
    browser = Browser(base)
    try:
        with serve(site) as root:
            visits = {
                page: browser.visit(root + page, script=SORT if page == "index.html" else "")
                for page in PAGES
            }
    finally:
        net = browser.close()
    return root, visits, net, base


def test_pages_load(browsed):
    _, visits, _, _ = browsed
    for page, visit in visits.items():
        assert visit.status == 200, page
    assert visits["models/minilm-heavy/index.html"].title.startswith("MiniLM heavy")
    assert visits["compare.html"].title.startswith("Comparison")


def test_figures_render_with_a_size(browsed):
    _, visits, _, _ = browsed
    for page in ("compare.html", "models/minilm-heavy/index.html"):
        sizes = visits[page].svg_sizes
        assert len(sizes) >= 2, page
        assert all(w > 100 and h > 50 for w, h in sizes), (page, sizes)


def test_no_console_errors(browsed):
    _, visits, _, _ = browsed
    for page, visit in visits.items():
        assert visit.errors == [], (page, visit.errors)


def test_no_request_leaves_localhost(browsed):
    root, visits, net, _ = browsed
    for page, visit in visits.items():
        # data: URLs are the block maps' images embedded in the SVG, not requests
        fetched = [u for u in visit.requests if not u.startswith("data:")]
        assert fetched and all(u.startswith(root) for u in fetched), (page, fetched)
    from_pages = [r for r in net if r.initiator != "not an origin"]
    # the search worker's index request proves the log holds what pages asked for
    assert any(r.url == root + "search/search_index.json" for r in from_pages)
    outside = [r.url for r in from_pages if urlsplit(r.url).hostname != "127.0.0.1"]
    assert outside == []


def test_table_sorts_in_the_browser(browsed):
    _, visits, _, _ = browsed
    assert visits["index.html"].script == ["MiniLM light", "MiniLM heavy"]


def test_screenshot_of_the_home_page(browsed):
    from PIL import Image

    _, visits, _, base = browsed
    png = visits["index.html"].screenshot
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    (base / "home.png").write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (1280, 900)
    colours = image.getcolors(maxcolors=1 << 16) or []
    assert len(colours) > 50  # text, header bar, table lines: not a blank page
    white = sum(n for n, c in colours if c == (255, 255, 255))
    assert white < 0.95 * 1280 * 900

"""A site built from hostile report folders, opened in Chromium: no injected script runs.

Every payload in tests/hostile_reports.py would set `window.__pwned`; each built page is
loaded from a local server and checked for that, for a changed window title, for
requests a payload would make (the server logs every path; requests to other hosts are
aborted and recorded), for script errors and for Content-Security-Policy violations
(there are none: nothing the policy would block reaches a page). The policy itself is
shown to work: a script inserted inline is refused. The site still works under it:
mkdocs-material's search answers and the home table sorts.

Playwright drives Debian's Chromium (`executable_path`); no browser is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import serve
from hostile_reports import CARD_PAGE, MARK, make_hostile_reports

from analyzer.publish.site import build_site


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("hostile-browser")
    return build_site(make_hostile_reports(base / "reports"), base / "out").parent


@pytest.fixture(scope="module")
def hostile(browser, site):
    """The shared Chromium, the hostile site's base URL and every path it was asked for."""
    paths: list[str] = []
    with serve(site, paths) as root:
        yield browser, root, paths


PAGES = (
    "index.html",
    "compare.html",
    f"{CARD_PAGE}/index.html",
    "models/hostile-heading/index.html",
    "models/folder-img-src-x-onerror-window-pwned-folder-name/index.html",
)

# what the page looks like after load: payload traces, the policy, script URLs in links
PROBE = """() => ({
  pwned: window.__pwned === undefined ? null : String(window.__pwned),
  title: document.title,
  csp: [...document.querySelectorAll('meta[http-equiv="Content-Security-Policy"]')]
    .map((m) => m.content),
  scriptLinks: [...document.querySelectorAll("a[href]")]
    .map((a) => a.href).filter((h) => /^\\s*javascript:/i.test(h)),
})"""


def _open(hostile, url: str):
    """A fresh page with every console message, page error and off-site request recorded."""
    chromium, root, _ = hostile
    context = chromium.new_context()
    seen: dict[str, list[str]] = {"console": [], "errors": [], "offsite": []}

    def route(r):
        if r.request.url.startswith(root) or r.request.url.startswith("data:"):
            r.continue_()
        else:
            seen["offsite"].append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.goto(url, wait_until="load")
    page.wait_for_timeout(300)  # onload / onerror handlers and the theme's scripts
    return context, page, seen


@pytest.mark.parametrize("name", PAGES)
def test_no_payload_runs(hostile, name):
    _, root, paths = hostile
    context, page, seen = _open(hostile, root + name)
    try:
        found = page.evaluate(PROBE)
        page.mouse.move(400, 400)  # hover handlers, had any survived
        assert page.evaluate("window.__pwned === undefined")
    finally:
        context.close()
    assert found["pwned"] is None, found["pwned"]
    assert "pwned" not in found["title"].replace("window.__pwned", "")
    assert found["scriptLinks"] == []
    assert len(found["csp"]) == 1 and "script-src 'self'" in found["csp"][0]
    assert "'unsafe-inline'" not in found["csp"][0].split("script-src")[1].split(";")[0]
    assert seen["errors"] == [], seen["errors"]
    violations = [m for m in seen["console"] if "Content Security Policy" in m]
    assert violations == [], violations  # nothing the policy would block reached the page
    assert seen["offsite"] == []
    assert not [p for p in paths if MARK in p or "attacker" in p]


def test_policy_refuses_an_inserted_inline_script(hostile):
    _, root, _ = hostile
    context, page, _ = _open(hostile, root + f"{CARD_PAGE}/index.html")
    try:
        ran = page.evaluate(
            """() => new Promise((done) => {
              document.addEventListener("securitypolicyviolation",
                (e) => done({ran: window.__probe === 1, blocked: e.violatedDirective}));
              const s = document.createElement("script");
              s.textContent = "window.__probe = 1";
              document.body.append(s);
              setTimeout(() => done({ran: window.__probe === 1, blocked: null}), 1000);
            })"""
        )
    finally:
        context.close()
    assert ran == {"ran": False, "blocked": "script-src-elem"}


def test_search_works_under_the_policy(hostile):
    _, root, _ = hostile
    context, page, seen = _open(hostile, root + "index.html")
    try:
        page.locator(".md-search__input").click()
        page.keyboard.type("Hostile")
        results = page.locator(".md-search-result__item")
        results.first.wait_for(timeout=10_000)
        count = results.count()
        text = page.locator(".md-search-result").inner_text()
        pwned = page.evaluate("window.__pwned === undefined ? null : window.__pwned")
    finally:
        context.close()
    assert count >= 1 and "Hostile" in text
    assert pwned is None
    assert [m for m in seen["console"] if "Content Security Policy" in m] == []


def test_table_sorts_under_the_policy(hostile):
    _, root, _ = hostile
    context, page, seen = _open(hostile, root + "index.html")
    try:
        header = page.locator(".prunecard-sortable th", has_text="Linear density")
        header.click()
        sort = header.get_attribute("aria-sort")
    finally:
        context.close()
    assert sort == "ascending"
    assert seen["errors"] == []

"""A site built from hostile report folders carries no markup that runs.

Each page is parsed with html.parser: the only scripts are the site's own files and the
theme's inline scripts whose hashes the page's Content-Security-Policy lists; no element
has an event handler attribute or a javascript: URL; no frame, object or form comes from
a card. The vectors that should stay visible (titles, names, record strings) must reach
the page as text, which proves each one was exercised. Payloads: tests/hostile_reports.py.
"""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hostile_reports import CARD_PAGE, FOLDER, MARK, SHOWN_AS_TEXT, make_hostile_reports

from analyzer.publish.site import build_site

URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "srcdoc"}


class _Page(HTMLParser):
    """What could run in a page: scripts, attributes, URLs; plus its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[tuple[dict, str]] = []  # (attributes, inline body)
        self.attributes: list[tuple[str, str, str]] = []  # (tag, name, value)
        self.tags: list[str] = []
        self.text: list[str] = []
        self._script: dict | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [(tag, name, value or "") for name, value in attrs]
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            attrs, body = self.scripts[-1]
            self.scripts[-1] = (attrs, body + data)
        else:
            self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def _csp(page: _Page) -> str:
    policies = [
        value
        for tag, name, value in page.attributes
        if tag == "meta" and name == "content"
        for t2, n2, v2 in page.attributes
        if t2 == "meta" and n2 == "http-equiv" and v2.lower() == "content-security-policy"
    ]
    assert policies, "no Content-Security-Policy meta element"
    return next(p for p in policies if "script-src" in p)


def _sha256(body: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("hostile")
    dirs = make_hostile_reports(base / "reports")
    return build_site(dirs, base / "out").parent


@pytest.fixture(scope="module")
def pages(hostile_site) -> dict[str, _Page]:
    built = [p for p in hostile_site.rglob("*.html") if "assets" not in p.parts]
    found = {str(p.relative_to(hostile_site)): _parse(p) for p in built}
    assert {"index.html", "compare.html", f"{CARD_PAGE}/index.html"} <= set(found)
    assert len([p for p in found if p.startswith("models/")]) == 3
    return found


def test_scripts_are_the_sites_own(pages):
    for name, page in pages.items():
        policy = _csp(page)
        for attrs, body in page.scripts:
            if "src" in attrs:
                src = attrs["src"]
                assert not re.match(r"^[a-z][\w+.-]*:|^//", src, re.I), (name, src)
                assert src.endswith(("bundle.a5f9d56c.min.js", "tablesort.js")) or re.search(
                    r"assets/javascripts/bundle\.\w+\.min\.js$", src
                ), (name, src)
            elif attrs.get("type") == "application/json":
                assert attrs.get("id") == "__config" and MARK not in body, name
            else:
                assert _sha256(body) in policy, (name, body[:80])
                assert MARK not in body, name


def test_no_event_handlers_or_script_urls(pages):
    # a payload may only survive as text, or slugified in a heading's #anchor
    for name, page in pages.items():
        handlers = [(t, a) for t, a, _ in page.attributes if a.lower().startswith("on")]
        assert handlers == [], (name, handlers)
        urls = [
            (t, a, v)
            for t, a, v in page.attributes
            if a.lower() in URL_ATTRIBUTES
            and (
                re.match(r"^\s*(javascript:|vbscript:|data:text)", v, re.I)
                or (MARK in v and not v.startswith("#"))
            )
        ]
        assert urls == [], (name, urls)
        embedded = {"iframe", "object", "embed", "frame", "base"} & set(page.tags)
        assert embedded == set(), (name, embedded)
        assert page.tags.count("form") == 1, name  # the theme's search box


def test_card_cannot_shadow_the_theme_config(pages):
    page = pages[f"{CARD_PAGE}/index.html"]
    ids = [v for t, a, v in page.attributes if a == "id" and v == "__config"]
    assert ids == ["__config"]  # only the theme's own <script id="__config">
    assert "attacker.invalid" not in str(page.scripts)


def test_csp_forbids_inline_script_and_other_hosts(pages):
    for name, page in pages.items():
        directives = dict(d.strip().split(" ", 1) for d in _csp(page).split(";"))
        assert directives["default-src"] == "'self'", name
        script = directives["script-src"].split()
        assert script[0] == "'self'" and all(s.startswith("'sha256-") for s in script[1:])
        for directive in ("img-src", "connect-src", "style-src", "worker-src"):
            assert "http" not in directives[directive] and "*" not in directives[directive]
        assert directives["object-src"] == "'none'"


@pytest.mark.parametrize("payload", SHOWN_AS_TEXT)
def test_titles_names_and_record_strings_show_as_text(pages, payload):
    """Each payload reaches some page, as the text it is (so it was escaped, not lost)."""
    shown = [name for name, page in pages.items() if payload in "".join(page.text)]
    assert shown, payload


def test_heading_title_is_text_in_the_nav(pages):
    title = "Hostile <script>window.__pwned='title-heading'</script>"
    for name in ("index.html", "models/hostile-heading/index.html"):
        assert title in "".join(pages[name].text), name  # escaped: parsed back as text


def test_window_title_escapes_the_page_title(hostile_site):
    html = (hostile_site / "models" / "hostile-heading" / "index.html").read_text()
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)  # the window's title
    assert "<" not in title and "&lt;script&gt;" in title


def test_no_svg_html_or_script_file_is_copied_from_a_report(hostile_site):
    assets = hostile_site / CARD_PAGE / "assets"
    names = sorted(p.name for p in assets.iterdir())
    assert names == sorted(
        f"{s}.{x}" for s in ("blocks", "density", "heads") for x in ("png", "svg")
    )
    for svg in assets.glob("*.svg"):  # redrawn from report.json by prunecard
        assert MARK not in svg.read_text() and "<script" not in svg.read_text()
    assert not list(hostile_site.rglob("page.html")) and not list(hostile_site.rglob("evil.js"))


def test_figures_inlined_are_prunecards_own_once_each(pages):
    page = pages[f"{CARD_PAGE}/index.html"]
    figures = [v for t, a, v in page.attributes if a == "id" and v.endswith("-figure_1")]
    # drawn in this run; the card's repeated images and forged slots add no copies
    assert sorted(figures) == ["fig-blocks-figure_1", "fig-density-figure_1", "fig-heads-figure_1"]
    text = "".join(page.text)
    assert "bert.encoder.layer.0.attention.self.query.weight: " in text  # density tooltips


def test_folder_name_title_page_builds(pages):
    slug = [p for p in pages if p.startswith("models/folder")]
    assert len(slug) == 1 and re.fullmatch(r"models/[a-z0-9-]+/index\.html", slug[0])
    assert FOLDER in "".join(pages[slug[0]].text)


def test_a_long_hostile_heading_and_image_runs_read_in_linear_time(hostile_site, tmp_path):
    """Titles and figure swaps are found without backtracking regexes: 100 kB lines that
    made the old patterns quadratic are read at once (old code: minutes)."""
    import time

    from analyzer.publish.site import model_markdown, read_report_dir

    folder = tmp_path / "long"
    folder.mkdir()
    report = hostile_site / CARD_PAGE / "report.json"
    (folder / "report.json").write_bytes(report.read_bytes())
    body = "![" * 50_000 + "\n\n" + '<img src="assets/' * 10_000 + "\n"
    (folder / "README.md").write_text("# a" + " " * 100_000 + "x\n\n" + body)
    start = time.perf_counter()
    page = read_report_dir(folder)
    text = model_markdown(page, tmp_path / "no-assets")
    assert time.perf_counter() - start < 5
    assert page.title == "a"  # the first 200 characters, as text
    assert body in text

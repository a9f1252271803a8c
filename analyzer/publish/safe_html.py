"""What text from other people's files may become in a card or a site page.

Report folders, cards and report.json come from anyone, and the site is opened in a
browser, so nothing read from a file may become markup that runs. Three tools, each for
one place: `clean_html` passes rendered HTML through nh3 (Rust's ammonia) with an
allow-list of what a model card uses; `md_text` and `md_code` turn a string into
Markdown that renders as exactly that text; `content_security_policy` is the policy every
site page carries, allowing only the theme's own inline bootstrap script by its hash.
"""

from __future__ import annotations

import base64
import hashlib
import re

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_TAGS",
    "clean_html",
    "content_security_policy",
    "md_code",
    "md_text",
]

# What a model card legitimately holds: text, headings, lists, tables, code, images and
# links. No script, style, iframe, object, form, svg or math; no event handler attributes.
ALLOWED_TAGS = frozenset(
    {
        *(f"h{i}" for i in range(1, 7)),
        *("p", "br", "hr", "div", "span", "blockquote", "pre", "code", "kbd", "samp"),
        *("a", "img", "figure", "figcaption", "details", "summary", "abbr", "mark"),
        *("em", "strong", "b", "i", "u", "s", "del", "ins", "sub", "sup", "small"),
        *("ul", "ol", "li", "dl", "dt", "dd"),
        *("table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td", "col", "colgroup"),
    }
)
ALLOWED_ATTRIBUTES = {
    "*": {"class", "id", "title", "style"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "ol": {"start"},
    "th": {"colspan", "rowspan", "align"},
    "td": {"colspan", "rowspan", "align", "data-sort"},  # data-sort: the home table's sorter
    "figure": {"data-prunecard-svg"},  # where the site inlines a figure it drew itself
}
# http(s) and mail links; relative URLs and #anchors pass (nh3 allows relative URLs).
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# only alignment survives in style attributes (Markdown tables align cells with it)
STYLE_PROPERTIES = frozenset({"text-align"})
# the theme's own element ids (__config, __drawer, __search ...) start with "__"; a page
# must not shadow them, or the theme would read its settings from a card
_THEME_ID = re.compile(r"^_|^md-")


def _filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "id" and _THEME_ID.search(value):
        return None
    if tag == "img" and attribute == "src" and re.match(r"^\s*[a-zA-Z][\w+.-]*:|^\s*//", value):
        return None  # images load from the site itself: nothing is fetched from elsewhere
    return value


def clean_html(html: str) -> str:
    """`html` with everything outside the allow-list removed (scripts with their content)."""
    import nh3

    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_filter,
        url_schemes=set(URL_SCHEMES),
        filter_style_properties=set(STYLE_PROPERTIES),
        link_rel="noopener noreferrer",
    )


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_MARKDOWN = re.compile(r"([\\`*\[\]|])")


def _one_line(text: str) -> str:
    return _CONTROL.sub(" ", str(text))


def md_text(text: str) -> str:
    """Markdown that renders as `text` on one line: no HTML, link, code span or table cell
    border can come out of it."""
    escaped = _MARKDOWN.sub(r"\\\1", _one_line(text))
    return escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def md_code(text: str) -> str:
    """A Markdown code span showing `text` verbatim: fenced by one backtick more than the
    longest run inside it, so a backtick cannot end it early."""
    text = _one_line(text)
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def content_security_policy(theme_scripts: str) -> str:
    """The site's policy: scripts only from the site and the inline ones in `theme_scripts`
    (the theme's bootstrap, allowed by hash); nothing loaded from another host."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in re.findall(r"<script>(.*?)</script>", theme_scripts, flags=re.DOTALL)
    ]
    return "; ".join(
        (
            "default-src 'self'",
            " ".join(("script-src 'self'", *hashes)),
            "style-src 'self' 'unsafe-inline'",  # the figures' <style> and table alignment
            "img-src 'self' data:",  # data: for the block maps drawn inside the figures
            "font-src 'self'",
            "connect-src 'self'",
            "worker-src 'self'",
            "object-src 'none'",
            "frame-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
        )
    )

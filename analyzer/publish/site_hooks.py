"""mkdocs hooks for the pages prunecard writes (loaded by path through `hooks:`).

A page whose front matter says `prunecard: generated` was rendered from report folders,
which anyone may have written: its HTML passes through `clean_html` after Markdown, and
only then are the figures prunecard drew in this run inlined where it left a
`<figure data-prunecard-svg="STEM">` slot (SVG needs inlining for its tooltips; nothing
read from a report folder is ever inlined). Pages without the flag (the project's own
docs) are left as written. `on_env` gives the theme override its CSP filter.
"""

from __future__ import annotations

import re
from pathlib import Path

from analyzer.publish.safe_html import clean_html, content_security_policy

GENERATED = "generated"  # the front-matter value `prunecard: generated`
_SLOT = re.compile(r'(<figure\b[^>]*\bdata-prunecard-svg="([a-z0-9-]+)"[^>]*>)')


def on_env(env, config, files):
    env.filters["prunecard_csp"] = content_security_policy
    return env


def on_page_content(html, page, config, files):
    if page.meta.get("prunecard") != GENERATED:
        return html
    from analyzer.publish.site import inline_svg

    assets = Path(page.file.abs_src_path).parent / "assets"

    def fill(match: re.Match[str]) -> str:
        svg = assets / f"{match.group(2)}.svg"
        if not svg.is_file():
            return match.group(1)
        return match.group(1) + "\n" + inline_svg(svg.read_text("utf-8"), f"fig-{match.group(2)}")

    return _SLOT.sub(fill, clean_html(html))

"""mkdocs hooks for the pages prunecard writes (loaded by path through `hooks:`).

A page whose front matter says `prunecard: generated` was rendered from report folders,
which anyone may have written: its HTML passes through `clean_html` after Markdown, and
only then are the figures prunecard drew in this run inlined, in place of the card's
images of assets/STEM.png and where it left a `<figure data-prunecard-svg="STEM">` slot
(SVG needs inlining for its tooltips; nothing read from a report folder is ever
inlined). Pages without the flag (the project's own docs) are left as written. `on_env`
gives the theme override its CSP filter.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from analyzer.publish.safe_html import clean_html, content_security_policy

if TYPE_CHECKING:  # mkdocs imports this file; these name the types it passes
    from jinja2 import Environment
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

GENERATED = "generated"  # the front-matter value `prunecard: generated`
_SLOT = re.compile(r'<figure\b[^<>]*\bdata-prunecard-svg="([a-z0-9-]+)"[^<>]*>')
_IMAGE = re.compile(r"<img\b([^<>]*)>")  # in nh3's output: attributes quoted, no "<" or ">"
_ATTRIBUTE = re.compile(r'([a-z-]+)="([^"]*)"')


def on_env(env: Environment, config: MkDocsConfig, files: Files) -> Environment:
    env.filters["prunecard_csp"] = content_security_policy
    return env


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if page.meta.get("prunecard") != GENERATED:
        return html
    from analyzer.publish.site import inline_svg

    source = page.file.abs_src_path  # None for a page with no file: no figures beside it
    assets = Path(source).parent / "assets" if source else None
    # each figure is inlined once per page (ids stay unique; a card repeating an image
    # cannot multiply the page's size): the drawn figures not inlined yet
    drawn = {svg.stem: svg for svg in assets.glob("*.svg")} if assets and assets.is_dir() else {}

    def svg(stem: str) -> str:
        return inline_svg(drawn.pop(stem).read_text("utf-8"), f"fig-{stem}")

    def swap_image(match: re.Match[str]) -> str:
        """An image of assets/STEM.png whose SVG prunecard drew: the SVG, inline."""
        attributes = dict(_ATTRIBUTE.findall(match.group(1)))
        src = attributes.get("src", "")
        stem = src.removeprefix("assets/").removesuffix(".png")
        if src != f"assets/{stem}.png" or stem not in drawn:
            return match.group(0)
        caption = attributes.get("alt", "")  # still escaped, as nh3 wrote it
        caption = f"<figcaption>{caption}</figcaption>" if caption else ""
        return f'<figure class="prunecard-figure">\n{svg(stem)}{caption}</figure>'

    def fill(match: re.Match[str]) -> str:
        stem = match.group(1)
        return match.group(0) + "\n" + svg(stem) if stem in drawn else match.group(0)

    return _SLOT.sub(fill, _IMAGE.sub(swap_image, clean_html(html)))

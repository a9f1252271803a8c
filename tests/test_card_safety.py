"""A card carries what it was given as text: names, paths and record strings never become
markup, and a user's template runs in Jinja2's sandbox."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from html import escape
from html.parser import HTMLParser

import markdown
import pytest
from conftest import EXAMPLE_SPEC, build_minilm
from hypothesis import given
from hypothesis import strategies as st

from analyzer.errors import InputError
from analyzer.pipeline import build_report
from analyzer.publish.card import CardOptions, render_card, resolve_publication
from analyzer.publish.report import portable
from analyzer.publish.safe_html import md_code, md_text
from analyzer.records import Publication
from analyzer.weights.sparsity import analyze

NAME = "Evil <script>window.__pwned=1</script> <img src=x onerror=alert(1)> [x](javascript:y)"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return build_minilm(tmp_path_factory.mktemp("safety") / "ckpt", EXAMPLE_SPEC)


@pytest.fixture(scope="module")
def report(checkpoint):
    return build_report(checkpoint, analysis=analyze(checkpoint))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.found.add(tag)
        self.found |= {f"{tag}[{name}]" for name, _ in attrs}


def _markup(html: str) -> set[str]:
    """Every element and attribute in `html`, as "tag" and "tag[attribute]"."""
    parser = _Tags()
    parser.feed(html)
    return parser.found


def _body_html(card: str) -> str:
    body = card.split("\n---\n", 1)[1]
    return markdown.markdown(body, extensions=["tables", "fenced_code"])  # as the Hub renders


def _prunecard(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "analyzer.cli.main", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_a_hostile_name_is_text_in_the_card(report):
    named = dataclasses.replace(report, publication=Publication(model_id=NAME))
    card = render_card(named, CardOptions())
    html = _body_html(card)
    allowed = {"h1", "h2", "h3", "p", "a", "strong", "em", "code", "pre", "ul", "li", "img"}
    allowed |= {"table", "thead", "tbody", "tr", "th", "td", "a[href]", "img[src]", "img[alt]"}
    allowed |= {"th[style]", "td[style]"}  # Markdown's column alignment
    allowed |= {"code[class]"}  # a fenced block names its language
    assert _markup(html) <= allowed
    assert 'href="javascript' not in html and "<script" not in html
    assert f"<h1>{escape(NAME, quote=False)}</h1>" in html  # shown exactly as given


def test_backticks_in_record_strings_stay_inside_their_code_span(report):
    command = "prunecard card ``` `x` <script>alert(1)</script>"
    provenance = dataclasses.replace(report.provenance, command=command)
    hostile = dataclasses.replace(report, provenance=provenance)
    card = render_card(hostile, CardOptions())
    html = _body_html(card)
    printed = portable(hostile).provenance.command  # the card shows paths by name only
    assert "```" in printed and "<script>" in printed
    assert f"<code>{escape(printed, quote=False)}</code>" in html
    assert "<script" not in html


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ report.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os.system('touch pwned') }}",
    ],
)
def test_a_template_cannot_reach_python_internals(checkpoint, tmp_path, template):
    file = tmp_path / "evil.md.j2"
    file.write_text(template)
    out = tmp_path / "card"
    done = _prunecard("card", str(checkpoint), "--out", str(out), "--template", str(file))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"prunecard: error: {file}: template failed: ")
    assert "unsafe" in done.stderr and done.stderr.count("\n") == 1
    assert not out.exists() and not (tmp_path / "pwned").exists()


def test_an_html_template_is_autoescaped(report, tmp_path):
    file = tmp_path / "card.html.j2"
    file.write_text("<h1>{{ model_name }}</h1>\n")
    named = dataclasses.replace(report, publication=Publication(model_id=NAME))
    card = render_card(named, CardOptions(template=file))
    assert f"<h1>{escape(NAME)}</h1>" in card


@pytest.mark.parametrize("base", ["<img src=x onerror=alert(1)>", "a/b/c", "x) [y](javascript:z"])
def test_base_model_must_be_a_hub_id(base):
    with pytest.raises(InputError, match=r"--base: .* is not a Hub id"):
        resolve_publication(None, "m", {"base_model": base})


def test_a_name_with_a_newline_is_refused_on_the_command_line(checkpoint, tmp_path):
    out = tmp_path / "card"
    done = _prunecard("card", str(checkpoint), "--out", str(out), "--name", "a\n# b")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("prunecard: error: --name: must be one line")
    assert not out.exists()


@given(st.text(max_size=60))
def test_md_text_never_renders_markup_with_attributes(text):
    html = markdown.markdown("Value: " + md_text(text), extensions=["tables"])
    assert html.startswith("<p>Value:")
    assert _markup(html) <= {"p", "em", "strong"}, html  # emphasis at most, no attributes


ONE_LINE = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=60
)


@given(ONE_LINE.filter(str.strip))
def test_md_code_shows_the_text_verbatim(text):
    html = markdown.markdown("Value: " + md_code(text))
    assert html == f"<p>Value: <code>{escape(text.strip(), quote=False)}</code></p>"

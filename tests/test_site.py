"""`prunecard site`: two real report folders built into an offline mkdocs-material site."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from site_reports import make_reports

from analyzer.cli.main import COMMANDS, build_parser
from analyzer.errors import OutputError
from analyzer.publish.site import build_site, inline_svg

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    return make_reports(tmp_path_factory.mktemp("reports"))


@pytest.fixture(scope="module")
def site(reports, tmp_path_factory) -> Path:
    dirs, _ = reports
    index = build_site(dirs, tmp_path_factory.mktemp("site") / "out")
    return index.parent


class _Table(HTMLParser):
    """The cells of the first table in a page, as text, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._done = False

    def handle_starttag(self, tag, attrs):
        if self._done:
            return
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and not self._done:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._done = True

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _first_table(html: str) -> list[list[str]]:
    parser = _Table()
    parser.feed(html)
    return parser.rows


def test_pages_exist(site):
    for page in ("index.html", "compare.html", "search/search_index.json"):
        assert (site / page).is_file(), page
    for slug in ("minilm-heavy", "minilm-light"):
        assert (site / "models" / slug / "index.html").is_file()
    assert (site.parent / "mkdocs.yml").is_file()
    assert (site.parent / "docs" / "index.md").is_file()


def test_home_table_lists_both_models_fastest_first(site, reports):
    _, expected = reports
    header, *rows = _first_table((site / "index.html").read_text())
    assert header[:2] == ["Model", "Linear density"]
    col = {name: i for i, name in enumerate(header)}
    assert [r[0] for r in rows] == [e.title for e in expected]  # heavy has the only speedup
    heavy, light = rows
    for row, e in zip(rows, expected, strict=True):
        assert row[col["Linear density"]] == f"{100 * e.density:.1f}%"
        assert row[col["Heads removed"]] == f"{e.heads_removed} of 72"
    # 10 ms dense, 4 ms packed at 8 x 128 (the largest shape every benchmarked model has:
    # heavy is the only one); scores as set in the record
    speedup = "Speedup at 8 x 128"
    assert heavy[col[speedup]] == "2.50x"
    assert heavy[col["EM"]] == "61.25" and heavy[col["F1"]] == "64.50"
    assert heavy[col["Questions"]] == "200"
    for name in (speedup, "EM", "F1", "Questions"):
        assert light[col[name]] == "not measured"


def test_home_table_is_sortable_by_numbers(site):
    html = (site / "index.html").read_text()
    assert 'src="javascripts/tablesort.js"' in html
    assert (site / "javascripts" / "tablesort.js").is_file()
    densities = re.findall(r'<td data-sort="(0\.\d+)">\d+\.\d%</td>', html)
    assert len(densities) == 2


def test_model_page_has_card_figures_and_tables(site, reports):
    html = (site / "models" / "minilm-heavy" / "index.html").read_text()
    assert "license: apache-2.0" not in html  # the card's YAML front matter is stripped
    assert "<h1" in html and "MiniLM heavy" in html
    svgs = re.findall(r"<svg\b.*?</svg>", html, flags=re.DOTALL)
    assert len(svgs) >= 2  # the card's figures, inline
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html
    assert "<title>" in "".join(svgs)  # tooltips survive inlining
    id_sets = [set(re.findall(r'\bid="([^"]+)"', svg)) for svg in svgs]
    assert sum(map(len, id_sets)) == len(set().union(*id_sets))  # no id shared by 2 figures
    for heading in ("Per-layer figures", "Evaluation", "Timing", "Files and provenance"):
        assert heading in html
    layer_rows = re.findall(r"<tr>\s*<td>(\d)</td>", html)
    assert set(layer_rows) >= {str(i) for i in range(6)}
    assert "2.50x" in html and "61.25" in html


def test_unmeasured_sections_say_so(site):
    html = (site / "models" / "minilm-light" / "index.html").read_text()
    details = html[html.index("Measurement details") :]
    assert details.count("Not measured.") == 2  # evaluation and timing


def test_compare_page_plots_the_measured_model(site):
    html = (site / "compare.html").read_text()
    assert html.count("<svg") >= 2
    assert "<title>MiniLM heavy: Speedup" in html
    assert "Not plotted (not measured): MiniLM light." in html


def test_inline_svg_prefixes_ids_and_references():
    svg = (
        '<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd">\n'
        '<svg><metadata><rdf:RDF/></metadata><defs><clipPath id="c1"/></defs>'
        '<g id="bar" clip-path="url(#c1)"><use xlink:href="#m1"/></g></svg>'
    )
    out = inline_svg(svg, "f")
    assert out == (
        '<svg><defs><clipPath id="f-c1"/></defs>'
        '<g id="f-bar" clip-path="url(#f-c1)"><use xlink:href="#f-m1"/></g></svg>'
    )


NAMESPACE = re.compile(r'xmlns(:\w+)?="http://www\.w3\.org/[^"]*"')


def test_no_external_urls_in_built_html(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 5
    for page in pages:
        text = NAMESPACE.sub("", page.read_text())
        # the card links out (PyPI) in an <a>; nothing may be loaded from another host
        loads = re.findall(r'(?:src|srcset|data|poster)="(https?://[^"]*)"', text)
        links = re.findall(r'<link\b[^>]*href="(https?://[^"]*)"', text)
        styles = re.findall(r"url\(['\"]?(https?://[^)'\"]*)", text)
        imports = re.findall(r"@import\s+['\"]?(https?://[^'\";]*)", text)
        assert not (loads or links or styles or imports), (page, loads, links, styles, imports)
        others = re.findall(r'href="(https?://[^"]*)"', text)
        assert all(u.startswith("https://pypi.org/") for u in others), (page, others)


def test_strict_build_rejects_a_broken_link(reports, tmp_path):
    dirs, _ = reports
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "report.json").write_bytes((dirs[0] / "report.json").read_bytes())
    (broken / "README.md").write_text("# Broken\n\nSee [the missing page](missing.md).\n")
    with pytest.raises(OutputError, match=r"missing\.md"):
        build_site([broken], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refuses_existing_out_unless_forced(reports, tmp_path):
    dirs, _ = reports
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="already exists"):
        build_site(dirs[:1], out)
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(OutputError, match="not written by prunecard"):
        build_site(dirs[:1], out, force=True)  # --force replaces only prunecard's own folders
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    build_site(dirs[:1], out)
    index = build_site(dirs[1:], out, force=True)
    assert index == out / "site" / "index.html" and index.is_file()


def test_cli_prints_the_index_and_refuses_existing_out(reports, tmp_path):
    dirs, _ = reports
    out = tmp_path / "cli-site"
    cmd = [sys.executable, "-m", "analyzer.cli.main", "site", *map(str, dirs), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out / "site" / "index.html")
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2
    assert again.stderr.startswith("prunecard: error: ") and "--force" in again.stderr


def test_missing_report_json_is_bad_input(tmp_path):
    folder = tmp_path / "not-a-report"
    folder.mkdir()
    cmd = [
        sys.executable,
        "-m",
        "analyzer.cli.main",
        "site",
        str(folder),
        "--out",
        str(tmp_path / "o"),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "report.json" in done.stderr and "no such file" in done.stderr
    assert not (tmp_path / "o").exists()


def test_every_cli_command_is_in_the_cli_reference():
    reference = (ROOT / "docs" / "cli.md").read_text()
    build_parser()
    assert COMMANDS
    for name in COMMANDS:
        assert f"## `prunecard {name}`" in reference, f"docs/cli.md lacks {name}: run make docs"
    sub = next(a for a in build_parser()._actions if hasattr(a, "choices") and a.choices)
    for name, parser in sub.choices.items():
        for action in parser._actions:
            for option in action.option_strings:
                assert option in reference, f"docs/cli.md lacks {name} {option}: run make docs"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_project_docs_build_offline(tmp_path):
    """The project's own site (`make docs`), example report included, builds strictly from a
    copy."""
    import shutil

    shutil.copy2(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    script = ROOT / "scripts" / "build_docs.py"
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    index = Path(done.stdout.strip())
    assert index == tmp_path / "site" / "index.html"
    site = index.parent
    for page in ("index.html", "cli.html", "example/index.html"):
        assert (site / page).is_file(), page
    example = (site / "example" / "index.html").read_text()
    assert example.count("<svg") >= 2 and "Per-layer figures" in example
    for page in site.rglob("*.html"):
        text = NAMESPACE.sub("", page.read_text())
        assert not re.findall(r'(?:src|data)="https?://', text), page
        assert not re.findall(r'<link\b[^>]*href="https?://', text), page


def test_a_dense_base_marks_its_row_and_adds_the_changes_against_it(reports, tmp_path):
    dirs, _ = reports
    heavy = next(d for d in dirs if d.name == "minilm-heavy")
    light = next(d for d in dirs if d.name == "minilm-light")
    site = [sys.executable, "-m", "analyzer.cli.main", "site", str(light)]
    done = subprocess.run(
        [*site, "--dense-base", str(heavy), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "out" / "site" / "index.html").read_text()
    assert "MiniLM heavy</a> <strong>(dense base)</strong>" in html  # added to the reports
    assert "<th>EM vs base</th><th>F1 vs base</th>" in html
    # the base against itself: no difference has no sign, as on the card ("0.00")
    assert html.count('<td data-sort="0.0">0.00</td>') == 2
    compare = (tmp_path / "out" / "site" / "compare.html").read_text()
    assert "The black star is the dense base." in compare

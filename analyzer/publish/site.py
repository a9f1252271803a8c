"""A static mkdocs-material site of analysed models, built from report folders.

Each report folder (README.md card, report.json, assets/) becomes one page; the home page
compares every model in a sortable table and a comparison page plots accuracy against
speedup and density. Everything is rendered from the records, so a figure on the site is
the figure in report.json. The site is built to work offline: no web fonts, no CDN, no
generator link, a local table sorter and mkdocs-material's own search.
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from analyzer.cli.tables import percent
from analyzer.errors import InputError, OutputError
from analyzer.outputs import staged_dir
from analyzer.records import Report

__all__ = [
    "ModelPage",
    "build_docs",
    "build_site",
    "cli_reference",
    "common_shape",
    "mkdocs_build",
    "model_markdown",
    "read_report_dir",
    "write_example_report",
    "write_model_page",
]

NOT_MEASURED = "not measured"

SORTER_JS = """\
// Click a column header to sort the table by it (numbers by data-sort; empty cells last).
document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll(".prunecard-sortable table")) {
    const heads = [...table.tHead.rows[0].cells];
    heads.forEach((th, col) => {
      th.tabIndex = 0;
      const sort = () => {
        const ascending = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const key = (row) => row.cells[col].dataset.sort ?? row.cells[col].textContent;
        const rows = [...table.tBodies[0].rows];
        rows.sort((a, b) => {
          const x = key(a), y = key(b);
          if (x === "" || y === "") return (x === "") - (y === "");
          const nx = Number(x), ny = Number(y);
          const order = isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny;
          return ascending ? order : -order;
        });
        table.tBodies[0].append(...rows);
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => e.key === "Enter" && sort());
    });
  }
});
"""

SITE_CSS = """\
.prunecard-figure svg { max-width: 100%; height: auto; }
.prunecard-sortable th { cursor: pointer; white-space: nowrap; }
.prunecard-sortable th[aria-sort="ascending"]::after { content: " \\25B2"; }
.prunecard-sortable th[aria-sort="descending"]::after { content: " \\25BC"; }
"""


@dataclass(frozen=True)
class ModelPage:
    """One report folder, read and checked, ready to render."""

    path: Path  # the report folder
    slug: str  # page folder name under models/
    title: str
    report: Report
    card: str  # README.md without its YAML front matter ("" when there is no README)


# --------------------------------------------------------------------------- reading


def read_report_dir(path: str | Path, slug: str | None = None) -> ModelPage:
    """Read a report folder; report.json is required, README.md and assets/ are optional."""
    from analyzer.records import load_record

    path = Path(path)
    if not path.is_dir():
        raise InputError(path, "not a report folder (expected README.md and report.json)")
    report = load_record(Report, path / "report.json")
    card_file = path / "README.md"
    try:
        card = _strip_front_matter(card_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        card = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(card_file, f"not a readable text file ({exc})") from None
    heading = re.search(r"^# +(.+?)\s*#*\s*$", card, flags=re.MULTILINE)
    name = path.resolve().name
    title = heading.group(1) if heading else name
    return ModelPage(path, slug or _slug(name), title, report, card)


def _strip_front_matter(text: str) -> str:
    if text.startswith("---"):
        end = re.search(r"^---\s*$", text[3:], flags=re.MULTILINE)
        if end:
            return text[3 + end.end() :].lstrip("\n")
    return text


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


def _unique_slugs(paths: Sequence[Path]) -> list[str]:
    """Folder names as slugs; a name seen before gets -2, -3, ..."""
    seen: dict[str, int] = {}
    slugs = []
    for p in paths:
        base = _slug(Path(p).resolve().name)
        seen[base] = seen.get(base, 0) + 1
        slugs.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return slugs


# --------------------------------------------------------------------------- figures


def inline_svg(text: str, prefix: str) -> str:
    """An SVG file's text made safe to inline in a page beside other SVGs.

    Drops the XML prolog, DOCTYPE and RDF metadata (they name w3.org and purl.org URLs a
    browser never fetches but a reader would wonder about) and prefixes every id, so two
    figures' clip paths or markers do not collide.
    """
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.DOTALL)
    text = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', text)
    return "\n".join(line for line in text.splitlines() if line.strip())


def _figure_block(svg_text: str, prefix: str, caption: str = "") -> str:
    svg = inline_svg(svg_text, prefix)
    cap = f"\n<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'\n<figure class="prunecard-figure">\n{svg}{cap}\n</figure>\n'


def _inline_card_figures(card: str, assets: Path, used: set[str]) -> str:
    """Replace the card's PNG images with their SVG twins, inline (tooltips need that)."""

    def swap(match: re.Match[str]) -> str:
        alt, stem = match.group("alt") or "", match.group("stem")
        svg = assets / f"{stem}.svg"
        if not svg.is_file():
            return match.group(0)
        used.add(svg.name)
        return _figure_block(svg.read_text(encoding="utf-8"), f"fig-{_slug(stem)}", alt)

    markdown_image = r'!\[(?P<alt>[^\]]*)\]\(assets/(?P<stem>[^)\s]+)\.png(?:\s+"[^"]*")?\)'
    card = re.sub(markdown_image, swap, card)
    html_image = (
        r'<img\b[^>]*?src="assets/(?P<stem>[^"]+)\.png"[^>]*?(?:alt="(?P<alt>[^"]*)")?[^>]*>'
    )
    return re.sub(html_image, swap, card)


# --------------------------------------------------------------------------- model pages


def _md_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _layer_section(page: ModelPage) -> str:
    a = page.report.analysis
    if a is None:
        return f"### Per-layer figures\n\n{NOT_MEASURED.capitalize()}.\n"
    heads = {h.layer: h for h in a.heads.layers}
    rows = []
    for s in a.layers:
        h = heads.get(s.layer)
        rows.append(
            (
                s.layer,
                percent(s.density),
                f"{s.linear_nnz:,}",
                f"{h.kept}/{a.num_heads}" if h else "-",
                ", ".join(map(str, h.removed)) if h and h.removed else "-",
                f"{s.ffn_units_kept:,}/{s.ffn_units_total:,}",
                f"{s.linear_packed:,}",
            )
        )
    table = _md_table(
        (
            "Layer",
            "Linear density",
            "Non-zero weights",
            "Heads kept",
            "Removed heads",
            "FFN units kept",
            "Packed weights",
        ),
        rows,
    )
    summary = _md_table(
        ("Figure", "Value"),
        [
            (
                "Linear density",
                f"{percent(a.linear.density)} ({a.linear.nnz:,} of {a.linear.dense:,})",
            ),
            (
                "Overall density",
                f"{percent(a.overall.density)} ({a.overall.nnz:,} of {a.overall.dense:,})",
            ),
            ("Heads removed", f"{a.heads.removed} of {a.heads.total}"),
            ("FFN units kept", f"{a.ffn.units_kept:,} of {a.ffn.units_total:,}"),
            ("Packed parameters", f"{a.overall.packed:,}"),
            ("Files", f"{a.file_bytes / 1e6:.1f} MB"),
        ],
    )
    return f"### Per-layer figures\n\n{summary}\n\nHead rule: {escape(a.heads.rule)}\n\n{table}\n"


def _evaluation_section(page: ModelPage) -> str:
    e = page.report.evaluation
    if e is None:
        return f"### Evaluation\n\n{NOT_MEASURED.capitalize()}.\n"
    s, ci = e.scores, e.ci
    rows = [
        ("Exact match", f"{s.exact:.2f}", f"{ci.exact_low:.2f} to {ci.exact_high:.2f}"),
        ("F1", f"{s.f1:.2f}", f"{ci.f1_low:.2f} to {ci.f1_high:.2f}"),
    ]
    for label, value in (
        ("HasAns exact", s.HasAns_exact),
        ("HasAns F1", s.HasAns_f1),
        ("NoAns exact", s.NoAns_exact),
        ("NoAns F1", s.NoAns_f1),
        ("Best exact", s.best_exact),
        ("Best F1", s.best_f1),
    ):
        if value is not None:
            rows.append((label, f"{value:.2f}", ""))
    level = f"{100 * ci.level:g}%"
    details = _md_table(
        ("Detail", "Value"),
        [
            ("Questions scored", f"{e.n:,}"),
            ("Model evaluated", "packed" if e.packed else "as stored"),
            ("Data", f"`{Path(e.data).name}` (sha256 `{e.data_sha256[:12]}`)"),
            ("Sample", f"limit {e.limit}, seed {e.seed}" if e.limit else "all questions"),
            ("Device", e.device),
            ("Questions per second", f"{e.questions_per_second:.1f}"),
            ("Missing / extra predictions", f"{e.missing_predictions} / {e.extra_predictions}"),
        ],
    )
    scores = _md_table(("Metric", "Score", f"{level} interval"), rows)
    return (
        f"### Evaluation\n\nSQuAD v2 on {e.n:,} questions; intervals are a percentile "
        f"bootstrap over questions ({ci.resamples:,} resamples, seed {ci.seed}).\n\n"
        f"{scores}\n\n{details}\n"
    )


def _timing_section(page: ModelPage) -> str:
    b = page.report.bench
    if b is None:
        return f"### Timing\n\n{NOT_MEASURED.capitalize()}.\n"
    rows = [
        (
            f"{s.batch} x {s.seq}",
            f"{s.dense_ms:.2f} ± {s.dense_spread_ms:.2f}",
            f"{s.packed_ms:.2f} ± {s.packed_spread_ms:.2f}",
            f"{s.speedup:.2f}x",
            f"{s.flop_bound:.2f}x",
            percent(s.fraction_of_bound, 0),
            s.repeats,
            escape(s.verdict or "not judged"),
        )
        for s in b.shapes
    ]
    table = _md_table(
        (
            "Batch x sequence",
            "Dense ms",
            "Packed ms",
            "Speedup",
            "FLOP bound",
            "Of bound",
            "Repeats",
            "Timing",
        ),
        rows,
    )
    env = b.environment
    return (
        f"### Timing\n\nMedians ± interquartile range, dense and packed in one process on "
        f"{escape(env.cpu if b.device == 'cpu' else env.device)} ({b.device}, {b.dtype}, "
        f"{b.threads} threads, torch {env.torch}). Packed and dense logits differ by at most "
        f"{b.equivalence.max_abs_diff:.2g} (tolerance {b.equivalence.tolerance:.2g}). "
        f"Shapes timed: {', '.join(f'{s.batch} x {s.seq}' for s in b.shapes)}"
        f"{' (quick timing, for trying things)' if b.quick else ''}.\n\n"
        f"{table}\n"
    )


def _provenance_section(page: ModelPage) -> str:
    p = page.report.provenance
    hashes = [(f"`{name}`", f"`{digest[:16]}`") for name, digest in p.file_sha256.items()]
    files = _md_table(("File", "sha256 (first 16)"), hashes) if hashes else ""
    return (
        f"### Files and provenance\n\nMeasured by prunecard {p.tool_version} on {p.created} "
        f"with `{p.command}`.\n\n{files}\n"
    )


def model_markdown(page: ModelPage, assets: Path) -> str:
    """The page: the card (PNG images swapped for inline SVG), then the measured details."""
    used: set[str] = set()
    card = _inline_card_figures(page.card, assets, used) if page.card else ""
    parts = [card.rstrip() + "\n" if card else f"# {page.title}\n"]
    extra = sorted(p for p in assets.glob("*.svg") if p.name not in used) if assets.is_dir() else []
    if extra:
        parts.append("## Figures\n")
        parts += [
            _figure_block(svg.read_text(encoding="utf-8"), f"fig-{_slug(svg.stem)}")
            for svg in extra
        ]
    parts += [
        "## Measurement details\n\nEverything report.json holds, in full.\n",
        _layer_section(page),
        _evaluation_section(page),
        _timing_section(page),
        _provenance_section(page),
    ]
    return "\n".join(parts)


def write_model_page(page: ModelPage, folder: Path) -> Path:
    """Write folder/index.md with the report's assets and report.json beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    assets = page.path / "assets"
    if assets.is_dir():
        shutil.copytree(assets, folder / "assets", dirs_exist_ok=True)
    shutil.copy2(page.path / "report.json", folder / "report.json")
    index = folder / "index.md"
    index.write_text(model_markdown(page, assets), encoding="utf-8")
    return index


# --------------------------------------------------------------------------- home and compare


@dataclass(frozen=True)
class _Row:
    page: ModelPage
    density: float | None
    heads: tuple[int, int] | None
    packed: int | None
    speedup: float | None  # at the shape all models share
    shape: str  # every shape this model was timed at
    unstable: bool
    exact: float | None
    f1: float | None
    n: int | None


def common_shape(pages: Sequence[ModelPage]) -> tuple[int, int] | None:
    """The largest (batch, seq) every benchmarked model was timed at, by tokens then batch;
    speedups are only comparable at one shape. None when they share none."""
    sets = [{(s.batch, s.seq) for s in p.report.bench.shapes} for p in pages if p.report.bench]
    shared = set.intersection(*sets) if sets else set()
    return max(shared, key=lambda bs: (bs[0] * bs[1], bs[0])) if shared else None


def _row(page: ModelPage, common: tuple[int, int] | None) -> _Row:
    r = page.report
    a, b, e = r.analysis, r.bench, r.evaluation
    shapes = b.shapes if b else ()
    shape = next((s for s in shapes if (s.batch, s.seq) == common), None)
    return _Row(
        page=page,
        density=a.linear.density if a else None,
        heads=(a.heads.removed, a.heads.total) if a else None,
        packed=a.overall.packed if a else None,
        speedup=shape.speedup if shape else None,
        shape=", ".join(f"{s.batch} x {s.seq}" for s in shapes),
        unstable=bool(shape and shape.verdict.startswith("unstable")),
        exact=e.scores.exact if e else None,
        f1=e.scores.f1 if e else None,
        n=e.n if e else None,
    )


def _cell(value: object, text: str, tip: str = "") -> str:
    if value is None:
        return f'<td data-sort="">{NOT_MEASURED}</td>'
    title = f' title="{escape(tip)}"' if tip else ""
    return f'<td data-sort="{value}"{title}>{text}</td>'


def _home_markdown(rows: Sequence[_Row], common: tuple[int, int] | None) -> str:
    at = f"{common[0]} x {common[1]}" if common else ""
    header = (
        "Model",
        "Linear density",
        "Heads removed",
        "Packed params",
        f"Speedup at {at}" if common else "Speedup",
        "EM",
        "F1",
        "Questions",
    )
    body = []
    for r in rows:
        link = f'<a href="models/{r.page.slug}/index.html">{escape(r.page.title)}</a>'
        cells = [
            f'<td data-sort="{escape(r.page.title.lower())}">{link}</td>',
            _cell(r.density, percent(r.density or 0.0)),
            _cell(
                r.heads and r.heads[0],
                f"{r.heads[0]} of {r.heads[1]}" if r.heads else "",
            ),
            _cell(r.packed, f"{(r.packed or 0) / 1e6:.1f} M"),
            _cell(
                r.speedup,
                f"{r.speedup or 0:.2f}x{' (unstable)' if r.unstable else ''}",
                f"timed at batch x sequence {r.shape}",
            ),
            _cell(r.exact, f"{r.exact or 0:.2f}"),
            _cell(r.f1, f"{r.f1 or 0:.2f}"),
            _cell(r.n, f"{r.n or 0:,}"),
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in header)
    count = f"{len(rows)} model{'s' if len(rows) != 1 else ''}"
    speed = (
        f"speedup is packed against dense on the same machine at batch x sequence {at}, "
        "the largest shape every benchmarked model was timed at (hover for each model's "
        "shapes; its page has them all)"
        if common
        else "the benchmarked models share no batch x sequence shape, so speedups are "
        "compared on each model's page only"
    )
    return (
        "---\nhide:\n  - navigation\n  - toc\n---\n\n# Pruned models\n\n"
        f"{count}, fastest first. Click a column header to sort. Every figure is measured "
        f"from the checkpoint by prunecard; {speed}; EM and F1 are "
        "SQuAD v2 scores on the number of questions shown.\n\n"
        '<div class="prunecard-sortable">\n<table>\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n"
        "</table>\n</div>\n\n[Accuracy against speedup and density](compare.md)\n"
    )


def _order(rows: Sequence[_Row]) -> list[_Row]:
    """Fastest first; models without a speedup after, by name."""
    return sorted(
        rows,
        key=lambda r: (r.speedup is None, -(r.speedup or 0.0), r.page.title.lower()),
    )


def _scatter_svg(points: Sequence[tuple[str, float, float]], xlabel: str, ylabel: str) -> str:
    """One scatter plot as SVG text; each point carries a <title> tooltip."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style = {"svg.hashsalt": "prunecard-site", "svg.fonttype": "none", "font.size": 9}
    with plt.rc_context(style):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        try:
            for i, (name, x, y) in enumerate(points):
                ax.scatter([x], [y], s=36, color="#0072B2", gid=f"point-{i}")
                ax.annotate(name, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=8)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
            fig.tight_layout()
            buf = io.StringIO()
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
        finally:
            plt.close(fig)
    svg = buf.getvalue()
    for i, (name, x, y) in enumerate(points):
        tip = escape(f"{name}: {xlabel} {x:.3g}, {ylabel} {y:.2f}")
        svg = svg.replace(f'<g id="point-{i}">', f'<g id="point-{i}">\n<title>{tip}</title>', 1)
    return svg


def _compare_markdown(rows: Sequence[_Row]) -> str:
    parts = ["# Accuracy against speedup and density\n"]
    plots = (
        ("speedup", "Speedup (packed vs dense)", lambda r: r.speedup),
        ("density", "Linear density (%)", lambda r: None if r.density is None else 100 * r.density),
    )
    for stem, label, x_of in plots:
        points = [(r.page.title, x_of(r), r.f1) for r in rows if x_of(r) is not None and r.f1]
        missing = [r.page.title for r in rows if x_of(r) is None or r.f1 is None]
        parts.append(f"## SQuAD v2 F1 against {stem}\n")
        if points:
            parts.append(_figure_block(_scatter_svg(points, label, "F1"), f"cmp-{stem}"))
        else:
            parts.append(f"No model has both F1 and {stem} measured.\n")
        if points and missing:
            parts.append("Not plotted (not measured): " + ", ".join(map(escape, missing)) + ".\n")
    return "\n".join(parts)


# --------------------------------------------------------------------------- mkdocs


def mkdocs_config(site_name: str, nav: list, *, extra_css: Sequence[str] = ()) -> dict:
    """An offline mkdocs-material configuration: no web fonts, no generator link.

    Not material's `offline` plugin: it adds a script from unpkg.com. Search needs the
    site served over HTTP (any static server), not opened as files.
    """
    return {
        "site_name": site_name,
        "use_directory_urls": False,
        "strict": True,
        "theme": {"name": "material", "font": False, "features": ["navigation.sections"]},
        "plugins": ["search"],
        "extra": {"generator": False},
        "extra_css": list(extra_css),
        "extra_javascript": ["javascripts/tablesort.js"],
        "markdown_extensions": ["tables", "admonition", "attr_list", {"toc": {"permalink": True}}],
        "nav": nav,
    }


def write_static(docs: Path) -> list[str]:
    """The sorter script and stylesheet every site shares; returns extra_css entries."""
    (docs / "javascripts").mkdir(parents=True, exist_ok=True)
    (docs / "javascripts" / "tablesort.js").write_text(SORTER_JS, encoding="utf-8")
    (docs / "stylesheets").mkdir(parents=True, exist_ok=True)
    (docs / "stylesheets" / "prunecard.css").write_text(SITE_CSS, encoding="utf-8")
    return ["stylesheets/prunecard.css"]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def mkdocs_build(config_file: Path) -> Path:
    """Build with mkdocs' Python API in strict mode; warnings become one OutputError."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    logger = logging.getLogger("mkdocs")
    collect = _Collect()
    logger.addHandler(collect)
    propagate, logger.propagate = logger.propagate, False
    try:
        config = load_config(str(config_file), strict=True)
        config.plugins.on_startup(command="build", dirty=False)
        try:
            build(config)
        finally:
            config.plugins.on_shutdown()
    except MkDocsException as exc:
        detail = "; ".join(collect.messages) or str(exc)
        raise OutputError(config_file, f"mkdocs build failed: {detail}") from None
    finally:
        logger.removeHandler(collect)
        logger.propagate = propagate
    return Path(config["site_dir"])


def build_site(report_dirs: Sequence[str | Path], out: str | Path, *, force: bool = False) -> Path:
    """Write an mkdocs project for the reports under `out` and build it into out/site.

    Returns the built home page (out/site/index.html). `out` is written all or nothing;
    an existing `out` is refused unless `force`.
    """
    import yaml

    if not report_dirs:
        raise InputError(Path(out), "no report folders given")
    paths = [Path(p) for p in report_dirs]
    pages = [read_report_dir(p, s) for p, s in zip(paths, _unique_slugs(paths), strict=True)]
    common = common_shape(pages)
    rows = _order([_row(p, common) for p in pages])
    out = Path(out)
    with staged_dir(out, force=force) as tmp:
        docs = tmp / "docs"
        css = write_static(docs)
        for page in pages:
            write_model_page(page, docs / "models" / page.slug)
        (docs / "index.md").write_text(_home_markdown(rows, common), encoding="utf-8")
        (docs / "compare.md").write_text(_compare_markdown(rows), encoding="utf-8")
        nav = [
            {"Models": "index.md"},
            {"Comparison": "compare.md"},
            {"Model pages": [{r.page.title: f"models/{r.page.slug}/index.md"} for r in rows]},
        ]
        config = mkdocs_config("Pruned models", nav, extra_css=css)
        (tmp / "mkdocs.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        mkdocs_build(tmp / "mkdocs.yml")
    return out / "site" / "index.html"


# --------------------------------------------------------------------------- project docs


def cli_reference(parser) -> str:
    """docs/cli.md: every subcommand's help, usage, options and example, from argparse."""
    import argparse

    lines = [
        "# CLI reference",
        "",
        "Generated from `prunecard --help` by `python -m analyzer.publish.site`;"
        " do not edit by hand.",
        "",
        "Exit codes: 0 success, 1 an audit found a mismatch or a timing is implausible,"
        " 2 bad input.",
        "",
    ]
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        # a fixed width, so the page does not depend on the terminal it was generated in
        sub.formatter_class = functools.partial(argparse.RawDescriptionHelpFormatter, width=92)
        help_text = sub.format_help()
        lines += [f"## `prunecard {name}`", "", sub.description or "", "", "```text"]
        lines += [help_text.rstrip(), "```", ""]
    return "\n".join(lines)


def write_example_report(docs: Path, work: Path) -> Path:
    """docs/example/: the card of the embedded default checkpoint, rendered as a site page."""
    from analyzer.publish.card import card_from_files
    from analyzer.runtime.demo import demo_checkpoint

    report_dir = card_from_files(
        demo_checkpoint(),
        out=work / "example-report",
        model_name="prunecard-demo-minilm",
        license="apache-2.0",
        force=True,
    )
    target = docs / "example"
    if target.exists():
        shutil.rmtree(target)
    return write_model_page(read_report_dir(report_dir, "example"), target)


def build_docs(root: str | Path) -> Path:
    """The project's own site: regenerate docs/cli.md, the example report and the shared
    script and stylesheet, then build root/mkdocs.yml (strict) into root/site."""
    import tempfile

    from analyzer.cli.main import build_parser

    root = Path(root)
    docs = root / "docs"
    (docs / "cli.md").write_text(cli_reference(build_parser()), encoding="utf-8")
    write_static(docs)
    with tempfile.TemporaryDirectory() as work:
        write_example_report(docs, Path(work))
    mkdocs_build(root / "mkdocs.yml")
    return root / "site" / "index.html"


if __name__ == "__main__":
    import sys

    from analyzer.errors import PrunecardError

    try:
        print(build_docs(sys.argv[1] if len(sys.argv) > 1 else "."))
    except PrunecardError as exc:
        print(f"prunecard: error: {exc}", file=sys.stderr)
        sys.exit(2)

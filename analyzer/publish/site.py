"""A static mkdocs-material site of analysed models, built from report folders.

Each report folder (README.md card, report.json, assets/) becomes one page; the home page
compares every model in a sortable table and a comparison page plots accuracy against
speedup, density and packed parameters with each plot's Pareto frontier. One report may be
the dense base (`--base`, or the one model whose weights measure dense): the table then
shows every model's change against it, the plots mark it, and each model page links to its
neighbours on the frontier. Everything is rendered from the records, so a figure on the site is
the figure in report.json. The site is built to work offline: no web fonts, no CDN, no
generator link, a local table sorter and mkdocs-material's own search.

Report folders are other people's files: every page built from them is sanitised after
Markdown (`site_hooks`, `safe_html.clean_html`), strings from records are escaped where
they enter the Markdown, the figures are redrawn from report.json (no SVG from a report
folder is copied or inlined), only image files are copied from its assets/, and every
page carries a Content-Security-Policy (the theme override in templates/site_theme).
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from html import escape, unescape
from pathlib import Path

from analyzer.errors import InputError, OutputError
from analyzer.front_matter import split_front_matter
from analyzer.outputs import staged_dir
from analyzer.publish.benchmarks import benchmark_table
from analyzer.publish.card import PERPLEXITY_METHODS, perplexity_name, publication_of
from analyzer.publish.frontier import Axis, Point, frontier, neighbours, score_axes
from analyzer.publish.safe_html import md_code, md_text
from analyzer.publish.site_hooks import GENERATED
from analyzer.records import Analysis, Benchmarks, LayerHeads, Report
from analyzer.text import fixed, megabytes, percent, ratio, signed_difference

__all__ = [
    "ModelPage",
    "build_site",
    "common_shape",
    "mkdocs_build",
    "model_markdown",
    "read_report_dir",
    "write_model_page",
    "write_static",
]

NOT_MEASURED = "not measured"
HOOKS_FILE = Path(__file__).with_name("site_hooks.py")
# copied from a report's assets/: images a browser only ever displays (no SVG: it can
# carry script when opened on its own; prunecard redraws its own figures instead)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
FRONT_MATTER = f"---\nprunecard: {GENERATED}\n---\n\n"

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
    slug: str  # page folder name under models/, from the model id
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
        card = split_front_matter(card_file.read_text(encoding="utf-8")).body.lstrip("\n")
    except FileNotFoundError:
        card = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(card_file, f"not a readable text file ({exc})") from None
    name = path.resolve().name
    heading = _TITLE.search(card)  # linear: no lazy group before optional runs
    # at most 200 characters: a title, not a paragraph (and Markdown's time stays bounded)
    title = _plain_text(heading.group(1).strip().rstrip("#")[:200]) if heading else name
    slug = slug or _slug(publication_of(report).model_id)
    return ModelPage(path, slug, title or name, report, card)


def _plain_text(markdown_line: str) -> str:
    """What a Markdown heading reads as (`**x** \\| y` -> `x | y`): the title is text,
    escaped wherever it is written into a page."""
    import markdown

    html = markdown.markdown(markdown_line)
    return " ".join(unescape(_TAG.sub("", html)).split())


_TITLE = re.compile(r"^# +([^\n]*)$", re.MULTILINE)
_TAG = re.compile(r"<[^>]*>")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


def _unique_slugs(pages: Sequence[ModelPage]) -> list[ModelPage]:
    """Pages whose model ids share a slug get the first 8 hex digits of the sha256 of their
    report.json and card added; copies of one folder are then numbered in the order of their
    paths. Either way a page's address does not depend on the order of the arguments."""
    import hashlib
    from collections import Counter
    from dataclasses import replace

    def digest(page: ModelPage) -> str:
        files = [page.path / "report.json", page.path / "README.md"]
        data = b"".join(f.read_bytes() for f in files if f.is_file())
        return hashlib.sha256(data).hexdigest()[:8]

    count = Counter(p.slug for p in pages)
    pages = [replace(p, slug=f"{p.slug}-{digest(p)}") if count[p.slug] > 1 else p for p in pages]
    count, seen = Counter(p.slug for p in pages), Counter[str]()
    numbered = {}
    for p in sorted(pages, key=lambda p: str(p.path.resolve())):
        if count[p.slug] > 1:
            seen[p.slug] += 1
            numbered[id(p)] = replace(p, slug=f"{p.slug}-{seen[p.slug]}")
    return [numbered.get(id(p), p) for p in pages]


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


def _figure_block(stem: str) -> str:
    """A slot for the figure assets/STEM.svg that prunecard drew; `site_hooks` inlines it
    (and swaps the card's images of assets/STEM.png for it)."""
    return f'\n<figure class="prunecard-figure" data-prunecard-svg="{stem}">\n</figure>\n'


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
    gqa = bool(a.heads.kv_total)
    units = "MLP channels" if a.kind == "decoder" else "FFN units"
    rows = []
    for s in a.layers:
        h = heads.get(s.layer)
        kv = [f"{h.kv_kept}/{a.num_kv_heads}" if h else "-"] if gqa else []
        rows.append(
            (
                s.layer,
                percent(s.density),
                f"{s.linear_nnz:,}",
                f"{h.kept}/{a.num_heads}" if h else "-",
                *kv,
                _removed_heads(h),
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
            *(["KV groups kept"] if gqa else []),
            "Removed heads",
            f"{units} kept",
            "Packed weights",
        ),
        rows,
    )
    figures = [
        ("Linear density", f"{percent(a.linear.density)} ({a.linear.nnz:,} of {a.linear.dense:,})"),
        (
            "Overall density",
            f"{percent(a.overall.density)} ({a.overall.nnz:,} of {a.overall.dense:,})",
        ),
        (
            "Query heads removed" if gqa else "Heads removed",
            f"{a.heads.removed} of {a.heads.total}"
            + (f", {a.heads.dead_kept} dead (kept by packing)" if a.heads.dead_kept else ""),
        ),
    ]
    if gqa:
        figures.append(("KV groups removed", f"{a.heads.kv_removed} of {a.heads.kv_total}"))
    figures += [
        (f"{units} kept", f"{a.ffn.units_kept:,} of {a.ffn.units_total:,}"),
        ("Packed parameters", f"{a.overall.packed:,}"),
        ("Files", megabytes(a.file_bytes)),
    ]
    if a.patterns:
        figures.append(("Sparsity patterns", md_text(_patterns_text(a))))
    if a.base is not None:
        changed = [c for c in a.base.changes if c.base != c.model]
        figures.append(
            (
                "Against the dense base",
                md_text(", ".join(f"{c.what} {c.base:,} -> {c.model:,}" for c in changed))
                or "unchanged",
            )
        )
    summary = _md_table(("Figure", "Value"), figures)
    return f"### Per-layer figures\n\n{summary}\n\nHead rule: {md_text(a.heads.rule)}\n\n{table}\n"


def _removed_heads(h: LayerHeads | None) -> str:
    """A layer's removed heads, then its dead heads that packing keeps (never 'removed')."""
    if h is None:
        return "-"
    removed = ", ".join(map(str, h.removed)) or "-"
    if not h.dead_kept:
        return removed
    return f"{removed}; dead (kept by packing): {', '.join(map(str, h.dead_kept))}"


def _patterns_text(a: Analysis) -> str:
    """Every pattern with its matrices, most zeros first: '2:4 7, channels 3, heads 1'."""
    rows = sorted((p for p in a.patterns if p.matrices), key=lambda p: -p.zeros)
    return ", ".join(f"{p.kind} {p.matrices}" for p in rows)


def main_pattern(a: Analysis) -> str | None:
    """The pattern holding the most zeros of the linear matrices (None without a summary)."""
    rows = [p for p in a.patterns if p.zeros]
    if not rows:
        return "dense" if a.patterns else None
    best = max(rows, key=lambda p: p.zeros)
    return f"{best.kind} ({best.matrices} of {sum(p.matrices for p in a.patterns)} matrices)"


def _perplexity_section(page: ModelPage) -> str:
    p = page.report.perplexity
    assert p is not None
    details = _md_table(
        ("Detail", "Value"),
        [
            ("Perplexity", fixed(p.perplexity, 2)),
            (
                f"{percent(p.level, 0)} interval",
                f"{fixed(p.ci_low, 2)} to {fixed(p.ci_high, 2)}"
                if p.has_interval
                else "none (one window)",
            ),
            ("Text", f"{md_code(perplexity_name(p))} (sha256 {md_code(p.text_sha256[:12])})"),
            ("Hub dataset", _hub_dataset(p.dataset, p.dataset_config, p.dataset_split)),
            ("Protocol", f"{md_text(p.protocol)}: {PERPLEXITY_METHODS.get(p.protocol, '')}"),
            ("Tokens in the text / scored", f"{p.tokens:,} / {p.scored:,}"),
            ("Windows (tokens per window, stride)", f"{p.windows:,} ({p.window:,}, {p.stride:,})"),
            ("Model evaluated", "packed" if p.packed else "as stored"),
            ("Device", md_text(p.device)),
        ],
    )
    return (
        "### Evaluation\n\nPerplexity (lower is better) by the protocol below; the "
        f"interval is a percentile bootstrap over windows ({p.resamples:,} resamples, "
        f"seed {p.seed}).\n\n{details}\n"
    )


def _hub_dataset(dataset: str, config: str, split: str) -> str:
    """A perplexity's Hub dataset in words: id, config and split, or none (a local file)."""
    if not dataset:
        return "none: a local text file"
    return ", ".join(md_code(part) for part in (dataset, config, split) if part)


def _evaluation_section(page: ModelPage) -> str:
    e = page.report.evaluation
    if e is None and page.report.perplexity is not None:
        return _perplexity_section(page)
    if e is None:
        return f"### Evaluation\n\n{NOT_MEASURED.capitalize()}.\n"
    s, ci = e.scores, e.ci
    rows = [
        (
            "Exact match",
            fixed(s.exact, 2),
            f"{fixed(ci.exact_low, 2)} to {fixed(ci.exact_high, 2)}",
        ),
        ("F1", fixed(s.f1, 2), f"{fixed(ci.f1_low, 2)} to {fixed(ci.f1_high, 2)}"),
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
            rows.append((label, fixed(value, 2), ""))
    level = percent(ci.level, 0)
    details = _md_table(
        ("Detail", "Value"),
        [
            ("Questions scored", f"{e.n:,}"),
            ("Model evaluated", "packed" if e.packed else "as stored"),
            ("Data", f"{md_code(Path(e.data).name)} (sha256 {md_code(e.data_sha256[:12])})"),
            ("Sample", f"limit {e.limit}, seed {e.seed}" if e.limit else "all questions"),
            ("Device", md_text(e.device)),
            ("Questions per second", fixed(e.questions_per_second, 1)),
            ("Missing / extra predictions", f"{e.missing_predictions} / {e.extra_predictions}"),
        ],
    )
    scores = _md_table(("Metric", "Score", f"{level} interval"), rows)
    return (
        f"### Evaluation\n\nSQuAD v2 on {e.n:,} questions; intervals are a percentile "
        f"bootstrap over questions ({ci.resamples:,} resamples, seed {ci.seed}).\n\n"
        f"{scores}\n\n{details}\n"
    )


def _benchmarks_section(page: ModelPage) -> str:
    """The lm-eval tasks as the card's table computes them (`publish.benchmarks`, one
    computation for card, site and audit), shots in their own column, and the run."""
    record = page.report.benchmarks
    if record is None:
        return ""
    table = benchmark_table(record)
    rows = [
        (
            md_text(r.task or r.label),
            "" if r.shots is None else r.shots,
            md_text(r.metric),
            *((r.dense if r.dense is not None else NOT_MEASURED,) if table.has_base else ()),
            r.pruned,
            *((r.recovery or "-",) if table.has_base else ()),
        )
        for r in table.rows
    ]
    header = ("Task", "Shots", "Metric", *table.columns[2:])
    base = record.base
    details = _md_table(
        ("Detail", "Value"),
        [
            ("lm-evaluation-harness", md_text(record.lm_eval_version or "version not recorded")),
            ("Model evaluated", "packed" if record.packed else "as stored"),
            ("Backend, model args", md_text(f"{record.backend}, {record.model_args or 'none'}")),
            ("Source", md_text(record.source)),
            ("Dense base", md_text(base.checkpoint) if base is not None else "none given"),
            ("Documents", "a subset (--limit)" if table.subset else "every document of each task"),
        ],
    )
    subset = " Tasks marked a subset scored only part of their split (`--limit`)." * table.subset
    return (
        "### lm-evaluation-harness tasks\n\nEvery figure as the card prints it, from the "
        "record: accuracies in percent, the Average the mean of the figures above it"
        + (", recovery pruned / dense of the figures shown" if table.has_base else "")
        + f".{subset}\n\n{_md_table(header, rows)}\n\n{details}\n"
    )


def _timing_section(page: ModelPage) -> str:
    b = page.report.bench
    if b is None:
        return f"### Timing\n\n{NOT_MEASURED.capitalize()}.\n"
    rows = [
        (
            f"{s.batch} x {s.seq}",
            f"{fixed(s.dense_ms, 2)} ± {fixed(s.dense_spread_ms, 2)}",
            f"{fixed(s.packed_ms, 2)} ± {fixed(s.packed_spread_ms, 2)}",
            ratio(s.speedup),
            ratio(s.flop_bound),
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
    decode = ""
    if b.decode:
        decode = "\n\nDecoding (greedy, KV cache):\n\n" + _md_table(
            ("Batch", "Prompt", "New tokens", "Dense tokens/s", "Packed tokens/s", "Speedup"),
            [
                (
                    d.batch,
                    d.prompt,
                    d.new_tokens,
                    fixed(d.dense_tokens_per_s, 1),
                    fixed(d.packed_tokens_per_s, 1),
                    ratio(d.speedup),
                )
                for d in b.decode
            ],
        )
    if b.semi_structured:
        decode += "\n\n2:4 matrices as semi-structured sparse tensors vs dense:\n\n" + _md_table(
            ("Batch, tokens", "Dense ms", "Sparse ms", "Speedup"),
            [
                (
                    f"{s.batch}, {s.seq}",
                    f"{fixed(s.dense_ms, 2)} ± {fixed(s.dense_spread_ms, 2)}",
                    f"{fixed(s.packed_ms, 2)} ± {fixed(s.packed_spread_ms, 2)}",
                    ratio(s.speedup),
                )
                for s in b.semi_structured
            ],
        )
    return (
        f"### Timing\n\nMedians ± interquartile range, dense and packed in one process on "
        f"{md_text(env.cpu if b.device == 'cpu' else env.device)} ({md_text(b.device)}, "
        f"{md_text(b.dtype)}, {b.threads} threads, torch {md_text(env.torch)}). Packed and "
        f"dense logits differ by at most {b.equivalence.max_abs_diff:.2g} "
        f"(tolerance {b.equivalence.tolerance:.2g}). "
        f"Shapes timed: {', '.join(f'{s.batch} x {s.seq}' for s in b.shapes)}"
        f"{' (quick timing, for trying things)' if b.quick else ''}.\n\n"
        f"{table}{decode}\n"
    )


def _provenance_section(page: ModelPage) -> str:
    p = page.report.provenance
    hashes = [(md_code(name), md_code(digest[:16])) for name, digest in p.file_sha256.items()]
    files = _md_table(("File", "sha256 (first 16)"), hashes) if hashes else ""
    return (
        f"### Files and provenance\n\nMeasured by prunecard {md_text(p.tool_version)} on "
        f"{md_text(p.created)} with {md_code(p.command)}.\n\n{files}\n"
    )


def model_markdown(page: ModelPage, assets: Path, *, notice: str = "", extra: str = "") -> str:
    """The page: the card (`site_hooks` swaps its PNG figures for the SVGs prunecard drew
    into `assets`), the figures the card does not show, `extra` (the site's sections, such
    as the frontier's neighbours), then the measured details; `notice` under its title."""
    card = page.card
    card = card.rstrip() + "\n" if card else f"# {md_text(page.title)}\n"
    parts = [FRONT_MATTER + _with_notice(card, notice)]
    drawn = sorted(assets.glob("*.svg")) if assets.is_dir() else []
    unshown = [svg for svg in drawn if f"assets/{svg.stem}.png" not in card]
    if unshown:
        parts.append("## Figures\n")
        parts += [_figure_block(svg.stem) for svg in unshown]
    if extra:
        parts.append(extra)
    parts += [
        "## Measurement details\n\nEverything report.json holds, in full.\n",
        _layer_section(page),
        _evaluation_section(page),
        _benchmarks_section(page),
        _timing_section(page),
        _provenance_section(page),
    ]
    return "\n".join(p for p in parts if p)


def write_model_page(
    page: ModelPage, folder: Path, *, notice: str = "", extra: str = "", drawn: bool = False
) -> Path:
    """Write folder/index.md with report.json, the report's images and the figures of its
    analysis beside it: redrawn, or with `drawn` copied from the report folder's assets,
    where prunecard drew them from this report.json (`notice`, `extra`: as in
    `model_markdown`)."""
    from analyzer.publish.figures import FIGURES, write_figures

    assets = folder / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    source = page.path / "assets"
    images = sorted(source.iterdir()) if source.is_dir() else []
    for image in images:
        if image.suffix.lower() in IMAGE_SUFFIXES and image.is_file() and not image.is_symlink():
            shutil.copyfile(image, assets / image.name)
    if page.report.analysis is not None and drawn:
        for stem in FIGURES:  # the .png came with the images; an .svg only from prunecard
            svg = source / f"{stem}.svg"
            if svg.is_file() and not svg.is_symlink():
                shutil.copyfile(svg, assets / svg.name)
    elif page.report.analysis is not None:
        write_figures(page.report.analysis, assets)
    shutil.copy2(page.path / "report.json", folder / "report.json")
    index = folder / "index.md"
    index.write_text(model_markdown(page, assets, notice=notice, extra=extra), encoding="utf-8")
    return index


# --------------------------------------------------------------------------- home and compare


@dataclass(frozen=True)
class _Row:
    page: ModelPage
    density: float | None
    heads: tuple[int, int] | None
    kv: tuple[int, int] | None  # KV groups removed, total (grouped-query attention)
    pattern: str | None  # the pattern holding the most zeros
    packed: int | None
    speedup: float | None  # at the shape all models share
    shape: str  # every shape this model was timed at
    unstable: bool
    exact: float | None
    f1: float | None
    n: int | None
    perplexity: float | None
    base: bool = False  # the dense base the others are compared with
    tasks: tuple[tuple[str, str], ...] = ()  # lm-eval rows as the card prints them (label, figure)


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
        kv=(a.heads.kv_removed, a.heads.kv_total) if a and a.heads.kv_total else None,
        pattern=main_pattern(a) if a else None,
        packed=a.overall.packed if a else None,
        speedup=shape.speedup if shape else None,
        shape=", ".join(f"{s.batch} x {s.seq}" for s in shapes),
        unstable=bool(shape and shape.verdict.startswith("unstable")),
        exact=e.scores.exact if e else None,
        f1=e.scores.f1 if e else None,
        n=e.n if e else None,
        perplexity=r.perplexity.perplexity if r.perplexity else None,
        tasks=_task_cells(r.benchmarks),
    )


def _task_cells(record: Benchmarks | None) -> tuple[tuple[str, str], ...]:
    """The card's lm-eval rows (tasks with shots, then the Average), its pruned figures."""
    if record is None:
        return ()
    table = benchmark_table(record)
    return tuple((f"lm-eval {r.label}", r.pruned) for r in table.rows)


def _cell(value: object, text: str, tip: str = "") -> str:
    if value is None:
        return f'<td data-sort="">{NOT_MEASURED}</td>'
    title = f' title="{escape(tip)}"' if tip else ""
    return f'<td data-sort="{value}"{title}>{text}</td>'


def _home_markdown(rows: Sequence[_Row], common: tuple[int, int] | None, notice: str = "") -> str:
    at = f"{common[0]} x {common[1]}" if common else ""
    base = next((r for r in rows if r.base), None)
    tasks = tuple(dict.fromkeys(label for r in rows for label, _ in r.tasks))
    header = (
        "Model",
        "Linear density",
        "Heads removed",
        "Pattern",
        "Packed params",
        f"Speedup at {at}" if common else "Speedup",
        "EM",
        "F1",
        "Questions",
        "Perplexity",
        *(escape(t) for t in tasks),
        *_delta_header(base),
    )
    body = []
    for r in rows:
        link = f'<a href="models/{r.page.slug}/index.html">{escape(r.page.title)}</a>'
        link += " <strong>(dense base)</strong>" if r.base else ""
        cells = [
            f'<td data-sort="{escape(r.page.title.lower())}">{link}</td>',
            _cell(r.density, percent(r.density or 0.0)),
            _cell(
                r.heads and r.heads[0],
                (f"{r.heads[0]} of {r.heads[1]}" if r.heads else "")
                + (f" (KV groups {r.kv[0]} of {r.kv[1]})" if r.kv else ""),
            ),
            _cell(r.pattern and escape(r.pattern.split(" (")[0]), escape(r.pattern or "")),
            _cell(r.packed, f"{fixed((r.packed or 0) / 1e6, 1)} M"),
            _cell(
                r.speedup,
                ratio(r.speedup or 0) + (" (unstable)" if r.unstable else ""),
                f"timed at batch x sequence {r.shape}",
            ),
            _cell(r.exact, fixed(r.exact or 0, 2)),
            _cell(r.f1, fixed(r.f1 or 0, 2)),
            _cell(r.n, f"{r.n or 0:,}"),
            _cell(r.perplexity, fixed(r.perplexity or 0, 2)),
            *(_cell(dict(r.tasks).get(t), dict(r.tasks).get(t, "")) for t in tasks),
            *_delta_cells(r, base),
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
        f"---\nprunecard: {GENERATED}\nhide:\n  - navigation\n  - toc\n---\n\n"
        + _with_notice("# Pruned models\n\n", notice)
        + f"{count}, fastest first. Click a column header to sort. Every figure is measured "
        f"from the checkpoint by prunecard; {speed}; EM and F1 are "
        "SQuAD v2 scores on the number of questions shown"
        + (
            "; perplexity is a causal LM's on its text (lower is better; its page names the "
            "text); heads removed are query heads, with KV groups for grouped-query attention"
            if any(r.perplexity is not None or r.kv for r in rows)
            else ""
        )
        + (
            "; lm-eval columns are each task's figure as its card prints it (accuracies in "
            "percent), the average the mean of its accuracy rows"
            if tasks
            else ""
        )
        + "; the pattern is the one holding the most zeros of the linear matrices"
        + (_delta_sentence(base) if base else "")
        + ".\n\n"
        '<div class="prunecard-sortable">\n<table>\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n"
        "</table>\n</div>\n\n[Accuracy against speedup, density and packed parameters, with "
        "the Pareto frontiers](compare.md)\n"
    )


def _order(rows: Sequence[_Row]) -> list[_Row]:
    """Fastest first; models without a speedup after, by name."""
    return sorted(
        rows,
        key=lambda r: (r.speedup is None, -(r.speedup or 0.0), r.page.title.lower()),
    )


# (the x axis, its value in a row): what every model is compared against
COSTS: tuple[tuple[Axis, Callable[[_Row], float | None]], ...] = (
    (
        Axis("speedup", "Speedup, packed vs dense", "speedup", True, 1.0, unit="x"),
        lambda r: r.speedup,
    ),
    (  # in percent: `percent(d)` is `fixed(100 * d, 1)`, so the axis prints as the table
        Axis("density", "Linear density (%)", "density", False, 100.0, digits=1, unit="%"),
        lambda r: None if r.density is None else 100 * r.density,
    ),
    (
        Axis(
            "packed",
            "Packed parameters (millions)",
            "packed parameters",
            False,
            digits=1,
            unit=" M",
        ),
        lambda r: None if r.packed is None else r.packed / 1e6,
    ),
)


def _points(
    rows: Sequence[_Row],
    x_of: Callable[[_Row], float | None],
    y_of: Callable[[Report], float | None],
) -> list[Point]:
    """The rows with both values measured, as points of one plot (in the table's order)."""
    points = []
    for r in rows:
        x, y = x_of(r), y_of(r.page.report)
        if x is not None and y is not None:
            points.append(Point(r.page.title, r.page.slug, x, y, r.base))
    return points


def _page_link(p: Point, prefix: str = "models/") -> str:
    return f"[{md_text(p.name)}]({prefix}{p.slug}/index.md)"


def _compare_markdown(rows: Sequence[_Row], assets: Path, notice: str = "") -> str:
    """The comparison page: every score the records hold against every cost, each plot's
    Pareto frontier drawn and listed; figures go to `assets` (`site_hooks` inlines them)."""
    from analyzer.publish.figures import comparison_figure

    parts = [
        FRONT_MATTER + _with_notice("# Accuracy against speedup, density and size\n", notice),
        "A model is on the Pareto frontier (the dashed line) when no other model is at least "
        "as good on both axes and better on one: the frontier is what there is to choose "
        "from."
        + (" The black star is the dense base." if any(r.base for r in rows) else "")
        + "\n",
    ]
    for y, y_of in score_axes([r.page.report for r in rows]):
        for x, x_of in COSTS:
            points = _points(rows, x_of, y_of)
            missing = [r.page.title for r in rows if r.page.title not in {p.name for p in points}]
            parts.append(f"## {y.label} against {x.short}\n")
            if not points:
                parts.append(f"No model has both {y.short} and {x.short} measured.\n")
                continue
            stem = f"cmp-{y.stem}-{x.stem}"
            comparison_figure(points, x, y, assets / stem)
            parts.append(_figure_block(stem))
            line = frontier(points, x, y)
            parts.append(
                f"Pareto frontier, by increasing {x.short}: "
                + " → ".join(_page_link(p) for p in line)
                + ".\n"
            )
            if missing:
                parts.append(
                    "Not plotted (not measured): " + ", ".join(map(md_text, missing)) + ".\n"
                )
    return "\n".join(parts)


def _neighbours_section(page: ModelPage, rows: Sequence[_Row]) -> str:
    """A model page's links to its neighbours on the frontier of the first score against
    speedup ("" when the model is not on that plot)."""
    axes = score_axes([r.page.report for r in rows])
    y, y_of = axes[0]
    x, x_of = COSTS[0]
    points = _points(rows, x_of, y_of)
    me = next((p for p in points if p.slug == page.slug), None)
    if me is None or len(points) < 2:
        return ""
    line = frontier(points, x, y)
    below, above = neighbours(me, line)
    where = (
        "is on the Pareto frontier"
        if me in line
        else "is not on the Pareto frontier: another model is at least as good on both"
    )
    links = [
        f"- {side}: {_page_link(p, '../')} ({y.short} {y.shown(p.y)}, {x.short} {x.shown(p.x)})"
        for side, p in ((f"lower {x.short}", below), (f"higher {x.short}", above))
        if p is not None
    ]
    return (
        f"## On the frontier\n\nAgainst the other models of this site, {md_text(page.title)} "
        f"{where} of {y.short} against {x.short} ([all plots](../../compare.md)). "
        "Its neighbours on the frontier:\n\n" + ("\n".join(links) or "- none") + "\n"
    )


def _delta_header(base: _Row | None) -> tuple[str, ...]:
    if base is None:
        return ()
    return tuple(
        f"{name} vs base"
        for name, value in (("EM", base.exact), ("F1", base.f1), ("Perplexity", base.perplexity))
        if value is not None
    )


def _delta_cells(r: _Row, base: _Row | None) -> list[str]:
    """Each score's difference from the dense base's (the base's own row: 0)."""
    if base is None:
        return []
    cells = []
    for mine, theirs in ((r.exact, base.exact), (r.f1, base.f1), (r.perplexity, base.perplexity)):
        if theirs is None:
            continue
        delta = None if mine is None else mine - theirs
        cells.append(_cell(delta, signed_difference(mine or 0, theirs)))
    return cells


def _delta_sentence(base: _Row) -> str:
    return (
        f"; {escape(base.page.title)} is the dense base: the last columns are each model's "
        "score minus the base's (speedup and density are against the dense model already)"
    )


def _with_notice(markdown: str, notice: str) -> str:
    """`notice` as a warning box under the page's first heading (or on top without one)."""
    if not notice:
        return markdown
    box = f'!!! warning "Note"\n    {md_text(notice)}\n\n'
    title, _, rest = markdown.partition("\n")
    if title.startswith("# "):
        return f"{title}\n\n{box}{rest.lstrip(chr(10))}"
    return box + markdown


def _is_dense(a: Analysis) -> bool:
    """Whether the weights measure dense: no head or FFN unit removed, and every linear
    matrix dense (rounding's few stray zeros allowed, as the pattern summary counts them)."""
    if a.heads.removed or a.ffn.units_kept < a.ffn.units_total:
        return False
    if a.patterns:
        return all(p.kind == "dense" for p in a.patterns if p.matrices)
    return a.linear.density == 1.0


def _base_page(pages: Sequence[ModelPage], base: Path | None) -> ModelPage | None:
    """The dense base: the page of the folder `base`, else the one page whose weights
    measure dense (none when several do: which one is the base is then not known)."""
    if base is not None:
        return next(p for p in pages if p.path.resolve() == base.resolve())
    dense = [p for p in pages if p.report.analysis and _is_dense(p.report.analysis)]
    return dense[0] if len(dense) == 1 else None


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
        "theme": {
            "name": "material",
            "custom_dir": str(_theme_dir()),
            "font": False,
            "features": ["navigation.sections"],
        },
        "hooks": [str(HOOKS_FILE)],
        "plugins": ["search"],
        "extra": {"generator": False},
        "extra_css": list(extra_css),
        "extra_javascript": ["javascripts/tablesort.js"],
        "markdown_extensions": ["tables", "admonition", "attr_list", {"toc": {"permalink": True}}],
        "nav": nav,
    }


def _theme_dir() -> Path:
    """templates/site_theme: the theme override that sets the Content-Security-Policy."""
    from importlib.resources import files

    return Path(str(files("analyzer.templates").joinpath("site_theme")))


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
    """Build with mkdocs' Python API in strict mode; warnings become one OutputError.

    Every build gets prunecard's theme override (the CSP) and hooks (pages generated from
    report folders are sanitised), whatever the config file says.
    """
    import yaml
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    logger = logging.getLogger("mkdocs")
    collect = _Collect()
    logger.addHandler(collect)
    propagate, logger.propagate = logger.propagate, False
    try:
        theme = yaml.safe_load(Path(config_file).read_text(encoding="utf-8"))["theme"]
        theme = {**({"name": theme} if isinstance(theme, str) else theme)}
        theme["custom_dir"] = str(_theme_dir())
        config = load_config(str(config_file), strict=True, theme=theme, hooks=[str(HOOKS_FILE)])
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


def build_site(
    report_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    force: bool = False,
    base: str | Path | None = None,
    notice: str = "",
    extra_pages: Sequence[tuple[str, str, str]] = (),
    drawn: bool = False,
) -> Path:
    """Write an mkdocs project for the reports under `out` and build it into out/site.

    `base`: the dense base's report folder (added to the reports when not among them);
    None: the one report whose weights measure dense, if exactly one does. `notice`: a
    sentence every page shows under its title. `extra_pages`: (nav title, file name,
    Markdown starting with FRONT_MATTER) of pages a caller adds after the comparison.
    `drawn`: each report folder's assets hold the figures prunecard drew from its
    report.json (a collection's workers draw them), copied instead of redrawn.
    Returns the built home page (out/site/index.html). `out` is written all or nothing;
    an existing `out` is refused unless `force`.
    """
    import yaml

    if not report_dirs:
        raise InputError(Path(out), "no report folders given")
    paths = [Path(p) for p in report_dirs]
    if base is not None and Path(base).resolve() not in {p.resolve() for p in paths}:
        paths.append(Path(base))
    pages = _unique_slugs([read_report_dir(p) for p in paths])
    dense = _base_page(pages, None if base is None else Path(base))
    common = common_shape(pages)
    rows = _order([replace(_row(p, common), base=p is dense) for p in pages])
    out = Path(out)
    with staged_dir(out, force=force) as tmp:
        docs = tmp / "docs"
        css = write_static(docs)
        for page in pages:
            folder = docs / "models" / page.slug
            neighbours = _neighbours_section(page, rows)
            write_model_page(page, folder, notice=notice, extra=neighbours, drawn=drawn)
        (docs / "index.md").write_text(_home_markdown(rows, common, notice), encoding="utf-8")
        compare = _compare_markdown(rows, docs / "assets", notice)
        (docs / "compare.md").write_text(compare, encoding="utf-8")
        # the theme writes nav titles into the HTML unescaped: escape them here
        pages_nav = [{escape(r.page.title): f"models/{r.page.slug}/index.md"} for r in rows]
        for _, name, markdown in extra_pages:
            (docs / name).write_text(markdown, encoding="utf-8")
        nav = [
            {"Models": "index.md"},
            {"Comparison": "compare.md"},
            *({escape(title): name} for title, name, _ in extra_pages),
            {"Model pages": pages_nav},
        ]
        config = mkdocs_config("Pruned models", nav, extra_css=css)
        (tmp / "mkdocs.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        mkdocs_build(tmp / "mkdocs.yml")
    return out / "site" / "index.html"

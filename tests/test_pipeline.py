"""`prunecard demo`: the README's first command, end to end on the embedded default, and
its site in Chromium. One demo build (a module fixture) serves every test here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from browser import serve, visit

from analyzer.cli.main import main
from analyzer.runtime.demo import FAMILY

LIMIT = 12
# the home table's model names, after clicking the F1 header twice (highest F1 first)
SORT_BY_F1 = """(() => {
  const th = [...document.querySelectorAll(".prunecard-sortable th")]
    .find((h) => h.textContent === "F1");
  th.click(); th.click();
  return [...document.querySelectorAll(".prunecard-sortable tbody tr")]
    .map((r) => [r.cells[0].textContent, Number(r.cells[[...th.parentNode.cells].indexOf(th)]
      .dataset.sort)]);
})()"""
# every figure's frontier tooltip, and the boxes of every point label of every figure
FIGURES = """(() => ({
  frontiers: [...document.querySelectorAll("g[id$='-frontier'] > title")]
    .map((t) => t.textContent),
  labels: [...document.querySelectorAll("svg")].map((svg) =>
    [...svg.querySelectorAll("g[id*='-label-'] text")].map((t) => {
      const r = t.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })),
}))()"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analyzer.cli.main",
            "demo",
            "--out",
            str(out),
            "--limit",
            str(LIMIT),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done


def records(out):
    return {
        v.name: json.loads((out / "reports" / v.name / "report.json").read_text()) for v in FAMILY
    }


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_builds_a_family_and_one_site(demo):
    out, done = demo
    index = out / "site" / "site" / "index.html"
    assert done.stdout.strip() == f"site built: {index}"
    reports = records(out)
    assert len(reports) >= 4 and reports["dense"]["analysis"]["heads"]["removed"] == 0
    for name, report in reports.items():
        assert report["evaluation"]["n"] == LIMIT, name
        assert report["bench"]["shapes"][0]["speedup"] > 0, name
        for record in ("analysis.json", "bench.json", "eval/evaluation.json", "README.md"):
            assert (out / "reports" / name / record).exists(), (name, record)
    assert len({round(r["analysis"]["linear"]["density"], 3) for r in reports.values()}) == len(
        reports
    )  # different strengths
    again = subprocess.run(
        [sys.executable, "-m", "analyzer.cli.main", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.slow
def test_demo_site_shows_the_figures_prunecard_site_draws(demo, tmp_path):
    """The demo's site copies the figures its cards drew; `site` over the same reports
    draws them itself, byte for byte the same."""
    out, _ = demo
    reports = [str(out / "reports" / v.name) for v in FAMILY]
    args = ["site", *reports, "--dense-base", reports[0], "--out", str(tmp_path / "site")]
    assert main(args) == 0

    def figures(site):
        pages = site / "docs" / "models"
        return {str(p.relative_to(pages)): p.read_bytes() for p in pages.glob("*/assets/*")}

    copied = figures(out / "site")
    assert copied == figures(tmp_path / "site")
    svgs = [name for name in copied if name.endswith(".svg")]
    assert len(svgs) == 3 * len(FAMILY)  # density, heads, blocks


def pareto(points):
    """Names no other (speedup, f1) point beats on both (written apart from the product)."""
    return {
        n
        for n, x, y in points
        if not any(a >= x and b >= y and (a, b) != (x, y) for _, a, b in points)
    }


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_site_in_the_browser(demo, browser):
    out, _ = demo
    reports = records(out)
    titles = {name: f"prunecard-demo-minilm-{name}" for name in reports}
    pages = ["index.html", "compare.html"] + [
        f"models/{title}/index.html" for title in titles.values()
    ]
    with serve(out / "site" / "site") as root:
        seen = {
            p: visit(
                browser,
                root + p,
                script=SORT_BY_F1
                if p == "index.html"
                else FIGURES
                if p == "compare.html"
                else "document.body.innerText",
            )
            for p in pages
        }
    for page, visit_ in seen.items():
        assert visit_.status == 200 and visit_.errors == [], (page, visit_.errors)
    # the home table: the dense base marked, every variant, sorted by F1 in the browser
    rows = seen["index.html"].script
    assert {name for name, _ in rows} == {
        t + (" (dense base)" if n == "dense" else "") for n, t in titles.items()
    }
    f1s = [f1 for _, f1 in rows]
    assert f1s == sorted(f1s, reverse=True)
    # the comparison page: the F1 x speedup frontier, as computed here from the records
    shape = {
        n: next(s for s in r["bench"]["shapes"] if (s["batch"], s["seq"]) == (1, 128))
        for n, r in reports.items()
    }
    points = [
        (titles[n], shape[n]["speedup"], r["evaluation"]["scores"]["f1"])
        for n, r in reports.items()
    ]
    figures = seen["compare.html"].script
    speedup = figures["frontiers"][0].removeprefix("Pareto frontier: ").split(", ")
    assert set(speedup) == pareto(points)
    assert len(figures["frontiers"]) == 3  # against speedup, density and packed parameters
    for boxes in figures["labels"]:  # no two labels of a figure overlap
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    # every model page says the QA head is untrained and links its frontier neighbours
    for title in titles.values():
        text = seen[f"models/{title}/index.html"].script
        assert "untrained question-answering head" in text
        assert "On the frontier" in text

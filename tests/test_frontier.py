"""The comparison page's Pareto frontiers against ones computed here from the records."""

from __future__ import annotations

import re
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st
from site_reports import bench, evaluation, make_reports

from analyzer.publish.figures import comparison_figure
from analyzer.publish.frontier import Axis, Point, frontier, neighbours
from analyzer.records import Report, load_record

SPEEDUP = Axis("speedup", "Speedup", "speedup", True, 1.0)
F1 = Axis("f1", "F1", "F1", True)
PERPLEXITY = Axis("perplexity", "Perplexity", "perplexity", False)


def brute_force(points, x_up: bool, y_up: bool) -> set[str]:
    """Names of the points no other point beats: compared pair by pair, by hand's rule."""
    sign_x, sign_y = (1 if x_up else -1), (1 if y_up else -1)
    kept = set()
    for p in points:
        beaten = any(
            sign_x * q.x >= sign_x * p.x
            and sign_y * q.y >= sign_y * p.y
            and (q.x, q.y) != (p.x, p.y)
            for q in points
        )
        if not beaten:
            kept.add(p.name)
    return kept


def test_hand_counted_family():
    # dense (1x, 80), a light prune (1.2x, 79), a dominated one (1.1x, 70), a strong (2x, 60)
    points = [
        Point("dense", "dense", 1.0, 80.0, base=True),
        Point("light", "light", 1.2, 79.0),
        Point("dominated", "dominated", 1.1, 70.0),
        Point("strong", "strong", 2.0, 60.0),
    ]
    line = frontier(points, SPEEDUP, F1)
    assert [p.name for p in line] == ["dense", "light", "strong"]
    assert [p.name for p in neighbours(points[1], line)] == ["dense", "strong"]
    # off the frontier: the frontier points around its speedup
    assert [p.name for p in neighbours(points[2], line)] == ["dense", "light"]
    # perplexity: lower is better, so the direction flips (dense 10, strong 30 at 2x)
    ppl = [
        Point("dense", "d", 1.0, 10.0),
        Point("worse", "w", 1.0, 12.0),
        Point("s", "s", 2.0, 30.0),
    ]
    assert [p.name for p in frontier(ppl, SPEEDUP, PERPLEXITY)] == ["dense", "s"]


values = st.floats(min_value=0, max_value=100, allow_nan=False)


@given(st.lists(st.tuples(values, values), min_size=1, max_size=12), st.booleans(), st.booleans())
def test_frontier_is_the_set_nothing_beats(xy, x_up, y_up):
    points = [Point(f"m{i}", f"m{i}", x, y) for i, (x, y) in enumerate(xy)]
    x = Axis("x", "x", "x", x_up)
    y = Axis("y", "y", "y", y_up)
    line = frontier(points, x, y)
    assert {p.name for p in line} == brute_force(points, x_up, y_up)
    assert [p.x for p in line] == sorted(p.x for p in line)


def test_drawn_figure_names_the_frontier_of_the_records(tmp_path):
    """Reports with hand-set timings and scores: the SVG's frontier tooltip lists what this
    test computes from their records, and every point and label is drawn."""
    dirs, _ = make_reports(tmp_path / "reports")
    heavy = next(r for r in (load_record(Report, d / "report.json") for d in dirs) if r.evaluation)
    family = {
        "heavy": heavy,
        "fast": replace(heavy, bench=bench(30.0, 6.0), evaluation=evaluation(40.0, 45.0, 200)),
        "slow": replace(heavy, bench=bench(10.0, 8.0), evaluation=evaluation(50.0, 50.0, 200)),
    }
    points = [
        Point(name, name, r.bench.shapes[-1].speedup, r.evaluation.scores.f1)
        for name, r in family.items()
    ]
    comparison_figure(points, SPEEDUP, F1, tmp_path / "cmp")
    svg = (tmp_path / "cmp.svg").read_text()
    assert (tmp_path / "cmp.png").read_bytes().startswith(b"\x89PNG")
    drawn = re.search(r"<title>Pareto frontier: ([^<]*)</title>", svg).group(1).split(", ")
    assert set(drawn) == brute_force(points, True, True) == {"heavy", "fast"}
    assert len(re.findall(r'<g id="point-\d+">', svg)) == len(points)
    assert len(re.findall(r'<g id="label-\d+">', svg)) == len(points)

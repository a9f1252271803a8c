"""The card's speed section from a bench with verdicts and profiles; the site's speedup
column at the one shape every model shares."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from site_reports import ENV

from analyzer.publish.card import CardOptions, render_card
from analyzer.publish.site import ModelPage, _home_markdown, _row, common_shape
from analyzer.records import Bench, BenchShape, Equivalence, Provenance, Report, TimeShare

GOLDEN = Path(__file__).parent / "golden" / "speed_section.md"
UPDATE = os.environ.get("PRUNECARD_UPDATE_GOLDEN") == "1"

DENSE_PROFILE = (
    TimeShare("linear layers", 300.0),
    TimeShare("attention", 60.0),
    TimeShare("LayerNorm", 90.0),
    TimeShare("other", 150.0),
)
PACKED_PROFILE = (
    TimeShare("linear layers", 80.0),
    TimeShare("attention", 30.0),
    TimeShare("LayerNorm", 90.0),
    TimeShare("other", 100.0),
)


def _shape(batch, seq, dense, packed, bound, verdict, **extra) -> BenchShape:
    return BenchShape(
        batch,
        seq,
        dense,
        packed,
        dense / 50,
        packed / 50,
        dense / packed,
        bound,
        dense / packed / bound,
        12,
        speedup_spread=0.04,
        dense_samples_ms=(dense,) * 12,
        packed_samples_ms=(packed,) * 12,
        verdict=verdict,
        **extra,
    )


STABLE = _shape(
    8,
    384,
    600.0,
    300.0,
    3.5,
    "stable",
    dense_profile=DENSE_PROFILE,
    packed_profile=PACKED_PROFILE,
    memory_bound=2.4,
)
UNSTABLE = _shape(1, 128, 20.0, 5.0, 3.5, "unstable (speedup 4.00x is above the FLOP bound)")


def _bench(*shapes: BenchShape, quick: bool = False) -> Bench:
    return Bench(
        2,
        "cpu",
        "float32",
        shapes,
        Equivalence(2e-6, 1e-4, "2 SQuAD questions"),
        ENV,
        load_before=(0.4, 0.3, 0.2),
        load_after=(1.9, 0.8, 0.4),
        threshold=0.05,
        budget_s=20.0,
        quick=quick,
    )


def _report(bench: Bench) -> Report:
    provenance = Provenance("0.1.0", "prunecard card", "ckpt", {}, "2025-01-31T12:00:00Z")
    return Report(provenance=provenance, bench=bench)


def _speed_section(card: str) -> str:
    return card[card.index("## Speed") : card.index("## Accuracy")]


def test_speed_section_marks_unstable_figures_and_explains_the_bound():
    card = render_card(_report(_bench(UNSTABLE, STABLE, quick=True)), CardOptions("m"))
    section = _speed_section(card)
    if UPDATE:
        GOLDEN.write_text(section, encoding="utf-8")
    assert section == GOLDEN.read_text(encoding="utf-8")
    # the summary marks the unstable figure with its spread, and says the bench was quick
    assert "| **4.00x** (FLOP bound 3.50x), **unstable** (spread 0.04x), quick timing |" in card
    assert "| **2.00x** (FLOP bound 3.50x), quick timing |" in card
    # where the packed time went at 8 x 384: products (80 + 30) of 300 ms = 36.7%; dense
    # (300 + 60) of 600 ms = 60.0%; LayerNorm 90 of 300 = 30%
    assert "| 8 x 384 | packed | 80.00 (27%) | 30.00 (10%) | 90.00 (30%) | 100.00 (33%) |" in card
    assert "dense model spends 60.0% of its time" in section
    assert "packed model 36.7%" in section
    assert "bound of 2.40x, of which the speedup reaches 83.3%" in section  # 2.00 / 2.40


def test_a_full_bench_has_no_quick_note():
    card = render_card(_report(_bench(STABLE)), CardOptions("m"))
    assert "Quick timing" not in card and "quick timing" not in card
    assert "**unstable**" not in card


def _page(name: str, *shapes: BenchShape) -> ModelPage:
    report = _report(_bench(*shapes)) if shapes else _report(None)
    return ModelPage(Path(name), name, name, report, "")


def test_site_compares_speedups_at_the_largest_shape_all_models_share():
    small = dataclasses.replace(STABLE, batch=1, seq=128, speedup=1.2)
    mid = dataclasses.replace(STABLE, batch=1, seq=384, speedup=1.5)
    big = dataclasses.replace(STABLE, batch=8, seq=384, speedup=2.5)
    pages = [_page("a", small, mid, big), _page("b", small, mid), _page("c")]
    assert common_shape(pages) == (1, 384)  # (8, 384) is not shared; c has no bench
    rows = [_row(p, (1, 384)) for p in pages]
    assert [r.speedup for r in rows] == [1.5, 1.5, None]
    assert rows[0].shape == "1 x 128, 1 x 384, 8 x 384"
    home = _home_markdown(rows, (1, 384))
    assert "<th>Speedup at 1 x 384</th>" in home
    assert common_shape([_page("a", big), _page("b", small)]) is None
    assert "<th>Speedup</th>" in _home_markdown(rows, None)


def test_site_marks_an_unstable_common_shape():
    noisy = dataclasses.replace(UNSTABLE, batch=8, seq=384)
    rows = [_row(_page("a", noisy), (8, 384))]
    assert (
        '<td data-sort="4.0" title="timed at batch x sequence 8 x 384">4.00x (unstable)</td>'
        in (_home_markdown(rows, (8, 384)))
    )

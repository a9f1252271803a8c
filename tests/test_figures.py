"""Figures: every file is a valid image, the same record gives the same bytes, SVG tooltips
name each matrix, and the block maps decode to the analysed pattern."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import EXAMPLE_SPEC
from PIL import Image

from analyzer import analyze
from analyzer.publish.figures import occupancy_grid, write_figures


@pytest.fixture(scope="module")
def analysis(pruned_minilm):
    return analyze(pruned_minilm)


def test_figures_are_valid_images(tmp_path, analysis):
    paths = write_figures(analysis, tmp_path)
    assert sorted(p.name for p in paths) == sorted(
        f"{s}.{e}" for s in ("density", "heads", "blocks") for e in ("png", "svg")
    )
    for png in tmp_path.glob("*.png"):
        with Image.open(png) as image:
            image.verify()
        with Image.open(png) as image:
            assert image.width == 960 and image.height > 300
    for svg in tmp_path.glob("*.svg"):
        text = svg.read_text()
        assert text.startswith("<?xml") and text.rstrip().endswith("</svg>")
        assert "<dc:date>" not in text


def test_figures_are_deterministic(tmp_path, analysis):
    first = {p.name: p.read_bytes() for p in write_figures(analysis, tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in write_figures(analysis, tmp_path / "b")}
    assert first == second


def test_density_svg_tooltips(tmp_path, analysis):
    write_figures(analysis, tmp_path)
    titles = re.findall(r"<title>([^<]*)</title>", (tmp_path / "density.svg").read_text())
    linear = [m for m in analysis.matrices if m.role in ("q", "k", "v", "o", "ffn_in", "ffn_out")]
    assert len(titles) == len(linear) == 36
    # layer 4 lost FFN units 1000-1535: 1000 of 1536 rows kept -> 65.1%
    name = "bert.encoder.layer.4.intermediate.dense.weight"
    assert f"{name}: 65.1% dense (384,000 of 589,824 weights)" in titles


def test_occupancy_grid_matches_the_zeroed_blocks(analysis):
    """Layer 5's query lost 32x32 blocks (0, 0) and (3, 7) and nothing else."""
    (query,) = [
        m for m in analysis.matrices if m.name.endswith("layer.5.attention.self.query.weight")
    ]
    assert query.block.kind == "32x32"
    grid = occupancy_grid(query)
    assert grid.shape == (12, 12)
    expected = np.ones((12, 12), dtype=bool)
    for r, c in EXAMPLE_SPEC.zero_q_blocks[5]:
        expected[r, c] = False
    assert (grid == expected).all()


def test_no_heads_figure_without_geometry(tmp_path, analysis):
    import dataclasses

    bare = dataclasses.replace(
        analysis, heads=dataclasses.replace(analysis.heads, total=0, layers=())
    )
    names = {p.name for p in write_figures(bare, tmp_path)}
    assert "heads.png" not in names and "density.png" in names

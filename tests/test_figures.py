"""Figures: every file is a valid image, the same record gives the same bytes, SVG tooltips
name each matrix, and the block maps decode to the analysed pattern."""

from __future__ import annotations

import dataclasses
import re
from html import unescape

import decoder_reports
import numpy as np
import pytest
from conftest import EXAMPLE_SPEC
from PIL import Image

from analyzer import analyze
from analyzer.publish.figures import occupancy_grid, write_figures
from analyzer.records import MatrixPattern


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
    # its zeros are whole FFN units: the tooltip names the pattern too
    assert f"{name}: 65.1% dense (384,000 of 589,824 weights); pattern channels" in titles


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


# --------------------------------------------------------------------------- decoders


def _svg_texts(path) -> list[str]:
    """The text a figure shows (fonts are not converted to paths: svg.fonttype none)."""
    return [unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", path.read_text())]


def test_decoder_heads_figure_counts_query_heads_and_kv_groups(tmp_path):
    analysis = decoder_reports.analysis()
    write_figures(analysis, tmp_path)
    texts = _svg_texts(tmp_path / "heads.svg")
    heads = decoder_reports.LAYERS * decoder_reports.HEADS
    groups = decoder_reports.LAYERS * decoder_reports.KV_HEADS
    size = decoder_reports.HEADS // decoder_reports.KV_HEADS
    assert f"{len(decoder_reports.DEAD_HEADS)} of {heads} query heads removed" in texts
    assert f"1 of {groups} KV groups removed" in texts  # heads 4-7 are all of group 1
    assert f"layer x query head; KV groups of {size}" in texts
    assert "decoder layer" in texts


def test_decoder_density_and_block_maps(tmp_path):
    analysis = decoder_reports.analysis()
    names = {p.name for p in write_figures(analysis, tmp_path)}
    assert names == {f"{s}.{e}" for s in ("density", "heads", "blocks") for e in ("png", "svg")}
    density = _svg_texts(tmp_path / "density.svg")
    assert {"MLP gate", "MLP up", "MLP down", "decoder layer"} <= set(density)
    titles = re.findall(r"<title>([^<]*)</title>", (tmp_path / "density.svg").read_text())
    assert len(titles) == decoder_reports.LAYERS * len(decoder_reports.MODULES)
    blocks = _svg_texts(tmp_path / "blocks.svg")
    # layer 0: every matrix 2:4, half its weights, all of its zeros explained
    assert blocks.count("2:4, 50.0%") == len(decoder_reports.MODULES)
    assert blocks.count("100%") == len(decoder_reports.MODULES)
    kept = decoder_reports.LAYERS
    base = decoder_reports.BASE_LAYERS
    assert f"{kept} of the base's {base} layers kept ({base - kept} removed)" in blocks


def test_a_layer_of_zeros_is_drawn_as_removed(tmp_path):
    analysis = decoder_reports.analysis(base=False)
    zeroed = tuple(
        dataclasses.replace(m, nnz=0, density=0.0, pattern=MatrixPattern("layer", 1.0))
        if m.layer == 1
        else m
        for m in analysis.matrices
    )
    write_figures(dataclasses.replace(analysis, matrices=zeroed), tmp_path)
    blocks = _svg_texts(tmp_path / "blocks.svg")
    assert blocks.count("all zeros, 0.0%") == len(decoder_reports.MODULES)
    assert not any("layers kept" in t for t in blocks)  # no base: no depth to report


def test_decoder_figures_are_deterministic(tmp_path):
    analysis = decoder_reports.analysis()
    first = {p.name: p.read_bytes() for p in write_figures(analysis, tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in write_figures(analysis, tmp_path / "b")}
    assert first == second

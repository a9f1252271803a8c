"""`prunecard site` for decoder LLM reports: the home table shows query heads with KV groups,
the main sparsity pattern and perplexity; model pages show KV groups, MLP channels,
perplexity, decoding and 2:4 timings; pages keep their Content-Security-Policy."""

from __future__ import annotations

import dataclasses
import re

import decoder_reports as spec
import pytest
from test_site import _first_table

from analyzer.publish.card import write_card
from analyzer.publish.site import build_site


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("decoder-site")
    full = spec.report()
    bare = spec.report(
        analysis=spec.analysis(base=False),
        bench=None,
        perplexity=None,
        publication=dataclasses.replace(spec.PUBLICATION, model_id="prunecard/tiny-llama-bare"),
    )
    dirs = [
        write_card(base / name, report, checkpoint=base / "no-such-checkpoint")
        for name, report in (("full", full), ("bare", bare))
    ]
    return build_site(dirs, base / "out").parent


def test_home_table_shows_decoder_figures(site):
    header, *rows = _first_table((site / "index.html").read_text())
    col = {name: i for i, name in enumerate(header)}
    assert {"Heads removed", "Pattern", "Perplexity", "EM", "F1"} <= set(col)
    full, bare = rows  # the benchmarked model first
    assert full[0] == bare[0].replace("-bare", "-2of4")
    heads, groups = spec.LAYERS * spec.HEADS, spec.LAYERS * spec.KV_HEADS
    assert (
        full[col["Heads removed"]] == f"{len(spec.DEAD_HEADS)} of {heads} (KV groups 1 of {groups})"
    )
    matrices = spec.LAYERS * len(spec.MODULES)
    assert full[col["Pattern"]] == f"2:4 ({len(spec.MODULES)} of {matrices} matrices)"
    assert full[col["Perplexity"]] == f"{spec.PERPLEXITY.perplexity:.2f}"
    assert full[col["Speedup at 4 x 512"]] == f"{3.30 / 2.80:.2f}x"
    assert full[col["EM"]] == full[col["F1"]] == "not measured"
    assert bare[col["Perplexity"]] == bare[col["Speedup at 4 x 512"]] == "not measured"
    home = (site / "index.html").read_text()
    assert "perplexity is a causal LM" in home


def test_decoder_model_page(site):
    html = (site / "models" / "prunecard-tiny-llama-2of4" / "index.html").read_text()
    details = html[html.index("Measurement details") :]
    for text in (
        "KV groups kept",
        "MLP channels kept",
        "Query heads removed",
        f"layers {spec.BASE_LAYERS} -&gt; {spec.LAYERS}",
        "Perplexity (lower is better) by the protocol below",
        "papers: non-overlapping windows as in SparseGPT and Wanda",
        "WikiText-2 raw, test split",
        "<code>wikitext</code>, <code>wikitext-2-raw-v1</code>, <code>test</code>",
        "Decoding (greedy, KV cache)",
        "2:4 matrices as semi-structured sparse tensors",
        f"{2.10 / 1.50:.2f}x",
    ):
        assert text in details, text
    assert "<td>1/2</td>" in details  # layer 1 keeps one of its two KV groups
    assert len(re.findall(r"<svg\b", html)) >= 3  # density, heads, blocks, inline
    assert re.search(r'<meta http-equiv="Content-Security-Policy"', html)


def test_bare_decoder_page_says_not_measured(site):
    html = (site / "models" / "prunecard-tiny-llama-bare" / "index.html").read_text()
    details = html[html.index("Measurement details") :]
    assert details.count("Not measured.") == 2  # evaluation and timing


def test_compare_page_plots_perplexity(site):
    html = (site / "compare.html").read_text()
    assert "Perplexity against speedup" in html and "Perplexity against density" in html
    assert "<title>prunecard/tiny-llama-2of4: Speedup" in html
    assert "SQuAD v2 F1 against" not in html  # no model was evaluated on SQuAD v2
    assert "(lower is better)" in html  # the perplexity axis says which way is better

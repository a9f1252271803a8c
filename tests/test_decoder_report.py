"""`report` end to end on a small Llama, as a user runs it: the command line writes the card,
its figures and records; `site` turns the folder into a page; `audit` checks the card
against the weights. Every expected figure is counted here from the saved tensors."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal

import pytest
import torch
import yaml
from decoders import build_decoder, layer_weight
from safetensors.torch import load_file

from analyzer.cli.main import main
from analyzer.publish.report import read_report

HEADS, KV, HEAD_DIM = 8, 2, 8  # grouped-query attention: groups of 4 query heads
SIZES = dict(layers=2, hidden=64, heads=HEADS, kv_heads=KV, intermediate=96, head_dim=HEAD_DIM)
GROUP = HEADS // KV


def _pct(part: int, whole: int) -> str:
    """A share as cards print it: 1 decimal, halves rounded up (5 of 16 is 31.3%)."""
    return f"{(Decimal(100 * part) / whole).quantize(Decimal('0.1'), ROUND_HALF_UP)}%"


def _prune(state: dict[str, torch.Tensor]) -> None:
    """2:4 by magnitude in every decoder linear weight; then layer 0 loses K/V group 0 (the
    output columns of its 4 query heads) and layer 1 one query head of group 1 (a dead head
    inside a live group, which packing keeps)."""
    for name, weight in state.items():
        if ".layers." in name and weight.ndim == 2:
            groups = weight.view(-1, 4)
            groups.scatter_(1, groups.abs().argsort(dim=1)[:, :2], 0)
    layer_weight(state, 0, "self_attn.o_proj")[:, : GROUP * HEAD_DIM] = 0
    layer_weight(state, 1, "self_attn.o_proj")[:, 5 * HEAD_DIM : 6 * HEAD_DIM] = 0


@pytest.fixture(scope="module")
def llama_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("llama-report")
    model = build_decoder(root / "tiny-llama", "llama", prune=_prune, **SIZES)
    out = root / "report"
    args = ["report", str(model), "--out", str(out), "--quick", "--accept-unstable"]
    assert main([*args, "--limit-tokens", "300", "--name", "tiny-llama-2of4"]) == 0
    return model, out


def test_the_card_states_the_figures_of_the_weights(llama_report):
    model, out = llama_report
    state = load_file(model / "model.safetensors")
    linear = [t for n, t in state.items() if ".layers." in n and t.ndim == 2]
    nnz, dense = sum(int(t.count_nonzero()) for t in linear), sum(t.numel() for t in linear)
    assert len(linear) == 14  # 2 layers x q, k, v, o, gate, up, down

    card = (out / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["pipeline_tag"] == "text-generation"
    (result,) = front["model-index"][0]["results"]
    assert result["task"]["type"] == "text-generation"
    (metric,) = result["metrics"]
    report = read_report(out)
    assert metric["type"] == "perplexity"
    assert metric["value"] == round(report.perplexity.perplexity, 2)
    assert report.perplexity.tokens == 300

    assert f"**{_pct(nnz, dense)}** ({nnz:,} of {dense:,})" in card
    # layer 0: 4 dead query heads = group 0, removed; layer 1: one dead head in a live
    # group, which packing keeps: dead, never removed
    removed, dead_kept, groups = GROUP, 1, 1
    assert (
        f"| Attention heads removed (query heads) | **{removed} of 16** ({_pct(removed, 16)}) |"
        in card
    )
    assert (
        f"| Query heads dead, kept by packing (their KV group is live) | **{dead_kept} of 16**"
        in card
    )
    assert "| KV groups removed" in card and f"**{groups} of 4** ({_pct(groups, 4)})" in card
    assert "| Sparsity patterns of the linear matrices | 2:4 (14 of 14) |" in card
    assert "AutoModelForCausalLM" in card and "question-answering" not in card
    assert "no base given: dense figures are relative to the checkpoint's own shapes" in card
    for figure in ("density", "heads", "blocks"):
        assert (out / "assets" / f"{figure}.svg").is_file()


def test_the_packed_model_keeps_every_live_group(llama_report):
    _, out = llama_report
    config = json.loads((out / "packed" / "config.json").read_text())
    assert config["prunecard_packing"]["kv_heads"] == [KV - 1, KV]
    packed = load_file(out / "packed" / "model.safetensors")
    assert packed["model.layers.0.self_attn.k_proj.weight"].shape[0] == (KV - 1) * HEAD_DIM
    assert packed["model.layers.1.self_attn.q_proj.weight"].shape[0] == HEADS * HEAD_DIM


def test_site_and_audit_take_the_report(llama_report, tmp_path, capsys):
    model, out = llama_report
    assert main(["site", str(out), "--out", str(tmp_path / "site")]) == 0
    page = (tmp_path / "site" / "site" / "models" / "tiny-llama-2of4" / "index.html").read_text()
    perplexity = read_report(out).perplexity.perplexity
    assert f"{perplexity:.2f}" in page and "KV groups" in page and "2:4" in page

    capsys.readouterr()
    args = ["audit", str(model), "--card", str(out / "README.md")]
    assert main([*args, "--bench", str(out / "bench.json")]) == 0
    assert "0 mismatch" in capsys.readouterr().out


def test_audit_checks_the_perplexity_against_its_record(llama_report, tmp_path, capsys):
    """`audit --eval` takes eval's perplexity record (or the report.json holding it): the
    card's figure must equal it as printed; a record that measured otherwise fails."""
    model, out = llama_report
    card = ["audit", str(model), "--card", str(out / "README.md")]
    capsys.readouterr()
    assert main([*card, "--eval", str(out / "perplexity.json")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "perplexity" in line]
    assert any(line.split()[-2:] == ["evaluation", "ok"] for line in lines)

    record = json.loads((out / "perplexity.json").read_text())
    record["perplexity"] = record["perplexity"] * 1.01
    other = tmp_path / "other.json"
    other.write_text(json.dumps(record))
    assert main([*card, "--eval", str(other)]) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if "perplexity" in line]
    assert any(line.split()[-2:] == ["evaluation", "mismatch"] for line in lines)


def test_a_base_config_is_named_on_the_card_never_its_path(llama_report, tmp_path, capsys):
    """`--base-config` with an absolute path: the card states the depth and width removed
    and names the base file, never the folder it lies in on this machine."""
    model, _ = llama_report
    config = json.loads((model / "config.json").read_text())
    base = tmp_path / "dense-base" / "config.json"
    base.parent.mkdir()
    base.write_text(json.dumps({**config, "num_hidden_layers": 4, "intermediate_size": 128}))
    out = tmp_path / "report"
    args = ["report", str(model), "--out", str(out), "--no-bench", "--limit-tokens", "100"]
    assert main([*args, "--base-config", str(base.resolve())]) == 0
    card = (out / "README.md").read_text()
    assert f"layers 4 -> {SIZES['layers']}, intermediate size 128 -> 96" in card
    assert str(tmp_path) not in card and "`dense-base/config.json`" in card
    # 100 tokens fit one window of 256: resampling one window cannot give an interval
    assert read_report(out).perplexity.windows == 1
    assert "one window: no confidence interval" in card and "95% CI" not in card
    assert str(tmp_path) not in (out / "report.json").read_text()
    capsys.readouterr()
    assert main(["audit", str(model), "--card", str(out / "README.md")]) == 0

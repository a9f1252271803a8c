"""The FLOP model against a hand count; bench end to end through the CLI on the demo."""

from __future__ import annotations

import json

import pytest
import torch

from analyzer import InputError, load_record
from analyzer.cli.main import main
from analyzer.records import Bench
from analyzer.runtime.bench import _iqr, resolve_options
from analyzer.weights.flops import LayerShape, encoder_flops, model_layer_shapes


def test_flops_match_a_hand_count():
    # one layer: 2 heads of 4, hidden 8, FFN 16; batch 1 x seq 3 = 3 tokens
    #   Q, K, V, O: 4 matrices x 3 tokens x 8 x 8 multiply-adds = 768 MACs
    #   scores: 2 heads x 3 x 3 query-key pairs x 4 = 72 MACs; context: the same, 72
    #   FFN: 2 matrices x 3 tokens x 8 x 16 = 768 MACs
    #   total 1680 MACs = 3360 FLOPs
    assert encoder_flops([LayerShape(heads=2, head_dim=4, hidden=8, ffn=16)], 1, 3) == 3360
    # batch 2 doubles everything; no heads and no units leave nothing
    assert encoder_flops([LayerShape(2, 4, 8, 16)], 2, 3) == 6720
    assert encoder_flops([LayerShape(0, 4, 8, 0)], 4, 9) == 0


def test_layer_shapes_from_a_packed_config():
    config = {
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "hidden_size": 32,
        "intermediate_size": 64,
        "pruned_heads": {"1": [0, 2]},
        "prunecard_packing": {"intermediate_sizes": [64, 64], "units_kept": [10, 0]},
    }
    assert model_layer_shapes(config) == (LayerShape(4, 8, 32, 10), LayerShape(2, 8, 32, 0))
    dense = {k: v for k, v in config.items() if k not in ("pruned_heads", "prunecard_packing")}
    assert model_layer_shapes(dense) == (LayerShape(4, 8, 32, 64),) * 2


def test_defaults_per_device():
    if not torch.cuda.is_available():
        assert resolve_options(None, None, None) == ("cpu", "fp32", 1)
        with pytest.raises(InputError, match="no CUDA device"):
            resolve_options("cuda", None, None)
    assert resolve_options("cpu", "bf16", 8) == ("cpu", "bf16", 8)
    with pytest.raises(InputError, match="--align"):
        resolve_options("cpu", None, 0)


def test_iqr():
    assert _iqr([1.0, 2.0, 3.0, 4.0, 5.0]) == 2.0
    assert _iqr([7.0]) == 0.0


def test_bench_quick_through_the_cli(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "--quick", "--device", "cpu", "--threads", "1", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "speedup" in printed and "FLOP bound" in printed
    data = json.loads(out.read_text())
    assert data["schema"] == "prunecard.bench/1"
    assert data["threads"] == 1 and data["device"] == "cpu" and data["dtype"] == "fp32"
    (shape,) = data["shapes"]
    assert (shape["batch"], shape["seq"]) == (1, 128)
    for key in ("dense_ms", "packed_ms", "speedup", "flop_bound"):
        assert shape[key] > 0
    assert shape["speedup"] == pytest.approx(shape["dense_ms"] / shape["packed_ms"])
    # the demo keeps 60% of its heads and 40% of its FFN units: packing must save work
    assert 1.5 < shape["flop_bound"] < 3.0
    assert data["equivalence"]["max_abs_diff"] <= 1e-4
    assert data["environment"]["cores"] >= 1 and data["environment"]["torch"] == torch.__version__
    record = load_record(Bench, out)
    assert record.packed_bytes < record.original_bytes


def test_bench_refuses_graphs_without_cuda(capsys):
    assert main(["bench", "--quick", "--device", "cpu", "--graphs"]) == 2
    assert "--graphs needs --device cuda" in capsys.readouterr().err

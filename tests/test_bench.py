"""The FLOP model against a hand count; bench end to end through the CLI on the demo; the
timing verdicts and exit codes of `bench` and `report` on a fake clock."""

from __future__ import annotations

import json

import pytest
import torch
from fake_timer import patch_bench

from analyzer import InputError, load_record
from analyzer.cli.main import main
from analyzer.records import Bench
from analyzer.runtime.bench import resolve_options
from analyzer.weights.flops import LayerShape, forward_flops, model_layer_shapes


def test_flops_match_a_hand_count():
    # one layer: 2 heads of 4, hidden 8, FFN 16; batch 1 x seq 3 = 3 tokens
    #   Q, K, V, O: 4 matrices x 3 tokens x 8 x 8 multiply-adds = 768 MACs
    #   scores: 2 heads x 3 x 3 query-key pairs x 4 = 72 MACs; context: the same, 72
    #   FFN: 2 matrices x 3 tokens x 8 x 16 = 768 MACs
    #   total 1680 MACs = 3360 FLOPs
    assert forward_flops([LayerShape(heads=2, head_dim=4, hidden=8, ffn=16)], 1, 3) == 3360
    # batch 2 doubles everything; no heads and no units leave nothing
    assert forward_flops([LayerShape(2, 4, 8, 16)], 2, 3) == 6720
    assert forward_flops([LayerShape(0, 4, 8, 0)], 4, 9) == 0


def test_layer_shapes_from_a_packed_config():
    config = {
        "model_type": "bert",
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


def test_bench_quick_through_the_cli(tmp_path, capsys):
    out = tmp_path / "bench.json"
    # real timing on a shared machine may be implausible; the fake-clock tests below cover that
    argv = ["bench", "--quick", "--device", "cpu", "--threads", "1", "--accept-unstable"]
    code = main([*argv, "--json", str(out)])
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


# The demo's FLOP bound at 1 x 128 lies between 1.5x and 3.0x (asserted above), so a fake
# 1.25x speedup is below it and a fake 4x above it whatever the exact figure.
STEADY_DENSE, STEADY_PACKED = [12.5, 12.6], [10.0, 10.05]  # 1.25x, spreads under 1%


def _bench(tmp_path, *extra):
    out = tmp_path / "bench.json"
    argv = ["bench", "--quick", "--device", "cpu", "--no-profile", "--json", str(out), *extra]
    return main(argv), out


def test_a_steady_fake_clock_is_stable(tmp_path, monkeypatch, capsys):
    patch_bench(monkeypatch, STEADY_DENSE, STEADY_PACKED)
    code, out = _bench(tmp_path)
    assert code == 0
    (shape,) = load_record(Bench, out).shapes
    assert shape.verdict == "stable"
    assert shape.repeats == 5  # --quick judges after 5 rounds; both spreads were under 5%
    assert shape.dense_samples_ms[:2] == pytest.approx((12.6, 12.5))  # after 1 warm-up
    # samples 12.6, 12.5, 12.6, 12.5, 12.6 and 10.05, 10.0, ...: medians 12.6 and 10.05
    assert shape.speedup == pytest.approx(12.6 / 10.05)
    record = load_record(Bench, out)
    assert record.quick and record.threshold == 0.05 and record.load_before == (0.1, 0.2, 0.3)
    assert "1 x 128: 5 runs, stable" in capsys.readouterr().out


def test_a_noisy_fake_clock_is_unstable_but_publishable(tmp_path, monkeypatch, capsys):
    # dense alternates 12 and 14 ms: IQR / median = 2 / 13 = 15.4%, over 5%, under 25%
    patch_bench(monkeypatch, [12.0, 12.0, 14.0, 14.0], STEADY_PACKED)
    code, out = _bench(tmp_path, "--budget", "1")
    assert code == 0
    (shape,) = load_record(Bench, out).shapes
    assert shape.verdict.startswith("unstable (dense spread 15.4% of the median after")
    # the budget (1 s of fake time) ended it: rounds of 13 + 10 ms on average
    assert 1.0 <= sum(shape.dense_samples_ms + shape.packed_samples_ms) / 1000 < 1.05


def _prunecard_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("prunecard:")]


def test_a_speedup_above_the_bound_exits_1_naming_the_shape(tmp_path, monkeypatch, capsys):
    patch_bench(monkeypatch, [40.0, 40.2], STEADY_PACKED)  # medians 40.2 / 10.05 = 4.00x
    code, out = _bench(tmp_path)
    assert code == 1
    err = _prunecard_lines(capsys.readouterr().err)  # besides the progress totals line
    assert len(err) == 1
    assert err[0].startswith("prunecard: implausible timing at batch 1 x 128: speedup 4.00x")
    assert "is above the FLOP bound" in err[0] and "--accept-unstable" in err[0]
    (shape,) = load_record(Bench, out).shapes  # the record is kept, marked
    assert shape.verdict.startswith("unstable (speedup 4.00x is above the FLOP bound")
    code, _ = _bench(tmp_path, "--accept-unstable")
    assert code == 0


def test_a_spread_over_a_quarter_exits_1(tmp_path, monkeypatch, capsys):
    patch_bench(monkeypatch, [10.0, 10.0, 20.0, 20.0], [10.0, 10.05])  # 10 / 15 = 67%
    code, _ = _bench(tmp_path)
    assert code == 1
    (line,) = _prunecard_lines(capsys.readouterr().err)
    assert "batch 1 x 128: dense spread" in line and "(over 25.0%)" in line


def test_report_refuses_an_implausible_timing_and_writes_nothing(tmp_path, monkeypatch, capsys):
    patch_bench(monkeypatch, [40.0, 40.2], STEADY_PACKED)
    out = tmp_path / "report"
    argv = ["report", "--quick", "--no-eval", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 1
    assert "implausible timing at batch 1 x 128" in capsys.readouterr().err
    assert not out.exists()
    assert main([*argv, "--accept-unstable"]) == 0
    card = (out / "README.md").read_text()
    assert "**4.00x** (FLOP bound" in card and "**unstable** (spread" in card
    assert "**Unstable at 1 x 128:** speedup 4.00x is above the FLOP bound" in card
    assert "> **Quick timing.**" in card and ", quick timing |" in card


def test_report_publishes_a_stable_timing(tmp_path, monkeypatch):
    patch_bench(monkeypatch, STEADY_DENSE, STEADY_PACKED)
    out = tmp_path / "report"
    assert main(["report", "--quick", "--no-eval", "--device", "cpu", "--out", str(out)]) == 0
    card = (out / "README.md").read_text()
    assert "**1.25x** (FLOP bound" in card and "**unstable**" not in card
    assert "Unstable at" not in card
    assert "| 5 | stable |" in card


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--repeats", "0"], "--repeats must lie between 1 and 200, got 0"),
        (["--threshold", "1.5"], "--threshold must lie between 0 and 1, got 1.5"),
        (["--budget", "0"], "--budget must be a positive number of seconds, got 0.0"),
    ],
)
def test_bad_protocol_options_are_one_line_errors(option, message, capsys):
    assert main(["bench", "--quick", "--device", "cpu", *option]) == 2
    assert capsys.readouterr().err == f"prunecard: error: {message}\n"

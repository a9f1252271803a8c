"""`bench` on causal LMs: the FLOP model with grouped-query attention and gated MLPs, the
greedy decoding run, and the record's structure on a fake clock (timing-independent)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from decoders import build_decoder
from fake_timer import patch_bench
from hypothesis import given
from hypothesis import strategies as st
from test_decoder_packing import SIZES, prune_spec, wikipedia_ids

from analyzer import load_record
from analyzer.cli.main import main
from analyzer.records import Bench
from analyzer.runtime.bench import EQUIVALENCE_TEXT
from analyzer.runtime.decode import greedy_runner
from analyzer.runtime.packing import load, pack
from analyzer.runtime.plan import QUICK_LM_PLAN
from analyzer.runtime.semi_structured import is_2of4
from analyzer.weights.flops import LayerShape, decode_flops, forward_flops, model_layer_shapes

GQA_LAYER = LayerShape(heads=4, head_dim=2, hidden=8, ffn=16, kv_heads=2, gated=True)


def test_flops_of_a_gqa_gated_layer_match_a_hand_count():
    # batch 1 x seq 3; 4 query heads of 2 (width 8), 2 K/V heads (width 4), hidden 8, MLP 16
    #   Q, O: 2 x 3 tokens x 8 x 8 = 384 MACs; K, V: 2 x 3 x 8 x 4 = 192 MACs
    #   scores and context: 2 x 4 heads x 3 x 3 pairs x 2 = 144 MACs
    #   gate, up, down: 3 x 3 x 8 x 16 = 1152 MACs; total 1872 MACs
    assert forward_flops([GQA_LAYER], 1, 3) == 2 * 1872
    # decoding 3 tokens after a 2-token prompt: per token 576 MACs of projections and MLP,
    # 16 MACs per attended position; prefill 2 x 576 + 4 x 16, then steps at context 3 and 4
    assert decode_flops([GQA_LAYER], 1, 2, 3) == 2 * (1216 + 624 + 640)


def test_layer_shapes_of_a_packed_decoder_config():
    config = {
        "model_type": "llama",
        "num_hidden_layers": 2,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "hidden_size": 64,
        "intermediate_size": 96,
        "pruned_heads": {"1": [4, 5, 6, 7]},
        "prunecard_packing": {"units_kept": [90, 0], "kv_heads": [2, 1]},
    }
    assert model_layer_shapes(config) == (
        LayerShape(8, 16, 64, 90, kv_heads=2, gated=True),
        LayerShape(4, 16, 64, 0, kv_heads=1, gated=True),
    )


@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_a_two_of_four_mask_is_2of4_and_a_third_non_zero_breaks_it(rows, groups, seed):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(rows, groups * 4, generator=generator) + 10  # no accidental zeros
    keep = torch.rand(rows, groups, 4, generator=generator).argsort(dim=2) < 2
    weight = weight * keep.reshape(rows, -1)
    assert is_2of4(weight)
    row, group = seed % rows, seed % groups
    weight[row, group * 4 : group * 4 + 4] = 1.0  # 4 of 4 in one group
    assert not is_2of4(weight)
    assert not is_2of4(torch.ones(4, 6))  # the input width is not a multiple of 4


def test_greedy_runner_generates_what_transformers_generates(tmp_path):
    model = load(build_decoder(tmp_path / "llama", "llama", **SIZES))
    prompt = wikipedia_ids(2, 12)["input_ids"]
    with torch.inference_mode():
        ours = greedy_runner(model, prompt, 6)()
        theirs = model.generate(prompt, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    assert torch.equal(ours, theirs[:, prompt.shape[1] :])


STEADY_DENSE, STEADY_PACKED = [12.5, 12.6], [10.0, 10.05]  # 1.25x, spreads under 1%
SHAPES = ["--batch", "1", "2", "--seq", "16", "--prompt-tokens", "8", "--new-tokens", "4"]


@pytest.fixture(scope="module")
def pruned_llama(tmp_path_factory):
    return build_decoder(
        tmp_path_factory.mktemp("bench") / "llama", "llama", prune=prune_spec(), **SIZES
    )


def test_bench_of_a_causal_lm_records_prefill_and_decoding(
    pruned_llama, tmp_path, monkeypatch, capsys
):
    patch_bench(monkeypatch, STEADY_DENSE, STEADY_PACKED)
    out = tmp_path / "bench.json"
    argv = ["bench", str(pruned_llama), "--quick", "--device", "cpu", "--no-profile", *SHAPES]
    assert main([*argv, "--decode-batch", "1", "16", "--json", str(out)]) == 0

    record = load_record(Bench, out)
    assert [(s.batch, s.seq) for s in record.shapes] == [(1, 16), (2, 16)]
    assert [(d.batch, d.prompt, d.new_tokens) for d in record.decode] == [(1, 8, 4), (16, 8, 4)]
    for rate in record.decode:
        # the fake models take 12.6 and 10.05 ms (medians) per run of 4 tokens per sequence
        assert rate.dense_tokens_per_s == pytest.approx(rate.batch * 4 / 0.0126)
        assert rate.packed_tokens_per_s == pytest.approx(rate.batch * 4 / 0.01005)
        assert rate.speedup == pytest.approx(12.6 / 10.05)
        assert rate.repeats == 5 and rate.verdict == "stable"
    assert record.semi_structured == ()  # a CPU has no sparse tensor cores: nothing claimed
    assert record.equivalence.max_abs_diff <= record.equivalence.tolerance
    assert record.equivalence.inputs.startswith(f"{len(EQUIVALENCE_TEXT)} Wikipedia paragraphs")
    # packing removed 4 of 6 K/V groups and 75 of 192 MLP channels: the bound is well above 1
    assert all(s.flop_bound > 1.25 for s in record.shapes)
    printed = capsys.readouterr().out
    assert "dense tok/s" in printed and "packed tok/s" in printed
    assert "2:4 sparse      not timed: needs a CUDA device and fp16 or bf16" in printed


def test_bench_of_a_packed_causal_lm_matches_its_unpacked_bound(
    pruned_llama, tmp_path, monkeypatch
):
    """Packing the file first changes nothing in what bench times: the same FLOP bound."""
    pack(pruned_llama, tmp_path / "packed")
    bounds = []
    for path in (pruned_llama, tmp_path / "packed"):
        patch_bench(monkeypatch, STEADY_DENSE, STEADY_PACKED)
        out = tmp_path / f"{path.name}.json"
        argv = ["bench", str(path), "--quick", "--device", "cpu", "--no-profile", *SHAPES]
        assert main([*argv, "--decode-batch", "1", "--json", str(out)]) == 0
        bounds.append([s.flop_bound for s in load_record(Bench, out).shapes])
    assert bounds[0] == pytest.approx(bounds[1])


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--decode-batch", "0"], "decode batch sizes, prompt and new tokens must be positive"),
        (["--new-tokens", "0"], "decode batch sizes, prompt and new tokens must be positive"),
        (["--fuse"], "--fuse is for BERT-family encoders, not causal LMs"),
    ],
)
def test_bad_decode_options_are_one_line_errors(pruned_llama, option, message, capsys):
    assert main(["bench", str(pruned_llama), "--quick", "--device", "cpu", *option]) == 2
    assert capsys.readouterr().err == f"prunecard: error: {message}\n"


def test_decoding_past_the_positions_is_refused(pruned_llama, capsys):
    argv = ["bench", str(pruned_llama), "--quick", "--device", "cpu", "--new-tokens", "300"]
    assert main(argv) == 2
    prompt = QUICK_LM_PLAN.prompt_tokens  # --quick's prompt, then the 300 new tokens
    assert f"fewer than the {prompt + 300} tokens to run" in capsys.readouterr().err


LLM_2OF4 = Path(__file__).resolve().parent.parent / "benchmarks" / "llm_2of4.py"


def test_the_2of4_gpu_benchmark_runs_dry_on_the_cpu(tmp_path):
    run = subprocess.run(
        [sys.executable, str(LLM_2OF4), "--cpu-dry-run", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    record = json.loads((tmp_path / "llm_2of4.json").read_text())
    assert record["dry_run"] and record["backend"]["cusparselt"] is False
    assert {name: tuple(r["shape"]) for name, r in record["matrices"].items()} == {
        **dict.fromkeys(("q", "k", "v", "o"), (64, 64)),
        "gate": (176, 64),
        "up": (176, 64),
        "down": (64, 176),
    }
    assert all(r["max_rel_error"] == 0 for r in record["matrices"].values())
    assert "both sides dense on the CPU" in run.stdout
    if not torch.cuda.is_available():
        plain = subprocess.run(
            [sys.executable, str(LLM_2OF4)], capture_output=True, text=True, timeout=120
        )
        assert plain.returncode == 0 and "needs a CUDA GPU" in plain.stdout

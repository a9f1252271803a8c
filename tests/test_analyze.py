"""`analyze` on real checkpoints whose counts are known from how they were built."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import (
    EXAMPLE_SPEC,
    LINEAR_DENSE,
    PruneSpec,
    build_minilm,
    nn_pruning_record,
)
from safetensors.torch import load_file

from analyzer import analyze, from_dict, load_record, to_dict
from analyzer.cli.tables import format_analysis
from analyzer.records import Analysis
from analyzer.runtime.demo import minilm_path


def _bare_counts() -> tuple[int, int]:
    """nnz and size of every float tensor of the unpruned MiniLM, counted directly."""
    state = load_file(str(minilm_path() / "model.safetensors"))
    floats = [v for v in state.values() if v.is_floating_point()]
    return sum(int((v != 0).sum()) for v in floats), sum(v.numel() for v in floats)


def test_pruned_minilm_totals(pruned_minilm):
    a = analyze(pruned_minilm)
    spec = EXAMPLE_SPEC
    assert a.family == "bert" and a.num_layers == 6 and a.num_heads == 12
    assert a.linear.dense == LINEAR_DENSE
    assert a.linear.nnz == LINEAR_DENSE - spec.linear_zeros
    assert a.linear.packed == spec.linear_packed
    assert a.heads.total == 72
    assert a.heads.removed == spec.heads_removed == 6
    assert a.ffn.units_total == 6 * 1536
    assert a.ffn.units_kept == 6 * 1536 - 100 - 536


def test_pruned_minilm_heads_per_layer(pruned_minilm):
    layers = {h.layer: h for h in analyze(pruned_minilm).heads.layers}
    assert layers[0].removed == (1, 5) and layers[0].removed_in_checkpoint == (1, 5)
    assert layers[3].removed == (0,) and layers[3].kept == 11
    assert layers[1].removed == (2,) and layers[1].removed_as_zeros == (2,)
    assert layers[2].removed == (4, 7)
    assert layers[5].removed == ()  # zero query blocks never remove a head


def test_overall_counts_removed_heads_at_dense_size(pruned_minilm):
    a = analyze(pruned_minilm)
    base_nnz, base_size = _bare_counts()
    qa = 2 * 384 + 2  # the QA head added to MiniLM (bias zeros: 2)
    physical = 3 * (4 * 32 * 384 + 3 * 32)  # weights + q/k/v biases of 3 removed heads
    assert a.overall.dense == base_size + qa
    assert a.overall.stored == base_size + qa - physical
    # zeroed: linear zeros + FFN biases are not zeroed by the spec; QA bias is zero
    assert a.overall.nnz == base_nnz + 2 * 384 - EXAMPLE_SPEC.linear_zeros - 3 * 3 * 32 + 0
    assert a.overall.density == pytest.approx(a.overall.nnz / a.overall.dense)
    # packing drops the 3 zero-value heads (Q/K/V rows and biases, O columns) and the
    # 636 dead FFN units (a row, a bias and a column each)
    zero_heads = 3 * (4 * 32 * 384 + 3 * 32)
    dead_units = (100 + 536) * (2 * 384 + 1)
    assert a.overall.packed == a.overall.stored - zero_heads - dead_units


def test_matrix_records(pruned_minilm):
    a = analyze(pruned_minilm)
    q0 = next(m for m in a.matrices if m.name == "bert.encoder.layer.0.attention.self.query.weight")
    assert q0.role == "q" and q0.layer == 0
    assert q0.shape == (320, 384) and q0.dense_shape == (384, 384)
    assert q0.nnz == 320 * 384 and q0.density == pytest.approx(320 / 384)
    ffn = next(m for m in a.matrices if m.name == "bert.encoder.layer.4.intermediate.dense.weight")
    assert ffn.role == "ffn_in" and ffn.block.kind == "rows"
    assert ffn.block.empty_fraction == pytest.approx(536 / 1536)
    assert ffn.block.zeros_explained == 1.0
    q5 = next(m for m in a.matrices if m.name == "bert.encoder.layer.5.attention.self.query.weight")
    assert q5.block.kind == "32x32" and q5.block.grid == (12, 12)
    assert q5.block.empty_fraction == pytest.approx(2 / 144)
    emb = next(m for m in a.matrices if m.role == "embedding" and "word" in m.name)
    assert emb.layer is None


@pytest.mark.parametrize(
    ("fmt", "dtype"),
    [
        ("bin", torch.float32),
        ("sharded", torch.float16),
        ("sharded-bin", torch.float32),
        ("safetensors", torch.bfloat16),
    ],
)
def test_formats_and_dtypes_agree(tmp_path, fmt, dtype):
    spec = PruneSpec(zero_heads={2: (3,)}, zero_units={1: tuple(range(10))})
    a = analyze(build_minilm(tmp_path / "c", spec, fmt=fmt, dtype=dtype, tokenizer=False))
    # casting to 16 bits flushes the smallest weights to zero: count those directly
    flushed = sum(
        int(((w != 0) & (w.to(dtype) == 0)).sum())
        for name, w in load_file(str(minilm_path() / "model.safetensors")).items()
        if any(
            r in name
            for r in (
                "attention.self.",
                "attention.output.dense",
                "intermediate.dense",
                "layer.0.output.dense",
                "output.dense",
            )
        )
        and w.ndim == 2
    )
    assert a.linear.nnz == LINEAR_DENSE - spec.linear_zeros - flushed
    assert a.heads.removed == 1
    assert a.dtype == str(dtype).removeprefix("torch.")
    assert len(a.files) == (2 if fmt.startswith("sharded") else 1)


def test_single_weights_file_path(pruned_minilm):
    assert (
        analyze(pruned_minilm / "model.safetensors").linear.nnz == analyze(pruned_minilm).linear.nnz
    )


def test_files_sizes_are_measured(pruned_minilm):
    a = analyze(pruned_minilm)
    assert [f.path for f in a.files] == ["model.safetensors"]
    assert a.files[0].bytes == (pruned_minilm / "model.safetensors").stat().st_size


@pytest.mark.parametrize("index", [0, 1, 2])
def test_nn_pruning_structures_reproduce_published_counts(nn_pruning_checkpoints, index):
    record = nn_pruning_record(index)
    a = analyze(nn_pruning_checkpoints[index])
    published = record["stats"]
    assert a.linear.nnz == published["linear_nnz"]
    assert a.linear.dense == published["linear_total"]
    assert a.heads.removed == sum(len(v) for v in published["pruned_heads"].values())
    for layer in a.layers:
        expected = published["layers"][str(layer.layer)]
        assert layer.linear_nnz == expected["linear_nnz"]
        assert layer.ffn_units_kept * 2 * 768 == expected["linear_dense_nnz"]


def test_json_record_has_required_shape(pruned_minilm, tmp_path):
    from analyzer.cli.main import main

    out = tmp_path / "analysis.json"
    assert main(["analyze", str(pruned_minilm), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["schema"] == "prunecard.analysis/1"
    assert data["model_type"] == "bert"
    assert data["heads"]["total"] == 72 and data["heads"]["removed"] == 6
    assert data["heads"]["layers"][0] == {
        **data["heads"]["layers"][0],
        "layer": 0,
        "removed": [1, 5],
        "kept": 10,
    }
    assert set(data["linear"]) >= {"nnz", "dense", "packed", "density"}
    assert set(data["overall"]) >= {"nnz", "dense", "density"}
    assert set(data["ffn"]) == {"units_total", "units_kept"}
    assert data["files"][0]["path"] == "model.safetensors"
    assert set(data["matrices"][0]) >= {
        "name",
        "layer",
        "role",
        "shape",
        "dense_shape",
        "nnz",
        "density",
        "block",
    }
    assert load_record(Analysis, out) == analyze(pruned_minilm)


def test_record_round_trip(pruned_minilm):
    a = analyze(pruned_minilm)
    assert from_dict(Analysis, json.loads(json.dumps(to_dict(a)))) == a


def test_generic_model_gets_matrix_statistics(tmp_path):
    from safetensors.torch import save_file

    w = torch.ones(64, 32)
    w[:32] = 0
    save_file(
        {"net.0.weight": w, "net.0.bias": torch.ones(64)}, str(tmp_path / "model.safetensors")
    )
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "my-mlp"}))
    a = analyze(tmp_path)
    assert a.family == "generic" and a.heads.total == 0
    (m,) = a.matrices
    assert m.nnz == 32 * 32 and m.block.kind == "32x32" and m.block.empty_fraction == 0.5
    assert a.overall.nnz == 32 * 32 + 64


def test_packed_checkpoint_with_empty_layers_reports_dense_figures(tmp_path):
    """A layer that lost every head (or FFN unit) packs to zero-size matrices."""
    from analyzer.runtime.packing import pack

    spec = PruneSpec(zero_heads={1: tuple(range(12))}, zero_units={2: tuple(range(1536))})
    source = build_minilm(tmp_path / "source", spec, tokenizer=False)
    pack(source, tmp_path / "packed")
    packed = analyze(tmp_path / "packed")
    assert packed.heads.removed == 12
    assert packed.ffn.units_kept == 6 * 1536 - 1536
    assert packed.linear.dense == LINEAR_DENSE
    assert packed.linear.packed == spec.linear_packed


def _two_of_four(rows: int, cols: int, seed: int) -> torch.Tensor:
    """A weight with exactly 2 zeros in every group of 4 along its input dimension."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g).abs() + 0.1  # no accidental zeros
    keep = torch.rand(rows, cols // 4, 4, generator=g).argsort(dim=-1) < 2
    return w * keep.reshape(rows, cols)


def test_a_decoder_of_an_unknown_family_counts_its_block_weights_as_linear(tmp_path):
    """A small Llama-shaped checkpoint of a family prunecard does not know ("olmo-x"), with
    2:4 sparsity in every decoder linear weight: generic mode counts the 2-D weights
    inside `layers.N.` and says so (never "0 of 0")."""
    from safetensors.torch import save_file

    hidden, mlp = 16, 32
    shapes = {"self_attn.q_proj": (hidden, hidden), "self_attn.k_proj": (8, hidden),
              "self_attn.v_proj": (8, hidden), "self_attn.o_proj": (hidden, hidden),
              "mlp.gate_proj": (mlp, hidden), "mlp.up_proj": (mlp, hidden),
              "mlp.down_proj": (hidden, mlp)}  # fmt: skip
    state = {"model.embed_tokens.weight": torch.randn(50, hidden), "lm_head.weight":
             torch.randn(50, hidden), "model.norm.weight": torch.ones(hidden)}  # fmt: skip
    for layer in range(2):
        state[f"model.layers.{layer}.input_layernorm.weight"] = torch.ones(hidden)
        for i, (module, shape) in enumerate(shapes.items()):
            state[f"model.layers.{layer}.{module}.weight"] = _two_of_four(*shape, 10 * layer + i)
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "olmo-x"}))

    a = analyze(tmp_path)
    linear = [t for n, t in state.items() if ".layers." in n and t.ndim == 2]
    assert a.family == "generic" and len(linear) == 14
    assert a.linear.dense == sum(t.numel() for t in linear)
    assert a.linear.nnz == sum(int(t.count_nonzero()) for t in linear) == a.linear.dense // 2
    assert a.linear.density == 0.5
    assert any("generic mode: the 14 2-D weights inside repeated blocks" in n for n in a.notes)
    table = format_analysis(a)
    assert "0 of 0" not in table and "50.0%" in table


def test_generic_mode_without_repeated_blocks_says_linear_is_not_measured(tmp_path):
    from safetensors.torch import save_file

    save_file({"net.0.weight": torch.ones(8, 8)}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "my-mlp"}))
    table = format_analysis(analyze(tmp_path))
    assert "0 of 0" not in table
    assert "linear density  not measured" in table

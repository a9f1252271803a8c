"""Pruning patterns per matrix (analyzer/weights/patterns.py), from masks built with exactly
known zeros; expected shares are counted here, group by group, in plain Python."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import torch
from conftest import EXAMPLE_SPEC, HEAD_DIM, HEADS, HIDDEN, PruneSpec, build_minilm, save_checkpoint
from decoders import build_decoder, layer_weight
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from analyzer import analyze
from analyzer.cli.main import main
from analyzer.records import LINEAR_ROLES, PATTERN_KINDS, MatrixPattern
from analyzer.runtime.demo import minilm_path, qa_state
from analyzer.weights.patterns import (
    RUNTIMES,
    choose_pattern,
    explain_groups,
    group_counts,
    group_stats,
)

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- references


def groups(mask: torch.Tensor, m: int) -> list[list[bool]]:
    """The aligned groups of m input weights, row by row."""
    return [row[s : s + m] for row in mask.tolist() for s in range(0, len(row), m)]


def is_nm(mask: torch.Tensor, n: int, m: int) -> bool:
    """Every aligned group of m input weights holds at most n non-zeros."""
    return all(sum(group) <= n for group in groups(mask, m))


def zeros_of(mask: torch.Tensor) -> int:
    return sum(row.count(False) for row in mask.tolist())


def nonzero_values(rows: int, cols: int, seed: int) -> torch.Tensor:
    """Random weights with no accidental zero."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(rows, cols, generator=g) + 0.5


def keep_n_of_m(rows: int, cols: int, n: int, m: int, seed: int) -> torch.Tensor:
    """A mask keeping exactly n random weights in every aligned group of m."""
    g = torch.Generator().manual_seed(seed)
    order = torch.rand(rows, cols // m, m, generator=g).argsort(dim=-1)
    return (order < n).reshape(rows, cols)


def pattern_of(matrix: torch.Tensor) -> MatrixPattern:
    """The pattern `analyze` gives one matrix of a generic model (a dense companion in the
    same layer, so the layer is not all zero)."""
    with tempfile.TemporaryDirectory() as tmp:
        state = {"net.layers.0.w.weight": matrix, "net.layers.0.dense.weight": torch.ones(4, 4)}
        save_file(state, str(Path(tmp) / "model.safetensors"))
        (Path(tmp) / "config.json").write_text(json.dumps({"model_type": "custom-net"}))
        (m,) = [m for m in analyze(tmp).matrices if m.name == "net.layers.0.w.weight"]
    return m.pattern


# --------------------------------------------------------------------------- one matrix


def test_two_of_four_is_named_2_4():
    mask = keep_n_of_m(64, 64, 2, 4, seed=1)
    assert is_nm(mask, 2, 4) and zeros_of(mask) == 64 * 32
    assert pattern_of(nonzero_values(64, 64, 0) * mask) == MatrixPattern("2:4", 1.0)


def test_one_of_four_is_named_1_4_before_2_4():
    """Every 1:4 matrix is also 2:4 and 4:8; the most specific name wins."""
    mask = keep_n_of_m(64, 64, 1, 4, seed=2)
    assert is_nm(mask, 1, 4) and is_nm(mask, 2, 4) and is_nm(mask, 4, 8)
    assert pattern_of(nonzero_values(64, 64, 0) * mask) == MatrixPattern("1:4", 1.0)


def test_four_of_eight_that_is_not_2_4_is_named_4_8():
    mask = keep_n_of_m(64, 64, 4, 8, seed=3)
    assert is_nm(mask, 4, 8) and not is_nm(mask, 2, 4)  # some group of 4 keeps 3 or 4
    assert pattern_of(nonzero_values(64, 64, 0) * mask) == MatrixPattern("4:8", 1.0)


def test_empty_runs_of_four_input_weights_are_1x4_blocks():
    g = torch.Generator().manual_seed(4)
    groups = torch.rand(64, 16, generator=g) < 0.5
    mask = groups.repeat_interleave(4, dim=1)
    assert all(any(row) for row in mask.tolist())  # no empty row: rows do not fit
    assert not is_nm(mask, 2, 4)  # every zero lies in an empty group, but full groups break 2:4
    assert pattern_of(nonzero_values(64, 64, 0) * mask) == MatrixPattern("1x4", 1.0)


def test_square_blocks_are_named_at_the_coarsest_size_that_fits():
    w = nonzero_values(128, 128, 0)
    for r, c in ((0, 0), (1, 2), (3, 1)):
        w[32 * r : 32 * (r + 1), 32 * c : 32 * (c + 1)] = 0
    assert pattern_of(w) == MatrixPattern("32x32", 1.0)  # 16x16 and 1x4 fit as well
    w = nonzero_values(128, 128, 0)
    w[16:32, 16:32] = 0  # a 16x16 block inside a non-empty 32x32 one
    assert pattern_of(w) == MatrixPattern("16x16", 1.0)


def test_whole_rows_and_columns():
    w = nonzero_values(64, 64, 0)
    w[[3, 10, 11]] = 0
    assert pattern_of(w) == MatrixPattern("rows", 1.0)
    w = nonzero_values(64, 64, 0)
    w[:, [5, 6]] = 0
    assert pattern_of(w) == MatrixPattern("cols", 1.0)


def test_fifty_percent_unstructured_is_not_2_4():
    g = torch.Generator().manual_seed(5)
    mask = torch.rand(64, 64, generator=g) < 0.5
    satisfied = [sum(group) <= 2 for group in groups(mask, 4)]
    assert 0.5 < sum(satisfied) / len(satisfied) < 1  # most groups are 2:4 by chance, not all
    assert pattern_of(nonzero_values(64, 64, 0) * mask) == MatrixPattern("unstructured", 1.0)


def test_dense():
    assert pattern_of(nonzero_values(64, 64, 0)) == MatrixPattern("dense", 1.0)


def test_a_mixture_is_named_by_the_pattern_holding_most_of_its_zeros():
    g = torch.Generator().manual_seed(6)
    scattered = torch.rand(64, 64, generator=g) < 0.95  # about 5% scattered zeros
    mask = scattered.clone()
    mask[:12] = False
    row_zeros = 12 * 64
    pattern = pattern_of(nonzero_values(64, 64, 0) * mask)
    assert pattern.kind == "rows"
    assert pattern.explained == pytest.approx(row_zeros / zeros_of(mask))


def test_a_mixture_of_few_structured_zeros_is_unstructured():
    g = torch.Generator().manual_seed(7)
    mask = torch.rand(64, 64, generator=g) < 0.5
    mask[[0, 1]] = False
    pattern = pattern_of(nonzero_values(64, 64, 0) * mask)
    assert pattern.kind == "unstructured"
    assert pattern.explained == pytest.approx(1 - 2 * 64 / zeros_of(mask))  # not in rows


def _explained(mask, zeros: int) -> dict[str, int]:
    """What N:M and 1x4 explain of a whole mask, taken as analyze takes a slice."""
    stats = group_stats(mask, zeros) if zeros else None
    return explain_groups(stats, zeros=zeros, size=mask.numel(), width=mask.shape[-1], blocks={})


def test_input_width_not_a_multiple_of_the_group_gives_no_n_m():
    mask = torch.tensor([[True, False, False, True, False, False]])
    assert group_counts(mask) is None
    assert "2:4" not in _explained(mask, 4)
    mask = keep_n_of_m(2, 12, 2, 4, seed=8)  # groups of 4 fit in 12 columns, groups of 8 not
    explained = _explained(mask, 12)
    assert explained["2:4"] == 12 and "4:8" not in explained


# --------------------------------------------------------------------------- properties


@st.composite
def masks(draw, width_groups: int = 4):
    rows = draw(st.integers(1, 6))
    bits = draw(st.lists(st.booleans(), min_size=rows * 8 * width_groups, max_size=rows * 8 * 4))
    return torch.tensor(bits[: rows * 8 * width_groups]).reshape(rows, 8 * width_groups)


@given(masks())
@SETTINGS
def test_group_stats_count_every_group(mask):
    counts = group_counts(mask)
    assert counts.tolist() == [sum(group) for group in groups(mask, 4)]
    stats = group_stats(mask, zeros_of(mask))
    if 2 * zeros_of(mask) < mask.numel():  # then only the empty groups are counted
        assert stats.most4 == 3 and stats.over_half8
    else:
        assert stats.most4 == min(3, max(sum(group) for group in groups(mask, 4)))
        assert stats.over_half8 == any(sum(group) > 4 for group in groups(mask, 8))
    assert stats.empty4 == sum(not any(group) for group in groups(mask, 4))


@given(masks())
@SETTINGS
def test_explained_zeros_match_the_group_by_group_count(mask):
    zeros = zeros_of(mask)
    explained = _explained(mask, zeros)
    for kind, (n, m) in {"2:4": (2, 4), "1:4": (1, 4), "4:8": (4, 8)}.items():
        assert explained.get(kind, 0) == (zeros if is_nm(mask, n, m) else 0)
    assert explained.get("1x4", 0) == 4 * sum(group == [False] * 4 for group in groups(mask, 4))
    pattern = choose_pattern(zeros, explained, weights=mask.numel())
    assert pattern.kind in PATTERN_KINDS and 0.0 <= pattern.explained <= 1.0


@given(st.integers(1, 3), st.integers(1, 4), st.integers(0, 2**16))
@SETTINGS
def test_zeroing_two_of_every_four_is_2_4(pairs, groups, seed):
    """Rows come in pairs, the second keeping what the first zeroed, so no column is empty
    (with one row every zero would also be a zero column, and cols outranks 2:4)."""
    first = keep_n_of_m(pairs, 4 * groups, 2, 4, seed)
    mask = torch.stack([first, ~first], dim=1).reshape(2 * pairs, 4 * groups)
    w = nonzero_values(2 * pairs, 4 * groups, seed) * mask
    assert pattern_of(w) == MatrixPattern("2:4", 1.0)


@given(st.integers(2, 4), st.integers(1, 4), st.integers(0, 2**16), st.data())
@SETTINGS
def test_one_more_non_zero_in_a_group_breaks_2_4(rows, groups, seed, data):
    mask = keep_n_of_m(rows, 4 * groups, 2, 4, seed)
    row = data.draw(st.integers(0, rows - 1))
    col = data.draw(st.sampled_from([c for c in range(4 * groups) if not mask[row, c]]))
    mask[row, col] = True
    pattern = pattern_of(nonzero_values(rows, 4 * groups, seed) * mask)
    assert pattern.kind != "2:4"


@given(
    st.integers(0, 1000),
    st.dictionaries(st.sampled_from(PATTERN_KINDS), st.integers(0)),
    st.integers(0, 10**8),
)
@SETTINGS
def test_a_pattern_explains_a_share_in_zero_to_one(zeros, raw, extra):
    explained = {k: min(v, zeros) for k, v in raw.items()}
    pattern = choose_pattern(zeros, explained, weights=zeros + extra)
    assert pattern.kind in PATTERN_KINDS and 0.0 <= pattern.explained <= 1.0


# --------------------------------------------------------------------------- end to end


def _two_of_four(w: torch.Tensor, seed: int) -> None:
    """Zero 2 of every 4 input weights of `w`, in place."""
    w.mul_(keep_n_of_m(*w.shape, 2, 4, seed).to(w.dtype))


def _summary_of(state: dict[str, torch.Tensor], names: list[str]) -> tuple[int, int]:
    weights = sum(state[n].numel() for n in names)
    return weights, sum(zeros_of(state[n] != 0) for n in names)


def test_bert_with_2_4_everywhere(tmp_path):
    state, config = qa_state(minilm_path())
    linear = [n for n in state if ".encoder.layer." in n and n.endswith(".weight")]
    linear = [n for n in linear if state[n].ndim == 2]
    for i, name in enumerate(linear):
        _two_of_four(state[name], seed=i)
    path = save_checkpoint(tmp_path / "bert", state, config, tokenizer=False)
    a = analyze(path)
    kinds = {m.name: m.pattern.kind for m in a.matrices if m.role in LINEAR_ROLES}
    assert len(linear) == 36 and kinds == dict.fromkeys(linear, "2:4")
    (row,) = a.patterns
    assert (row.kind, row.matrices) == ("2:4", 36)
    assert (row.weights, row.zeros) == _summary_of(load_file(path / "model.safetensors"), linear)
    assert row.runtime == RUNTIMES["2:4"] and "to_sparse_semi_structured" in row.runtime


def test_llama_with_2_4_everywhere_and_the_cli_table(tmp_path, capsys):
    def prune(state):
        for i, name in enumerate(n for n in state if ".layers." in n and state[n].ndim == 2):
            _two_of_four(state[name], seed=i)

    path = build_decoder(tmp_path / "llama", "llama", prune=prune, kv_heads=4)
    state = load_file(path / "model.safetensors")
    linear = [n for n in state if ".layers." in n and state[n].ndim == 2]
    a = analyze(path)
    assert len(linear) == 14
    assert {m.name: m.pattern.kind for m in a.matrices if m.pattern} == dict.fromkeys(linear, "2:4")
    weights, zeros = _summary_of(state, linear)
    assert [(p.kind, p.matrices, p.weights, p.zeros) for p in a.patterns] == [
        ("2:4", 14, weights, zeros)
    ]

    assert main(["analyze", str(path)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("pattern"))
    assert header.split() == ["pattern", "matrices", "weights", "zeros", "sparsity", "runtime"]
    row = next(line for line in out.splitlines() if line.startswith("2:4 "))
    assert row.split()[:5] == ["2:4", "14", f"{weights:,}", f"{zeros:,}", "50.0%"]
    assert "sparse tensor cores" in row


def test_llama_heads_channels_rows_and_a_whole_layer(tmp_path):
    """Layer 0: one head zero in each of Q (rows), V (rows), O (columns); half a head of K;
    MLP channels 5 and 9 zero in gate (rows) and down (columns); up dense. Layer 1: every
    linear weight zero."""
    head_dim = 8

    def prune(state):
        def rows(i):
            return slice(i * head_dim, (i + 1) * head_dim)

        layer_weight(state, 0, "self_attn.q_proj")[rows(1)] = 0
        layer_weight(state, 0, "self_attn.v_proj")[rows(2)] = 0
        layer_weight(state, 0, "self_attn.o_proj")[:, rows(3)] = 0
        layer_weight(state, 0, "self_attn.k_proj")[:4] = 0
        layer_weight(state, 0, "mlp.gate_proj")[[5, 9]] = 0
        layer_weight(state, 0, "mlp.down_proj")[:, [5, 9]] = 0
        for name in state:
            if ".layers.1." in name and state[name].ndim == 2:
                state[name].zero_()

    path = build_decoder(tmp_path / "llama", "llama", prune=prune, kv_heads=4, hidden=32, heads=4)
    a = analyze(path)
    got = {m.name.split("layers.")[1]: m.pattern for m in a.matrices if m.pattern}
    assert {k: p.kind for k, p in got.items() if k.startswith("0.")} == {
        "0.self_attn.q_proj.weight": "heads",
        "0.self_attn.v_proj.weight": "heads",
        "0.self_attn.o_proj.weight": "heads",
        "0.self_attn.k_proj.weight": "rows",  # half a head: rows, not heads
        "0.mlp.gate_proj.weight": "channels",
        "0.mlp.down_proj.weight": "channels",
        "0.mlp.up_proj.weight": "dense",
    }
    assert {p.kind for k, p in got.items() if k.startswith("1.")} == {"layer"}
    assert all(p.explained == 1.0 for p in got.values())
    state = load_file(path / "model.safetensors")
    layer1 = [n for n in state if ".layers.1." in n and state[n].ndim == 2]
    expected = {  # kind: matrices, weights, zeros
        "dense": (1, 64 * 32, 0),
        "layer": (7, sum(state[n].numel() for n in layer1), sum(state[n].numel() for n in layer1)),
        "heads": (3, 3 * 32 * 32, 3 * head_dim * 32),
        "channels": (2, 2 * 64 * 32, 2 * 2 * 32),
        "rows": (1, 32 * 32, 4 * 32),
    }
    assert [p.kind for p in a.patterns] == [k for k in PATTERN_KINDS if k in expected]
    assert {p.kind: (p.matrices, p.weights, p.zeros) for p in a.patterns} == expected


def test_pruned_minilm_heads_channels_and_blocks(pruned_minilm):
    """EXAMPLE_SPEC: value rows of heads (layers 1, 2), FFN units (layers 0, 4), two 32x32
    blocks of a query matrix (layer 5); physically removed heads (layers 0, 3) leave no
    zeros behind, and MiniLM's own weights hold none."""
    spec = EXAMPLE_SPEC
    a = analyze(pruned_minilm)
    linear = {m.name: m for m in a.matrices if m.role in LINEAR_ROLES}
    expected = dict.fromkeys(linear, "dense")
    p = "bert.encoder.layer.{}."
    for layer in spec.zero_heads:
        expected[p.format(layer) + "attention.self.value.weight"] = "heads"
    for layer in spec.zero_units:
        expected[p.format(layer) + "intermediate.dense.weight"] = "channels"
        expected[p.format(layer) + "output.dense.weight"] = "channels"
    for layer in spec.zero_q_blocks:
        expected[p.format(layer) + "attention.self.query.weight"] = "32x32"
    assert {n: m.pattern.kind for n, m in linear.items()} == expected
    zeros = {
        "heads": HEAD_DIM * HIDDEN * sum(map(len, spec.zero_heads.values())),
        "channels": 2 * HIDDEN * sum(map(len, spec.zero_units.values())),
        "32x32": 32 * 32 * sum(map(len, spec.zero_q_blocks.values())),
        "dense": 0,
    }
    summary = {t.kind: (t.matrices, t.weights, t.zeros) for t in a.patterns}
    for kind, z in zeros.items():
        names = [n for n, k in expected.items() if k == kind]
        assert summary[kind] == (
            len(names),
            sum(linear[n].shape[0] * linear[n].shape[1] for n in names),
            z,
        )
    assert set(summary) == set(zeros)


def test_a_packed_checkpoint_is_dense(tmp_path):
    """Packing removes every dead head and FFN unit: nothing structured is left, and a layer
    that lost every head keeps zero-size attention matrices, which are dense too."""
    from analyzer.runtime.packing import pack

    spec = PruneSpec(zero_heads={1: tuple(range(HEADS))}, zero_units={2: tuple(range(100))})
    source = build_minilm(tmp_path / "source", spec, tokenizer=False)
    assert {t.kind for t in analyze(source).patterns} == {"dense", "heads", "channels"}
    pack(source, tmp_path / "packed")
    packed = analyze(tmp_path / "packed")
    assert [(t.kind, t.matrices) for t in packed.patterns] == [("dense", 36)]

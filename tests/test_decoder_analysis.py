"""`analyze` on small decoder LLMs (tests/decoders.py): query heads and K/V groups under
grouped-query attention, MLP channels, N:M and unstructured density, and a width- and
depth-pruned model against its dense base.

Every expected figure is counted here from the tensors written: densities with
count_nonzero, packed sizes by summing the slices decoder packing removes (whole dead K/V
groups with the Q rows and O columns of their heads; dead channels' gate and up rows and
down columns), the base's parameters by building it in transformers.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from decoders import DECODER_TYPES, build_decoder, decoder_config, layer_weight
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from analyzer import CheckpointError, InputError, PrunecardError, analyze, load_record
from analyzer.cli.main import build_parser, main
from analyzer.records import DECODER_HEAD_RULE, Analysis
from analyzer.weights.architecture import detect
from analyzer.weights.families import find_family
from analyzer.weights.lineage import base_parameters


@dataclass(frozen=True)
class Sizes:
    """The shapes every checkpoint here is built with (grouped-query attention)."""

    layers: int = 2
    hidden: int = 32
    heads: int = 8
    kv_heads: int = 2
    intermediate: int = 64

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def group(self) -> int:
        return self.heads // self.kv_heads

    def build(self, out: Path, model_type: str = "llama", prune=None, **extra) -> Path:
        return build_decoder(
            out,
            model_type,
            prune=prune,
            layers=self.layers,
            hidden=self.hidden,
            heads=self.heads,
            kv_heads=self.kv_heads,
            intermediate=self.intermediate,
            **extra,
        )


GQA = Sizes()  # 8 query heads in 2 K/V groups of 4, head_dim 4
ATTENTION = "model.layers.{}.self_attn."
MLP = "model.layers.{}.mlp."


# --------------------------------------------------------------------------- pruning by hand


def _attention(state: dict, model_type: str, layer: int, s: Sizes) -> dict[str, torch.Tensor]:
    """Q, K and V weights (views of Phi-3's fused qkv_proj) and their biases, if any."""
    p = ATTENTION.format(layer)
    if "qkv" in find_family(model_type).fused:
        q, kv = s.heads * s.head_dim, s.kv_heads * s.head_dim
        return dict(zip("qkv", state[p + "qkv_proj.weight"].split([q, kv, kv]), strict=True))
    out = {r: state[f"{p}{r}_proj.weight"] for r in "qkv"}
    out |= {f"{r}_bias": state[f"{p}{r}_proj.bias"] for r in "qkv" if f"{p}{r}_proj.bias" in state}
    return out


def _mlp(state: dict, model_type: str, layer: int) -> dict[str, torch.Tensor]:
    """Gate and up weights (views of Phi-3's fused gate_up_proj), down, and biases if any."""
    p = MLP.format(layer)
    out = {"down": state[p + "down_proj.weight"]}
    if "ffn_gate_up" in find_family(model_type).fused:
        out["gate"], out["up"] = state[p + "gate_up_proj.weight"].chunk(2)
        return out
    out |= {r: state[f"{p}{r}_proj.weight"] for r in ("gate", "up")}
    out |= {f"{r}_bias": state[f"{p}{r}_proj.bias"] for r in ("gate", "up")
            if f"{p}{r}_proj.bias" in state}  # fmt: skip
    return out


def fill_biases(state):
    """transformers initialises biases to zero: give every layer bias non-zero entries, so
    that a zero bias in a test is one the test wrote."""
    for name, t in state.items():
        if name.startswith("model.layers.") and name.endswith(".bias"):
            t.fill_(0.01)


def zero_v_group(state, model_type, layer, group, s=GQA, *, bias=True):
    """Zero one K/V group's value rows (and its value bias unless `bias` is False)."""
    rows = slice(group * s.head_dim, (group + 1) * s.head_dim)
    t = _attention(state, model_type, layer, s)
    t["v"][rows] = 0
    if bias and "v_bias" in t:
        t["v_bias"][rows] = 0


def zero_normed_rows(state, model_type, layer, group, s=GQA):
    """Zero one K/V group's rows that a whole-width norm reads (OLMo2's Q and K rows, and
    biases): without that, the norm keeps the group (`families.WidthNorm`)."""
    t = _attention(state, model_type, layer, s)
    for norm in find_family(model_type).width_norms:
        rows = _group_rows(norm.role, group, s)
        t[norm.role][rows] = 0
        if f"{norm.role}_bias" in t:
            t[f"{norm.role}_bias"][rows] = 0


def _group_rows(role: str, group: int, s=GQA) -> slice:
    """The rows of `role` (q or k) that belong to K/V group `group`."""
    width = s.group * s.head_dim if role == "q" else s.head_dim
    return slice(group * width, (group + 1) * width)


def zero_o_head(state, layer, head, s=GQA):
    layer_weight(state, layer, "self_attn.o_proj")[
        :, head * s.head_dim : (head + 1) * s.head_dim
    ] = 0


def zero_channel(state, model_type, layer, channel, where):
    """Zero a channel's gate row, up row or down column (`where`: gate, up or down)."""
    t = _mlp(state, model_type, layer)
    if where == "down":
        t["down"][:, channel] = 0
    else:
        t[where][channel] = 0


def removed_by_packing(state, model_type, layer, groups, channels, s=GQA) -> Iterator[torch.Tensor]:
    """The slices decoder packing removes from `layer`: per dead K/V group its K and V rows
    and biases and the Q rows, Q biases and O columns of its query heads; per dead channel
    its gate and up rows and biases and its down column; a whole-width norm's entries go
    with the rows they normalise."""
    t, m = _attention(state, model_type, layer, s), _mlp(state, model_type, layer)
    o = layer_weight(state, layer, "self_attn.o_proj")
    for g in groups:
        for norm in find_family(model_type).width_norms:
            yield state[f"model.layers.{layer}.{norm.module}.weight"][_group_rows(norm.role, g, s)]
        q_rows = slice(g * s.group * s.head_dim, (g + 1) * s.group * s.head_dim)
        kv_rows = slice(g * s.head_dim, (g + 1) * s.head_dim)
        yield from (t["q"][q_rows], t["k"][kv_rows], t["v"][kv_rows], o[:, q_rows])
        yield from (t[f"{r}_bias"][rows] for r, rows in (("q", q_rows), ("k", kv_rows),
                    ("v", kv_rows)) if f"{r}_bias" in t)  # fmt: skip
    for c in channels:
        yield from (m["gate"][c : c + 1], m["up"][c : c + 1], m["down"][:, c : c + 1])
        yield from (m[b][c : c + 1] for b in ("gate_bias", "up_bias") if b in m)


def saved(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def linear_weights(state: dict[str, torch.Tensor], layer: int | None = None) -> list:
    prefix = "model.layers." if layer is None else f"model.layers.{layer}."
    return [t for n, t in state.items() if n.startswith(prefix) and t.ndim == 2]


def numel(tensors) -> int:
    return sum(t.numel() for t in tensors)


def nnz(tensors) -> int:
    return sum(int(t.count_nonzero()) for t in tensors)


def check_packed(a: Analysis, state: dict, removed: list[torch.Tensor]) -> None:
    """Packed totals: what is stored, less the slices packing removes (weight slices are
    2-D, bias slices 1-D)."""
    assert a.linear.stored == numel(linear_weights(state))
    assert a.linear.packed == a.linear.stored - numel(t for t in removed if t.ndim == 2)
    assert a.overall.stored == numel(state.values())
    assert a.overall.packed == a.overall.stored - numel(removed)


# --------------------------------------------------------------------------- heads and groups


def test_a_norm_over_all_heads_keeps_a_dead_group_until_its_rows_are_zero(tmp_path):
    """OLMo2 normalises Q (and K) over every head at once, so a group's Q and K rows enter
    the mean the other groups are divided by: its query heads dead, it stays (layer 0)
    until those rows are zero too (layer 1)."""

    def prune(state):
        zero_v_group(state, "olmo2", 0, 1)
        zero_v_group(state, "olmo2", 1, 1)
        zero_normed_rows(state, "olmo2", 1, 1)

    folder = GQA.build(tmp_path / "olmo2", "olmo2", prune)
    a = analyze(folder)
    first, second = a.heads.layers
    assert first.kv_removed == () and first.dead_kept == (4, 5, 6, 7) and first.kept == 8
    assert second.kv_removed == (1,) and second.removed == (4, 5, 6, 7)
    state = saved(folder)
    check_packed(a, state, list(removed_by_packing(state, "olmo2", 1, groups=[1], channels=[])))


@pytest.mark.parametrize("model_type", DECODER_TYPES)
def test_every_decoder_family_counts_heads_groups_and_channels(tmp_path, model_type):
    """Layer 0: K/V group 1's value rows are zero (its 4 query heads die, the group is
    removed) and head 0's output columns are zero (dead, but group 0 stays: not packed).
    Layer 1: channel 3 loses its gate row, 5 its up row, 7 its down column."""

    def prune(state):
        fill_biases(state)  # Qwen2's Q, K and V biases
        zero_v_group(state, model_type, 0, 1)
        zero_normed_rows(state, model_type, 0, 1)  # OLMo2: else its q and k norms keep it
        zero_o_head(state, 0, 0)
        for channel, where in ((3, "gate"), (5, "up"), (7, "down")):
            zero_channel(state, model_type, 1, channel, where)

    folder = GQA.build(tmp_path / model_type, model_type, prune)
    state = saved(folder)
    a = analyze(folder)

    assert (a.kind, a.family, a.num_kv_heads, a.head_dim) == ("decoder", model_type, 2, 4)
    assert a.heads.rule == DECODER_HEAD_RULE
    first, second = a.heads.layers
    # group 1's heads are removed; head 0 is dead, but group 0 lives: kept by packing
    assert first.removed == first.removed_as_zeros == (4, 5, 6, 7) and first.kept == 4
    assert first.dead_kept == (0,)
    assert first.kv_removed == (1,) and first.kv_kept == 1
    assert second.removed == second.dead_kept == () and second.kv_kept == 2
    assert (a.heads.total, a.heads.removed, a.heads.kv_total, a.heads.kv_removed) == (16, 4, 4, 1)
    assert a.heads.dead_kept == 1
    assert [s.ffn_units_kept for s in a.layers] == [64, 61]
    assert (a.ffn.units_total, a.ffn.units_kept) == (128, 125)

    linear = linear_weights(state)
    assert a.linear.dense == numel(linear) and a.linear.nnz == nnz(linear)
    for s in a.layers:
        assert s.linear_nnz == nnz(linear_weights(state, s.layer))
    assert a.overall.nnz == nnz(state.values())
    removed = [
        *removed_by_packing(state, model_type, 0, groups=[1], channels=[]),
        *removed_by_packing(state, model_type, 1, groups=[], channels=[3, 5, 7]),
    ]
    check_packed(a, state, removed)


def test_qwen2_value_bias_keeps_a_group_whose_value_rows_are_zero(tmp_path):
    """Decoders have no output bias to fold a constant into: group 0 of layer 0 has zero
    value rows but a non-zero value bias, so it stays; group 1 of layer 1 loses rows and
    bias, and packing removes its Q, K and V biases with its weights."""

    def prune(state):
        fill_biases(state)
        zero_v_group(state, "qwen2", 0, 0, bias=False)
        zero_v_group(state, "qwen2", 1, 1)

    folder = GQA.build(tmp_path / "qwen2", "qwen2", prune)
    state = saved(folder)
    assert int(state[ATTENTION.format(0) + "v_proj.bias"][:4].count_nonzero()) > 0
    a = analyze(folder)
    first, second = a.heads.layers
    assert first.removed == () and first.kv_kept == 2
    assert second.removed == (4, 5, 6, 7) and second.kv_removed == (1,)
    removed = list(removed_by_packing(state, "qwen2", 1, groups=[1], channels=[]))
    assert sum(t.ndim == 1 for t in removed) == 3  # the Q, K and V bias slices
    check_packed(a, state, removed)


def test_a_dead_head_inside_a_live_group_is_counted_but_not_packed(tmp_path):
    """Three of group 0's four heads lose their output columns: dead, yet the group stays
    (grouped-query attention needs equal groups), so nothing is removed: they are dead
    (kept by packing)."""

    def prune(state):
        for head in (0, 1, 3):
            zero_o_head(state, 0, head)

    folder = GQA.build(tmp_path / "llama", prune=prune)
    state = saved(folder)
    a = analyze(folder)
    assert a.heads.layers[0].dead_kept == (0, 1, 3) and a.heads.layers[0].kv_removed == ()
    assert a.heads.layers[0].removed == () and a.heads.layers[0].kept == 8
    assert (a.heads.removed, a.heads.dead_kept, a.heads.kv_removed) == (0, 3, 0)
    check_packed(a, state, [])


def test_with_one_query_head_per_group_every_dead_head_is_packed(tmp_path):
    """Multi-head attention (kv_heads == heads): each head is its own group."""
    mha = Sizes(heads=4, kv_heads=4)

    def prune(state):
        zero_o_head(state, 1, 2, mha)
        zero_v_group(state, "llama", 0, 3, mha)

    folder = mha.build(tmp_path / "mha", prune=prune)
    state = saved(folder)
    a = analyze(folder)
    assert [h.removed for h in a.heads.layers] == [(3,), (2,)]
    assert [h.kv_removed for h in a.heads.layers] == [(3,), (2,)]
    assert [h.kv_kept for h in a.heads.layers] == [3, 3]
    removed = [
        *removed_by_packing(state, "llama", 0, groups=[3], channels=[], s=mha),
        *removed_by_packing(state, "llama", 1, groups=[2], channels=[], s=mha),
    ]
    check_packed(a, state, removed)


def test_a_non_zero_mlp_bias_keeps_its_channel(tmp_path):
    """Llama with mlp_bias: channel 1 loses its gate row but keeps a gate bias (alive);
    channel 2 loses its up row and up bias (dead; both biases go with it)."""

    def prune(state):
        fill_biases(state)
        zero_channel(state, "llama", 0, 1, "gate")
        zero_channel(state, "llama", 0, 2, "up")
        state[MLP.format(0) + "up_proj.bias"][2] = 0

    folder = GQA.build(tmp_path / "bias", prune=prune, mlp_bias=True)
    state = saved(folder)
    a = analyze(folder)
    assert [s.ffn_units_kept for s in a.layers] == [63, 64]
    check_packed(a, state, list(removed_by_packing(state, "llama", 0, [], [2])))


def test_a_layer_whose_every_linear_weight_is_zero(tmp_path):
    def prune(state):
        for t in linear_weights(state, 1):
            t.zero_()

    folder = GQA.build(tmp_path / "empty", prune=prune)
    state = saved(folder)
    a = analyze(folder)
    second = a.heads.layers[1]
    assert second.removed == tuple(range(8)) and second.kv_removed == (0, 1)
    assert second.kv_kept == 0 and a.layers[1].ffn_units_kept == 0
    assert a.layers[1].density == 0.0 and a.layers[1].linear_packed == 0
    assert a.layers[1].linear_dense == numel(linear_weights(state, 1))
    everything = removed_by_packing(state, "llama", 1, groups=[0, 1], channels=range(64))
    check_packed(a, state, list(everything))


def test_a_decoder_with_part_of_a_group_removed_through_pruned_heads_is_refused(tmp_path):
    """`pruned_heads` on a decoder may only name whole K/V groups (what packing writes):
    a single query head of a group of four is refused, in one line."""
    folder = GQA.build(tmp_path / "llama")
    state = saved(folder)
    q, o = ATTENTION.format(0) + "q_proj.weight", ATTENTION.format(0) + "o_proj.weight"
    state[q], state[o] = state[q][GQA.head_dim :].clone(), state[o][:, GQA.head_dim :].clone()
    save_file(state, str(folder / "model.safetensors"))
    config = json.loads((folder / "config.json").read_text())
    _write(folder / "config.json", json.dumps({**config, "pruned_heads": {"0": [0]}}))
    with pytest.raises(CheckpointError, match=r"pruned_heads\[0\] removes part of a K/V group"):
        analyze(folder)


# --------------------------------------------------------------------------- density


def _two_of_four(state):
    g = torch.Generator().manual_seed(1)
    for t in linear_weights(state):
        keep = torch.rand(t.shape[0], t.shape[1] // 4, 4, generator=g).argsort(dim=-1) < 2
        t.mul_(keep.reshape(t.shape))


def _half_unstructured(state):
    g = torch.Generator().manual_seed(2)
    for t in linear_weights(state):
        t.mul_(torch.rand(t.shape, generator=g) < 0.5)


@pytest.mark.parametrize("prune", [_two_of_four, _half_unstructured], ids=["2:4", "random"])
def test_nm_and_unstructured_zeros_change_density_not_structure(tmp_path, prune):
    folder = GQA.build(tmp_path / "m", "mistral", prune)
    state = saved(folder)
    linear = linear_weights(state)
    a = analyze(folder)
    assert a.linear.nnz == nnz(linear) and a.linear.dense == numel(linear)
    assert a.linear.density == nnz(linear) / numel(linear)
    if prune is _two_of_four:
        assert 2 * a.linear.nnz == a.linear.dense
    for s in a.layers:
        layer = linear_weights(state, s.layer)
        assert s.density == nnz(layer) / numel(layer)
    # no whole row, column, head or channel is zero: nothing to remove
    assert a.heads.removed == a.heads.kv_removed == 0 and a.ffn.units_kept == a.ffn.units_total
    check_packed(a, state, [])


# --------------------------------------------------------------------------- property


@pytest.fixture(scope="module")
def llama_state(tmp_path_factory) -> tuple[dict[str, torch.Tensor], Path]:
    folder = GQA.build(tmp_path_factory.mktemp("dense") / "llama")
    return saved(folder), folder / "config.json"


heads_sets = st.frozensets(st.integers(0, GQA.heads - 1))
group_sets = st.frozensets(st.integers(0, GQA.kv_heads - 1))
channel_sets = st.frozensets(st.integers(0, GQA.intermediate - 1), max_size=8)
wheres = st.sampled_from(("gate", "up", "down"))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    v_groups=st.lists(group_sets, min_size=2, max_size=2),
    o_heads=st.lists(heads_sets, min_size=2, max_size=2),
    channels=st.lists(channel_sets, min_size=2, max_size=2),
    where=wheres,
)
def test_random_dead_sets_give_exactly_those_heads_groups_and_channels(
    llama_state, v_groups, o_heads, channels, where
):
    """Whatever value groups, output heads and channels are zeroed: a head is dead when its
    group's value rows or its own output columns are zero, a group is removed when all its
    heads are dead (they are the removed heads; the other dead ones are kept by packing), a
    channel when one of its three slices is zero."""
    dense, config = llama_state
    state = {k: v.clone() for k, v in dense.items()}
    for layer in range(GQA.layers):
        for group in v_groups[layer]:
            zero_v_group(state, "llama", layer, group)
        for head in o_heads[layer]:
            zero_o_head(state, layer, head)
        for channel in channels[layer]:
            zero_channel(state, "llama", layer, channel, where)
    with tempfile.TemporaryDirectory() as tmp:
        save_file(state, str(Path(tmp) / "model.safetensors"))
        shutil.copy(config, Path(tmp) / "config.json")
        a = analyze(tmp)
    removed = []
    for layer, heads in enumerate(a.heads.layers):
        dead = {h for h in range(GQA.heads) if h // GQA.group in v_groups[layer]}
        dead |= o_heads[layer]
        gone = [k for k in range(GQA.kv_heads) if all(h in dead for h in range(4 * k, 4 * k + 4))]
        packed = {h for h in dead if h // GQA.group in gone}
        assert heads.removed == tuple(sorted(packed))
        assert heads.dead_kept == tuple(sorted(dead - packed))
        assert heads.kv_removed == tuple(gone)
        assert a.layers[layer].ffn_units_kept == GQA.intermediate - len(channels[layer])
        removed += removed_by_packing(state, "llama", layer, gone, sorted(channels[layer]))
    check_packed(a, state, removed)


# --------------------------------------------------------------------------- --base-config

BASE = Sizes(layers=4, hidden=64, heads=8, kv_heads=2, intermediate=128)  # head_dim 8
NARROW = Sizes(layers=2, hidden=32, heads=4, kv_heads=2, intermediate=64)  # head_dim 8


def _transformers_parameters(config) -> int:
    """The parameter count of the model transformers builds from `config` (tied weights
    once), built on the meta device: no memory for the weights."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("model_type", "extra"),
    [
        *((t, {}) for t in DECODER_TYPES),
        ("llama", {"attention_bias": True, "mlp_bias": True, "tie_word_embeddings": True}),
        ("qwen3", {"attention_bias": True}),
        ("gemma2", {"attention_bias": True, "tie_word_embeddings": False}),
        ("olmo2", {"attention_bias": True, "tie_word_embeddings": True}),
        ("mistral", {"head_dim": 16}),
    ],
)
def test_base_parameters_match_the_model_transformers_builds(tmp_path, model_type, extra):
    config = decoder_config(
        model_type, layers=3, hidden=48, heads=6, kv_heads=2, intermediate=80, **extra
    )
    config.save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    saved_config = json.loads(path.read_text())
    family, geometry = detect(saved_config, path)
    assert base_parameters(saved_config, family, geometry, path) == _transformers_parameters(config)


def test_a_depth_and_width_pruned_model_against_its_base(tmp_path):
    folder = NARROW.build(tmp_path / "narrow")
    decoder_config("llama", **_sizes(BASE)).save_pretrained(tmp_path / "base")
    a = analyze(folder, base=tmp_path / "base")
    changes = {c.what: (c.base, c.model) for c in a.base.changes}
    assert changes == {
        "layers": (4, 2),
        "hidden size": (64, 32),
        "intermediate size": (128, 64),
        "query heads": (8, 4),
        "KV heads": (2, 2),
        "head dim": (8, 8),
    }
    assert a.base.source == str(tmp_path / "base")
    assert a.base.base_parameters == _transformers_parameters(
        decoder_config("llama", **_sizes(BASE))
    )
    assert not any("relative to this checkpoint's own shapes" in n for n in a.notes)
    assert any("relative to this checkpoint's own shapes" in n for n in analyze(folder).notes)


def _sizes(s: Sizes) -> dict[str, int]:
    return dict(layers=s.layers, hidden=s.hidden, heads=s.heads, kv_heads=s.kv_heads,
                intermediate=s.intermediate)  # fmt: skip


@pytest.fixture(scope="module")
def narrow_llama(tmp_path_factory) -> Path:
    return NARROW.build(tmp_path_factory.mktemp("narrow") / "llama")


@pytest.fixture(scope="module")
def narrow_gemma(tmp_path_factory) -> Path:
    return NARROW.build(tmp_path_factory.mktemp("narrow") / "gemma", "gemma")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("base", "problem"),
    [
        ("folder-without-config/", "no such file"),
        ("not-json.json", "not a readable JSON file"),
        ("list.json", "must hold a JSON object"),
        ("mistral.json", "model_type is 'mistral', but the checkpoint's is 'llama'"),
        ("tied.json", "tie_word_embeddings must be true or false"),
        ("heads.json", "num_attention_heads must be a positive integer"),
        ("gemma-no-head-dim.json", "head_dim is missing: transformers' default for gemma"),
    ],
)
def test_a_base_that_cannot_be_compared_is_refused_naming_it(
    tmp_path, narrow_llama, narrow_gemma, base, problem
):
    llama = json.loads((narrow_llama / "config.json").read_text())
    (tmp_path / "folder-without-config").mkdir()
    _write(tmp_path / "not-json.json", "{model_type: llama")
    _write(tmp_path / "list.json", "[]")
    _write(tmp_path / "mistral.json", json.dumps({**llama, "model_type": "mistral"}))
    _write(tmp_path / "tied.json", json.dumps({**llama, "tie_word_embeddings": "yes"}))
    _write(tmp_path / "heads.json", json.dumps({**llama, "num_attention_heads": 0}))
    gemma = json.loads((narrow_gemma / "config.json").read_text())
    del gemma["head_dim"]
    _write(tmp_path / "gemma-no-head-dim.json", json.dumps(gemma))
    checkpoint = narrow_gemma if base.startswith("gemma") else narrow_llama
    with pytest.raises(PrunecardError) as caught:
        analyze(checkpoint, base=tmp_path / base)
    assert problem in str(caught.value)
    assert str(tmp_path / base.rstrip("/")) in str(caught.value)


def test_a_base_is_refused_for_a_model_that_is_not_a_decoder(tmp_path):
    save_file({"net.0.weight": torch.ones(4, 4)}, str(tmp_path / "model.safetensors"))
    _write(tmp_path / "config.json", json.dumps({"model_type": "my-mlp"}))
    with pytest.raises(InputError, match="decoder LLMs only"):
        analyze(tmp_path, base=tmp_path / "config.json")


# --------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def llama_two_of_four(tmp_path_factory) -> Path:
    return NARROW.build(tmp_path_factory.mktemp("sparse") / "llama-2of4", prune=_two_of_four)


def test_analyze_prints_a_2_of_4_llama(llama_two_of_four, capsys):
    linear = linear_weights(saved(llama_two_of_four))
    assert main(["analyze", str(llama_two_of_four)]) == 0
    out = capsys.readouterr().out
    assert "0 of 0" not in out
    assert f"{100 * nnz(linear) / numel(linear):.1f}%  ({nnz(linear):,} of {numel(linear):,}" in out
    assert (
        "llama (decoder), float32, 2 layers x 4 query heads (2 KV heads), hidden 32, MLP 64" in out
    )
    assert "query heads     0 of 8 removed" in out and "KV groups       0 of 4 removed" in out
    assert "dense figures are relative to this checkpoint's own shapes" in out


def test_analyze_with_a_base_prints_what_was_removed_and_round_trips(
    tmp_path, llama_two_of_four, capsys
):
    decoder_config("llama", **_sizes(BASE)).save_pretrained(tmp_path / "base")
    record = tmp_path / "analysis.json"
    argv = ["analyze", str(llama_two_of_four), "--base-config", str(tmp_path / "base")]
    assert main([*argv, "--json", str(record)]) == 0
    out = capsys.readouterr().out
    assert "4 -> 2 layers" in out and "intermediate size 128 -> 64" in out
    assert "hidden size 64 -> 32" in out and "unchanged: KV heads 2, head dim 8" in out
    assert load_record(Analysis, record) == analyze(llama_two_of_four, base=tmp_path / "base")


def test_a_bad_base_is_one_line_and_exit_2(tmp_path, llama_two_of_four, capsys):
    bad = _write(tmp_path / "config.json", "not json")
    assert main(["analyze", str(llama_two_of_four), "--base-config", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"prunecard: error: {bad}: not a readable JSON file")
    assert captured.err.count("\n") == 1


def test_report_takes_the_base_config_beside_the_hub_base():
    args = build_parser().parse_args(
        ["report", "ckpt", "--base", "meta-llama/Llama-3.1-8B", "--base-config", "base/"]
    )
    assert args.base == "meta-llama/Llama-3.1-8B" and args.base_config == Path("base/")

"""Packing decoder LLMs: dead K/V groups and MLP channels go, the logits stay.

Every family is built tiny with grouped-query attention (8 query heads, 2 K/V groups of 4,
head width 8) and pruned in the state dict; the expected kept groups and channels are
computed here from what each test zeroed, by the issue's rules: a query head is dead with
its group's V rows or its own O columns zero, a group goes only when all its query heads
are dead, an MLP channel is dead with its gate row, up row or down column zero. A family
whose Q or K is normed over its whole width (OLMo2: `Family.width_norms`) keeps a group
until those rows of it are zero too: each row enters the mean of the others' norm.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import torch
from decoders import DECODER_TYPES, build_decoder, layer_weight
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from analyzer import CheckpointError, analyze
from analyzer.cli.main import main
from analyzer.runtime.packing import load, pack
from analyzer.squad.data import bundled_sample_path, read_squad
from analyzer.weights.architecture import classify, dense_shape, detect
from analyzer.weights.checkpoint import open_checkpoint
from analyzer.weights.families import find_family

HEADS, KV, HEAD_DIM, HIDDEN, FFN, LAYERS = 8, 2, 8, 64, 64, 3
GROUP = HEADS // KV
SIZES = dict(
    layers=LAYERS, hidden=HIDDEN, heads=HEADS, kv_heads=KV, intermediate=FFN, head_dim=HEAD_DIM
)


def _rows(state, layer: int, part: str) -> torch.Tensor:
    """The rows of `part` (q, k, v, gate, up) in `layer`: a view into Phi-3's fused matrices
    (Q, K, V rows in that order; gate rows, then up rows) or the separate projection."""
    fused = f"model.layers.{layer}.self_attn.qkv_proj.weight"
    if part in "qkv" and fused in state:
        q, kv = HEADS * HEAD_DIM, KV * HEAD_DIM
        start = {"q": 0, "k": q, "v": q + kv}[part]
        return state[fused][start : start + (q if part == "q" else kv)]
    gate_up = f"model.layers.{layer}.mlp.gate_up_proj.weight"
    if part in ("gate", "up") and gate_up in state:
        return state[gate_up][:FFN] if part == "gate" else state[gate_up][FFN:]
    module = {"gate": "mlp.gate_proj", "up": "mlp.up_proj"}.get(part, f"self_attn.{part}_proj")
    return layer_weight(state, layer, module)


# what each layer loses: V rows of whole groups, O columns of heads, gate/up rows, down
# columns, the Q and K rows of whole groups
SPEC = {
    # group 1 dead (kept where a whole-width norm reads its Q and K rows)
    0: dict(v_groups=(1,), o_heads=(0,), gate=(0, 1, 2, 3, 4), up=(10, 11, 12), down=(20, 21)),
    1: dict(o_heads=tuple(range(HEADS)), down=tuple(range(FFN)), qk_groups=(0, 1)),  # nothing left
    # group 0 dead and its Q and K rows zero, head 5 dead inside live group 1
    2: dict(o_heads=(0, 1, 2, 3, 5), up=(63,), qk_groups=(0,)),
}


def prune_spec(spec=SPEC):
    def prune(state):
        for layer, parts in spec.items():
            v = _rows(state, layer, "v")
            for group in parts.get("v_groups", ()):
                v[group * HEAD_DIM : (group + 1) * HEAD_DIM] = 0
                bias = state.get(f"model.layers.{layer}.self_attn.v_proj.bias")
                if bias is not None:
                    bias[group * HEAD_DIM : (group + 1) * HEAD_DIM] = 0
            o = layer_weight(state, layer, "self_attn.o_proj")
            for head in parts.get("o_heads", ()):
                o[:, head * HEAD_DIM : (head + 1) * HEAD_DIM] = 0
            for part in ("gate", "up"):
                _rows(state, layer, part)[list(parts.get(part, ()))] = 0
            layer_weight(state, layer, "mlp.down_proj")[:, list(parts.get("down", ()))] = 0
            for group in parts.get("qk_groups", ()):
                _rows(state, layer, "q")[
                    group * GROUP * HEAD_DIM : (group + 1) * GROUP * HEAD_DIM
                ] = 0
                _rows(state, layer, "k")[group * HEAD_DIM : (group + 1) * HEAD_DIM] = 0

    return prune


def expected(
    spec=SPEC, model_type: str = "llama"
) -> dict[int, tuple[tuple[int, ...], tuple[int, ...], int]]:
    """Per layer: kept query heads, kept K/V groups, kept MLP channels, from the spec."""
    normed = bool(find_family(model_type).width_norms)
    out = {}
    for layer in range(LAYERS):
        parts = spec.get(layer, {})
        dead = set(parts.get("o_heads", ()))
        dead |= {g * GROUP + j for g in parts.get("v_groups", ()) for j in range(GROUP)}
        zero_qk = set(parts.get("qk_groups", ())) if normed else set(range(KV))
        groups = tuple(
            g
            for g in range(KV)
            if any(g * GROUP + j not in dead for j in range(GROUP)) or g not in zero_qk
        )
        heads = tuple(g * GROUP + j for g in groups for j in range(GROUP))
        dead_channels = set(parts.get("gate", ())) | set(parts.get("up", ()))
        dead_channels |= set(parts.get("down", ()))
        out[layer] = (heads, groups, FFN - len(dead_channels))
    return out


def wikipedia_ids(n: int = 3, max_length: int = 96) -> dict[str, torch.Tensor]:
    """Real text: the first Wikipedia paragraphs of the bundled SQuAD sample, tokenized."""
    from transformers import AutoTokenizer

    from analyzer.runtime.demo import minilm_path

    contexts = list(dict.fromkeys(q.context for q in read_squad(bundled_sample_path()).questions))
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
    encoded = tokenizer(
        contexts[:n], return_tensors="pt", padding=True, truncation=True, max_length=max_length
    )
    return {k: encoded[k] for k in ("input_ids", "attention_mask")}


def logits_diff(a: Path, b: Path, inputs, **options) -> float:
    with torch.inference_mode():
        x, y = (load(p, **options)(**inputs).logits for p in (a, b))
    mask = inputs["attention_mask"].bool()
    return float((x[mask] - y[mask]).abs().max())


def dense_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """What analysis takes each tensor's dense shape to be (architecture.dense_shape)."""
    checkpoint = open_checkpoint(folder)
    family, geometry = detect(checkpoint.config, folder / "config.json")
    return {
        name: dense_shape(name, ref.shape, classify(name, family), geometry, folder)
        for name, ref in checkpoint.tensors.items()
    }


@pytest.fixture(scope="module")
def inputs():
    return wikipedia_ids()


@pytest.mark.parametrize("model_type", DECODER_TYPES)
def test_every_family_packs_dead_groups_and_channels_exactly(model_type, tmp_path, inputs):
    source = build_decoder(tmp_path / "pruned", model_type, prune=prune_spec(), **SIZES)
    result = pack(source, tmp_path / "packed")

    want = expected(model_type=model_type)
    assert [(p.heads, p.kv_groups, p.units) for p in result.layers] == [
        want[layer] for layer in range(LAYERS)
    ]
    assert result.num_kv_heads == KV
    config = json.loads((tmp_path / "packed" / "config.json").read_text())
    assert config["prunecard_packing"]["kv_heads"] == [len(want[i][1]) for i in range(LAYERS)]
    assert config["pruned_heads"] == {
        str(i): [h for h in range(HEADS) if h not in want[i][0]]
        for i in range(LAYERS)
        if len(want[i][0]) < HEADS
    }
    state = load_file(tmp_path / "packed" / "model.safetensors")
    family = find_family(model_type)
    for layer, (heads, groups, units) in want.items():
        attn, mlp = f"model.layers.{layer}.self_attn", f"model.layers.{layer}.mlp"
        q, kv = len(heads) * HEAD_DIM, len(groups) * HEAD_DIM
        for norm in family.width_norms:  # narrowed with the rows it normalises
            rows = q if norm.role == "q" else kv
            assert state[f"model.layers.{layer}.{norm.module}.weight"].shape == (rows,)
        if family.fused:
            assert state[f"{attn}.qkv_proj.weight"].shape == (q + 2 * kv, HIDDEN)
            assert state[f"{mlp}.gate_up_proj.weight"].shape == (2 * units, HIDDEN)
        else:
            assert state[f"{attn}.q_proj.weight"].shape == (q, HIDDEN)
            assert state[f"{attn}.k_proj.weight"].shape == (kv, HIDDEN)
            assert state[f"{attn}.v_proj.weight"].shape == (kv, HIDDEN)
            assert state[f"{mlp}.gate_proj.weight"].shape == (units, HIDDEN)
            assert state[f"{mlp}.up_proj.weight"].shape == (units, HIDDEN)
        assert state[f"{attn}.o_proj.weight"].shape == (HIDDEN, q)
        assert state[f"{mlp}.down_proj.weight"].shape == (HIDDEN, units)

    assert logits_diff(source, tmp_path / "packed", inputs) <= 1e-4
    assert dense_shapes(tmp_path / "packed") == dense_shapes(source)


def _subset(n: int):
    return st.lists(st.integers(0, n - 1), unique=True, max_size=n).map(tuple)


SPECS = st.dictionaries(
    st.integers(0, LAYERS - 1),
    st.fixed_dictionaries(
        {
            "v_groups": _subset(KV),
            "o_heads": _subset(HEADS),
            "gate": _subset(FFN),
            "up": _subset(FFN),
            "down": _subset(FFN),
            "qk_groups": _subset(KV),
        }
    ),
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=SPECS, model_type=st.sampled_from(("llama", "phi3", "olmo2")))
def test_any_pruning_packs_to_the_counts_of_the_rules_with_the_same_logits(
    spec, model_type, inputs
):
    with tempfile.TemporaryDirectory() as tmp:
        source = build_decoder(Path(tmp) / "pruned", model_type, prune=prune_spec(spec), **SIZES)
        result = pack(source, Path(tmp) / "packed")
        want = expected(spec, model_type)
        assert [(p.heads, p.kv_groups, p.units) for p in result.layers] == [
            want[layer] for layer in range(LAYERS)
        ]
        assert logits_diff(source, Path(tmp) / "packed", inputs) <= 1e-4


def test_qwen2_biases_go_with_their_rows_and_a_live_v_bias_keeps_its_group(tmp_path, inputs):
    def biased(state):
        for name, tensor in state.items():
            if name.endswith(("q_proj.bias", "k_proj.bias", "v_proj.bias")):
                tensor.copy_(torch.linspace(-0.5, 0.5, len(tensor)))
        prune_spec()(state)  # zeroes layer 0's group 1 V rows and its V bias
        # layer 2: group 1's V rows are zero, but its V bias is not: V = b, a constant
        # that O still carries, so the group stays
        layer_weight(state, 2, "self_attn.v_proj")[HEAD_DIM : 2 * HEAD_DIM] = 0

    source = build_decoder(tmp_path / "pruned", "qwen2", prune=biased, **SIZES)
    result = pack(source, tmp_path / "packed")

    assert [p.kv_groups for p in result.layers] == [want[1] for want in expected().values()]
    state = load_file(tmp_path / "packed" / "model.safetensors")
    for layer, (heads, groups, _) in expected().items():
        attn = f"model.layers.{layer}.self_attn"
        assert state[f"{attn}.q_proj.bias"].shape == (len(heads) * HEAD_DIM,)
        assert state[f"{attn}.v_proj.bias"].shape == (len(groups) * HEAD_DIM,)
    assert logits_diff(source, tmp_path / "packed", inputs) <= 1e-4


def test_alignment_pads_channels_with_zeros_and_stays_exact(tmp_path, inputs):
    source = build_decoder(tmp_path / "pruned", "llama", prune=prune_spec(), **SIZES)
    result = pack(source, tmp_path / "aligned", align=16)

    units = [want[2] for want in expected().values()]
    assert [p.units for p in result.layers] == units
    assert [p.width for p in result.layers] == [-(-u // 16) * 16 for u in units]
    down = load_file(tmp_path / "aligned" / "model.safetensors")[
        "model.layers.0.mlp.down_proj.weight"
    ]
    assert not down[:, units[0] :].any()  # the padding is zero columns
    assert logits_diff(source, tmp_path / "aligned", inputs) <= 1e-4
    assert dense_shapes(tmp_path / "aligned") == dense_shapes(source)


def test_pack_of_a_pack_changes_nothing(tmp_path):
    source = build_decoder(tmp_path / "pruned", "phi3", prune=prune_spec(), **SIZES)
    pack(source, tmp_path / "once", align=16)
    again = pack(tmp_path / "once", tmp_path / "twice", align=16)

    once, twice = (load_file(tmp_path / d / "model.safetensors") for d in ("once", "twice"))
    assert once.keys() == twice.keys()
    assert all(torch.equal(once[k], twice[k]) for k in once)
    configs = [json.loads((tmp_path / d / "config.json").read_text()) for d in ("once", "twice")]
    assert configs[0] == configs[1]
    assert [p.heads for p in again.layers] == [want[0] for want in expected().values()]


def test_analyze_of_a_packed_decoder_gives_the_unpacked_figures(tmp_path):
    """Multi-head attention (one query head per group), where analysis counts heads too."""
    spec = {0: dict(o_heads=(1, 2), gate=(3,), down=(7, 8)), 2: dict(v_groups=(0,), up=(5,))}
    sizes = {**SIZES, "kv_heads": HEADS}
    source = build_decoder(tmp_path / "pruned", "llama", prune=prune_spec(spec), **sizes)
    pack(source, tmp_path / "packed")

    before, after = analyze(source), analyze(tmp_path / "packed")
    assert after.linear.dense == before.linear.dense
    assert [h.removed for h in after.heads.layers] == [h.removed for h in before.heads.layers]
    # the only non-zeros packing drops: the rest of each dead head's Q/K/V rows and O
    # columns, and of each dead channel's gate/up rows and down column
    state = load_file(source / "model.safetensors")
    dropped = 0
    for layer, parts in spec.items():
        w = {m: layer_weight(state, layer, m) for m in ("self_attn.o_proj", "mlp.down_proj")}
        for head in {*parts.get("o_heads", ()), *parts.get("v_groups", ())}:
            rows = slice(head * HEAD_DIM, (head + 1) * HEAD_DIM)
            dropped += sum(int(_rows(state, layer, p)[rows].count_nonzero()) for p in "qkv")
            dropped += int(w["self_attn.o_proj"][:, rows].count_nonzero())
        for channel in {*parts.get("gate", ()), *parts.get("up", ()), *parts.get("down", ())}:
            dropped += sum(
                int(_rows(state, layer, p)[channel].count_nonzero()) for p in ("gate", "up")
            )
            dropped += int(w["mlp.down_proj"][:, channel].count_nonzero())
    assert dropped > 0
    assert after.linear.nnz == before.linear.nnz - dropped
    assert after.overall.dense == before.overall.dense
    assert {m.name: m.dense_shape for m in after.matrices} == {
        m.name: m.dense_shape for m in before.matrices
    }


@pytest.mark.parametrize("model_type", ["llama", "qwen2", "phi3"])
def test_analyze_of_a_packed_gqa_decoder_gives_the_unpacked_figures(tmp_path, model_type):
    """Grouped-query attention: the packed checkpoint stores fewer K/V groups and channels,
    yet analysis gives the same dense, packed and removed figures as before packing (the
    groups it no longer stores count as removed)."""
    source = build_decoder(tmp_path / "pruned", model_type, prune=prune_spec(), **SIZES)
    pack(source, tmp_path / "packed")

    before, after = analyze(source), analyze(tmp_path / "packed")
    want = expected()
    for figures in (before, after):
        assert [len(h.kv_removed) for h in figures.heads.layers] == [
            KV - len(want[layer][1]) for layer in range(LAYERS)
        ]
        assert [s.ffn_units_kept for s in figures.layers] == [want[n][2] for n in range(LAYERS)]
    removed = sum(KV - len(want[layer][1]) for layer in range(LAYERS))
    assert after.heads.kv_removed == before.heads.kv_removed == removed > 0
    assert after.linear.dense == before.linear.dense
    assert after.overall.dense == before.overall.dense
    assert after.linear.packed == before.linear.packed
    assert after.overall.packed == before.overall.packed == after.overall.stored
    assert [h.removed for h in after.heads.layers] == [h.removed for h in before.heads.layers]


def test_a_layer_without_groups_still_decodes_like_the_unpacked_model(tmp_path):
    """Layer 0 keeps no K/V group: the KV cache must still count its tokens, or every later
    position (and so every generated token) would shift."""
    spec = {0: dict(o_heads=tuple(range(HEADS))), 1: dict(v_groups=(0,))}
    source = build_decoder(tmp_path / "pruned", "llama", prune=prune_spec(spec), **SIZES)
    pack(source, tmp_path / "packed")
    prompt = wikipedia_ids(1, 24)["input_ids"]

    with torch.inference_mode():
        tokens = [
            load(p).generate(prompt, max_new_tokens=12, min_new_tokens=12, do_sample=False)
            for p in (source, tmp_path / "packed")
        ]
    assert torch.equal(tokens[0], tokens[1])


def test_dense_layout_of_a_packed_decoder_restores_every_shape(tmp_path, inputs):
    source = build_decoder(tmp_path / "pruned", "mistral", prune=prune_spec(), **SIZES)
    pack(source, tmp_path / "packed")

    dense = load(tmp_path / "packed", layout="dense")
    assert {k: tuple(v.shape) for k, v in dense.state_dict().items()} == {
        k: tuple(v.shape) for k, v in load(source).state_dict().items()
    }
    assert logits_diff(source, tmp_path / "packed", inputs, layout="dense") <= 1e-4


def test_pruned_heads_that_split_a_kv_group_are_refused(tmp_path):
    source = build_decoder(tmp_path / "model", "llama", **SIZES)
    config = json.loads((source / "config.json").read_text())
    config["pruned_heads"] = {"0": [0, 1]}  # half of group 0
    (source / "config.json").write_text(json.dumps(config))

    with pytest.raises(CheckpointError, match="part of a K/V group"):
        pack(source, tmp_path / "packed")


def test_pack_cli_prints_kv_groups_per_layer(tmp_path, capsys):
    source = build_decoder(tmp_path / "pruned", "llama", prune=prune_spec(), **SIZES)

    assert main(["pack", str(source), str(tmp_path / "packed")]) == 0
    out = capsys.readouterr().out
    kept = sum(len(want[1]) for want in expected().values())
    assert f"KV groups kept  {kept} of {KV * LAYERS}" in out

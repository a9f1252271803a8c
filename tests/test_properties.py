"""Invariants of the analysis on random small BERT checkpoints (Hypothesis)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from analyzer import analyze

HIDDEN, HEADS, FFN, LAYERS, VOCAB = 32, 4, 64, 2, 50
HEAD_DIM = HIDDEN // HEADS
CONFIG = {
    "model_type": "bert",
    "architectures": ["BertModel"],
    "hidden_size": HIDDEN,
    "num_attention_heads": HEADS,
    "num_hidden_layers": LAYERS,
    "intermediate_size": FFN,
    "vocab_size": VOCAB,
    "max_position_embeddings": 16,
    "type_vocab_size": 2,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
}
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _model(seed: int):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    return BertModel(BertConfig(**CONFIG), add_pooling_layer=False).eval()


def _masked_state(seed: int, zero_fraction: float, head_bias: float) -> dict[str, torch.Tensor]:
    """A random model's weights with random entries zeroed and, with probability
    `head_bias`, whole value rows or output columns of heads zeroed."""
    g = torch.Generator().manual_seed(seed)
    state = {k: v.detach().clone() for k, v in _model(seed).state_dict().items()}
    for name, w in state.items():
        if w.ndim == 2 and "encoder" in name:
            w[torch.rand(w.shape, generator=g) < zero_fraction] = 0
    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}.attention."
        for h in range(HEADS):
            if torch.rand((), generator=g) < head_bias:
                rows = slice(h * HEAD_DIM, (h + 1) * HEAD_DIM)
                if torch.rand((), generator=g) < 0.5:
                    state[p + "self.value.weight"][rows] = 0
                else:
                    state[p + "output.dense.weight"][:, rows] = 0
    return state


def _save(state: dict[str, torch.Tensor], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(CONFIG))
    return folder


seeds = st.integers(min_value=0, max_value=2**16)
fractions = st.floats(min_value=0.0, max_value=1.0)


@SETTINGS
@given(seed=seeds, zero_fraction=fractions, head_bias=fractions)
def test_densities_are_fractions(seed, zero_fraction, head_bias):
    with tempfile.TemporaryDirectory() as tmp:
        a = analyze(_save(_masked_state(seed, zero_fraction, head_bias), Path(tmp)))
    assert 0.0 <= a.linear.density <= 1.0
    assert 0.0 <= a.overall.density <= 1.0
    assert all(0.0 <= m.density <= 1.0 for m in a.matrices)
    assert a.linear.packed <= a.linear.stored <= a.linear.dense
    assert 0 <= a.heads.removed <= a.heads.total
    for m in a.matrices:
        if m.block is not None:
            assert 0.0 <= m.block.empty_fraction <= 1.0
            assert 0.0 <= m.block.zeros_explained <= 1.0


@SETTINGS
@given(seed=seeds, first=fractions, more=fractions)
def test_zeroing_more_never_raises_density(seed, first, more):
    state = _masked_state(seed, first, 0.0)
    g = torch.Generator().manual_seed(seed + 1)
    sparser = {k: v.clone() for k, v in state.items()}
    for name, w in sparser.items():
        if w.ndim == 2 and "encoder" in name:
            w[torch.rand(w.shape, generator=g) < more] = 0
    with tempfile.TemporaryDirectory() as tmp:
        a = analyze(_save(state, Path(tmp) / "a"))
        b = analyze(_save(sparser, Path(tmp) / "b"))
    assert b.linear.density <= a.linear.density
    assert b.overall.density <= a.overall.density
    assert b.heads.removed >= a.heads.removed
    assert b.ffn.units_kept <= a.ffn.units_kept
    assert b.linear.packed <= a.linear.packed


@SETTINGS
@given(seed=seeds, head_bias=st.floats(min_value=0.2, max_value=0.9))
def test_a_removed_head_can_be_removed_with_identical_outputs(seed, head_bias):
    """Zero every weight of the heads the analysis calls removed (Q, K, V rows and
    biases, O columns) after folding the value bias into the output bias: outputs stay."""
    state = _masked_state(seed, 0.0, head_bias)
    with tempfile.TemporaryDirectory() as tmp:
        a = analyze(_save(state, Path(tmp)))
    removed = {h.layer: h.removed for h in a.heads.layers}
    stripped = {k: v.clone() for k, v in state.items()}
    for layer, heads in removed.items():
        p = f"encoder.layer.{layer}.attention."
        for h in heads:
            rows = slice(h * HEAD_DIM, (h + 1) * HEAD_DIM)
            o = stripped[p + "output.dense.weight"]
            stripped[p + "output.dense.bias"] += o[:, rows] @ stripped[p + "self.value.bias"][rows]
            for n in ("query", "key", "value"):
                stripped[f"{p}self.{n}.weight"][rows] = 0
                stripped[f"{p}self.{n}.bias"][rows] = 0
            o[:, rows] = 0
    model = _model(0)
    ids = torch.randint(0, VOCAB, (3, 12), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        model.load_state_dict(state)
        before = model(input_ids=ids).last_hidden_state
        model.load_state_dict(stripped)
        after = model(input_ids=ids).last_hidden_state
    assert torch.allclose(before, after, atol=1e-5, rtol=0)

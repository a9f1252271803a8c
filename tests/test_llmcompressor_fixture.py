"""End to end on the checkpoints llm-compressor's own `oneshot` wrote (tests/data/llmcompressor):
SparseGPT at 2:4 on every Linear but the lm_head must be measured as exactly that, and the
recipe beside the weights must agree with them.

`sparse24/` and `sparse24-ignore-lm_head/` are plain bf16 safetensors (compressed-tensors
0.19 writes no sparse format any more), `sparse24-fp8/` is compressed-tensors float-quantized
(FP8 weights, 2:4 zeros): it needs the compressed-tensors reader (issue 26, branch ct) and
fails where that is missing.
"""

from __future__ import annotations

import json

import pytest
from conftest import DATA
from safetensors import safe_open

from analyzer.weights.sparsity import analyze

FIXTURES = DATA / "llmcompressor"
DECODER_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@pytest.mark.parametrize("name", ["sparse24", "sparse24-fp8"])
def test_oneshot_2of4_is_measured_2of4_everywhere_but_lm_head(name):
    folder = FIXTURES / name
    config = json.loads((folder / "config.json").read_text())
    layers = config["num_hidden_layers"]
    with safe_open(folder / "model.safetensors", "pt") as f:  # no lm_head key: it is tied
        assert config["tie_word_embeddings"] and "lm_head.weight" not in set(f.keys())
        embedding = f.get_tensor("model.embed_tokens.weight")
    analysis = analyze(folder)
    targeted = {
        f"model.layers.{i}.{group}.{m}.weight"
        for i in range(layers)
        for group, names in (("self_attn", DECODER_LINEARS[:4]), ("mlp", DECODER_LINEARS[4:]))
        for m in names
    }
    patterns = {m.name: m.pattern.kind for m in analysis.matrices if m.name in targeted}
    assert patterns == dict.fromkeys(targeted, "2:4")
    (table,) = [m for m in analysis.matrices if m.name == "model.embed_tokens.weight"]
    assert table.density == int(embedding.count_nonzero()) / embedding.numel() > 0.99
    assert analysis.recipe is not None
    assert [(c.claim, c.verdict, c.matrices) for c in analysis.recipe.checks] == [
        ("pattern", "match", len(targeted)),
        ("ignored", "match", 1),  # the lm_head, which is the tied embedding table
    ]


def test_oneshot_pruning_the_lm_head_it_was_told_to_ignore_is_a_mismatch():
    # llm-compressor 0.14 matches `ignore: [lm_head]` against "lm_head." and prunes it anyway
    folder = FIXTURES / "sparse24-ignore-lm_head"
    assert "ignore: [lm_head]" in (folder / "recipe.yaml").read_text()
    with safe_open(folder / "model.safetensors", "pt") as f:
        embedding = f.get_tensor("model.embed_tokens.weight")  # the tied lm_head
    per_group = (embedding != 0).view(-1, 4).sum(dim=1)
    assert int(per_group.max()) <= 2  # 2:4, counted here
    density = int(embedding.count_nonzero()) / embedding.numel()
    layers = json.loads((folder / "config.json").read_text())["num_hidden_layers"]
    pattern, ignored = analyze(folder).recipe.checks
    expected = ("pattern", "match", layers * len(DECODER_LINEARS))
    assert (pattern.claim, pattern.verdict, pattern.matrices) == expected
    assert (ignored.claim, ignored.verdict) == ("ignored", "mismatch")
    assert [(f.name, f.density) for f in ignored.failures] == [("lm_head", density)]

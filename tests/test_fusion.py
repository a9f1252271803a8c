"""The fused runtime (one QKV projection, add + LayerNorm) gives the outputs of the stock
transformers modules, for packed layers of every width, zero-head layers and padding."""

from __future__ import annotations

import pytest
import torch
from conftest import PruneSpec, build_minilm
from transformers import AutoTokenizer

from analyzer.runtime.bench import bench
from analyzer.runtime.fusion import add_layer_norm, fuse, fused
from analyzer.runtime.packing import load
from analyzer.runtime.timing import Protocol

SPEC = PruneSpec(  # layer 2 loses every head: its attention is only the folded bias
    pruned_heads={0: (1, 5)},
    zero_heads={2: tuple(range(12)), 3: (0, 1, 2)},
    zero_units={4: tuple(range(1000, 1536))},
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return build_minilm(tmp_path_factory.mktemp("fusion") / "ckpt", SPEC)


def inputs(path):
    tokenizer = AutoTokenizer.from_pretrained(path)
    return tokenizer(
        ["Which river?", "What is the capital of France, and which river flows through it?"],
        ["Paris lies on the Seine.", "Paris is the capital of France. It lies on the Seine."],
        return_tensors="pt",
        padding=True,  # the first row is padded: the mask reaches the fused attention
    )


@pytest.mark.parametrize("layout", ["packed", "dense"])
def test_fused_models_give_the_stock_outputs(checkpoint, layout):
    stock = load(checkpoint, layout=layout, align=8)
    model = load(checkpoint, layout=layout, align=8)
    changed = fuse(model)
    heads = [m.num_attention_heads for m in model.modules() if hasattr(m, "qkv")]
    # packed: layer 2 has no heads left and keeps its stock (empty) attention
    assert heads == ([10, 12, 9, 12, 12] if layout == "packed" else [12] * 6)
    assert changed == len(heads) + 2 * 6  # attention layers + two residual outputs per layer
    assert fused(model) and not fused(stock)
    batch = inputs(checkpoint)
    with torch.inference_mode():
        a, b = stock(**batch), model(**batch)
    for key in ("start_logits", "end_logits"):
        assert torch.allclose(getattr(a, key), getattr(b, key), atol=1e-5, rtol=0)


def test_add_layer_norm_is_layer_norm_of_the_sum():
    g = torch.Generator().manual_seed(0)
    x, r = torch.randn(2, 5, 16, generator=g), torch.randn(2, 5, 16, generator=g)
    w, b = torch.randn(16, generator=g), torch.randn(16, generator=g)
    by_hand = (x + r - (x + r).mean(-1, keepdim=True)) / torch.sqrt(
        (x + r).var(-1, unbiased=False, keepdim=True) + 1e-12
    ) * w + b
    assert torch.allclose(add_layer_norm(x, r, w, b, 1e-12), by_hand, atol=1e-5)


def test_bench_records_which_models_ran_fused(checkpoint):
    once = Protocol(warmup=0, min_repeats=1)
    options = dict(device="cpu", dtype="fp32", shapes=[(1, 16)], protocol=once, profile_runs=0)
    record = bench(checkpoint, fuse="both", progress=False, **options)
    assert record.dense_fused and record.packed_fused
    assert record.equivalence.max_abs_diff <= record.equivalence.tolerance
    packed_only = bench(checkpoint, fuse="packed", progress=False, **options)
    assert packed_only.packed_fused and not packed_only.dense_fused
    plain = bench(checkpoint, progress=False, **options)
    assert not (plain.dense_fused or plain.packed_fused)

"""analyze with and without pattern detection, on Llama-7B layer shapes (fp16).

Builds a checkpoint of `--layers` decoder layers of Llama-2-7B's shapes (hidden 4096, 32
heads, intermediate 11008; 404 MB per layer in fp16) with 2:4 sparsity in every linear
weight, then runs `analyze` on it in this process, alternating a run as shipped with a run
whose per-matrix pattern detection (`mask_patterns`: the group histograms) is replaced by a
stub; the per-layer post-pass still runs. Prints the median wall times side by side and their
ratio; the same checkpoint is read both ways, from the page cache after a warm-up run.

    python benchmarks/patterns_speed.py [--layers 2] [--repeats 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def build(out: Path, layers: int) -> None:
    """Llama-2-7B decoder layers (no embeddings: they are not linear weights), 2:4 in every
    linear weight, random values."""
    import torch
    from safetensors.torch import save_file

    hidden, inter, heads = 4096, 11008, 32
    shapes = {
        "self_attn.q_proj": (hidden, hidden),
        "self_attn.k_proj": (hidden, hidden),
        "self_attn.v_proj": (hidden, hidden),
        "self_attn.o_proj": (hidden, hidden),
        "mlp.gate_proj": (inter, hidden),
        "mlp.up_proj": (inter, hidden),
        "mlp.down_proj": (hidden, inter),
    }
    g = torch.Generator().manual_seed(0)
    state = {}
    for layer in range(layers):
        for module, (rows, cols) in shapes.items():
            w = torch.randn(rows, cols, generator=g, dtype=torch.float32).to(torch.float16)
            keep = torch.rand(rows, cols // 4, 4, generator=g).argsort(dim=-1) < 2
            state[f"model.layers.{layer}.{module}.weight"] = w * keep.reshape(rows, cols)
        for norm in ("input_layernorm", "post_attention_layernorm"):
            state[f"model.layers.{layer}.{norm}.weight"] = torch.ones(hidden, dtype=torch.float16)
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "model.safetensors"))
    config = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "torch_dtype": "float16",
    }
    (out / "config.json").write_text(json.dumps(config))


def timed(path: Path, *, patterns: bool) -> tuple[float, tuple]:
    """Wall seconds of one analyze, and its pattern summary."""
    import analyzer.weights.sparsity as sparsity
    from analyzer.weights.patterns import MaskPatterns, mask_patterns

    def stub(mask, *, zeros, blocks, row_any=None, col_any=None):
        return MaskPatterns(zeros=zeros, explained=dict(blocks), row_any=row_any, col_any=col_any)

    sparsity.mask_patterns = mask_patterns if patterns else stub
    try:
        start = time.perf_counter()
        analysis = sparsity.analyze(path)
        return time.perf_counter() - start, analysis.patterns
    finally:
        sparsity.mask_patterns = mask_patterns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the checkpoint here")
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "llama-7b-layers"
        if not (path / "model.safetensors").exists():
            build(path, args.layers)
        size = (path / "model.safetensors").stat().st_size
        print(f"checkpoint: {size / 1e9:.2f} GB, {args.layers} Llama-7B layers, fp16, 2:4")
        print(f"torch threads: {torch.get_num_threads()}")
        timed(path, patterns=True)  # warm the page cache and imports
        without, with_ = [], []
        for _ in range(args.repeats):
            without.append(timed(path, patterns=False)[0])
            seconds, summary = timed(path, patterns=True)
            with_.append(seconds)
        b, p = statistics.median(without), statistics.median(with_)
        print(f"without patterns: {b:6.2f} s (runs {', '.join(f'{x:.2f}' for x in without)})")
        print(f"with patterns   : {p:6.2f} s (runs {', '.join(f'{x:.2f}' for x in with_)})")
        print(f"ratio with / without: {p / b:.2f}x")
        for row in summary:
            print(f"  {row.kind}: {row.matrices} matrices, {row.zeros:,} of {row.weights:,} zero")


if __name__ == "__main__":
    main()

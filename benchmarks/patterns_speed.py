"""analyze with and without pattern detection, on Llama-7B layer shapes (fp16).

Builds a checkpoint of `--layers` decoder layers of Llama-2-7B's shapes (hidden 4096, 32
heads, intermediate 11008; 404 MB per layer in fp16) with 2:4 sparsity in every linear
weight, then runs `analyze` on it in this process, alternating a run as shipped with a run
whose per-matrix pattern detection (`group_stats`: the group counts, slice by slice) is replaced
by a stub; the per-layer post-pass still runs. Prints the wall and CPU times side by side, their
ratios (medians), and the share of each run's time spent inside pattern detection, measured
within the run (robust to a busy machine, where runs differ by 2x); the same checkpoint is
read both ways, from the page cache after a warm-up run.

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


def timed(path: Path, *, patterns: bool) -> tuple[float, float, float, tuple]:
    """Wall and CPU seconds of one analyze, the wall seconds spent inside pattern detection,
    and the pattern summary."""
    import analyzer.weights.sparsity as sparsity
    from analyzer.weights.patterns import group_stats

    inside = [0.0]

    def clocked(mask, zeros):
        start = time.perf_counter()
        try:
            return group_stats(mask, zeros)
        finally:
            inside[0] += time.perf_counter() - start

    def stub(mask, zeros):
        return None  # no group stats: only the block granularities explain zeros

    sparsity.group_stats = clocked if patterns else stub
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        analysis = sparsity.analyze(path)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return wall, cpu, inside[0], analysis.patterns
    finally:
        sparsity.group_stats = group_stats


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
        runs: dict[bool, list[tuple[float, float, float, tuple]]] = {False: [], True: []}
        for _ in range(args.repeats):
            for patterns in (False, True):
                runs[patterns].append(timed(path, patterns=patterns))
        for label, patterns in (("without patterns", False), ("with patterns   ", True)):
            walls = [r[0] for r in runs[patterns]]
            cpu = statistics.median(r[1] for r in runs[patterns])
            print(
                f"{label}: {statistics.median(walls):6.2f} s wall, {cpu:6.2f} s CPU "
                f"(runs {', '.join(f'{x:.2f}' for x in walls)})"
            )
        ratio = {
            what: statistics.median(r[i] for r in runs[True])
            / statistics.median(r[i] for r in runs[False])
            for what, i in (("wall", 0), ("CPU", 1))
        }
        inside = statistics.median(r[2] / r[0] for r in runs[True])
        print(f"ratio with / without: {ratio['wall']:.2f}x wall, {ratio['CPU']:.2f}x CPU (medians)")
        print(f"pattern detection   : {inside:.1%} of each run's wall time (median)")
        summary = runs[True][-1][3]
        for row in summary:
            print(f"  {row.kind}: {row.matrices} matrices, {row.zeros:,} of {row.weights:,} zero")


if __name__ == "__main__":
    main()

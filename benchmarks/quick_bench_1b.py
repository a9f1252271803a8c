"""Wall time of `prunecard bench --quick` on a CPU for a Llama-3.2-1B-geometry checkpoint.

The checkpoint is built here, in a temporary folder: hidden 2048, 16 layers, 32 query heads,
8 KV heads, MLP 8192, vocabulary 128256, tied embeddings, stored in bf16; its weights are
random (normal, std 0.02), with a quarter of every layer's MLP channels zeroed so packing
has something to remove, and MiniLM's tokenizer beside them (its ids lie inside the
vocabulary). Then `prunecard bench --quick --device cpu` runs as a user runs it, in a
subprocess, and its wall time is printed with the record's shapes.

With `--before TREE` the same command also runs from another source tree (a checkout of an
earlier commit, e.g. `git worktree add /tmp/base <commit>`), first, on the same checkpoint:
the time of the quick bench before the change, side by side.

    python benchmarks/quick_bench_1b.py [--before /tmp/base] [--threads N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GEOMETRY = dict(
    vocab_size=128256,
    hidden_size=2048,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=8192,
    max_position_embeddings=131072,
    tie_word_embeddings=True,
    rope_theta=500000.0,
)
DEAD_CHANNELS = 8192 // 4  # per layer: gate rows zeroed


def build(out: Path) -> Path:
    """The checkpoint, tensor by tensor (never a whole fp32 model in memory)."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, LlamaConfig

    from analyzer.runtime.demo import minilm_path
    from analyzer.weights.checkpoint import copy_tokenizer_files

    config = LlamaConfig(**GEOMETRY, torch_dtype="bfloat16", architectures=["LlamaForCausalLM"])
    with torch.device("meta"):
        shapes = {
            n: tuple(p.shape)
            for n, p in AutoModelForCausalLM.from_config(config).named_parameters()
        }
    generator = torch.Generator().manual_seed(0)
    state = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            state[name] = torch.ones(shape, dtype=torch.bfloat16)
            continue
        tensor = torch.randn(shape, generator=generator).mul_(0.02).to(torch.bfloat16)
        if name.endswith("mlp.gate_proj.weight"):
            tensor[:DEAD_CHANNELS] = 0
        state[name] = tensor
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(out)
    copy_tokenizer_files(minilm_path(), out)
    return out


def timed_bench(
    checkpoint: Path, tree: Path, threads: int | None, record: Path
) -> tuple[float, float]:
    """Seconds of wall time and of CPU time (user + system, all threads) of `prunecard
    bench --quick` run from source tree `tree`: on a shared machine the CPU time says what
    the run cost, the wall time what others left of the machine."""
    argv = [sys.executable, "-m", "analyzer.cli.main", "bench", str(checkpoint), "--quick"]
    argv += ["--device", "cpu", "--accept-unstable", "--json", str(record)]
    if threads:
        argv += ["--threads", str(threads)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(argv, check=True, cwd=tree, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - began
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return wall, cpu


def describe(record: Path) -> str:
    b = json.loads(record.read_text())
    shapes = ", ".join(f"{s['batch']}x{s['seq']}" for s in b["shapes"])
    decode = ", ".join(f"batch {d['batch']} {d['prompt']}+{d['new_tokens']}" for d in b["decode"])
    head = [s.get("lm_head_ms") for s in b["shapes"]]
    return (
        f"prefill {shapes}; decode {decode or 'none'}; lm_head apart: "
        f"{', '.join(f'{h:.0f} ms' for h in head) if all(h is not None for h in head) else 'no'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a source tree to time first (old code)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--keep", type=Path, help="build the checkpoint here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp) / "llama-3.2-1b-geometry"
        if not (folder / "model.safetensors").is_file():
            began = time.perf_counter()
            build(folder)
            print(f"built {folder} in {time.perf_counter() - began:.0f} s", flush=True)
        size = (folder / "model.safetensors").stat().st_size
        print(
            f"checkpoint: Llama-3.2-1B geometry, bf16, {size / 1e9:.2f} GB; {os.cpu_count()} CPUs"
        )
        print(f"load average before: {os.getloadavg()[0]:.1f}", flush=True)
        runs = ([("before", args.before)] if args.before else []) + [("after", ROOT)]
        for label, tree in runs:
            record = (args.keep.parent if args.keep else Path(tmp)) / f"{label}.json"
            wall, cpu = timed_bench(folder, tree.resolve(), args.threads, record)
            print(
                f"{label:6}  bench --quick: {wall:6.1f} s wall, {cpu:6.1f} s CPU, load "
                f"{os.getloadavg()[0]:.1f}  ({describe(record)})",
                flush=True,
            )


if __name__ == "__main__":
    main()
